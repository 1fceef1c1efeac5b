"""The mailer: renders a template in the org's language and delivers it over SMTP, at most
once per (org, template, occasion, recipient).

The outbox row is written before the SMTP conversation and marked sent right after it, so a
retry of this activity after a successful send finds the row sent and delivers nothing. The
Message-ID is derived from the outbox key, so even the one unavoidable window (SMTP accepted,
process died before the commit) yields a duplicate that receivers can recognise."""

import asyncio
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import select
from temporalio import activity

from activities.messages import EmailRequest, EmailResult
from activities import metrics
from db.events import record_event
from db.models import EmailMessage, Organisation
from db.session import Database
from domain.money import format_money

if TYPE_CHECKING:
    from activities.documents import Documents
    from db.invoices import InvoiceDocument

def _templates_dir() -> Path:
    configured = os.environ.get("BILLING_TEMPLATES_DIR")
    if configured:
        return Path(configured)
    beside_source = Path(__file__).resolve().parents[1] / "templates"
    return beside_source if beside_source.is_dir() else Path.cwd() / "templates"


TEMPLATES_DIR = _templates_dir()


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "Billing <billing@localhost>"
    timeout: float = 20.0


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class TemplateRenderer:
    def __init__(self, templates_dir: Path = TEMPLATES_DIR) -> None:
        self.env = Environment(loader=FileSystemLoader(str(templates_dir)), undefined=StrictUndefined,
                               autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                               keep_trailing_newline=True)

    def render(self, template: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        base = f"{locale}/{template}"
        context = {**context, "locale": locale}     # the layout's footer follows the template's language
        subject = self.env.get_template(f"{base}/subject.txt.j2").render(context).strip()
        return RenderedEmail(subject=" ".join(subject.split()),
                             text=self.env.get_template(f"{base}/body.txt.j2").render(context),
                             html=self.env.get_template(f"{base}/body.html.j2").render(context))


def message_id(org_id: str, template: str, occasion: str, recipient: str) -> str:
    digest = hashlib.sha256(f"{org_id}|{template}|{occasion}|{recipient}".encode()).hexdigest()[:32]
    return f"<{digest}@billing.local>"


class MailActivities:
    def __init__(self, db: Database, smtp: SmtpConfig, renderer: TemplateRenderer | None = None,
                 documents: "Documents | None" = None) -> None:
        self.db, self.smtp = db, smtp
        self.renderer = renderer or TemplateRenderer()
        self.documents = documents   # None: no invoice is attached

    def _context(self, org: Organisation, request: EmailRequest, recipient: str) -> dict[str, Any]:
        context: dict[str, Any] = {"org_name": org.name, "org_id": org.id, "admin_email": org.admin_email,
                                   "recipient": recipient, "locale": org.locale,
                                   "recipient_is_admin": recipient == org.admin_email.lower()}
        context.update(request.values)
        for name, amount in request.money.items():
            context[name] = format_money(amount, org.currency, org.locale)
        for name, moment in request.dates.items():
            context[name] = format_date(moment, format="long", locale=org.locale)
        context["lines"] = [{"description": line.description,
                             "amount": format_money(line.amount, org.currency, org.locale), "period": None}
                            for line in request.lines] or context.get("lines", [])
        return context

    def _claim(self, request: EmailRequest) -> tuple[Organisation, list[EmailMessage]]:
        """Create the outbox rows (once) and return those not yet delivered."""
        with self.db.transaction() as session:
            org = session.get(Organisation, request.org_id)
            if org is None:
                raise LookupError(f"unknown org {request.org_id}")
            recipients = [r.strip().lower() for r in (request.to or [org.admin_email])]
            pending = []
            for recipient in dict.fromkeys(recipients):
                row = session.scalar(select(EmailMessage).where(
                    EmailMessage.org_id == org.id, EmailMessage.template == request.template,
                    EmailMessage.occasion == request.occasion, EmailMessage.recipient == recipient))
                if row is None:
                    row = EmailMessage(org_id=org.id, template=request.template, occasion=request.occasion,
                                       recipient=recipient, status="pending", requested_at=request.at,
                                       message_id=message_id(org.id, request.template, request.occasion, recipient),
                                       trial_reminder_days=request.trial_reminder_days)
                    session.add(row)
                    session.flush()
                if row.status != "sent":
                    pending.append(row)
            session.expunge_all()
            return org, pending

    def _mark_sent(self, row: EmailMessage, subject: str, at: datetime) -> None:
        with self.db.transaction() as session:
            stored = session.get(EmailMessage, row.id)
            stored.status, stored.subject, stored.sent_at = "sent", subject, at
            record_event(session, row.org_id, at, "email", {"template": row.template, "to": row.recipient,
                                                            "message_id": row.message_id},
                         dedupe_key=f"email:{row.id}")

    def _compose(self, org: Organisation, row: EmailMessage, request: EmailRequest) -> tuple[MimeMessage, str]:
        """Render and build the message, the invoice's PDF attached. Called in a thread: CPU work
        and the invoice's read must not hold the worker's event loop."""
        context = self._context(org, request, row.recipient)
        if self.documents is not None and request.lines:   # as the invoice prints them, in the org's language
            context["lines"] = self.documents.line_rows(request.lines, org.currency, org.locale, date_format="long")
        invoice = self._invoice(request)
        rendered = self.renderer.render(request.template, org.locale, context)
        message = MimeMessage()
        message["From"] = self.smtp.sender
        message["To"] = row.recipient
        message["Subject"] = rendered.subject
        message["Message-ID"] = row.message_id
        message["Date"] = format_datetime(request.at)
        message["X-Billing-Org"] = org.id
        message["X-Billing-Template"] = row.template
        message["X-Billing-Locale"] = org.locale
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        if invoice is not None:
            message.add_attachment(self.documents.invoice_pdf(invoice), maintype="application", subtype="pdf",
                                   filename=f"{invoice.number}.pdf")
        return message, rendered.subject

    def _invoice(self, request: EmailRequest) -> "InvoiceDocument | None":
        """The invoice the e-mail carries, as it stands now (None: none, or no documents)."""
        if not request.attach_invoice or self.documents is None:
            return None
        from db.invoices import invoice_document
        with self.db.transaction() as session:
            return invoice_document(session, request.attach_invoice)

    @activity.defn
    async def send_email(self, request: EmailRequest) -> EmailResult:
        org, pending = await asyncio.to_thread(self._claim, request)
        delivered = []
        for row in pending:
            message, subject = await asyncio.to_thread(self._compose, org, row, request)
            await aiosmtplib.send(message, hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                                  password=self.smtp.password, start_tls=self.smtp.starttls, timeout=self.smtp.timeout)
            await asyncio.to_thread(self._mark_sent, row, subject, request.at)
            metrics.email_sent(request.template)
            delivered.append(row.recipient)
        recipients = [r.strip().lower() for r in (request.to or [org.admin_email])]
        return EmailResult(delivered=delivered, already_sent=[r for r in recipients if r not in delivered])
