"""Storage enforcement against the database: the users read in one query, the rule applied
(domain.storage.enforce), the verdict written in bulk. Idempotent: a second run changes nothing."""

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import Organisation, StorageUnit, Subscription, User
from domain.catalog import Catalog
from domain.storage import MB_PER_GB, MailboxUser, Verdict, enforce

CHUNK = 500


def _users(session: Session, org_id: str, only: str | None) -> list[MailboxUser]:
    allocated = (select(func.coalesce(func.sum(StorageUnit.size_gb), 0))
                 .where(StorageUnit.user_id == User.id).correlate(User).scalar_subquery())
    # Keep the admin and the oldest users; beyond a plan's user cap the newest go first.
    rank = func.row_number().over(order_by=(User.is_admin.desc(), User.seq.asc()))
    ranked = (select(User.email, User.storage_mb, allocated.label("allocated_gb"), rank.label("rank"), User.blocked,
                     User.blocked_reason).where(User.org_id == org_id)).subquery()
    query = select(ranked)
    if only is not None:
        query = query.where(ranked.c.email == only)
    return [MailboxUser(row.email, row.storage_mb, row.allocated_gb * MB_PER_GB, row.rank, row.blocked,
                        row.blocked_reason) for row in session.execute(query.order_by(ranked.c.rank))]


def free_units(session: Session, org_id: str) -> dict[int, int]:
    """Unallocated units not ending at the renewal: what auto-allocation may give."""
    return dict(session.execute(select(StorageUnit.size_gb, func.count()).where(
        StorageUnit.org_id == org_id, StorageUnit.user_id.is_(None), StorageUnit.remove_at_period_end.is_(False))
        .group_by(StorageUnit.size_gb)).all())


def enforce_storage(session: Session, org_id: str, catalog: Catalog, now: datetime, only: str | None = None) -> Verdict:
    org = session.get(Organisation, org_id)
    plan = catalog.plans[session.get(Subscription, org_id).plan_id]
    verdict = enforce(_users(session, org_id, only), plan.quota_gb, plan.user_cap, org.auto_allocate_storage,
                      free_units(session, org_id))
    for allocation in verdict.auto_allocated:
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.org_id == org_id, StorageUnit.size_gb == allocation.unit_gb, StorageUnit.user_id.is_(None),
            StorageUnit.remove_at_period_end.is_(False)).order_by(StorageUnit.id).limit(1))
        unit.user_id = session.scalar(select(User.id).where(User.org_id == org_id, User.email == allocation.email))
        record_event(session, org_id, now, "storage_auto_allocated",
                     {"user": allocation.email, "unit_gb": allocation.unit_gb})
    for reason in ("storage", "user_cap"):
        emails = [b.email for b in verdict.blocked + verdict.reblocked if b.reason == reason]
        _bulk(session, org_id, emails, blocked=True, blocked_reason=reason)
    _bulk(session, org_id, verdict.unblocked, blocked=False, blocked_reason=None)
    for blocked in verdict.blocked:
        record_event(session, org_id, now, "user_blocked", {"user": blocked.email, "reason": blocked.reason})
    for email in verdict.unblocked:
        record_event(session, org_id, now, "user_unblocked", {"user": email})
    if verdict.changed:
        sub = session.get(Subscription, org_id)
        sub.version = (sub.version or 0) + 1
    session.flush()
    return verdict


def _bulk(session: Session, org_id: str, emails: list[str], **values) -> None:
    for start in range(0, len(emails), CHUNK):
        session.execute(update(User).where(User.org_id == org_id, User.email.in_(emails[start:start + CHUNK]))
                        .values(**values))
