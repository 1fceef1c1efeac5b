"""Storage enforcement on its own: a unit of work of a single storage check (bench, tests)."""

from datetime import datetime

from sqlalchemy.orm import Session

from db.events import record_entries
from db.snapshots import StoredOrg, load_state
from db.storage import write_verdicts
from domain.catalog import Catalog
from domain.decisions import Decision, check_storage
from domain.policy import Policy
from domain.storage import Verdict, enforced


def enforce_storage(session: Session, org_id: str, catalog: Catalog, now: datetime,
                    only: list[str] | None = None) -> Verdict:
    """Enforce quotas for the users `only` names (every user when None), on its own: a unit of
    work of a single storage check."""
    state = load_state(session, org_id, Policy())
    _, verdicts = enforced(Decision(state, effects=[check_storage("enforce", users=only)]), StoredOrg(session, org_id),
                           catalog, now)
    record_entries(session, org_id, now, write_verdicts(session, org_id, verdicts, now))
    return verdicts[0]
