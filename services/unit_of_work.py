"""One step of an org's life, run through its unit of work (cosmicpython's service layer), in one
transaction and three phases, each a single pass downwards: LOAD the org once (db.org_store, the
unit of work: its state, what else a step may read, the answer recorded for the step's business
key), DECIDE (domain.org: the step, pure, its storage checks carried out), COMMIT what was decided
(db.org_store writes each kind of row once). A step retried after its commit answers what it
answered the first time, effects included, without deciding again."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from db.org_store import OrgStore
from db.session import Database
from domain.catalog import Catalog
from domain.decisions import Context, Effect
from domain.org import Answer, InvoiceRef, Org
from domain.policy import Policy
from domain.steps import Step
from domain.subscription import OrgSnapshot


@dataclass(frozen=True)
class Outcome:
    """What a step answers (domain.org.Answer: the decision's message, the invoice it issued, the
    effects for the workflow to carry out in order, the users it added) with the org's state as
    stored and what the caller counts."""
    state: OrgSnapshot
    answer: Answer
    users_blocked: int = 0
    # The state loaded before deciding (for an opening: the rows just inserted, which the caller's
    # decision was not taken on); None when the answer is the one a first run recorded (a retry
    # decides nothing).
    decided_on: OrgSnapshot | None = None

    @classmethod
    def of(cls, org: Org) -> "Outcome":
        assert org.answered is not None, "a step answers once committed"
        kept = org.kept
        return cls(org.state, org.answered, kept.users_blocked if kept else 0, org.loaded if kept else None)

    @property
    def message(self) -> str:
        return self.answer.message

    @property
    def invoice(self) -> InvoiceRef | None:
        return self.answer.invoice

    @property
    def effects(self) -> list[Effect]:
        return self.answer.effects

    @property
    def users_added(self) -> list[str]:
        return self.answer.users_added


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
