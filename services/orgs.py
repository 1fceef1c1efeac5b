"""An org's beginning: created (a trial, the free plan, an existing customer moved in), opened
by a new customer's first payment, or discarded when that payment is declined."""

from datetime import datetime

from sqlalchemy.orm import Session

from db.entitlements import store_entitlements
from db.events import record_entries, record_event
from db.snapshots import recorded_outcome
from db.orgs import delete_org, end_opening, insert_org, invoice_of, org_exists, start_opening, sync_plans
from db.storage import write_verdicts
from domain.cards import CardDetails
from domain.catalog import Catalog
from domain.decisions import Context, Decision, check_storage
from domain.errors import InvalidInput
from domain.onboarding import NewOrg, open_paid, opening_state
from domain.periods import require_utc
from domain.policy import Policy
from domain.states import InvoiceKind, InvoiceStatus
from domain.steps import Taken
from domain.storage import Arrival, Mailbox, Mailboxes, carried_out, gb_to_mb
from services.unit_of_work import Outcome, OrgUnitOfWork

# The business key of a new customer's opening (one per org: a declined one leaves no org behind).
OPENING_KEY = "opening"


def create_org(session: Session, org: NewOrg, catalog: Catalog, policy: Policy, now: datetime) -> None:
    """Write a validated org. `now` is when its life starts (the trial start, or the moment an
    existing customer moves in, its current cycle paid elsewhere: audited with who vouched and
    until when). Refused when the id is taken."""
    now = require_utc(now)
    _require_new(session, org.id)
    sync_plans(session, catalog)
    state = opening_state(org, catalog, policy, now)
    insert_org(session, org, state, now)
    record_event(session, org.id, now, "org_created", {"plan": org.plan, "users": len(org.users)})
    record_event(session, org.id, now, "status", {"status": str(state.status)})
    if org.paid_through is not None:
        # Its first renewal here is the paid-through date.
        record_event(session, org.id, now, "moved_in", {"paid_through": org.paid_through.isoformat()},
                     actor=org.moved_in_by, reason="existing customer moved in; its current cycle was paid elsewhere")
    # A user already over the plan's quota (or beyond the free plan's cap) is blocked from the
    # start: the users are the new org's, known without reading them back.
    users = [Mailbox(user.email, gb_to_mb(user.storage_gb), 0, seq, user.email == org.admin_email)
             for seq, user in enumerate(org.users, start=1)]
    plan = catalog.plans[state.plan]
    _, verdicts = carried_out(Decision(state, effects=[check_storage("created")]),
                              Mailboxes(users, [Arrival(u.seq, u.email, u.is_admin) for u in users]),
                              plan.quota_gb, plan.user_cap, now)
    record_entries(session, org.id, now, write_verdicts(session, org.id, verdicts, now))
    store_entitlements(session, state, catalog, now)
    session.flush()


def open_account(unit: OrgUnitOfWork, org: NewOrg, card: CardDetails, at: datetime) -> Outcome:
    """Write a new customer's org and its first cycle's invoice, for the workflow to charge
    (domain.onboarding.open_paid). Refused when the id is taken."""
    with unit.db.transaction() as session:
        decision = None   # retried after its commit: the unit of work answers what it answered then
        if recorded_outcome(session, org.id, OPENING_KEY) is None:
            _require_new(session, org.id)
            attempt = start_opening(session, org, unit.catalog, card, at)
            decision = open_paid(org, card, attempt, Context(at, unit.policy, unit.catalog, OPENING_KEY))
            # The rows first, the ledger with the invoice that bills it (the unit of work's commit).
            insert_org(session, org, decision.state.with_changes(ledger=[]), at)
        return unit.decide_in(session, org.id, OPENING_KEY, at, Taken("open_account", decision))


def discard_opening(unit: OrgUnitOfWork, org_id: str, invoice_number: str, reason: str | None) -> None:
    """The first payment of a new customer's org was declined: nothing of the org remains but
    the record of the attempt (db.models.OpeningAttempt), and its id is free to open again."""
    with unit.db.transaction() as session:
        invoice = invoice_of(session, org_id, invoice_number)
        if invoice is not None and invoice.kind == InvoiceKind.OPENING and invoice.status == InvoiceStatus.OPEN:
            delete_org(session, org_id)
        end_opening(session, org_id, "declined", reason)


def _require_new(session: Session, org_id: str) -> None:
    if org_exists(session, org_id):
        raise InvalidInput(f"id: an org with id {org_id!r} already exists")
