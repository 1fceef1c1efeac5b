"""Small builders shared by the domain tests: UTC datetimes, policy, catalog facts and org
snapshots in each lifecycle state. Values are literal so tests compare against numbers read
from DOMAIN.md and domain/catalog.yaml, not against the code under test."""

from datetime import datetime, timezone

from domain.policy import Policy
from domain.subscription import CatalogFacts, OrgSnapshot, PlanFacts, StorageHolding
from domain.states import Cycle, OrgStatus

STAFF = "rina@billing.test"
ADMIN = "admin@acme.test"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def policy(**overrides) -> Policy:
    return Policy(**{"billing_staff": (STAFF,), **overrides})


# USD monthly per-licence prices from domain/catalog.yaml, written out by hand.
USD_FACTS = CatalogFacts(
    plans=[
        PlanFacts("free", "Free", 5, 5, 0),
        PlanFacts("mail_lite_5", "Mail Lite 5 GB", 5, None, 100),
        PlanFacts("mail_lite_10", "Mail Lite 10 GB", 10, None, 125),
        PlanFacts("mail_premium", "Mail Premium", 50, None, 400),
        PlanFacts("standard", "Workplace Standard", 30, None, 300),
        PlanFacts("professional", "Workplace Professional", 100, None, 600),
    ],
    storage_unit_sizes=[5, 25, 50, 100, 200],
    tier_addon="campaigns_contacts",
    tier_step=1000, tier_min=1000, tier_max=50000,
    flat_addons=["support_enhanced", "support_essentials"],
)

# A monthly cycle anchored 2026-01-31 09:00 UTC, currently in the period Mar 31 -> Apr 30.
PERIOD_START = utc(2026, 3, 31, 9)
RENEWS_AT = utc(2026, 4, 30, 9)


def active_org(**changes) -> OrgSnapshot:
    """A paid org in good standing: standard, monthly, 5 licences, 4 users, card on file; the
    current period paid for what it holds (unless `ledger` is given)."""
    base = OrgSnapshot(
        org_id="acme", name="Acme", admin_email=ADMIN, locale="en", currency="USD",
        status=OrgStatus.ACTIVE, plan="standard", licences=5, user_count=4,
        cycle=Cycle.MONTHLY, cycle_anchor=utc(2026, 1, 31, 9), period_start=PERIOD_START,
        renews_at=RENEWS_AT, card_brand="visa", card_last4="4242",
        storage=[StorageHolding(unit_gb=25, owned=3, allocated=1)])
    org = base.with_changes(**changes)
    if "ledger" in changes or org.period_start is None:
        return org
    from domain.billing import charges, held_items
    from domain.catalog import load_catalog
    catalog = load_catalog()
    lines = charges(catalog, org.currency, org.cycle, (org.period_start, org.renews_at), org.period_start,
                    held_items(org, catalog), [])
    return org.with_changes(ledger=[line.span("INV-1") for line in lines])


def trial_org(**changes) -> OrgSnapshot:
    base = OrgSnapshot(
        org_id="acme", name="Acme", admin_email=ADMIN, locale="en", currency="USD",
        status=OrgStatus.TRIALING, plan="professional", licences=0, user_count=2,
        trial_ends_at=utc(2026, 2, 15, 9))
    return base.with_changes(**changes)


def free_org(**changes) -> OrgSnapshot:
    base = OrgSnapshot(
        org_id="acme", name="Acme", admin_email=ADMIN, locale="en", currency="USD",
        status=OrgStatus.FREE, plan="free", licences=0, user_count=3)
    return base.with_changes(**changes)
