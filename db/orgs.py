"""An org's rows: written when it is created (services.orgs), deleted when its opening is
declined, and the org list. An org's state is read by db.snapshots and written by db.state."""

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import (Base, EntitlementVersion, GatewayCharge, Invoice, OpeningAttempt, Organisation, PlanRow,
                       Subscription, User)
from db.state import get_org, write_state
from domain.cards import CardDetails
from domain.catalog import Catalog
from domain.onboarding import NewOrg
from domain.subscription import OrgSnapshot
from domain.storage import MB_PER_GB, gb_to_mb


def sync_plans(session: Session, catalog: Catalog) -> None:
    """The catalog's plans, mirrored so subscriptions can reference them."""
    for plan in catalog.plans.values():
        row = session.get(PlanRow, plan.id)
        if row is None:
            session.add(PlanRow(id=plan.id, name=plan.name, quota_mb=plan.quota_gb * MB_PER_GB, user_cap=plan.user_cap))
        else:
            row.name, row.quota_mb, row.user_cap = plan.name, plan.quota_gb * MB_PER_GB, plan.user_cap
    session.flush()


def org_exists(session: Session, org_id: str) -> bool:
    return session.get(Organisation, org_id) is not None


def insert_org(session: Session, org: NewOrg, state: OrgSnapshot, now: datetime) -> None:
    """The rows of a new org (its users, its subscription in `state`)."""
    row = Organisation(id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                       currency=org.currency, auto_allocate_storage=org.auto_allocate_storage, country=org.country,
                       tax_id=org.tax_id, created_at=now)
    session.add(row)
    session.flush()
    for seq, user in enumerate(org.users, start=1):
        session.add(User(org_id=org.id, email=user.email, storage_mb=gb_to_mb(user.storage_gb),
                         is_admin=user.email == org.admin_email, seq=seq, created_at=now))
    sub = Subscription(org_id=org.id, plan_id=state.plan, status=state.status, licences=state.licences)
    session.add(sub)
    session.flush()
    write_state(session, row, sub, state, now)


def start_opening(session: Session, org: NewOrg, catalog: Catalog, card: CardDetails, now: datetime) -> int:
    """A new customer's org is being opened (domain.onboarding.open_paid): the number of this
    attempt at opening it, kept with its card."""
    sync_plans(session, catalog)
    attempt = (session.scalar(select(func.max(OpeningAttempt.attempt)).where(OpeningAttempt.org_id == org.id))
               or 0) + 1
    session.add(OpeningAttempt(org_id=org.id, attempt=attempt, outcome="pending", card_brand=card.brand,
                               card_last4=card.last4, at=now))
    return attempt


def end_opening(session: Session, org_id: str, outcome: str, reason: str | None = None) -> None:
    """The attempt at opening the org under way ends: `paid` or `declined`."""
    for row in session.scalars(select(OpeningAttempt).where(OpeningAttempt.org_id == org_id,
                                                            OpeningAttempt.outcome == "pending")):
        row.outcome, row.decline_reason = outcome, reason


def invoice_of(session: Session, org_id: str, number: str) -> Invoice | None:
    return session.scalar(select(Invoice).where(Invoice.number == number, Invoice.org_id == org_id))


def delete_org(session: Session, org_id: str) -> None:
    """Every row of the org: the rows naming it, and those of its invoices (the catalog's plans,
    shared by every org, the record of attempts to open it and the versions of its entitlements,
    which only go up, stay)."""
    invoices = select(Invoice.id).where(Invoice.org_id == org_id)
    # The subscription points at invoices (pending, dunning): it goes first; then children before parents.
    tables = [Subscription.__table__, *(t for t in reversed(Base.metadata.sorted_tables)
                                        if t is not Subscription.__table__)]
    for table in tables:
        if table.name == "organisations":
            condition = table.c.id == org_id
        elif table is OpeningAttempt.__table__ or table is EntitlementVersion.__table__:
            continue
        elif "org_id" in table.c:
            condition = table.c.org_id == org_id
        elif "invoice_id" in table.c:
            condition = table.c.invoice_id.in_(invoices)
        else:
            continue
        session.execute(delete(table).where(condition))


def forget_org(session: Session, org_id: str) -> None:
    """Every row of an org that never was (a simulation's): its own, the record of the attempts
    to open it, and the sandbox gateway's record of its charges (keyed org:invoice:attempt)."""
    delete_org(session, org_id)
    session.execute(delete(OpeningAttempt).where(OpeningAttempt.org_id == org_id))
    session.execute(delete(EntitlementVersion).where(EntitlementVersion.org_id == org_id))
    session.execute(delete(GatewayCharge).where(GatewayCharge.idempotency_key.startswith(f"{org_id}:", autoescape=True)))


def list_org_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Organisation.id).order_by(Organisation.id)))


def set_billing_address(session: Session, org_id: str, address: str | None, by: str | None,
                        now: datetime) -> None:
    """Store (None: clear) the address invoices print for the org; audited. Not part of the
    billing model: it changes no holding and no bill."""
    org, _ = get_org(session, org_id)
    org.billing_address = address
    record_event(session, org_id, now, "billing_address", {"address": address}, actor=by)


def tax_details(session: Session, org_id: str) -> tuple[str | None, str | None]:
    """The buyer's country and tax number, as stored."""
    org, _ = get_org(session, org_id)
    return org.country, org.tax_id


def set_tax_details(session: Session, org_id: str, country: str | None, tax_id: str | None, by: str | None,
                    now: datetime) -> None:
    """Store the buyer's country and tax number (checked by domain.tax); audited. The invoices
    issued from now on are taxed by the country's rules; those issued before keep their tax."""
    org, _ = get_org(session, org_id)
    org.country, org.tax_id = country, tax_id
    record_event(session, org_id, now, "tax_details", {"country": country, "tax_id": tax_id}, actor=by)


def record_trial_reminder(session: Session, org_id: str, days: int) -> None:
    """The trial reminder `days` before the trial end was sent (its e-mail marked sent)."""
    _, sub = get_org(session, org_id)
    if days not in sub.trial_reminders_sent:
        sub.trial_reminders_sent = sorted([*sub.trial_reminders_sent, days])


def set_card(session: Session, org_id: str, token: str, brand: str, last4: str) -> None:
    """Store what the gateway gave back for a card, before the org's workflow starts (later
    cards go through the update_card operation). Never the number."""
    _, sub = get_org(session, org_id)
    sub.card_token, sub.card_brand, sub.card_last4 = token, brand, last4
    sub.version = (sub.version or 0) + 1
