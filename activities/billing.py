"""Database activities. Each is one org's unit of work (services.unit_of_work): its state read
once, the domain's decision taken, persisted once, and the stored state returned with the
decision's effects for the workflow to carry out. Each is idempotent by a business key: retried
after its commit, it returns what it answered the first time, effects included."""

from temporalio import activity

from activities import metrics
from activities.errors import data_errors_are_final
from activities.messages import (ChangeInput, DunningUpdate, InvoiceOp, OpeningInput, OrgContext, OrgOp,
                                 RenewalInput, ReportsInput, StepResult)
from db.session import Database
from domain.catalog import Catalog
from domain.payments import Decline
from domain.policy import Policy
from domain.steps import (Change, Declined, DunningEntered, Escalation, Paid, Renewal, Reports, Step, TrialEnd,
                          WriteOff)
from services import orgs
from services.reads import org_context
from services.unit_of_work import Outcome, OrgUnitOfWork


def _decline(update: DunningUpdate) -> Decline:
    return Decline(update.invoice_number, update.attempt, update.amount, update.reason)


def _result(outcome: Outcome) -> StepResult:
    if outcome.users_blocked:
        metrics.users_blocked(outcome.users_blocked)
    return StepResult(outcome.state, outcome.message, outcome.invoice, outcome.effects, outcome.users_added)


def _counted(outcome: Outcome, dunning: str) -> Outcome:
    """A dunning transition counted when decided (a retry's recorded answer is not counted again)."""
    if outcome.decided_on is not None:
        metrics.dunning(dunning)
    return outcome


class BillingActivities:
    def __init__(self, db: Database, catalog: Catalog, policy: Policy) -> None:
        self.db, self.catalog, self.policy = db, catalog, policy
        self.unit = OrgUnitOfWork(db, catalog, policy)

    def _decide(self, org_id: str, key: str, at, step: Step) -> StepResult:
        return _result(self.unit.decide(org_id, key, at, step))

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
        return self._decide(op.org_id, op.key, op.at, TrialEnd())

    @activity.defn
    def convert_trial(self, op: OrgOp) -> StepResult:
        return self._decide(op.org_id, op.key, op.at, TrialEnd())

    @activity.defn
    def open_renewal(self, request: RenewalInput) -> StepResult:
        return self._decide(request.org_id, f"renewal:{request.period_start.isoformat()}", request.at,
                            Renewal(request.period_start))

    @activity.defn
    def settle_paid_invoice(self, op: InvoiceOp) -> StepResult:
        outcome = self.unit.decide(op.org_id, f"settle:{op.invoice_number}", op.at, Paid(op.invoice_number))
        if outcome.decided_on is not None and outcome.decided_on.dunning_invoice == op.invoice_number:
            metrics.dunning("recovered")
        return _result(outcome)

    @activity.defn
    def enter_dunning(self, update: DunningUpdate) -> StepResult:
        return _result(_counted(self.unit.decide(update.org_id, f"dunning:{update.invoice_number}", update.at,
                                                 DunningEntered(_decline(update))), "entered"))

    @activity.defn
    def record_failed_attempt(self, update: DunningUpdate) -> StepResult:
        return self._decide(update.org_id, f"declined:{update.invoice_number}:{update.attempt}", update.at,
                            Declined(_decline(update), update.purpose))

    @activity.defn
    def write_off_and_free(self, update: DunningUpdate) -> StepResult:
        return _result(_counted(self.unit.decide(update.org_id, f"final:{update.invoice_number}", update.at,
                                                 WriteOff(_decline(update))), "final"))

    @activity.defn
    def escalate(self, update: DunningUpdate) -> StepResult:
        # Escalated again on the same invoice after staff extended the grace: a new escalation.
        return _result(_counted(self.unit.decide(update.org_id, f"escalate:{update.invoice_number}:{update.attempt}",
                                                 update.at, Escalation(_decline(update))), "escalated"))

    @activity.defn
    @data_errors_are_final
    def apply_change(self, change: ChangeInput) -> StepResult:
        return self._decide(change.org_id, change.key, change.at, Change(change.request))

    @activity.defn
    @data_errors_are_final
    def apply_reports(self, batch: ReportsInput) -> StepResult:
        """Usage reports and contact counts that arrived as signals, decided at once."""
        return self._decide(batch.org_id, batch.key, batch.at,
                            Reports([(report.operation, report.request) for report in batch.reports]))
