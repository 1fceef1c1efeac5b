"""Database activities. Each is one transaction: read the org's state, take the domain's
decision, persist it, and return the fresh snapshot with the decision's effects for the
workflow to carry out. Each is idempotent by a business key: retried after its commit, it
returns what it answered the first time, effects included."""

import json
from dataclasses import replace
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.converter import AdvancedJSONEncoder, value_to_type

from activities import metrics
from activities.errors import data_errors_are_final
from activities.messages import (ChangeInput, DunningUpdate, InvoiceInfo, InvoiceOp, OpeningInput, OrgContext, OrgOp,
                                 RenewalInput, ReportsInput, StepResult)
from db.entitlements import store_entitlements
from db.events import record_outcome, recorded_outcome
from db.invoices import InvoiceRef, paid_invoice
from db.models import Invoice
from db.orgs import delete_org, end_opening, insert_org, start_opening
from db.session import Database
from db.state import StoredUsers, get_org, load_state, persist, reported_stamps, roster
from db.storage import enforce_storage, free_units
from domain.catalog import Catalog
from domain.decisions import ChargePurpose, Context, Decision, Effect, EffectKind, UserChangeKind, send
from domain import reports
from domain.operations import decide, decide_reports, operation_of
from domain.payments import Decline, charge_declined, escalate, invoice_paid, write_off_and_free
from domain.onboarding import open_paid
from domain.policy import Policy
from domain.states import InvoiceKind, InvoiceStatus
from domain.renewal import end_trial, renew
from domain.storage import storage_emails
from domain.subscription import OrgSnapshot, catalog_facts


# The business key of a new customer's opening (one per org: a declined one leaves no org behind).
OPENING_KEY = "opening"


def _invoice(ref: InvoiceRef | None) -> InvoiceInfo | None:
    return InvoiceInfo(ref.number, ref.total, ref.currency) if ref else None


def _decline(update: DunningUpdate) -> Decline:
    return Decline(update.invoice_number, update.attempt, update.amount, update.reason)


class BillingActivities:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy

    def _decide(self, org_id: str, key: str, at, what: str,
                decision_of: Callable[[Session, OrgSnapshot, Context], Decision]) -> StepResult:
        with self.db.transaction() as session:
            outcome = recorded_outcome(session, org_id, key)
            if outcome is None:
                state = load_state(session, org_id, self.policy)
                decision = decision_of(session, state, Context(at, self.policy, self.catalog, key))
                outcome = self._persisted(session, org_id, key, at, what, decision)
            return self._result(session, org_id, outcome)

    def _persisted(self, session: Session, org_id: str, key: str, at, what: str, decision: Decision) -> dict:
        """Write the decision and remember its answer by `key`."""
        invoice = persist(session, org_id, decision, at, key)
        added = [change.email for change in decision.users if change.kind == UserChangeKind.ADD]
        effects = [done for effect in decision.effects for done in self._carried_out(session, org_id, effect, at)]
        store_entitlements(session, decision.state, self.catalog, at)
        outcome = json.loads(json.dumps({"message": decision.message, "invoice": _invoice(invoice),
                                         "effects": effects, "users_added": added}, cls=AdvancedJSONEncoder))
        record_outcome(session, org_id, at, key, what, outcome)
        session.flush()
        return outcome

    def _result(self, session: Session, org_id: str, outcome: dict) -> StepResult:
        return StepResult(load_state(session, org_id, self.policy), outcome["message"],
                          value_to_type(InvoiceInfo | None, outcome["invoice"]),
                          value_to_type(list[Effect], outcome["effects"]), outcome.get("users_added", []))

    @activity.defn
    def load_org(self, org_id: str) -> OrgContext:
        with self.db.transaction() as session:
            org, _ = get_org(session, org_id)
            return OrgContext(snapshot=load_state(session, org_id, self.policy), policy=self.policy,
                              catalog=catalog_facts(self.catalog, org.currency), users=roster(session, org_id).pack())

    @activity.defn
    def open_account(self, opening: OpeningInput) -> StepResult:
        """Write a new customer's org and its first cycle's invoice, for the workflow to charge
        (domain.onboarding.open_paid). Refused when the id is taken."""
        org = opening.org
        with self.db.transaction() as session:
            outcome = recorded_outcome(session, org.id, OPENING_KEY)
            if outcome is None:
                attempt = start_opening(session, org, self.catalog, opening.card, opening.at)
                decision = open_paid(org, opening.card, attempt,
                                     Context(opening.at, self.policy, self.catalog, OPENING_KEY))
                # The rows first, the ledger with the invoice that bills it (db.state.persist).
                insert_org(session, org, decision.state.with_changes(ledger=[]), opening.at)
                outcome = self._persisted(session, org.id, OPENING_KEY, opening.at, "open_account", decision)
            return self._result(session, org.id, outcome)

    @activity.defn
    def discard_opening(self, update: DunningUpdate) -> str:
        """The first payment of a new customer's org was declined: nothing of the org remains but
        the record of the attempt (db.models.OpeningAttempt), and its id is free to open again."""
        with self.db.transaction() as session:
            invoice = session.scalar(select(Invoice).where(Invoice.number == update.invoice_number,
                                                           Invoice.org_id == update.org_id))
            if invoice is not None and invoice.kind == InvoiceKind.OPENING and invoice.status == InvoiceStatus.OPEN:
                delete_org(session, update.org_id)
            end_opening(session, update.org_id, "declined", update.reason)
        return f"org {update.org_id} not created: its first payment was declined ({update.reason or 'declined'})"

    @activity.defn
    def expire_trial(self, op: OrgOp) -> StepResult:
        return self._decide(op.org_id, op.key, op.at, "end_trial", lambda _, state, ctx: end_trial(state, ctx))

    @activity.defn
    def convert_trial(self, op: OrgOp) -> StepResult:
        return self._decide(op.org_id, op.key, op.at, "end_trial", lambda _, state, ctx: end_trial(state, ctx))

    @activity.defn
    def open_renewal(self, request: RenewalInput) -> StepResult:
        return self._decide(request.org_id, f"renewal:{request.period_start.isoformat()}", request.at, "renew",
                            lambda _, state, ctx: renew(state, request.period_start, ctx))

    @activity.defn
    def settle_paid_invoice(self, op: InvoiceOp) -> StepResult:
        def decision(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            if state.dunning_invoice == op.invoice_number:
                metrics.dunning("recovered")
            paid = paid_invoice(session, op.invoice_number)
            if paid.kind == InvoiceKind.OPENING:
                end_opening(session, op.org_id, "paid")
            return invoice_paid(state, paid, ctx)
        return self._decide(op.org_id, f"settle:{op.invoice_number}", op.at, "invoice_paid", decision)

    @activity.defn
    def enter_dunning(self, update: DunningUpdate) -> StepResult:
        def decision(_: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            metrics.dunning("entered")
            return charge_declined(state, _decline(update), ChargePurpose.CYCLE, ctx)
        return self._decide(update.org_id, f"dunning:{update.invoice_number}", update.at, "enter_dunning", decision)

    @activity.defn
    def record_failed_attempt(self, update: DunningUpdate) -> StepResult:
        return self._decide(update.org_id, f"declined:{update.invoice_number}:{update.attempt}", update.at,
                            "charge_declined",
                            lambda _, state, ctx: charge_declined(state, _decline(update), update.purpose, ctx))

    @activity.defn
    def write_off_and_free(self, update: DunningUpdate) -> StepResult:
        def decision(_: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            metrics.dunning("final")
            return write_off_and_free(state, _decline(update), ctx)
        return self._decide(update.org_id, f"final:{update.invoice_number}", update.at, "write_off_and_free", decision)

    @activity.defn
    def escalate(self, update: DunningUpdate) -> StepResult:
        def decision(_: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            metrics.dunning("escalated")
            return escalate(state, _decline(update), ctx)
        # Escalated again on the same invoice after staff extended the grace: a new escalation.
        return self._decide(update.org_id, f"escalate:{update.invoice_number}:{update.attempt}", update.at,
                            "escalate", decision)

    @activity.defn
    @data_errors_are_final
    def apply_change(self, change: ChangeInput) -> StepResult:
        request = change.request
        operation = operation_of(request)

        def decision(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            # Checked again on the stored state: a change applied since the workflow's own check counts.
            ctx = replace(ctx, reported=reported_stamps(session, change.org_id,
                                                        reports.subjects(operation.name, request)))
            return decide(operation, state, request, ctx, catalog_facts(self.catalog, state.currency),
                          StoredUsers(session, change.org_id))
        return self._decide(change.org_id, change.key, change.at, operation.name, decision)

    @activity.defn
    @data_errors_are_final
    def apply_reports(self, batch: ReportsInput) -> StepResult:
        """Usage reports and contact counts that arrived as signals, decided at once: the newest
        per user (and for the org's contacts) applied when newer than the one stored."""
        sent = [(report.operation, report.request) for report in batch.reports]

        def decision(session: Session, state: OrgSnapshot, ctx: Context) -> Decision:
            named = [subject for name, request in sent for subject in reports.subjects(name, request)]
            ctx = replace(ctx, reported=reported_stamps(session, batch.org_id, sorted(set(named))))
            return decide_reports(state, sent, ctx, catalog_facts(self.catalog, state.currency),
                                  StoredUsers(session, batch.org_id))
        return self._decide(batch.org_id, batch.key, batch.at, "apply_reports", decision)

    def _carried_out(self, session: Session, org_id: str, effect: Effect, at) -> list[Effect]:
        """A decision's storage check is carried out in its own transaction, the e-mails it
        sends taking its place: one activity per change instead of two."""
        if effect.kind != EffectKind.STORAGE_CHECK:
            return [effect]
        check = effect.storage
        return value_to_type(list[Effect], self._enforced(session, org_id, check.occasion, check.only,
                                                          check.announce, at)["effects"])

    def _enforced(self, session: Session, org_id: str, occasion: str, only: list[str] | None, announce, at) -> dict:
        outcome = recorded_outcome(session, org_id, f"enforce:{occasion}")
        if outcome is None:
            verdict = enforce_storage(session, org_id, self.catalog, at, only)
            metrics.users_blocked(len(verdict.blocked))
            org, _ = get_org(session, org_id)
            emails = storage_emails(verdict, occasion, org.admin_email, announce,
                                    sum(free_units(session, org_id).values()))
            outcome = json.loads(json.dumps({"effects": [send(email) for email in emails],
                                             "message": f"{len(verdict.blocked)} blocked, "
                                                        f"{len(verdict.unblocked)} unblocked"},
                                            cls=AdvancedJSONEncoder))
            record_outcome(session, org_id, at, f"enforce:{occasion}", "enforce_storage", outcome)
        return outcome
