"""Activity inputs and results. Frozen dataclasses; new fields get defaults."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.policy import Policy
from domain.snapshot import CatalogFacts, OrgSnapshot


@dataclass(frozen=True)
class OrgContext:
    snapshot: OrgSnapshot
    policy: Policy
    catalog: CatalogFacts


@dataclass(frozen=True)
class OrgOp:
    org_id: str
    at: datetime
    # Business key of the step, so a retried activity does not apply it twice.
    key: str = ""


@dataclass(frozen=True)
class InvoiceInfo:
    number: str
    total: int
    currency: str


@dataclass(frozen=True)
class InvoiceResult:
    snapshot: OrgSnapshot
    invoice: InvoiceInfo | None = None


@dataclass(frozen=True)
class RenewalInput:
    org_id: str
    period_start: datetime
    at: datetime


@dataclass(frozen=True)
class RenewalResult:
    snapshot: OrgSnapshot
    invoice: InvoiceInfo | None = None
    moved_to_free: bool = False
    previous_plan: str = ""


@dataclass(frozen=True)
class InvoiceOp:
    org_id: str
    invoice_number: str
    at: datetime


@dataclass(frozen=True)
class SettleResult:
    snapshot: OrgSnapshot
    applied_change: str | None = None
    previous_plan: str = ""


@dataclass(frozen=True)
class DunningUpdate:
    org_id: str
    invoice_number: str
    at: datetime
    attempt: int = 1
    scheduled: bool = True
    started_at: datetime | None = None
    next_retry_at: datetime | None = None
    first_response_due: datetime | None = None
    determination_due: datetime | None = None


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
    outcome: str  # succeeded | declined
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
class BlockedUserInfo:
    email: str
    usage_mb: int
    quota_mb: int
    reason: str


@dataclass(frozen=True)
class Enforcement:
    blocked: list[BlockedUserInfo] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    auto_allocated: list[str] = field(default_factory=list)  # "email:unit_gb"


@dataclass(frozen=True)
class ChangeResult:
    snapshot: OrgSnapshot
    message: str
    invoice: InvoiceInfo | None = None
    enforcement: Enforcement | None = None
    plan_changed_from: str | None = None
    plan_changed_to: str | None = None


@dataclass(frozen=True)
class EnforcementResult:
    snapshot: OrgSnapshot
    enforcement: Enforcement


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


@dataclass(frozen=True)
class EmailResult:
    delivered: list[str] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)
