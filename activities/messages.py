"""Activity inputs and results. Frozen dataclasses; new fields get defaults."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.cards import CardDetails
from domain.decisions import Effect, Email, EmailLine
from domain.limits import bounded
from domain.onboarding import NewOrg
from domain.policy import Policy
from domain.states import ChargeOutcome
from domain.subscription import CatalogFacts, OrgSnapshot


@dataclass(frozen=True)
class OrgContext:
    snapshot: OrgSnapshot
    policy: Policy
    catalog: CatalogFacts
    # The users' roster (domain.users.Roster, packed); None in results recorded before it existed.
    users: str | None = None


@dataclass(frozen=True)
class OrgOp:
    org_id: str
    at: datetime
    # Business key of the step, so a retried activity does not apply it twice.
    key: str = ""
    # Storage enforcement: for this user only, and the e-mail that announces its verdict.
    user: str | None = None
    announce: Email | None = None


@dataclass(frozen=True)
class OpeningInput:
    """A new customer's org to open on a paid plan, its first cycle paid with `card` (a gateway
    token, never a number)."""
    org: NewOrg
    card: CardDetails
    at: datetime


@dataclass(frozen=True)
class InvoiceInfo:
    number: str
    total: int
    currency: str


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
    scheduled: bool = True   # a retry of the ladder, not an extra attempt (card update, staff)
    amount: int = 0
    reason: str | None = None
    purpose: str = ""        # the charge's (domain.decisions.ChargePurpose) when neither of the above


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


@dataclass(frozen=True)
class ChangeInput:
    org_id: str
    kind: str
    payload: dict[str, Any]
    key: str
    at: datetime


@dataclass(frozen=True)
class SentReport:
    """A report as a signal brought it (domain.reports): the operation it stands for and its
    request, stamped with its time and identity when it arrived."""
    operation: str             # set_usage | set_contacts
    request: dict[str, Any]


@dataclass(frozen=True)
class ReportsInput:
    """A batch of reports, decided at once; `key` names the batch by its reports' identities."""
    org_id: str
    reports: list[SentReport]
    key: str
    at: datetime


@dataclass(frozen=True)
class BlockedUserInfo:
    email: str
    usage_mb: int
    quota_mb: int
    reason: str


@dataclass(frozen=True)
class LegacyEnforcement:
    """Storage enforcement as results recorded before the billing model reported it."""
    blocked: list[BlockedUserInfo] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    auto_allocated: list[str] = field(default_factory=list)  # "email:unit_gb"


@dataclass(frozen=True)
class StepResult:
    """What a decision activity returns: the org's fresh snapshot, the decision's message, the
    invoice it issued and the effects for the workflow to carry out, in order."""
    snapshot: OrgSnapshot
    message: str = ""
    invoice: InvoiceInfo | None = None
    # None only in results recorded before decisions carried their effects (workflows.legacy).
    effects: list[Effect] | None = None
    # Users the decision added: the workflow's roster learns them without reading them back.
    users_added: list[str] = field(default_factory=list)
    # Fields of those older results, read by workflows.legacy alone.
    moved_to_free: bool = False
    previous_plan: str = ""
    enforcement: LegacyEnforcement | None = None
    plan_changed_from: str | None = None
    plan_changed_to: str | None = None


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
