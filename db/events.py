"""The org event log: timeline and audit trail in one table."""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import DEDUPE_KEY_COLUMN, OUTCOME_KEY, OrgEvent
from domain.decisions import Event
from domain.limits import bounded


def record_event(session: Session, org_id: str, at: datetime, type: str, data: dict[str, Any] | None = None,
                 actor: str | None = None, reason: str | None = None, dedupe_key: str | None = None) -> None:
    dedupe_key = bounded(dedupe_key, DEDUPE_KEY_COLUMN) if dedupe_key else None
    if dedupe_key and session.scalar(select(OrgEvent.id).where(OrgEvent.dedupe_key == dedupe_key)):
        return
    session.add(OrgEvent(org_id=org_id, at=at, type=type, data=data or {}, actor=actor or None,
                         reason=reason or None, dedupe_key=dedupe_key))


def record_entries(session: Session, org_id: str, at: datetime, entries: list[Event]) -> None:
    """Audit entries a decision or its writers made (domain.decisions.Event), in order."""
    for entry in entries:
        record_event(session, org_id, at, entry.type, dict(entry.data), actor=entry.actor, reason=entry.reason)


def record_decision(session: Session, org_id: str, at: datetime, entries: list[Event], key: str, what: str,
                    outcome: dict[str, Any]) -> None:
    """A decision's audit entries, in order, and its answer, remembered by its business key so a
    step retried after its commit repeats it (effects included) instead of deciding again on a
    state it has already changed (db/snapshots.recorded_outcome reads it)."""
    record_entries(session, org_id, at, entries)
    record_event(session, org_id, at, "operation", {"operation": what, "outcome": outcome},
                 dedupe_key=OUTCOME_KEY.format(org_id=org_id, key=key))
