"""Storage enforcement's rows: the users a decision's storage checks read, loaded in one query
(domain.storage.Mailboxes), and a verdict written in bulk. The rule is domain.storage's."""

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from db.models import StorageUnit, Subscription, User
from domain.states import BlockReason
from domain.decisions import Event
from domain.storage import MB_PER_GB, Arrival, Mailbox, Mailboxes, Verdict, verdict_events

CHUNK = 500


def load_mailboxes(session: Session, org_id: str, only: list[str] | None, waiting: bool) -> Mailboxes:
    """The org's users, or those `only` names (and, `waiting`, those blocked for storage:
    auto-allocation may serve them), with the units auto-allocation gave them; and every user's
    arrival."""
    allocated = (select(func.coalesce(func.sum(StorageUnit.size_gb), 0))
                 .where(StorageUnit.user_id == User.id).correlate(User).scalar_subquery())
    query = select(User.id, User.email, User.storage_mb, allocated.label("allocated_gb"), User.seq, User.is_admin,
                   User.blocked, User.blocked_reason, User.blocked_at).where(User.org_id == org_id)
    if only is not None:
        query = query.where(or_(User.email.in_(only), User.blocked_reason == BlockReason.STORAGE) if waiting
                            else User.email.in_(only))
    rows = session.execute(query).all()
    auto: dict[int, list[int]] = {}
    if waiting:  # units auto-allocation gave: a handful per org, read whole
        for user_id, size in session.execute(select(StorageUnit.user_id, StorageUnit.size_gb).where(
                StorageUnit.org_id == org_id, StorageUnit.auto_allocated.is_(True))):
            auto.setdefault(user_id, []).append(size)
    users = [Mailbox(row.email, row.storage_mb, row.allocated_gb * MB_PER_GB, row.seq, row.is_admin, row.blocked,
                     row.blocked_reason, row.blocked_at,
                     tuple(sorted(auto.get(row.id, [])))) for row in rows]
    arrivals = [Arrival(seq, email, is_admin, blocked) for seq, email, is_admin, blocked in session.execute(
        select(User.seq, User.email, User.is_admin, User.blocked).where(User.org_id == org_id))]
    return Mailboxes(users, arrivals)


def write_verdicts(session: Session, org_id: str, verdicts: list[Verdict], at: datetime) -> list[Event]:
    """Each verdict written; their entries for the audit log, in order, for the caller to record
    (db.events) with the rest of its decision."""
    for verdict in verdicts:
        write_verdict(session, org_id, verdict, at)
    return [event for verdict in verdicts for event in verdict_events(verdict)]


def write_verdict(session: Session, org_id: str, verdict: Verdict, now: datetime) -> None:
    """Units given back and given (the newest auto-allocated one back, the oldest free one given),
    users blocked and unblocked in bulk. Idempotent: a verdict that changes nothing writes nothing."""
    user_ids = _ids(session, org_id, {a.email for a in verdict.released + verdict.auto_allocated})
    for release in verdict.released:
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.user_id == user_ids[release.email], StorageUnit.size_gb == release.unit_gb,
            StorageUnit.auto_allocated.is_(True)).order_by(StorageUnit.id.desc()).limit(1))
        unit.user_id, unit.auto_allocated = None, False
    session.flush()
    for allocation in verdict.auto_allocated:
        unit = session.scalar(select(StorageUnit).where(
            StorageUnit.org_id == org_id, StorageUnit.size_gb == allocation.unit_gb, StorageUnit.user_id.is_(None),
            StorageUnit.remove_at_period_end.is_(False)).order_by(StorageUnit.id).limit(1))
        unit.user_id, unit.auto_allocated = user_ids[allocation.email], True
        session.flush()
    for reason in BlockReason:
        _bulk(session, org_id, [b.email for b in verdict.blocked if b.reason == reason],
              blocked=True, blocked_reason=reason, blocked_at=now)
        # Still blocked, for another reason: waiting since they were first blocked.
        _bulk(session, org_id, [b.email for b in verdict.reblocked if b.reason == reason],
              blocked=True, blocked_reason=reason)
    _bulk(session, org_id, verdict.unblocked, blocked=False, blocked_reason=None, blocked_at=None)
    if verdict.changed:
        sub = session.get(Subscription, org_id)
        sub.version = (sub.version or 0) + 1
    session.flush()


def _ids(session: Session, org_id: str, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    return dict(session.execute(select(User.email, User.id).where(User.org_id == org_id, User.email.in_(emails))).all())


def _bulk(session: Session, org_id: str, emails: list[str], **values) -> None:
    for start in range(0, len(emails), CHUNK):
        session.execute(update(User).where(User.org_id == org_id, User.email.in_(emails[start:start + CHUNK]))
                        .values(**values))
