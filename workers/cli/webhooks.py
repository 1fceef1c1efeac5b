"""`billing org entitlements`, `billing webhook status|resend`: what the mail platform is told,
and how its endpoints are doing (docs/operations.md, "Entitlements")."""

from datetime import datetime, timezone

import typer
from rich.table import Table

from domain.catalog import FEATURE_FLAGS
from domain.delivery import EndpointState
from domain.entitlements import blocked_users
from domain.errors import DomainError
from workers.cli.common import (JSON_OPTION_HELP, ExitCode, console, database, fail, group, print_json, settings,
                                unknown_org)

org_app = group("org")
webhook_app = group("webhook")


def _configured():
    try:
        return settings().webhooks
    except DomainError as err:
        fail(err.message, ExitCode.USAGE)


@org_app.command("entitlements")
def org_entitlements(org_id: str = typer.Argument(..., help="Org id"),
                     as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """What the mail platform is told the org may use: its current entitlements version."""
    from db.entitlements import current_document
    with database().transaction() as session:
        document = current_document(session, org_id)
    if document is None:
        unknown_org(org_id)
    if as_json:
        print_json(document)
        return
    plan, features = document["plan"], document["plan"]["features"]
    switched_on = [name for name in FEATURE_FLAGS if features[name]]
    console.print(f"{org_id}: version {document['version']} as of {document['as_of']}", highlight=False)
    console.print(f"plan {plan['id']} ({plan['name']}), {document['status']}, {document['licences']} licences; "
                  f"features: {', '.join(switched_on) or 'none'}; domains: {features['domains'] or 'no limit'}; "
                  f"user cap: {features['user_cap'] or 'none'}", highlight=False)
    subscribers = document["subscribers"]
    console.print(f"subscribers: tier {subscribers['tier'] or 'none'}, {subscribers['contacts']} contacts "
                  f"({subscribers['awaiting_upgrade']} awaiting upgrade); add-ons: "
                  f"{', '.join(document['addons']) or 'none'}", highlight=False)
    table = Table(title=f"users ({len(document['users'])}, {len(blocked_users(document))} blocked)")
    for column in ("user", "quota GB", "blocked"):
        table.add_column(column)
    for user in document["users"]:
        table.add_row(user["email"], str(user["quota_gb"]), user["blocked_reason"] if user["blocked"] else "")
    console.print(table)


def _moment(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at else ""


@webhook_app.command("status")
def webhook_status(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """Each endpoint's state (healthy, retrying, failing), orgs waiting, failures, next attempt."""
    from db.entitlements import backlog, endpoint_rows
    webhooks = _configured()
    now = datetime.now(timezone.utc)
    configured = {endpoint.name: endpoint.url for endpoint in webhooks.endpoints}
    with database().transaction() as session:
        rows = {row.name: row for row in endpoint_rows(session)}
        # The configured endpoints first, then those the database still remembers (configured before).
        names = [*configured, *sorted(set(rows) - set(configured))]
        found = []
        for name in names:
            row, (waiting, oldest) = rows.get(name), backlog(session, name)
            found.append({
                "endpoint": name, "configured": name in configured,
                "url": configured.get(name, row.url if row else None),
                "state": row.state if row else str(EndpointState.HEALTHY), "pending_orgs": waiting,
                "oldest_undelivered": oldest, "oldest_undelivered_seconds": int((now - oldest).total_seconds())
                if oldest else None, "failures": row.failures if row else 0,
                "failed_in_a_row": row.attempts if row else 0, "last_error": row.last_error if row else None,
                "failing_since": row.failing_since if row else None,
                "next_attempt_at": row.next_attempt_at if row else None,
                "last_delivered_at": row.last_delivered_at if row else None})
    if as_json:
        print_json({"endpoints": found})
        return
    if not found:
        console.print("no webhook endpoint configured (BILLING_WEBHOOK_URL, BILLING_WEBHOOK_ENDPOINTS_FILE)",
                      highlight=False)
        return
    table = Table(title="webhook endpoints")
    for column in ("endpoint", "state", "pending orgs", "oldest undelivered", "failures", "last error", "next attempt"):
        table.add_column(column)
    for endpoint in found:
        table.add_row(endpoint["endpoint"] + ("" if endpoint["configured"] else " (not configured)"), endpoint["state"],
                      str(endpoint["pending_orgs"]), _moment(endpoint["oldest_undelivered"]), str(endpoint["failures"]),
                      (endpoint["last_error"] or "")[:80], _moment(endpoint["next_attempt_at"]))
    console.print(table)


@webhook_app.command("resend")
def webhook_resend(org_id: str = typer.Argument(..., help="Org id")) -> None:
    """Send the org's current entitlements again to every endpoint (versions only go up: harmless)."""
    from db.entitlements import current_document, forget_deliveries
    webhooks = _configured()
    with database().transaction() as session:
        document = current_document(session, org_id)
        if document is None:
            unknown_org(org_id)
        if not webhooks.endpoints:
            fail("nothing to send: no webhook endpoint is configured (BILLING_WEBHOOK_URL, "
                 f"BILLING_WEBHOOK_ENDPOINTS_FILE); the mail platform can read version {document['version']} at "
                 f"GET /v1/orgs/{org_id}/entitlements")
        forget_deliveries(session, org_id)
    console.print(f"entitlements of {org_id} (version {document['version']}) will be sent again to every endpoint",
                  highlight=False)
