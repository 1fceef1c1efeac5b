"""Storage enforcement (DOMAIN.md, storage blocking): set-based, one query to find who must be
blocked, bulk updates to apply it. Idempotent: running it twice changes nothing the second time."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import Organisation, PlanRow, StorageUnit, Subscription, User
from db.orgs import MB_PER_GB

CHUNK = 500


@dataclass(frozen=True)
class BlockedUser:
    email: str
    usage_mb: int
    quota_mb: int
    reason: str  # storage | user_cap


@dataclass(frozen=True)
class AutoAllocation:
    email: str
    unit_gb: int


@dataclass(frozen=True)
class EnforcementResult:
    blocked: list[BlockedUser] = field(default_factory=list)
    unblocked: list[str] = field(default_factory=list)
    auto_allocated: list[AutoAllocation] = field(default_factory=list)


def _evaluation(org_id: str, only_user_id: int | None = None):
    allocated = (select(func.coalesce(func.sum(StorageUnit.size_gb), 0) * MB_PER_GB)
                 .where(StorageUnit.user_id == User.id).correlate(User).scalar_subquery())
    quota = (PlanRow.quota_mb + allocated).label("quota_mb")
    # Keep the admin and the oldest users; beyond the cap, the newest go first.
    rank = func.row_number().over(partition_by=User.org_id, order_by=(User.is_admin.desc(), User.seq.asc()))
    inner = (select(User.id, User.email, User.storage_mb, User.blocked, User.blocked_reason, User.is_admin,
                    quota, rank.label("rank"), PlanRow.user_cap)
             .join(Subscription, Subscription.org_id == User.org_id)
             .join(PlanRow, PlanRow.id == Subscription.plan_id)
             .where(User.org_id == org_id)).subquery()
    reason = case((inner.c.storage_mb > inner.c.quota_mb, literal("storage")),
                  ((inner.c.user_cap.is_not(None)) & (inner.c.rank > inner.c.user_cap), literal("user_cap")),
                  else_=literal(None)).label("reason")
    query = select(inner.c.id, inner.c.email, inner.c.storage_mb, inner.c.quota_mb, inner.c.blocked,
                   inner.c.blocked_reason, reason)
    if only_user_id is not None:
        query = query.where(inner.c.id == only_user_id)
    return query


def _auto_allocate(session: Session, org_id: str, user_id: int, email: str, excess_mb: int) -> AutoAllocation | None:
    """Seed 004: the smallest free unit that covers the excess goes to the user."""
    unit = session.scalar(select(StorageUnit).where(StorageUnit.org_id == org_id, StorageUnit.user_id.is_(None),
                                                    StorageUnit.remove_at_period_end.is_(False),
                                                    StorageUnit.size_gb * MB_PER_GB >= excess_mb)
                          .order_by(StorageUnit.size_gb, StorageUnit.id).limit(1))
    if unit is None:
        return None
    unit.user_id = user_id
    session.flush()
    return AutoAllocation(email=email, unit_gb=unit.size_gb)


def enforce(session: Session, org_id: str, now: datetime, only_user_id: int | None = None) -> EnforcementResult:
    org = session.get(Organisation, org_id)
    rows = session.execute(_evaluation(org_id, only_user_id)).all()
    auto: list[AutoAllocation] = []
    if org is not None and org.auto_allocate_storage:
        for row in rows:
            if row.reason == "storage":
                allocation = _auto_allocate(session, org_id, row.id, row.email, row.storage_mb - row.quota_mb)
                if allocation:
                    auto.append(allocation)
                    record_event(session, org_id, now, "storage_auto_allocated",
                                 {"user": row.email, "unit_gb": allocation.unit_gb})
        if auto:
            rows = session.execute(_evaluation(org_id, only_user_id)).all()
    to_block = [r for r in rows if r.reason is not None and (not r.blocked or r.blocked_reason != r.reason)]
    newly_blocked = [r for r in to_block if not r.blocked]
    to_unblock = [r for r in rows if r.reason is None and r.blocked]
    for reason in ("storage", "user_cap"):
        ids = [r.id for r in to_block if r.reason == reason]
        for start in range(0, len(ids), CHUNK):
            session.execute(update(User).where(User.id.in_(ids[start:start + CHUNK]))
                            .values(blocked=True, blocked_reason=reason))
    unblock_ids = [r.id for r in to_unblock]
    for start in range(0, len(unblock_ids), CHUNK):
        session.execute(update(User).where(User.id.in_(unblock_ids[start:start + CHUNK]))
                        .values(blocked=False, blocked_reason=None))
    for row in newly_blocked:
        record_event(session, org_id, now, "user_blocked", {"user": row.email, "reason": row.reason})
    for row in to_unblock:
        record_event(session, org_id, now, "user_unblocked", {"user": row.email})
    return EnforcementResult(
        blocked=[BlockedUser(r.email, r.storage_mb, r.quota_mb, r.reason) for r in newly_blocked],
        unblocked=[r.email for r in to_unblock], auto_allocated=auto)
