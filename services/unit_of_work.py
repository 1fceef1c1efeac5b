"""One org's unit of work (cosmicpython's), in one transaction and three phases, each a single
pass downwards: LOAD the org once (db.org_store: its state, what else a step may read, the answer
recorded for the step's business key), DECIDE (domain.org: the step, pure, its storage checks
carried out), COMMIT what was decided (db.org_store writes each kind of row once). A step retried
after its commit answers what it answered the first time, effects included, without deciding
again."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from db.org_store import OrgStore
from db.session import Database
from domain.catalog import Catalog
from domain.decisions import Context, Effect
from domain.org import InvoiceRef, Org
from domain.policy import Policy
from domain.steps import Step
from domain.subscription import OrgSnapshot


@dataclass(frozen=True)
class Outcome:
    """What a step answers: the org's state as stored, the decision's message, the invoice it
    issued and the effects for the workflow to carry out, in order."""
    state: OrgSnapshot
    message: str = ""
    invoice: InvoiceRef | None = None
    effects: list[Effect] = field(default_factory=list)
    users_added: list[str] = field(default_factory=list)
    users_blocked: int = 0
    # The state loaded before deciding (for an opening: the rows just inserted, which the caller's
    # decision was not taken on); None when the answer is the one a first run recorded (a retry
    # decides nothing).
    decided_on: OrgSnapshot | None = None

    @classmethod
    def of(cls, org: Org) -> "Outcome":
        answer, decided = org.answered, org.decided
        assert answer is not None, "a step answers once committed"
        return cls(org.state, answer.message, answer.invoice, answer.effects, answer.users_added,
                   decided.users_blocked if decided else 0, org.loaded if decided else None)


class OrgUnitOfWork:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def decide(self, org_id: str, key: str, at: datetime, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`, in a transaction of its own."""
        with self.db.transaction() as session:
            return self.decide_in(session, org_id, key, at, step)

    def decide_in(self, session: Session, org_id: str, key: str, at: datetime, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`, in the caller's transaction."""
        store = OrgStore(session, self.catalog, self.policy)
        org = store.load(org_id, key)
        # Pure, so a retry that finds no recorded answer decides the same on the same rows.
        org.take(step, Context(at, self.policy, self.catalog, key))
        store.commit()
        return Outcome.of(org)
