"""Storage enforcement against the database: the users read in one query, the rule applied
(domain.storage.enforce), the verdict written in bulk. Idempotent: a second run changes nothing."""

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import Organisation, StorageUnit, Subscription, User
from domain.catalog import Catalog
from domain.storage import MB_PER_GB, MailboxUser, Verdict, enforce

CHUNK = 500


def _users(session: Session, org_id: str, only: list[str] | None, waiting: bool) -> list[MailboxUser]:
    """The org's users, or those `only` names (and, `waiting`, those blocked for storage:
    auto-allocation may serve them from what the change frees)."""
    allocated = (select(func.coalesce(func.sum(StorageUnit.size_gb), 0))
                 .where(StorageUnit.user_id == User.id).correlate(User).scalar_subquery())
    # Keep the admin and the oldest users; beyond a plan's user cap the newest go first.
    rank = func.row_number().over(order_by=(User.is_admin.desc(), User.seq.asc()))
    ranked = (select(User.id, User.email, User.storage_mb, allocated.label("allocated_gb"), rank.label("rank"),
                     User.blocked, User.blocked_reason, User.blocked_at).where(User.org_id == org_id)).subquery()
    query = select(ranked)
    if only is not None:
        query = query.where(or_(ranked.c.email.in_(only), ranked.c.blocked_reason == "storage") if waiting
                            else ranked.c.email.in_(only))
    rows = session.execute(query.order_by(ranked.c.rank)).all()
    auto: dict[int, list[int]] = {}
    if waiting:  # units auto-allocation gave: a handful per org, read whole
        for user_id, size in session.execute(select(StorageUnit.user_id, StorageUnit.size_gb).where(
                StorageUnit.org_id == org_id, StorageUnit.auto_allocated.is_(True))):
            auto.setdefault(user_id, []).append(size)
    return [MailboxUser(row.email, row.storage_mb, row.allocated_gb * MB_PER_GB, row.rank, row.blocked,
                        row.blocked_reason, row.blocked_at, tuple(sorted(auto.get(row.id, []))))
            for row in rows]


def free_units(session: Session, org_id: str) -> dict[int, int]:
    """Unallocated units not ending at the renewal: what auto-allocation may give."""
    return dict(session.execute(select(StorageUnit.size_gb, func.count()).where(
        StorageUnit.org_id == org_id, StorageUnit.user_id.is_(None), StorageUnit.remove_at_period_end.is_(False))
        .group_by(StorageUnit.size_gb)).all())


def enforce_storage(session: Session, org_id: str, catalog: Catalog, now: datetime,
                    only: list[str] | None = None) -> Verdict:
    """Enforce quotas for the users `only` names (every user when None)."""
    org = session.get(Organisation, org_id)
    plan = catalog.plans[session.get(Subscription, org_id).plan_id]
    auto = org.auto_allocate_storage
    verdict = enforce(_users(session, org_id, only, auto), plan.quota_gb, plan.user_cap, auto,
                      free_units(session, org_id))
    user_ids = _ids(session, org_id, {a.email for a in verdict.released + verdict.auto_allocated})
    for release in verdict.released:
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.user_id == user_ids[release.email], StorageUnit.size_gb == release.unit_gb,
            StorageUnit.auto_allocated.is_(True)).order_by(StorageUnit.id.desc()).limit(1))
        unit.user_id, unit.auto_allocated = None, False
        record_event(session, org_id, now, "storage_auto_released", {"user": release.email, "unit_gb": release.unit_gb})
    session.flush()
    for allocation in verdict.auto_allocated:
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.org_id == org_id, StorageUnit.size_gb == allocation.unit_gb, StorageUnit.user_id.is_(None),
            StorageUnit.remove_at_period_end.is_(False)).order_by(StorageUnit.id).limit(1))
        unit.user_id, unit.auto_allocated = user_ids[allocation.email], True
        session.flush()
        record_event(session, org_id, now, "storage_auto_allocated",
                     {"user": allocation.email, "unit_gb": allocation.unit_gb})
    for reason in ("storage", "user_cap"):
        _bulk(session, org_id, [b.email for b in verdict.blocked if b.reason == reason],
              blocked=True, blocked_reason=reason, blocked_at=now)
        # Still blocked, for another reason: waiting since they were first blocked.
        _bulk(session, org_id, [b.email for b in verdict.reblocked if b.reason == reason],
              blocked=True, blocked_reason=reason)
    _bulk(session, org_id, verdict.unblocked, blocked=False, blocked_reason=None, blocked_at=None)
    for blocked in verdict.blocked:
        record_event(session, org_id, now, "user_blocked", {"user": blocked.email, "reason": blocked.reason})
    for email in verdict.unblocked:
        record_event(session, org_id, now, "user_unblocked", {"user": email})
    if verdict.changed:
        sub = session.get(Subscription, org_id)
        sub.version = (sub.version or 0) + 1
    session.flush()
    return verdict


def _ids(session: Session, org_id: str, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    return dict(session.execute(select(User.email, User.id).where(User.org_id == org_id, User.email.in_(emails))).all())


def _bulk(session: Session, org_id: str, emails: list[str], **values) -> None:
    for start in range(0, len(emails), CHUNK):
        session.execute(update(User).where(User.org_id == org_id, User.email.in_(emails[start:start + CHUNK]))
                        .values(**values))
