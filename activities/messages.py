"""Activity inputs and results. Frozen dataclasses; new fields get defaults."""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from domain.cards import CardDetails
from domain.decisions import ChargePurpose, Effect, Email, EmailLine
from domain.limits import bounded
from domain.onboarding import NewOrg
from domain.operations import OPERATIONS, operation_of
from domain.org import InvoiceRef
from domain.policy import Policy
from domain.states import ChargeOutcome
from domain.subscription import CatalogFacts, OrgSnapshot


@dataclass(frozen=True)
class OrgContext:
    snapshot: OrgSnapshot
    policy: Policy
    catalog: CatalogFacts
    users: str   # the users' roster (domain.users.Roster, packed)


@dataclass(frozen=True)
class OrgOp:
    org_id: str
    at: datetime
    # Business key of the step, so a retried activity does not apply it twice.
    key: str


@dataclass(frozen=True)
class OpeningInput:
    """A new customer's org to open on a paid plan, its first cycle paid with `card` (a gateway
    token, never a number)."""
    org: NewOrg
    card: CardDetails
    at: datetime


@dataclass(frozen=True)
class RenewalInput:
    org_id: str
    period_start: datetime
    at: datetime


@dataclass(frozen=True)
class InvoiceOp:
    org_id: str
    invoice_number: str
    at: datetime


@dataclass(frozen=True)
class DunningUpdate:
    """A declined charge, for the decision at its rung of the dunning ladder."""
    org_id: str
    invoice_number: str
    at: datetime
    attempt: int = 1
    amount: int = 0
    reason: str | None = None
    purpose: ChargePurpose = ChargePurpose.CYCLE   # why the declined charge was made


@dataclass(frozen=True)
class ChargeInput:
    org_id: str
    invoice_number: str
    attempt: int
    at: datetime


@dataclass(frozen=True)
class ChargeResult:
    invoice_number: str
    attempt: int
    outcome: ChargeOutcome
    amount: int
    currency: str
    reason: str | None = None


class CarriesRequest:
    """A message holding one operation's request (a domain.requests dataclass) in `request`,
    typed at both ends. In the history it is JSON; `operation`, its operation's name written
    beside it, reads it back as its type."""
    request: Any
    operation: str

    def __post_init__(self) -> None:
        if isinstance(self.request, dict):   # decoded from the history
            object.__setattr__(self, "request", OPERATIONS[self.operation].request_from(self.request))
        else:
            object.__setattr__(self, "operation", operation_of(self.request).name)


@dataclass(frozen=True)
class ChangeInput(CarriesRequest):
    """A change to decide."""
    org_id: str
    request: Any
    key: str
    at: datetime
    operation: str = ""


@dataclass(frozen=True)
class SentReport(CarriesRequest):
    """A report as a signal brought it (domain.reports): a set_usage or set_contacts request,
    stamped with its time and identity when it arrived."""
    request: Any
    operation: str = ""


def reports_key(batch: list[SentReport]) -> str:
    """A batch's business key, from what its reports are (each stamped with its identity)."""
    text = json.dumps([[report.operation, asdict(report.request)] for report in batch], sort_keys=True)
    return f"reports:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class ReportsInput:
    """A batch of reports, decided at once; `key` names the batch by its reports' identities."""
    org_id: str
    reports: list[SentReport]
    key: str
    at: datetime


@dataclass(frozen=True)
class StepResult:
    """What a decision activity returns: the org's fresh snapshot, the decision's message, the
    invoice it issued and the effects for the workflow to carry out, in order."""
    snapshot: OrgSnapshot
    message: str = ""
    invoice: InvoiceRef | None = None
    effects: list[Effect] = field(default_factory=list)
    # Users the decision added: the workflow's roster learns them without reading them back.
    users_added: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EmailRequest:
    org_id: str
    template: str
    # What makes this e-mail unique for the org (a cycle, an invoice attempt): the outbox key.
    occasion: str
    at: datetime
    to: list[str] = field(default_factory=list)  # empty: the org's admin
    values: dict[str, Any] = field(default_factory=dict)
    money: dict[str, int] = field(default_factory=dict)
    dates: dict[str, datetime] = field(default_factory=dict)
    lines: list[EmailLine] = field(default_factory=list)
    trial_reminder_days: int | None = None
    attach_invoice: str | None = None

    @staticmethod
    def of(org_id: str, at: datetime, email: Email) -> "EmailRequest":
        # The occasion is the outbox's key: one built from long parts (an Update's id, a user's
        # address) is bounded to its column, emails.occasion (200 characters).
        return EmailRequest(org_id, email.template, bounded(email.occasion, 200), at, to=list(email.to),
                            values=dict(email.values),
                            money=dict(email.money), dates=dict(email.dates), lines=list(email.lines),
                            trial_reminder_days=email.trial_reminder_days, attach_invoice=email.attach_invoice)


@dataclass(frozen=True)
class EmailResult:
    delivered: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
