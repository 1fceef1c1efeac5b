"""Workflow inputs, update results and the state query's answer."""

from dataclasses import dataclass, field
from datetime import datetime

from activities.messages import ChargeResult, SentReport
from domain.cards import CardDetails
from domain.onboarding import NewOrg
from domain.states import ChargeOutcome
from domain.subscription import OrgSnapshot

TASK_QUEUE = "billing-orgs"
# The signals that bring usage reports and contact counts (fire and forget, as a feed sends them),
# and the operation each one stands for (domain.reports).
REPORT_SIGNALS = {"usage_reported": "set_usage", "contacts_reported": "set_contacts"}


def workflow_id_for(org_id: str) -> str:
    """Stable: one lifecycle workflow per org, found again from the org id alone."""
    return f"org-{org_id}"


@dataclass(frozen=True)
class Opening:
    """A new customer's org to open on a paid plan, its first cycle paid with `card` (a gateway
    token, never a number): `billing org create` starts the workflow with it."""
    org: NewOrg
    card: CardDetails


@dataclass(frozen=True)
class OrgWorkflowInput:
    org_id: str
    # Reports a run received but had not applied when it handed over (continue-as-new), and how
    # many reports the org's workflow had received by then (domain.reports.arrival_id).
    reports: list[SentReport] = field(default_factory=list)
    reports_received: int = 0
    opening: Opening | None = None


@dataclass(frozen=True)
class ChangeOutcome:
    message: str
    status: str
    invoice: str | None = None
    amount: int | None = None
    payment: ChargeOutcome | None = None  # None when nothing was charged
    decline_reason: str | None = None

    @classmethod
    def of(cls, message: str, org: OrgSnapshot, charge: ChargeResult | None) -> "ChangeOutcome":
        """A change's answer: its decision's message, and the charge it made, if any."""
        if charge is None:
            return cls(message=message, status=str(org.status))
        if charge.outcome == ChargeOutcome.SUCCEEDED and not charge.amount:
            # A credit note (a total below zero) or an invoice the account credit covered: no payment.
            message += (f"; nothing charged: {charge.invoice_number} is settled (a credit note, or covered by the "
                        "account credit)")
        elif charge.outcome == ChargeOutcome.SUCCEEDED:
            message += f"; paid {charge.invoice_number}"
        else:
            message += (f"; payment of {charge.invoice_number} declined ({charge.reason})"
                        + ("; the change waits for payment" if org.pending else ""))
        return cls(message=message, status=str(org.status), invoice=charge.invoice_number, amount=charge.amount,
                   payment=charge.outcome, decline_reason=charge.reason)


@dataclass(frozen=True)
class OrgStateView:
    snapshot: OrgSnapshot
    next_action: str
    next_action_at: datetime | None = None
    runs_since_start: int = 0
    history_length: int = 0
    notes: list[str] = field(default_factory=list)
    # Usage reports and contact counts the org's workflow has received (Updates and signals, every
    # run), and those of them not yet applied with their effects (e-mails, storage enforcement).
    reports_received: int = 0
    reports_waiting: int = 0


# A payment's outcome that a gateway reported after its charge had been answered (a webhook).
PAYMENT_SIGNAL = "payment_settled"


@dataclass(frozen=True)
class PaymentNotice:
    invoice_number: str
    attempt: int
    succeeded: bool
