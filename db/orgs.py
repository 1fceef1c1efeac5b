"""Creating orgs and reading them back as the snapshot the workflow decides on."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import EmailMessage, OrgAddon, Organisation, PlanRow, StorageUnit, Subscription, User
from domain.catalog import Catalog
from domain.errors import InvalidInput, UnknownOrg
from domain.lifecycle import is_large_account
from domain.money import SUPPORTED_CURRENCIES
from domain.periods import boundary, require_utc
from domain.policy import Policy
from domain.rules import check_email, check_storage_gb
from domain.snapshot import CatalogFacts, OrgSnapshot, PlanFacts, StorageHolding
from domain.states import FREE_PLAN, TRIAL_PLAN, Cycle, OrgStatus

LOCALES = ("en", "id")
MB_PER_GB = 1024


def gb_to_mb(gb: float) -> int:
    return int(round(gb * MB_PER_GB))


def mb_to_gb(mb: int) -> float:
    return mb / MB_PER_GB


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


def validate_new_org(org: NewOrg, catalog: Catalog) -> NewOrg:
    """Every field checked before anything is written; errors name the field."""
    import re
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", org.id or ""):
        raise InvalidInput(f"id: {org.id!r} must be 1-63 lowercase letters, digits, '-' or '_'")
    if not org.name or not org.name.strip():
        raise InvalidInput("name: must not be empty")
    admin = check_email(org.admin_email, "admin_email")
    if org.locale not in LOCALES:
        raise InvalidInput(f"locale: {org.locale!r} is not supported; use one of {', '.join(LOCALES)}")
    if org.currency not in SUPPORTED_CURRENCIES:
        raise InvalidInput(f"currency: {org.currency!r} is not supported; use one of {', '.join(SUPPORTED_CURRENCIES)}")
    seen: set[str] = set()
    users = []
    for index, user in enumerate(org.users):
        email = check_email(user.email, f"users[{index}].email")
        check_storage_gb(user.storage_gb, f"users[{index}].storage_gb")
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
    if licences is not None and (not isinstance(licences, int) or licences < 0):
        raise InvalidInput(f"licences: must be a whole number >= 0, got {licences!r}")
    if org.plan not in ("trial", FREE_PLAN) and licences is not None and licences < len(users):
        raise InvalidInput(f"licences: {licences} is fewer than the {len(users)} users; every user needs a licence")
    if org.plan == FREE_PLAN:
        cap = catalog.plan(FREE_PLAN).user_cap
        if cap is not None and len(users) > cap:
            raise InvalidInput(f"users: the free plan allows {cap} users, {len(users)} given")
    return NewOrg(id=org.id, name=org.name.strip(), admin_email=admin, users=users, locale=org.locale,
                  currency=org.currency, plan=org.plan, cycle=org.cycle, licences=licences,
                  auto_allocate_storage=org.auto_allocate_storage)


def sync_plans(session: Session, catalog: Catalog) -> None:
    for plan in catalog.plans.values():
        row = session.get(PlanRow, plan.id)
        if row is None:
            session.add(PlanRow(id=plan.id, name=plan.name, quota_mb=plan.quota_gb * MB_PER_GB, user_cap=plan.user_cap))
        else:
            row.name, row.quota_mb, row.user_cap = plan.name, plan.quota_gb * MB_PER_GB, plan.user_cap
    session.flush()


def create_org(session: Session, org: NewOrg, catalog: Catalog, policy: Policy, now: datetime) -> None:
    """Write a validated org. `now` is when its life starts (the trial start, or the start of
    an already-paid first cycle)."""
    now = require_utc(now)
    if session.get(Organisation, org.id) is not None:
        raise InvalidInput(f"id: an org with id {org.id!r} already exists")
    sync_plans(session, catalog)
    session.add(Organisation(id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                             currency=org.currency, auto_allocate_storage=org.auto_allocate_storage, created_at=now))
    session.flush()
    for seq, user in enumerate(org.users, start=1):
        session.add(User(org_id=org.id, email=user.email, storage_mb=gb_to_mb(user.storage_gb),
                         is_admin=user.email == org.admin_email, seq=seq, created_at=now))
    if org.plan == "trial":
        # Licences asked for up front are bought when the trial converts (never fewer than users).
        sub = Subscription(org_id=org.id, plan_id=TRIAL_PLAN, status=OrgStatus.TRIALING, licences=org.licences or 0,
                           trial_ends_at=now + timedelta(days=policy.trial_days))
        status = OrgStatus.TRIALING
    elif org.plan == FREE_PLAN:
        sub = Subscription(org_id=org.id, plan_id=FREE_PLAN, status=OrgStatus.FREE, licences=0)
        status = OrgStatus.FREE
    else:
        cycle = Cycle(org.cycle)
        sub = Subscription(org_id=org.id, plan_id=org.plan, status=OrgStatus.ACTIVE, cycle=cycle, cycle_anchor=now,
                           period_start=now, renews_at=boundary(now, cycle, 1),
                           licences=org.licences if org.licences is not None else len(org.users))
        status = OrgStatus.ACTIVE
    session.add(sub)
    record_event(session, org.id, now, "org_created", {"plan": org.plan, "users": len(org.users)})
    record_event(session, org.id, now, "status", {"status": str(status)})
    session.flush()


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


def get_org(session: Session, org_id: str) -> tuple[Organisation, Subscription]:
    org = session.get(Organisation, org_id)
    if org is None or org.subscription is None:
        raise UnknownOrg(f"unknown org {org_id!r}")
    return org, org.subscription


def load_snapshot(session: Session, org_id: str, policy: Policy) -> OrgSnapshot:
    from db.models import Invoice
    org, sub = get_org(session, org_id)
    user_count = session.scalar(select(func.count(User.id)).where(User.org_id == org_id)) or 0
    blocked = list(session.scalars(select(User.email).where(User.org_id == org_id, User.blocked.is_(True))
                                   .order_by(User.seq)))
    holdings: dict[int, list[int]] = {}
    for size, allocated in session.execute(select(StorageUnit.size_gb, StorageUnit.user_id)
                                           .where(StorageUnit.org_id == org_id)):
        owned_alloc = holdings.setdefault(size, [0, 0])
        owned_alloc[0] += 1
        owned_alloc[1] += allocated is not None
    addons = session.execute(select(OrgAddon.addon_id, OrgAddon.remove_at_period_end)
                             .where(OrgAddon.org_id == org_id).order_by(OrgAddon.addon_id)).all()
    reminders: list[int] = []
    if sub.trial_ends_at is not None:
        prefix = f"trial:{sub.trial_ends_at.isoformat()}:"
        for occasion in session.scalars(select(EmailMessage.occasion).where(
                EmailMessage.org_id == org_id, EmailMessage.template == "trial_ending",
                EmailMessage.status == "sent")):
            if occasion.startswith(prefix):
                reminders.append(int(occasion[len(prefix):].rstrip("d")))

    def number(invoice_id: int | None) -> str | None:
        return session.get(Invoice, invoice_id).number if invoice_id else None

    pending = sub.pending_change or {}
    pending_attempts = 0
    if sub.pending_invoice_id:
        from db.models import Payment
        pending_attempts = session.scalar(select(func.count(Payment.id))
                                          .where(Payment.invoice_id == sub.pending_invoice_id)) or 0
    return OrgSnapshot(
        org_id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale, currency=org.currency,
        status=OrgStatus(sub.status), plan=sub.plan_id, licences=sub.licences, user_count=user_count,
        cycle=Cycle(sub.cycle) if sub.cycle else None, cycle_anchor=sub.cycle_anchor,
        period_start=sub.period_start, renews_at=sub.renews_at, trial_ends_at=sub.trial_ends_at,
        trial_choice_plan=sub.trial_choice_plan,
        trial_choice_cycle=Cycle(sub.trial_choice_cycle) if sub.trial_choice_cycle else None,
        trial_reminders_sent=sorted(reminders), card_brand=sub.card_brand, card_last4=sub.card_last4,
        scheduled_plan=sub.scheduled_plan, scheduled_licences=sub.scheduled_licences,
        cancel_at_period_end=sub.cancel_at_period_end, pending_invoice=number(sub.pending_invoice_id),
        pending_change=pending.get("summary"), pending_attempts=pending_attempts,
        dunning_invoice=number(sub.dunning_invoice_id),
        dunning_attempts=sub.dunning_attempts, dunning_retries_done=sub.dunning_retries_done,
        dunning_started_at=sub.dunning_started_at, next_retry_at=sub.next_retry_at, escalated_at=sub.escalated_at,
        first_response_due=sub.first_response_due, determination_due=sub.determination_due,
        large_account=is_large_account(max(sub.licences, user_count), policy), blocked_users=blocked,
        storage=[StorageHolding(unit_gb=size, owned=v[0], allocated=v[1]) for size, v in sorted(holdings.items())],
        auto_allocate_storage=org.auto_allocate_storage, contacts=org.contacts, tier_contacts=sub.tier_contacts,
        scheduled_tier_contacts=sub.scheduled_tier_contacts,
        addons=[a for a, _ in addons], addons_removing=[a for a, removing in addons if removing],
        version=sub.version)


def list_org_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Organisation.id).order_by(Organisation.id)))


def set_card(session: Session, org_id: str, token: str, brand: str, last4: str) -> None:
    """Store what the gateway gave back for a card: never the number."""
    _, sub = get_org(session, org_id)
    sub.card_token, sub.card_brand, sub.card_last4 = token, brand, last4
    sub.version = (sub.version or 0) + 1
