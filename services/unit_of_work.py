"""One org's unit of work (cosmicpython's), in one transaction and three phases, each a single
pass downwards: LOAD what the step needs (db/snapshots: the answer recorded for its business key,
the state, a reader of what else it may ask), DECIDE (domain.steps, pure; storage enforcement
inside it), COMMIT what was decided, each kind of row once: its invoices (db/invoices), the
org's rows and storage verdicts (db/state), the opening's end (db/orgs), the audit entries with
the answer by the key (db/events), and last the entitlements' next version (db/entitlements). A
step retried after its commit answers what it answered the first time, effects included,
without deciding again."""

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session
from temporalio.converter import AdvancedJSONEncoder, value_to_type

from db.entitlements import store_entitlements
from db.events import record_decision
from db.invoices import InvoiceRef, write_invoices
from db.orgs import end_opening
from db.session import Database
from db.snapshots import StoredOrg, load_state, recorded_outcome
from db.state import persist
from domain.catalog import Catalog
from domain.decisions import Context, Effect, UserChangeKind
from domain.policy import Policy
from domain.steps import Step, decided
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


class OrgUnitOfWork:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def decide(self, org_id: str, key: str, at: datetime, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`, in a transaction of its own."""
        with self.db.transaction() as session:
            return self.decide_in(session, org_id, key, at, step)

    def decide_in(self, session: Session, org_id: str, key: str, at: datetime, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`, in the caller's transaction."""
        # Load everything a step may read, before anything is written.
        state, stored = load_state(session, org_id, self.policy), StoredOrg(session, org_id)
        recorded = recorded_outcome(session, org_id, key)
        if recorded is not None:  # retried after its commit: what it answered, on the state as stored
            return Outcome(state, recorded["message"], value_to_type(InvoiceRef | None, recorded["invoice"]),
                           value_to_type(list[Effect], recorded["effects"]), recorded.get("users_added", []))
        # Decide: pure, so a retry that finds no recorded answer decides the same on the same rows.
        decision, verdicts = decided(step, state, stored, Context(at, self.policy, self.catalog, key))
        # Commit, each kind of row once; the entitlements last, derived from the rows as written.
        invoice, invoice_entries = write_invoices(session, org_id, key, decision, state.currency, at)
        written, verdict_entries = persist(session, org_id, decision, verdicts, invoice.number if invoice else None,
                                           at, self.policy)
        if decision.opening_paid:
            end_opening(session, org_id, "paid")
        outcome = Outcome(written, decision.message, invoice, decision.effects,
                          [change.email for change in decision.users if change.kind == UserChangeKind.ADD],
                          sum(len(verdict.blocked) for verdict in verdicts), decided_on=state)
        answer = {"message": outcome.message, "invoice": outcome.invoice, "effects": outcome.effects,
                  "users_added": outcome.users_added}
        record_decision(session, org_id, at, decision.events + invoice_entries + verdict_entries, key, step.name,
                        json.loads(json.dumps(answer, cls=AdvancedJSONEncoder)))
        store_entitlements(session, written, self.catalog, at)
        session.flush()
        return outcome
