"""A new org: the checks its details must pass before anything is written, and the state its
life starts in (a trial, the free plan, or a paid plan whose first cycle is already paid)."""

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.billing import charges, held_items
from domain.cards import CardDetails
from domain.catalog import Catalog
from domain.decisions import ChargePurpose, Context, Decision, Draft, collect
from domain.errors import InvalidInput
from domain.lifecycle import is_large_account
from domain.money import SUPPORTED_CURRENCIES
from domain.periods import boundary, require_utc
from domain.policy import Policy
from domain.limits import Limits, check_gb, check_text, check_whole, shown
from domain.rules import check_email
from domain.renewal import bill_period, start_period
from domain.states import FREE_PLAN, TRIAL_PLAN, Cycle, InvoiceKind, OrgStatus
from domain.subscription import OrgSnapshot
from domain.tax import check_country, check_tax_id

LOCALES = ("en", "id")
# What fits the buyer block of an invoice page beside the invoice's dates.
ADDRESS_LINES, ADDRESS_CHARS = 6, 300


def check_billing_address(address: str) -> str | None:
    """The address printed under the org's name on its invoices: a few lines of text (an empty
    one clears it). Returned trimmed, one address line per line."""
    lines = [line.strip() for line in address.replace("\r\n", "\n").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return None
    if len(lines) > ADDRESS_LINES:
        raise InvalidInput(f"billing address: at most {ADDRESS_LINES} lines, got {len(lines)}")
    text = "\n".join(lines)
    if len(text) > ADDRESS_CHARS:
        raise InvalidInput(f"billing address: at most {ADDRESS_CHARS} characters, got {len(text)}")
    if any(unicodedata.category(ch).startswith("C") for ch in text.replace("\n", "")):
        raise InvalidInput("billing address: control characters are not allowed")
    return text


@dataclass(frozen=True)
class NewUser:
    email: str
    storage_gb: float = 0.0


@dataclass(frozen=True)
class NewOrg:
    id: str
    name: str
    admin_email: str
    users: list[NewUser]
    locale: str = "en"
    currency: str = "USD"
    plan: str = "trial"
    cycle: str | None = None
    licences: int | None = None
    auto_allocate_storage: bool = False
    # An existing customer moved in from another system: its current cycle was paid there until
    # this moment (its first renewal here), as `moved_in_by` vouched. None: a new customer, who
    # pays its first cycle at creation (a paid plan), or a trial or the free plan.
    paid_through: datetime | None = None
    moved_in_by: str | None = None
    # The buyer's country (ISO 3166 alpha-2: its tax, domain.tax) and tax number; None: none.
    country: str | None = None
    tax_id: str | None = None

    @property
    def paid(self) -> bool:
        return self.plan not in ("trial", FREE_PLAN)


def validate_new_org(org: NewOrg, catalog: Catalog, limits: Limits = Limits()) -> NewOrg:
    """Every field checked before anything is written; errors name the field."""
    if not isinstance(org.id, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", org.id or ""):
        raise InvalidInput(f"id: {shown(org.id)} must be 1-63 lowercase letters, digits, '-' or '_'")
    check_text(org.name, "name")
    if not org.name.strip():
        raise InvalidInput("name: must not be empty")
    check_text(org.locale, "locale", limit=8)
    check_text(org.currency, "currency", limit=3)
    check_text(org.plan, "plan")
    if len(org.users) > limits.users_per_org:
        raise InvalidInput(f"users: at most {limits.users_per_org:,} users per org, got {len(org.users):,}")
    admin = check_email(org.admin_email, "admin_email")
    if org.locale not in LOCALES:
        raise InvalidInput(f"locale: {org.locale!r} is not supported; use one of {', '.join(LOCALES)}")
    if org.currency not in SUPPORTED_CURRENCIES:
        raise InvalidInput(f"currency: {org.currency!r} is not supported; use one of {', '.join(SUPPORTED_CURRENCIES)}")
    seen: set[str] = set()
    users = []
    for index, user in enumerate(org.users):
        email = check_email(user.email, f"users[{index}].email")
        check_gb(user.storage_gb, f"users[{index}].storage_gb", limits)
        if email in seen:
            raise InvalidInput(f"users[{index}].email: {email} is listed twice")
        seen.add(email)
        users.append(NewUser(email, float(user.storage_gb)))
    if admin not in seen:
        users.insert(0, NewUser(admin, 0.0))
    if org.plan != "trial":
        catalog.plan(org.plan)
        if org.plan != FREE_PLAN and org.cycle not in (c.value for c in Cycle):
            raise InvalidInput(f"cycle: a paid plan needs 'monthly' or 'yearly', got {org.cycle!r}")
    licences = org.licences
    if licences is not None:
        check_whole(licences, "licences", minimum=0, maximum=limits.licences_per_org)
    if org.plan not in ("trial", FREE_PLAN) and licences is not None and licences < len(users):
        raise InvalidInput(f"licences: {licences} is fewer than the {len(users)} users; every user needs a licence")
    if org.plan == FREE_PLAN:
        cap = catalog.plan(FREE_PLAN).user_cap
        if cap is not None and len(users) > cap:
            raise InvalidInput(f"users: the free plan allows {cap} users, {len(users)} given")
    moved_in_by = None
    if org.paid_through is not None:
        if not org.paid:
            raise InvalidInput(f"paid_through: only an org on a paid plan has a cycle paid elsewhere; the plan is "
                               f"{org.plan}")
        require_utc(org.paid_through)
        moved_in_by = (org.moved_in_by or "").strip()
        check_text(moved_in_by, "moved_in_by")
        if not moved_in_by:
            raise InvalidInput("moved_in_by: who vouches for the cycle paid elsewhere is required (audited)")
    return NewOrg(id=org.id, name=org.name.strip(), admin_email=admin, users=users, locale=org.locale,
                  currency=org.currency, plan=org.plan, cycle=org.cycle, licences=licences,
                  auto_allocate_storage=org.auto_allocate_storage, paid_through=org.paid_through,
                  moved_in_by=moved_in_by, country=check_country(org.country), tax_id=check_tax_id(org.tax_id))



# Carried-in ledger entries: a first cycle paid before the org reached us (SIMULATE.md).
PAID_BEFORE = ""
NEEDS_PAYMENT = ("a new customer on a paid plan pays its first cycle when it is created: give a card; an "
                 "existing customer moved in from another system needs the date its cycle is paid through")


def paid_for_one_cycle(org: NewOrg, start: datetime, by: str) -> NewOrg:
    """An org on a paid plan as `billing simulate` and the demo create it: an existing customer
    moved in, paid through `start` plus one cycle (SIMULATE.md)."""
    if not org.paid:
        return org
    return replace(org, paid_through=boundary(require_utc(start), Cycle(org.cycle), 1), moved_in_by=by)


def paid_cycle(paid_through: datetime, cycle: Cycle, now: datetime) -> tuple[datetime, datetime]:
    """(anchor, start) of the cycle an existing customer has paid until `paid_through`, which must
    end after `now` and start at or before it. The anniversary day is that of the latest start
    whose cycle ends exactly then (paid since Jan 31 through Feb 28: renewals on the 31st, as when
    the cycle started here); where none can (no February day is a month before Mar 31), the cycle
    is anchored on the paid-through date itself."""
    paid_through, now = require_utc(paid_through), require_utc(now)
    if paid_through <= now:
        raise InvalidInput(f"paid_through: {paid_through:%Y-%m-%d %H:%M} UTC is not after now "
                           f"({now:%Y-%m-%d %H:%M} UTC): that cycle is over; its renewal is owed")
    base = boundary(paid_through, cycle, -1)
    if base > now:
        raise InvalidInput(f"paid_through: {paid_through:%Y-%m-%d} is more than one {cycle} cycle away; the "
                           f"latest is {boundary(now, cycle, 1):%Y-%m-%d}")
    starts = [base + timedelta(days=d) for d in range(4)]
    fitting = [s for s in starts if s <= now and boundary(s, cycle, 1) == paid_through]
    return (fitting[-1], fitting[-1]) if fitting else (paid_through, base)


def check_paid_through(org: NewOrg, now: datetime) -> None:
    """Before anything is written: the org's paid cycle is possible now (raises InvalidInput)."""
    if org.paid and org.paid_through is not None:
        paid_cycle(org.paid_through, Cycle(org.cycle), now)


def opening_state(org: NewOrg, catalog: Catalog, policy: Policy, now: datetime) -> OrgSnapshot:
    """The state of a validated org whose life starts at `now`: a trial, the free plan, or an
    existing customer moved in on a paid plan (its current cycle paid elsewhere: billed, never
    invoiced here). A new customer on a paid plan opens with `open_paid` instead."""
    now = require_utc(now)
    base = OrgSnapshot(org_id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                       currency=org.currency, status=OrgStatus.TRIALING, plan=TRIAL_PLAN,
                       licences=org.licences or 0, user_count=len(org.users),
                       auto_allocate_storage=org.auto_allocate_storage, country=org.country, tax_id=org.tax_id)
    if org.plan == "trial":
        # Licences asked for up front are bought when the trial converts (never fewer than users).
        return base.with_changes(trial_ends_at=now + timedelta(days=policy.trial_days))
    if org.plan == FREE_PLAN:
        return base.with_changes(status=OrgStatus.FREE, plan=FREE_PLAN, licences=0)
    if org.paid_through is None:
        raise InvalidInput(NEEDS_PAYMENT)
    cycle = Cycle(org.cycle)
    anchor, start = paid_cycle(org.paid_through, cycle, now)
    state = _paid_plan(base, org, policy).with_changes(cycle=cycle, cycle_anchor=anchor, period_start=start,
                                                       renews_at=org.paid_through)
    lines = charges(catalog, org.currency, cycle, (start, state.renews_at), start, held_items(state, catalog), [])
    return state.with_changes(ledger=[line.span(PAID_BEFORE) for line in lines])


def _paid_plan(base: OrgSnapshot, org: NewOrg, policy: Policy) -> OrgSnapshot:
    licences = org.licences if org.licences is not None else len(org.users)
    return base.with_changes(status=OrgStatus.ACTIVE, plan=org.plan, licences=licences,
                             large_account=is_large_account(max(licences, len(org.users)), policy))


def open_paid(org: NewOrg, card: CardDetails, attempt: int, ctx: Context) -> Decision:
    """A new customer on a paid plan (DOMAIN.md): its first cycle starts now and is invoiced and
    charged at once, attempt `attempt` of opening this org id (a declined card leaves nothing of
    the org, and the next try is a new attempt). The org opens when it is paid (domain.payments)."""
    now = require_utc(ctx.now)
    base = OrgSnapshot(org_id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                       currency=org.currency, status=OrgStatus.ACTIVE, plan=org.plan, licences=0,
                       user_count=len(org.users), auto_allocate_storage=org.auto_allocate_storage,
                       card_brand=card.brand, card_last4=card.last4, country=org.country, tax_id=org.tax_id)
    draft = Draft(_paid_plan(base, org, ctx.policy))
    draft.card_token = card.token
    draft.event("org_created", plan=org.plan, users=len(org.users), cycle=org.cycle, attempt=attempt)
    draft.event("status", status=str(OrgStatus.ACTIVE))
    start_period(draft, now, Cycle(org.cycle))
    bill_period(draft, ctx.catalog, InvoiceKind.OPENING)
    draft.add(collect(ChargePurpose.OPENING, attempt=attempt))
    return draft.decision(f"org {org.id} opened on {org.plan} ({org.cycle}); its first cycle is invoiced")
