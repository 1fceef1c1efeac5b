"""The e-mail outbox's rows (db.models.EmailMessage): one per org, template, occasion and recipient."""

from datetime import datetime
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EmailMessage, Organisation


def claim(session: Session, org_id: str, template: str, occasion: str, recipients: list[str] | None,
          at: datetime, message_id: Callable[[str, str, str, str], str]) -> tuple[Organisation, list[EmailMessage]]:
    """The org, and the outbox rows of an e-mail not yet delivered, created once per recipient
    (the admin when none is named)."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise LookupError(f"unknown org {org_id}")
    pending = []
    for recipient in dict.fromkeys(r.strip().lower() for r in (recipients or [org.admin_email])):
        row = session.scalar(select(EmailMessage).where(
            EmailMessage.org_id == org.id, EmailMessage.template == template,
            EmailMessage.occasion == occasion, EmailMessage.recipient == recipient))
        if row is None:
            row = EmailMessage(org_id=org.id, template=template, occasion=occasion, recipient=recipient,
                               status="pending", requested_at=at,
                               message_id=message_id(org.id, template, occasion, recipient))
            session.add(row)
            session.flush()
        if row.status != "sent":
            pending.append(row)
    return org, pending
