"""Database activities. Each is one org's unit of work (services.unit_of_work): its state read
once, the domain's decision taken, persisted once, and the stored state returned with the
decision's effects for the workflow to carry out. Each is idempotent by a business key: retried
after its commit, it returns what it answered the first time, effects included."""

from temporalio import activity

from activities import metrics
from activities.errors import data_errors_are_final
from activities.messages import (ChangeInput, DunningUpdate, InvoiceInfo, InvoiceOp, OpeningInput, OrgContext, OrgOp,
                                 RenewalInput, ReportsInput, StepResult)
from db.session import Database
from domain.catalog import Catalog
from domain.decisions import ChargePurpose
from domain.payments import Decline, charge_declined, escalate, write_off_and_free
from domain.policy import Policy
from domain.renewal import end_trial, renew
from services import orgs, steps
from services.reads import org_context
from services.unit_of_work import Outcome, OrgUnitOfWork, Step


def _decline(update: DunningUpdate) -> Decline:
    return Decline(update.invoice_number, update.attempt, update.amount, update.reason)


def _result(outcome: Outcome) -> StepResult:
    if outcome.users_blocked:
        metrics.users_blocked(outcome.users_blocked)
    invoice = outcome.invoice
    return StepResult(outcome.state, outcome.message,
                      InvoiceInfo(invoice.number, invoice.total, invoice.currency) if invoice else None,
                      outcome.effects, outcome.users_added)


class BillingActivities:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy
        self.unit = OrgUnitOfWork(db, catalog, policy)

    def _decide(self, org_id: str, key: str, at, what: str, step: Step) -> StepResult:
        return _result(self.unit.decide(org_id, key, at, what, step))

    @activity.defn
    def load_org(self, org_id: str) -> OrgContext:
        snapshot, facts, roster = org_context(self.db, org_id, self.catalog, self.policy)
        return OrgContext(snapshot=snapshot, policy=self.policy, catalog=facts, users=roster.pack())

    @activity.defn
    def open_account(self, opening: OpeningInput) -> StepResult:
        """Write a new customer's org and its first cycle's invoice, for the workflow to charge
        (domain.onboarding.open_paid). Refused when the id is taken."""
        return _result(orgs.open_account(self.unit, opening.org, opening.card, opening.at))

    @activity.defn
    def discard_opening(self, update: DunningUpdate) -> str:
        """The first payment of a new customer's org was declined: nothing of the org remains but
        the record of the attempt, and its id is free to open again."""
        orgs.discard_opening(self.unit, update.org_id, update.invoice_number, update.reason)
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
        paid = steps.paid(op.org_id, op.invoice_number)

        def step(session, state, ctx):
            if state.dunning_invoice == op.invoice_number:
                metrics.dunning("recovered")
            return paid(session, state, ctx)
        return self._decide(op.org_id, f"settle:{op.invoice_number}", op.at, "invoice_paid", step)

    @activity.defn
    def enter_dunning(self, update: DunningUpdate) -> StepResult:
        def step(_, state, ctx):
            metrics.dunning("entered")
            return charge_declined(state, _decline(update), ChargePurpose.CYCLE, ctx)
        return self._decide(update.org_id, f"dunning:{update.invoice_number}", update.at, "enter_dunning", step)

    @activity.defn
    def record_failed_attempt(self, update: DunningUpdate) -> StepResult:
        return self._decide(update.org_id, f"declined:{update.invoice_number}:{update.attempt}", update.at,
                            "charge_declined",
                            lambda _, state, ctx: charge_declined(state, _decline(update), update.purpose, ctx))

    @activity.defn
    def write_off_and_free(self, update: DunningUpdate) -> StepResult:
        def step(_, state, ctx):
            metrics.dunning("final")
            return write_off_and_free(state, _decline(update), ctx)
        return self._decide(update.org_id, f"final:{update.invoice_number}", update.at, "write_off_and_free", step)

    @activity.defn
    def escalate(self, update: DunningUpdate) -> StepResult:
        def step(_, state, ctx):
            metrics.dunning("escalated")
            return escalate(state, _decline(update), ctx)
        # Escalated again on the same invoice after staff extended the grace: a new escalation.
        return self._decide(update.org_id, f"escalate:{update.invoice_number}:{update.attempt}", update.at,
                            "escalate", step)

    @activity.defn
    @data_errors_are_final
    def apply_change(self, change: ChangeInput) -> StepResult:
        what, step = steps.change(change.org_id, change.request, self.catalog)
        return self._decide(change.org_id, change.key, change.at, what, step)

    @activity.defn
    @data_errors_are_final
    def apply_reports(self, batch: ReportsInput) -> StepResult:
        """Usage reports and contact counts that arrived as signals, decided at once."""
        sent = [(report.operation, report.request) for report in batch.reports]
        return self._decide(batch.org_id, batch.key, batch.at, "apply_reports",
                            steps.reports_sent(batch.org_id, sent, self.catalog))
