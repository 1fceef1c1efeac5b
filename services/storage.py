"""Storage enforcement inside a unit of work: the users a decision's checks name, read once, and
the rule (domain.storage) applied to them as the decision leaves them."""

from datetime import datetime

from sqlalchemy.orm import Session

from db.events import record_event
from db.state import load_state
from db.storage import load_mailboxes, write_verdict
from domain import storage
from domain.catalog import Catalog
from domain.decisions import Decision, check_storage
from domain.policy import Policy
from domain.storage import Verdict


def carried_out(session: Session, org_id: str, decision: Decision, catalog: Catalog,
                at: datetime) -> tuple[Decision, list[Verdict]]:
    """The decision with its storage checks carried out, and their verdicts to write."""
    checks = storage.checks_of(decision)
    if not checks:
        return decision, []
    state = decision.state
    plan = catalog.plans[state.plan]
    mailboxes = load_mailboxes(session, org_id, storage.scope_of(checks), state.auto_allocate_storage)
    return storage.carried_out(decision, mailboxes, plan.quota_gb, plan.user_cap, at)


def write_verdicts(session: Session, org_id: str, verdicts: list[Verdict], at: datetime) -> None:
    for verdict in verdicts:
        write_verdict(session, org_id, verdict, at)
        for event in storage.verdict_events(verdict):
            record_event(session, org_id, at, event.type, event.data)


def enforce_storage(session: Session, org_id: str, catalog: Catalog, now: datetime,
                    only: list[str] | None = None) -> Verdict:
    """Enforce quotas for the users `only` names (every user when None), on its own: a unit of
    work of a single storage check."""
    state = load_state(session, org_id, Policy())
    _, verdicts = carried_out(session, org_id, Decision(state, effects=[check_storage("enforce", users=only)]),
                              catalog, now)
    write_verdicts(session, org_id, verdicts, now)
    return verdicts[0]
