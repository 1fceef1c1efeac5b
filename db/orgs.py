"""Creating orgs, and the org list. An org's state is read and written by db.state."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import Organisation, PlanRow, Subscription, User
from db.state import get_org, write_state
from db.storage import enforce_storage
from domain.catalog import Catalog
from domain.errors import InvalidInput
from domain.onboarding import NewOrg, gb_to_mb, opening_state
from domain.periods import require_utc
from domain.policy import Policy
from domain.storage import MB_PER_GB


def sync_plans(session: Session, catalog: Catalog) -> None:
    """The catalog's plans, mirrored so subscriptions can reference them."""
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
    state = opening_state(org, catalog, policy, now)
    row = Organisation(id=org.id, name=org.name, admin_email=org.admin_email, locale=org.locale,
                       currency=org.currency, auto_allocate_storage=org.auto_allocate_storage, created_at=now)
    session.add(row)
    session.flush()
    for seq, user in enumerate(org.users, start=1):
        session.add(User(org_id=org.id, email=user.email, storage_mb=gb_to_mb(user.storage_gb),
                         is_admin=user.email == org.admin_email, seq=seq, created_at=now))
    sub = Subscription(org_id=org.id, plan_id=state.plan, status=state.status, licences=state.licences)
    session.add(sub)
    session.flush()
    write_state(session, row, sub, state, now)
    record_event(session, org.id, now, "org_created", {"plan": org.plan, "users": len(org.users)})
    record_event(session, org.id, now, "status", {"status": str(state.status)})
    # A user already over the plan's quota (or beyond the free plan's cap) is blocked from the start.
    enforce_storage(session, org.id, catalog, now)
    session.flush()


def list_org_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Organisation.id).order_by(Organisation.id)))


def set_billing_address(session: Session, org_id: str, address: str | None, by: str | None,
                        now: datetime) -> None:
    """Store (None: clear) the address invoices print for the org; audited. Not part of the
    billing model: it changes no holding and no bill."""
    org, _ = get_org(session, org_id)
    org.billing_address = address
    record_event(session, org_id, now, "billing_address", {"address": address}, actor=by)


def set_card(session: Session, org_id: str, token: str, brand: str, last4: str) -> None:
    """Store what the gateway gave back for a card, before the org's workflow starts (later
    cards go through the update_card operation). Never the number."""
    _, sub = get_org(session, org_id)
    sub.card_token, sub.card_brand, sub.card_last4 = token, brand, last4
    sub.version = (sub.version or 0) + 1
