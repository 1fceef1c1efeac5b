"""What the workflow knows about an org: a snapshot read from the database (the source of
truth) and refreshed after every change. Frozen; new fields must get defaults so histories
recorded before them still decode."""

from dataclasses import dataclass, field, replace
from datetime import datetime

from domain.states import Cycle, OrgStatus


@dataclass(frozen=True)
class PlanFacts:
    id: str
    name: str
    quota_gb: int
    user_cap: int | None
    # Monthly per-licence price in the org's currency: orders plans for upgrade vs downgrade.
    monthly_price: int


@dataclass(frozen=True)
class StorageHolding:
    unit_gb: int
    owned: int
    allocated: int

    @property
    def free(self) -> int:
        return self.owned - self.allocated


@dataclass(frozen=True)
class CatalogFacts:
    plans: list[PlanFacts]
    storage_unit_sizes: list[int]
    tier_addon: str | None = None
    tier_step: int = 1000
    tier_min: int = 1000
    tier_max: int = 50000
    flat_addons: list[str] = field(default_factory=list)

    def plan(self, plan_id: str) -> PlanFacts | None:
        return next((p for p in self.plans if p.id == plan_id), None)


@dataclass(frozen=True)
class OrgSnapshot:
    org_id: str
    name: str
    admin_email: str
    locale: str
    currency: str
    status: OrgStatus
    plan: str
    licences: int
    user_count: int
    cycle: Cycle | None = None
    cycle_anchor: datetime | None = None
    period_start: datetime | None = None
    renews_at: datetime | None = None
    trial_ends_at: datetime | None = None
    trial_choice_plan: str | None = None
    trial_choice_cycle: Cycle | None = None
    trial_reminders_sent: list[int] = field(default_factory=list)
    card_brand: str | None = None
    card_last4: str | None = None
    scheduled_plan: str | None = None
    scheduled_licences: int | None = None
    cancel_at_period_end: bool = False
    pending_invoice: str | None = None
    pending_change: str | None = None
    # Charge attempts already made on the pending invoice: the next attempt number.
    pending_attempts: int = 0
    dunning_invoice: str | None = None
    dunning_attempts: int = 0
    dunning_retries_done: int = 0
    dunning_started_at: datetime | None = None
    next_retry_at: datetime | None = None
    escalated_at: datetime | None = None
    first_response_due: datetime | None = None
    determination_due: datetime | None = None
    large_account: bool = False
    blocked_users: list[str] = field(default_factory=list)
    storage: list[StorageHolding] = field(default_factory=list)
    auto_allocate_storage: bool = False
    contacts: int = 0
    tier_contacts: int = 0
    scheduled_tier_contacts: int | None = None
    addons: list[str] = field(default_factory=list)
    addons_removing: list[str] = field(default_factory=list)
    # Bumped by every database change: lets the workflow tell a fresh snapshot from a stale one.
    version: int = 0

    @property
    def has_card(self) -> bool:
        return self.card_last4 is not None

    @property
    def open_invoice(self) -> str | None:
        return self.dunning_invoice or self.pending_invoice

    def storage_free(self, unit_gb: int) -> int:
        return next((h.free for h in self.storage if h.unit_gb == unit_gb), 0)

    def with_changes(self, **changes) -> "OrgSnapshot":
        return replace(self, **changes)
