"""The rows of what the mail platform is told: the versions of each org's entitlements (the
outbox), each endpoint's health, and the version each endpoint has confirmed per org."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from db.models import EntitlementDelivery, EntitlementVersion, OrgEvent, StorageUnit, User, WebhookEndpoint
from domain.catalog import Catalog
from domain.entitlements import EntitledUser, blocked_users, digest, entitlements, next_version, versioned
from domain.subscription import OrgSnapshot


def entitled_users(session: Session, org_id: str) -> list[EntitledUser]:
    allocated = (select(func.coalesce(func.sum(StorageUnit.size_gb), 0))
                 .where(StorageUnit.user_id == User.id).correlate(User).scalar_subquery())
    rows = session.execute(select(User.email, allocated, User.blocked, User.blocked_reason)
                           .where(User.org_id == org_id))
    return [EntitledUser(email, int(gb), bool(blocked), reason) for email, gb, blocked, reason in rows]


def latest_version(session: Session, org_id: str) -> EntitlementVersion | None:
    return session.scalar(select(EntitlementVersion).where(EntitlementVersion.org_id == org_id)
                          .order_by(EntitlementVersion.version.desc()).limit(1))


def store_entitlements(session: Session, state: OrgSnapshot, catalog: Catalog, at: datetime) -> int | None:
    """In the transaction of the decision just persisted (`state`: the state it wrote): the org's
    next version when its entitlements changed (None when they did not)."""
    session.flush()
    org_id = state.org_id
    content = entitlements(state, entitled_users(session, org_id), catalog)
    latest = session.execute(select(EntitlementVersion.version, EntitlementVersion.digest)
                             .where(EntitlementVersion.org_id == org_id)
                             .order_by(EntitlementVersion.version.desc()).limit(1)).first()
    version = next_version(latest.version if latest else None, latest.digest if latest else None, content)
    if version is not None:
        document = versioned(content, version, at)
        session.add(EntitlementVersion(org_id=org_id, version=version, digest=digest(content), document=document,
                                       created_at=at))
        # In the org's history (and billing simulate's timeline) after the change that made it. The
        # row is written here, not through db.events.record_event: this is the last write of the
        # transaction, and the unit of work writes each kind of row once (db/events just before).
        session.add(OrgEvent(org_id=org_id, at=at, type="entitlements",
                             data={"version": version, "plan": content["plan"]["id"], "status": content["status"],
                                   "blocked_users": blocked_users(document)}))
        session.flush()
    return version


def current_document(session: Session, org_id: str) -> dict[str, Any] | None:
    latest = latest_version(session, org_id)
    return latest.document if latest else None


def documents(session: Session, org_id: str) -> list[dict[str, Any]]:
    """Every version of the org's entitlements, oldest first."""
    return list(session.scalars(select(EntitlementVersion.document).where(EntitlementVersion.org_id == org_id)
                                .order_by(EntitlementVersion.version)))


@dataclass(frozen=True)
class Undelivered:
    org_id: str
    version: int
    document: dict[str, Any]
    created_at: datetime


def _heads():
    return (select(EntitlementVersion.org_id, func.max(EntitlementVersion.version).label("version"))
            .group_by(EntitlementVersion.org_id).subquery())


def _undelivered(endpoint: str):
    heads = _heads()
    return (select(EntitlementVersion)
            .join(heads, and_(heads.c.org_id == EntitlementVersion.org_id,
                              heads.c.version == EntitlementVersion.version))
            .outerjoin(EntitlementDelivery, and_(EntitlementDelivery.endpoint == endpoint,
                                                 EntitlementDelivery.org_id == EntitlementVersion.org_id))
            .where(or_(EntitlementDelivery.delivered_version.is_(None),
                       EntitlementDelivery.delivered_version < EntitlementVersion.version)))


def undelivered(session: Session, endpoint: str, limit: int) -> list[Undelivered]:
    """Each org's latest version the endpoint has not confirmed, the oldest first: an older
    version still waiting is never sent once a newer one exists."""
    rows = session.scalars(_undelivered(endpoint).order_by(EntitlementVersion.created_at, EntitlementVersion.id)
                           .limit(limit))
    return [Undelivered(row.org_id, row.version, row.document, row.created_at) for row in rows]


def backlog(session: Session, endpoint: str) -> tuple[int, datetime | None]:
    """How many orgs wait for the endpoint, and since when the oldest has waited."""
    waiting = _undelivered(endpoint).subquery()
    count, oldest = session.execute(select(func.count(), func.min(waiting.c.created_at))).one()
    return count, oldest


def mark_delivered(session: Session, endpoint: str, org_id: str, version: int, at: datetime) -> None:
    row = session.get(EntitlementDelivery, (endpoint, org_id))
    if row is None:
        session.add(EntitlementDelivery(endpoint=endpoint, org_id=org_id, delivered_version=version, delivered_at=at))
    elif row.delivered_version < version:
        row.delivered_version, row.delivered_at = version, at


def forget_deliveries(session: Session, org_id: str) -> int:
    """Every endpoint gets the org's current version again."""
    return session.execute(delete(EntitlementDelivery).where(EntitlementDelivery.org_id == org_id)).rowcount


def endpoint_row(session: Session, name: str, url: str) -> WebhookEndpoint:
    row = session.get(WebhookEndpoint, name)
    if row is None:
        row = WebhookEndpoint(name=name, url=url, state="healthy", attempts=0, failures=0)
        session.add(row)
        session.flush()
    row.url = url
    return row


def save_endpoint(session: Session, name: str, url: str, **values: Any) -> None:
    row = endpoint_row(session, name, url)
    for column, value in values.items():
        setattr(row, column, value)


def endpoint_rows(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name)))
