"""The timeline `billing simulate` prints (SIMULATE.md, "Output"), read back from the org's event
log: every event at the instant of the chain that wrote it, so the timeline does not depend on
how many milliseconds of real time the activities took."""

import bisect
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from db.queries import LoggedEvent
from workers.simulate.clock import ShiftedClock

if TYPE_CHECKING:
    from domain.subscription import OrgSnapshot
    from workers.simulate.scenario import Action

# Event types of the org event log shown in the timeline, with the fields each one shows.
# Required by SIMULATE.md: email, charge, invoice, plan_changed, status, user_blocked,
# user_unblocked, escalated, entitlements (and action_rejected, made by the harness). The others
# are extras.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "org_created": ("plan", "users"),
    "moved_in": ("paid_through", "by"),   # by: who vouched (the event's actor)
    "status": ("status",),
    "plan_changed": ("from", "to", "reason"),
    "invoice": ("number", "subtotal", "tax", "total", "currency", "status", "kind", "credit_applied"),
    "charge": ("amount", "currency", "outcome", "reason", "invoice", "attempt"),
    "email": ("template", "to"),
    "user_blocked": ("user", "reason"),
    "user_unblocked": ("user",),
    "entitlements": ("version", "plan", "status", "blocked_users"),
    "escalated": ("severity", "reason", "invoice", "first_response_due", "determination_due"),
    "dunning": ("event", "invoice"),
    "change_applied": ("change",),
    "change_dropped": ("change", "invoice"),
    "change_repriced": ("change", "invoice"),
    "scheduled_change_adjusted": ("notice",),
    "downgrade_dropped": ("to", "licences", "why"),
    "grace_extended": ("extend_days", "retry_at", "by"),
    "contacts": ("subscribed", "awaiting_upgrade"),
    "storage_auto_allocated": ("user", "unit_gb"),
    "storage_auto_released": ("user", "unit_gb"),
    "cycle_changed": ("from", "to"),
}
TIME_FIELDS = ("first_response_due", "determination_due", "paid_through", "retry_at")


@dataclass
class Mark:
    instant: datetime   # shifted
    last_event_id: int  # every event with an id up to this one belongs to `instant` (or earlier)


@dataclass
class Rejection:
    instant: datetime
    after_event_id: int
    action: "Action"
    error: str


def timeline(log: list[LoggedEvent], delivered: set[str], marks: list[Mark], rejections: list[Rejection],
             clock: ShiftedClock) -> list[dict[str, Any]]:
    """The events shown, with the actions refused, in the order they happened. `delivered`: the
    Message-IDs the SMTP capture received (an e-mail only in the outbox is not shown)."""
    found: list[tuple[tuple, dict[str, Any]]] = []
    for row in log:
        event = _event(row, delivered, clock)
        instant = _instant_of(marks, row.id)
        if event is not None and instant is not None:
            found.append(((instant, row.id, 0, 0), {"at": clock.text(instant), **event}))
    for seq, rejection in enumerate(rejections):
        found.append(((rejection.instant, rejection.after_event_id, 1, seq),
                      {"at": clock.text(rejection.instant), "type": "action_rejected",
                       "action": rejection.action.kind, "error": rejection.error,
                       "index": rejection.action.index}))
    found.sort(key=lambda item: item[0])
    return [event for _, event in found]


def final_state(snapshot: "OrgSnapshot", clock: ShiftedClock) -> dict[str, Any]:
    return {"plan": snapshot.plan, "status": str(snapshot.status),
            "cycle": str(snapshot.cycle) if snapshot.cycle else None,
            "renews_at": clock.text(snapshot.renews_at) if snapshot.renews_at else None,
            "licences": snapshot.licences, "blocked_users": list(snapshot.blocked_users),
            "users": snapshot.user_count,
            "trial_ends_at": clock.text(snapshot.trial_ends_at) if snapshot.trial_ends_at and
            str(snapshot.status) == "trialing" else None,
            "contacts": {"tier": snapshot.tier_contacts or None, "subscribed": snapshot.subscribers.subscribed,
                         "awaiting_upgrade": snapshot.subscribers.awaiting},
            "scheduled_plan": snapshot.scheduled.plan, "open_invoice": snapshot.open_invoice,
            "card": f"{snapshot.card_brand} ending {snapshot.card_last4}" if snapshot.card_last4 else None,
            "credit": snapshot.credit}


def _instant_of(marks: list[Mark], event_id: int) -> datetime | None:
    """The instant whose chain wrote the event; None for one written after the run's end."""
    ids = [mark.last_event_id for mark in marks]
    index = bisect.bisect_left(ids, event_id)
    return marks[index].instant if index < len(marks) else None


def _event(row: LoggedEvent, delivered: set[str], clock: ShiftedClock) -> dict[str, Any] | None:
    data = dict(row.data)
    if row.type == "email" and data.get("message_id") not in delivered:
        return None  # written to the outbox but never received over SMTP
    if row.type == "request":  # an accepted action, as recorded by the activity that applied it
        event = {"type": "action", "action": data.pop("operation", "")}
        if "action" in data:  # resolve_escalation's own field: extend, downgrade or retry
            data["resolution"] = data.pop("action")
        event.update({k: v for k, v in data.items() if v is not None})
        if row.actor:
            event["requested_by"] = row.actor
        if row.reason:
            event["reason"] = row.reason
        return event
    names = EVENT_FIELDS.get(row.type)
    if names is None:
        return None
    event = {"type": row.type}
    if row.actor:
        data.setdefault("by", row.actor)
    for name in names:
        if name in data:
            value = data[name]
            if name in TIME_FIELDS and isinstance(value, str):
                value = clock.text(datetime.fromisoformat(value))
            elif isinstance(value, str):
                value = clock.unshift_message(value)  # a notice quotes dates
            event[name] = value
    return event
