"""One org's unit of work (cosmicpython's): in one transaction, its state loaded once, the
decision taken (domain, pure; storage enforcement inside it), persisted once, and its outcome
recorded by the step's business key. A step retried after its commit answers what it answered
the first time, effects included, without deciding again."""

import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session
from temporalio.converter import AdvancedJSONEncoder, value_to_type

from db.entitlements import store_entitlements
from db.events import record_outcome, recorded_outcome
from db.invoices import InvoiceRef
from db.session import Database
from db.state import load_state, persist as write_decision, version_of
from domain.catalog import Catalog
from domain.decisions import Context, Decision, Effect, UserChangeKind
from domain.lifecycle import is_large_account
from domain.policy import Policy
from domain.storage import Verdict
from domain.subscription import OrgSnapshot
from services.storage import carried_out, write_verdicts

# How a step decides: the state loaded once and the context in, the decision out. The session
# is for what a step reads besides the state (a paid invoice's lines, the reports applied).
Step = Callable[[Session, OrgSnapshot, Context], Decision]


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


class OrgUnitOfWork:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def decide(self, org_id: str, key: str, at: datetime, what: str, step: Step) -> Outcome:
        """Decide `step` for the org once per business `key`."""
        with self.db.transaction() as session:
            recorded = recorded_outcome(session, org_id, key)
            state = load_state(session, org_id, self.policy)
            if recorded is not None:  # retried after its commit: what it answered, on the state as stored
                return _replayed(recorded, state)
            decision = step(session, state, Context(at, self.policy, self.catalog, key))
            return self.carry_out(session, org_id, key, at, what, decision)

    def recorded(self, session: Session, org_id: str, key: str) -> Outcome | None:
        recorded = recorded_outcome(session, org_id, key)
        return None if recorded is None else _replayed(recorded, load_state(session, org_id, self.policy))

    def carry_out(self, session: Session, org_id: str, key: str, at: datetime, what: str,
                  decision: Decision) -> Outcome:
        """Storage enforcement decided on the users it names, the whole persisted once, the
        answer recorded by `key`."""
        decision, verdicts = carried_out(session, org_id, decision, self.catalog, at)
        invoice, state = persist(session, org_id, decision, verdicts, at, key, self.catalog, self.policy)
        outcome = Outcome(state, decision.message, invoice, decision.effects,
                          [change.email for change in decision.users if change.kind == UserChangeKind.ADD],
                          sum(len(verdict.blocked) for verdict in verdicts))
        record_outcome(session, org_id, at, key, what, _recorded(outcome))
        session.flush()
        return outcome


def persist(session: Session, org_id: str, decision: Decision, verdicts: list[Verdict], at: datetime, key: str,
            catalog: Catalog, policy: Policy) -> tuple[InvoiceRef | None, OrgSnapshot]:
    """Write a decision in the caller's transaction: its rows, its storage verdicts with their
    audit entries, and the org's entitlements' next version when they changed. Returns the invoice
    it issued and the org's state as stored."""
    invoice, state = write_decision(session, org_id, decision, at, key)
    write_verdicts(session, org_id, verdicts, at)
    state = _as_stored(session, org_id, state, policy)
    store_entitlements(session, state, catalog, at)
    return invoice, state


def _as_stored(session: Session, org_id: str, state: OrgSnapshot, policy: Policy) -> OrgSnapshot:
    """The decided state as a fresh read gives it: its version bumped by the writes, a holding of
    no units no holding, whether it is a large account for its licences now."""
    return replace(state, version=version_of(session, org_id), storage=[h for h in state.storage if h.owned],
                   large_account=is_large_account(max(state.licences, state.user_count), policy))


def _recorded(outcome: Outcome) -> dict[str, Any]:
    return json.loads(json.dumps({"message": outcome.message, "invoice": outcome.invoice, "effects": outcome.effects,
                                  "users_added": outcome.users_added}, cls=AdvancedJSONEncoder))


def _replayed(recorded: dict[str, Any], state: OrgSnapshot) -> Outcome:
    return Outcome(state, recorded["message"], value_to_type(InvoiceRef | None, recorded["invoice"]),
                   value_to_type(list[Effect], recorded["effects"]), recorded.get("users_added", []))
