"""What an org holds and owes, as data: the one state every decision reads and returns.

- Holdings: the plan's licences, storage units, the subscriber tier and flat add-ons. The
  `ledger` says over which days each of them was billed, and for how much: what is due for an
  item is derived from it (domain.billing), never patched by hand.
- `scheduled`: what changes at the renewal (a downgrade, a tier cut, removals, a cancellation,
  a switch to monthly billing).
- `pending`: at most one change waiting for payment (seed 001), applied when its invoice is paid.
- Subscriber contacts (seed 003): subscribed within the tier, the rest awaiting upgrade.

The workflow holds it as its snapshot and checks requests against it; activities load it from
the database, decide, and persist the decision. Frozen; fields added later get defaults, so
payloads recorded by older code still decode (tests/replay)."""

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.catalog import Catalog
from domain.states import Cycle, OrgStatus

PAID_STATUSES = (OrgStatus.ACTIVE, OrgStatus.CANCELLING, OrgStatus.PAST_DUE, OrgStatus.ESCALATED)
IN_DUNNING = (OrgStatus.PAST_DUE, OrgStatus.ESCALATED)


class ItemKind(StrEnum):
    LICENCE = "licence"   # code: plan id
    STORAGE = "storage"   # code: unit size in GB
    TIER = "tier"         # code: tiered add-on id; quantity in steps
    ADDON = "addon"       # code: flat add-on id


@dataclass(frozen=True, order=True)
class Item:
    kind: ItemKind
    code: str

    @staticmethod
    def licence(plan: str) -> "Item":
        return Item(ItemKind.LICENCE, plan)

    @staticmethod
    def storage(unit_gb: int) -> "Item":
        return Item(ItemKind.STORAGE, str(unit_gb))

    @staticmethod
    def tier(addon: str) -> "Item":
        return Item(ItemKind.TIER, addon)

    @staticmethod
    def addon(addon: str) -> "Item":
        return Item(ItemKind.ADDON, addon)

    @property
    def unit_gb(self) -> int:
        return int(self.code)


@dataclass(frozen=True)
class BilledSpan:
    """`quantity` of `item` billed over [start, end) for `amount`; a credit is negative."""
    item: Item
    quantity: int
    start: datetime
    end: datetime
    amount: int
    # The invoice that billed it: None for the invoice of the decision that adds the span (its
    # number comes when it is stored), "" for a cycle paid before the org reached us.
    invoice: str | None = None


@dataclass(frozen=True)
class StorageHolding:
    unit_gb: int
    owned: int
    allocated: int

    @property
    def free(self) -> int:
        return self.owned - self.allocated


@dataclass(frozen=True)
class UnitCount:
    unit_gb: int
    count: int


@dataclass(frozen=True)
class Scheduled:
    """Changes that take effect at the renewal. `plan` is None for a licence-only cut."""
    plan: str | None = None
    licences: int | None = None
    tier: int | None = None
    addons: list[str] = field(default_factory=list)         # flat add-ons ending
    storage: list[UnitCount] = field(default_factory=list)  # unallocated units ending
    cancel: bool = False
    # The cycle from the renewal: a yearly org's switch to monthly (DOMAIN.md), None: unchanged.
    cycle: Cycle | None = None

    @property
    def downgrade(self) -> bool:
        return self.plan is not None or self.licences is not None

    def removing(self, unit_gb: int) -> int:
        return sum(u.count for u in self.storage if u.unit_gb == unit_gb)


@dataclass(frozen=True)
class WaitingChange:
    """A purchase waiting for payment: the Update that asked for it, re-applied (and re-priced
    if the day or the org changed) when it is paid."""
    operation: str
    request: dict[str, Any]
    summary: str
    priced_at: datetime
    invoice: str | None = None   # None until the decision's invoice is persisted
    total: int = 0
    attempts: int = 0            # charge attempts made on `invoice`
    credit_applied: int = 0      # the account credit `invoice` used: given back if it is voided


@dataclass(frozen=True)
class UnpaidCycle:
    """A cycle's invoice issued on its renewal date while the org was past due or escalated, and
    not paid yet: settled with the dunning invoice (charged, or written off), never skipped."""
    invoice: str
    attempts: int = 0            # charge attempts made on it


@dataclass(frozen=True)
class Subscribers:
    """Seed 003: contacts within the tier are subscribed; past it they wait for a tier raise."""
    subscribed: int = 0
    awaiting: int = 0

    @property
    def total(self) -> int:
        return self.subscribed + self.awaiting

    @staticmethod
    def within(total: int, tier: int) -> "Subscribers":
        subscribed = min(total, tier)
        return Subscribers(subscribed, total - subscribed)


@dataclass(frozen=True)
class PlanFacts:
    id: str
    name: str
    quota_gb: int
    user_cap: int | None
    # Monthly per-licence price in the org's currency: orders plans for upgrade vs downgrade.
    monthly_price: int


@dataclass(frozen=True)
class CatalogFacts:
    """The catalog as the checks need it (no prices but the plans' order)."""
    plans: list[PlanFacts]
    storage_unit_sizes: list[int]
    tier_addon: str | None = None
    tier_step: int = 1000
    tier_min: int = 1000
    tier_max: int = 50000
    flat_addons: list[str] = field(default_factory=list)

    def plan(self, plan_id: str) -> PlanFacts | None:
        return next((p for p in self.plans if p.id == plan_id), None)


def catalog_facts(catalog: Catalog, currency: str) -> CatalogFacts:
    tier = next(iter(catalog.tiered_addons.values()), None)
    return CatalogFacts(
        plans=[PlanFacts(id=p.id, name=p.name, quota_gb=p.quota_gb, user_cap=p.user_cap,
                         monthly_price=p.prices[currency]["monthly"]) for p in catalog.plans.values()],
        storage_unit_sizes=sorted(catalog.storage_units),
        tier_addon=tier.id if tier else None,
        tier_step=tier.step if tier else 1000, tier_min=tier.min if tier else 1000,
        tier_max=tier.max if tier else 50000,
        flat_addons=sorted(catalog.flat_addons))


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
    # Seed 003: a plan and tier chosen during the trial take effect when it ends.
    trial_choice_plan: str | None = None
    trial_choice_cycle: Cycle | None = None
    trial_choice_tier: int | None = None
    trial_reminders_sent: list[int] = field(default_factory=list)
    card_brand: str | None = None
    card_last4: str | None = None
    scheduled: Scheduled = field(default_factory=Scheduled)
    pending: WaitingChange | None = None
    # The oldest unpaid cycle's invoice: the dunning ladder counts its attempts.
    dunning_invoice: str | None = None
    dunning_attempts: int = 0
    dunning_retries_done: int = 0
    dunning_started_at: datetime | None = None
    next_retry_at: datetime | None = None
    escalated_at: datetime | None = None
    first_response_due: datetime | None = None
    determination_due: datetime | None = None
    # Cycles served since dunning began, each invoiced on its renewal date, still unpaid (oldest first).
    arrears: list[UnpaidCycle] = field(default_factory=list)
    large_account: bool = False
    blocked_users: list[str] = field(default_factory=list)
    storage: list[StorageHolding] = field(default_factory=list)
    auto_allocate_storage: bool = False
    tier_contacts: int = 0
    subscribers: Subscribers = field(default_factory=Subscribers)
    addons: list[str] = field(default_factory=list)
    ledger: list[BilledSpan] = field(default_factory=list)
    # Money the org is owed (minor units), used up by its next invoices (domain.credit).
    credit: int = 0
    # The buyer's country (ISO 3166 alpha-2: its tax rules, domain.tax) and tax number (NPWP).
    country: str | None = None
    tax_id: str | None = None
    # Bumped by every database change: lets the workflow tell a fresh snapshot from a stale one.
    version: int = 0

    @property
    def has_card(self) -> bool:
        return self.card_last4 is not None

    @property
    def on_paid_plan(self) -> bool:
        return self.status in PAID_STATUSES

    @property
    def open_invoice(self) -> str | None:
        return self.dunning_invoice or (self.pending.invoice if self.pending else None)

    @property
    def unpaid_cycles(self) -> list[str]:
        """Every served cycle's invoice still to be paid: the dunning invoice, then the arrears."""
        return ([self.dunning_invoice] if self.dunning_invoice else []) + [u.invoice for u in self.arrears]

    @property
    def next_attempts(self) -> dict[str, int]:
        """The attempt number each unpaid cycle's next charge takes, oldest cycle first."""
        return {**({self.dunning_invoice: self.dunning_attempts + 1} if self.dunning_invoice else {}),
                **{unpaid.invoice: unpaid.attempts + 1 for unpaid in self.arrears}}

    @property
    def contacts(self) -> int:
        return self.subscribers.total

    def storage_owned(self, unit_gb: int) -> int:
        return next((h.owned for h in self.storage if h.unit_gb == unit_gb), 0)

    def storage_free(self, unit_gb: int) -> int:
        """Unallocated units of that size, those whose removal is scheduled included."""
        return next((h.free for h in self.storage if h.unit_gb == unit_gb), 0)

    def storage_removable(self, unit_gb: int) -> int:
        return self.storage_free(unit_gb) - self.scheduled.removing(unit_gb)

    @property
    def free_units(self) -> dict[int, int]:
        """Unallocated units not ending at the renewal, by size: what auto-allocation may give."""
        removable = {h.unit_gb: self.storage_removable(h.unit_gb) for h in self.storage}
        return {size: count for size, count in removable.items() if count > 0}

    def with_changes(self, **changes: Any) -> "OrgSnapshot":
        return replace(self, **changes)
