"""Reads for the operators' views: the CLI's lists and audit log, the worker's gauges, the
simulator's timeline. Rows in, plain values out: no rule is decided here."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, inspect, select
from sqlalchemy.orm import Session

from db.models import Invoice, OrgEvent, Organisation, Subscription
from db.session import make_engine
from db.snapshots import load_states
from domain.policy import Policy
from domain.states import OrgStatus
from domain.subscription import OrgSnapshot


@dataclass(frozen=True)
class LoggedEvent:
    """One line of an org's event log."""
    id: int
    at: datetime
    type: str
    data: dict[str, Any]
    actor: str | None
    reason: str | None


@dataclass(frozen=True)
class InDunning:
    """An org in dunning, with its open dunning invoice."""
    org_id: str
    status: str
    invoice: str
    amount: int
    currency: str
    attempts: int
    next_retry_at: datetime | None
    escalated_at: datetime | None
    first_response_due: datetime | None
    determination_due: datetime | None


def org_exists(session: Session, org_id: str) -> bool:
    return session.get(Organisation, org_id) is not None


def org_locale(session: Session, org_id: str) -> str | None:
    """The org's language; None when there is no such org."""
    org = session.get(Organisation, org_id)
    return org.locale if org is not None else None


def org_states(session: Session, policy: Policy, statuses: tuple[str, ...] = (),
               plans: tuple[str, ...] = ()) -> list[OrgSnapshot]:
    """Every org in one of `statuses` on one of `plans` (empty: any), by id."""
    wanted = select(Organisation.id).join(Subscription)
    if statuses:
        wanted = wanted.where(Subscription.status.in_(statuses))
    if plans:
        wanted = wanted.where(Subscription.plan_id.in_(plans))
    return load_states(session, wanted, policy)


def invoice_numbers(session: Session, org_id: str) -> list[str]:
    """The org's invoices, oldest first."""
    return list(session.scalars(select(Invoice.number).where(Invoice.org_id == org_id).order_by(Invoice.id)))


def event_log(session: Session, org_id: str, by_time: bool = False) -> list[LoggedEvent]:
    """The org's events in the order written, or by their time (`by_time`: the audit log)."""
    order = (OrgEvent.at, OrgEvent.id) if by_time else (OrgEvent.id,)
    return [LoggedEvent(row.id, row.at, row.type, dict(row.data or {}), row.actor, row.reason)
            for row in session.scalars(select(OrgEvent).where(OrgEvent.org_id == org_id).order_by(*order))]


def last_event_id(session: Session, org_id: str) -> int:
    """The id of the org's newest event; 0 before any."""
    return session.scalar(select(func.max(OrgEvent.id)).where(OrgEvent.org_id == org_id)) or 0


def orgs_in_dunning(session: Session, statuses: list[OrgStatus]) -> list[InDunning]:
    """Orgs in `statuses` with an open dunning invoice, the next retry first."""
    rows = session.execute(select(Subscription, Invoice)
                           .join(Invoice, Invoice.id == Subscription.dunning_invoice_id)
                           .where(Subscription.status.in_(statuses))
                           .order_by(Subscription.next_retry_at, Subscription.org_id))
    return [InDunning(sub.org_id, str(sub.status), invoice.number, invoice.total, invoice.currency,
                      sub.dunning_attempts, sub.next_retry_at, sub.escalated_at, sub.first_response_due,
                      sub.determination_due)
            for sub, invoice in rows]


def orgs_by_status(session: Session) -> dict[str, int]:
    """Every status, zeros included: a series that vanishes at 0 would hide a drop from the alerts."""
    counted = dict(session.execute(select(Subscription.status, func.count()).group_by(Subscription.status)).all())
    return {str(status): counted.get(status, 0) for status in OrgStatus}


# The S1 deadlines an escalation carries (domain/payments.py sets them when it escalates).
DEADLINES = {"first_response": Subscription.first_response_due, "determination": Subscription.determination_due}


def escalations_overdue(session: Session, now: datetime) -> dict[str, int]:
    """Escalated orgs past each deadline."""
    return {deadline: session.scalar(select(func.count()).where(Subscription.status == OrgStatus.ESCALATED,
                                                                column < now))
            for deadline, column in DEADLINES.items()}


def orgs_held(url: str, named: int = 3) -> tuple[int, list[str]]:
    """How many orgs the database at `url` holds, and the first `named` ids; (0, []) for a
    database without the schema yet."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(Organisation.__tablename__):
                return 0, []
            count = connection.scalar(select(func.count()).select_from(Organisation)) or 0
            some = list(connection.scalars(select(Organisation.id).order_by(Organisation.id).limit(named)))
    finally:
        engine.dispose()
    return count, some
