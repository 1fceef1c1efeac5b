"""One org's unit of work (cosmicpython's), in one transaction and three phases: LOAD what the
step needs (the answer recorded for its business key, the state, and a reader of what else it may
ask: db.state.StoredOrg), DECIDE (domain.steps, pure; storage enforcement inside it), COMMIT what
was decided (its rows, its storage verdicts, the entitlements' next version) with the answer
recorded by the key. A step retried after its commit answers what it answered the first time,
effects included, without deciding again."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from temporalio.converter import AdvancedJSONEncoder, value_to_type

from db.entitlements import store_entitlements
from db.events import record_outcome, recorded_outcome
from db.invoices import InvoiceRef
from db.orgs import end_opening
from db.session import Database
from db.state import StoredOrg, load_state, persist
from domain.catalog import Catalog
from domain.decisions import Context, Decision, Effect, UserChangeKind
from domain.policy import Policy
from domain.steps import Step, decided
from domain.storage import Verdict, enforced
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
    # The state the step was decided on; None when the answer is the one recorded by a first run
    # (a retry decides nothing) or the org is new.
    decided_on: OrgSnapshot | None = None


class OrgUnitOfWork:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def decide(self, org_id: str, key: str, at: datetime, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`."""
        with self.db.transaction() as session:
            recorded = recorded_outcome(session, org_id, key)
            state, stored = load_state(session, org_id, self.policy), StoredOrg(session, org_id)
            if recorded is not None:  # retried after its commit: what it answered, on the state as stored
                return _replayed(recorded, state)
            decision, verdicts = decided(step, state, stored, Context(at, self.policy, self.catalog, key))
            return self._commit(session, org_id, key, at, step.name, decision, verdicts, state)

    def recorded(self, session: Session, org_id: str, key: str) -> Outcome | None:
        recorded = recorded_outcome(session, org_id, key)
        return None if recorded is None else _replayed(recorded, load_state(session, org_id, self.policy))

    def carry_out(self, session: Session, org_id: str, key: str, at: datetime, what: str,
                  decision: Decision) -> Outcome:
        """A decision taken by the caller (a new org's opening), its storage checks carried out,
        committed and its answer recorded by `key`."""
        decision, verdicts = enforced(decision, StoredOrg(session, org_id), self.catalog, at)
        return self._commit(session, org_id, key, at, what, decision, verdicts, None)

    def _commit(self, session: Session, org_id: str, key: str, at: datetime, what: str, decision: Decision,
                verdicts: list[Verdict], decided_on: OrgSnapshot | None) -> Outcome:
        """Write the decision in the transaction: its rows, its storage verdicts with their audit
        entries, the org's entitlements' next version when they changed; then the answer, by `key`."""
        invoice, state = persist(session, org_id, decision, verdicts, at, key, self.policy)
        if decision.opening_paid:
            end_opening(session, org_id, "paid")
        store_entitlements(session, state, self.catalog, at)
        outcome = Outcome(state, decision.message, invoice, decision.effects,
                          [change.email for change in decision.users if change.kind == UserChangeKind.ADD],
                          sum(len(verdict.blocked) for verdict in verdicts), decided_on)
        record_outcome(session, org_id, at, key, what, _recorded(outcome))
        session.flush()
        return outcome


def _recorded(outcome: Outcome) -> dict[str, Any]:
    return json.loads(json.dumps({"message": outcome.message, "invoice": outcome.invoice, "effects": outcome.effects,
                                  "users_added": outcome.users_added}, cls=AdvancedJSONEncoder))


def _replayed(recorded: dict[str, Any], state: OrgSnapshot) -> Outcome:
    return Outcome(state, recorded["message"], value_to_type(InvoiceRef | None, recorded["invoice"]),
                   value_to_type(list[Effect], recorded["effects"]), recorded.get("users_added", []))
