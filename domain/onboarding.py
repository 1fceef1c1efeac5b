"""A new org: the checks its details must pass before anything is written, and the state its
life starts in (a trial, the free plan, or a paid plan whose first cycle is already paid)."""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.billing import charges, held_items
from domain.catalog import Catalog
from domain.errors import InvalidInput
from domain.lifecycle import is_large_account
from domain.money import SUPPORTED_CURRENCIES
from domain.periods import boundary, require_utc
from domain.policy import Policy
from domain.limits import Limits, check_gb, check_text, check_whole, shown
from domain.rules import check_email
from domain.states import FREE_PLAN, TRIAL_PLAN, Cycle, OrgStatus
from domain.storage import MB_PER_GB
from domain.subscription import OrgSnapshot

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


def gb_to_mb(gb: float) -> int:
    return int(round(gb * MB_PER_GB))


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
    return NewOrg(id=org.id, name=org.name.strip(), admin_email=admin, users=users, locale=org.locale,
                  currency=org.currency, plan=org.plan, cycle=org.cycle, licences=licences,
                  auto_allocate_storage=org.auto_allocate_storage)



# Carried-in ledger entries: a first cycle paid before the org reached us (SIMULATE.md).
PAID_BEFORE = ""


def opening_state(org: NewOrg, catalog: Catalog, policy: Policy, now: datetime) -> OrgSnapshot:
    """The state of a validated org whose life starts at `now`."""
    now = require_utc(now)
    base = OrgSnapshot(org_id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                       currency=org.currency, status=OrgStatus.TRIALING, plan=TRIAL_PLAN,
                       licences=org.licences or 0, user_count=len(org.users),
                       auto_allocate_storage=org.auto_allocate_storage)
    if org.plan == "trial":
        # Licences asked for up front are bought when the trial converts (never fewer than users).
        return base.with_changes(trial_ends_at=now + timedelta(days=policy.trial_days))
    if org.plan == FREE_PLAN:
        return base.with_changes(status=OrgStatus.FREE, plan=FREE_PLAN, licences=0)
    cycle = Cycle(org.cycle)
    licences = org.licences if org.licences is not None else len(org.users)
    state = base.with_changes(status=OrgStatus.ACTIVE, plan=org.plan, licences=licences, cycle=cycle,
                              cycle_anchor=now, period_start=now, renews_at=boundary(now, cycle, 1),
                              large_account=is_large_account(max(licences, len(org.users)), policy))
    lines = charges(catalog, org.currency, cycle, (now, state.renews_at), now, held_items(state, catalog), [])
    return state.with_changes(ledger=[line.span(PAID_BEFORE) for line in lines])
