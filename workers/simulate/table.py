"""`billing simulate` without --json: the timeline and the final state as tables."""

from typing import Any


def _money(amount: Any, currency: Any) -> str:
    from domain.money import format_money
    try:
        return f"{amount} ({format_money(int(amount), str(currency), 'en')})"
    except Exception:  # noqa: BLE001
        return str(amount)


def _details(event: dict[str, Any]) -> str:
    skip = {"at", "type", "action", "currency"}
    parts = []
    for key, value in event.items():
        if key in skip or value is None:
            continue
        if key in ("amount", "total"):
            value = _money(value, event.get("currency"))
        parts.append(f"{key}={value}")
    return ", ".join(parts)


EVENT_STYLES = {"action_rejected": "bold red", "escalated": "bold red", "user_blocked": "red",
                "user_unblocked": "green", "plan_changed": "bold", "status": "cyan", "email": "dim",
                "action": "magenta"}


def render_table(doc: dict[str, Any], console, caption: str = "") -> None:  # noqa: ANN001
    from rich.table import Table
    table = Table(title=f"simulation of org {doc['org']}", caption=caption or None, show_lines=False)
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("details", overflow="fold")
    for event in doc["events"]:
        kind = event["type"]
        label = f"{kind}: {event['action']}" if kind in ("action", "action_rejected") else kind
        if kind == "email":
            label = f"email: {event['template']}"
            details = f"to {event['to']}"
        elif kind == "action_rejected":
            details = event["error"]
        else:
            details = _details({k: v for k, v in event.items() if not (kind == "email" and k == "template")})
        at = event["at"].replace("T", " ").removesuffix("+00:00")
        table.add_row(at, label, details, style=EVENT_STYLES.get(kind))
    console.print(table)
    final = Table(title="final state", show_header=False)
    for key, value in doc["final"].items():
        if value in (None, []):
            value = "-"
        elif isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={'-' if v is None else v}" for k, v in value.items())
        final.add_row(key, str(value))
    console.print(final)
