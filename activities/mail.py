"""The mailer: renders a template in the org's language and delivers it over SMTP, at most
once per (org, template, occasion, recipient).

Each message has an outbox row: `pending`, then `sending` (committed just before the SMTP
conversation), then `sent`. Once the SMTP server has accepted a message, only the `sent` mark is
retried, never the delivery: within the attempt until the database answers, and by a later
attempt of this process (it remembers what its SMTP server accepted). What no retry can know is
whether a conversation begun by a process that died before the mark (a `sending` row it left)
ended in acceptance: that message is sent again, with the same Message-ID (derived from the
outbox key), which receivers recognise as one (docs/reliability.md)."""

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib
from aiosmtplib.errors import SMTPConnectError, SMTPResponseException
from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from temporalio import activity

from activities.messages import EmailRequest, EmailResult
from activities import metrics
from activities.errors import database_reason, database_unavailable
from activities.templates import TEMPLATES_DIR
from db.events import record_event
from db.models import EmailMessage, Organisation
from db.outbox import claim
from db.orgs import record_trial_reminder
from db.session import Database
from domain.money import format_money
from domain.storage import MB_PER_GB

if TYPE_CHECKING:
    from activities.documents import Documents
    from db.invoices import InvoiceDocument

log = logging.getLogger("billing.mail")

# Retries of the `sent` mark after the SMTP server accepted a message: quick at first, then
# every few seconds for as long as the attempt lasts.
MARK_RETRY_FIRST, MARK_RETRY_MAX = 0.2, 5.0


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 1025
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "Billing <billing@localhost>"
    timeout: float = 20.0


def number(value: int | float, locale: str) -> str:
    """A count as the org's language writes it (1,000 in English, 1.000 in Indonesian)."""
    return format_decimal(value, locale=locale)


def gigabytes(megabytes: int | float | str, locale: str) -> str:
    """A size in MB as the org's language writes GB: "40 GB" and "5.1 GB" in English, "5,1 GB"
    in Indonesian. Text stays as it is: e-mails decided before sizes were written here carry it."""
    if isinstance(megabytes, str):
        return megabytes
    return f"{format_decimal(megabytes / MB_PER_GB, format='#,##0.#', locale=locale)} GB"


@pass_context
def _number_filter(context, value: int | float) -> str:
    return number(value, context["locale"])


@pass_context
def _gigabytes_filter(context, megabytes: int | float | str) -> str:
    return gigabytes(megabytes, context["locale"])


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
        # Numbers follow the org's language, as money and dates do (the context's locale).
        self.env.filters.update(number=_number_filter, gb=_gigabytes_filter)

    def render(self, template: str, locale: str, context: dict[str, Any]) -> RenderedEmail:
        base = f"{locale}/{template}"
        context = {**context, "locale": locale}     # the layout's footer follows the template's language
        subject = self.env.get_template(f"{base}/subject.txt.j2").render(context).strip()
        return RenderedEmail(subject=" ".join(subject.split()),
                             text=self.env.get_template(f"{base}/body.txt.j2").render(context),
                             html=self.env.get_template(f"{base}/body.html.j2").render(context))


def _invoice_totals(invoice: "InvoiceDocument", locale: str) -> dict[str, Any]:
    """The invoice's subtotal and tax as issued (never recomputed), for the e-mails about it;
    `tax_label` None: untaxed, the e-mail shows its total only."""
    money = {name: format_money(amount, invoice.currency, locale)
             for name, amount in (("subtotal", invoice.subtotal), ("tax", invoice.tax), ("tax_base", invoice.tax_base),
                                  ("invoice_total", invoice.total))}
    return {**money, "tax_label": invoice.tax_details.label}


def message_id(org_id: str, template: str, occasion: str, recipient: str) -> str:
    digest = hashlib.sha256(f"{org_id}|{template}|{occasion}|{recipient}".encode()).hexdigest()[:32]
    return f"<{digest}@billing.local>"


class MailActivities:
    def __init__(self, db: Database, smtp: SmtpConfig, renderer: TemplateRenderer | None = None,
                 documents: "Documents | None" = None, attach_pdfs: bool = True) -> None:
        self.db, self.smtp = db, smtp
        self.renderer = renderer or TemplateRenderer()
        self.documents = documents   # None: no invoice is attached
        self.attach_pdfs = attach_pdfs   # False: no PDF rendered nor attached (a dry run)
        # Outbox rows whose message the SMTP server accepted and whose `sent` mark has not been
        # committed yet, with their subject: a retry in this process records them, never resends.
        self.accepted: dict[int, str] = {}

    def _context(self, org: Organisation, request: EmailRequest, recipient: str) -> dict[str, Any]:
        context: dict[str, Any] = {"org_name": org.name, "org_id": org.id, "admin_email": org.admin_email,
                                   "recipient": recipient, "locale": org.locale,
                                   "recipient_is_admin": recipient == org.admin_email.lower()}
        context.update(request.values)
        for name, amount in request.money.items():
            context[name] = format_money(amount, org.currency, org.locale)
        for name, moment in request.dates.items():
            context[name] = format_date(moment, format="long", locale=org.locale)
        context["lines"] = [{"description": line.description, "quantity": abs(line.quantity) or None,
                             "amount": format_money(line.amount, org.currency, org.locale), "period": None}
                            for line in request.lines] or context.get("lines", [])
        return context

    def _claim(self, request: EmailRequest) -> tuple[Organisation, list[EmailMessage]]:
        """Create the outbox rows (once) and return those not yet delivered."""
        with self.db.transaction() as session:
            org, pending = claim(session, request.org_id, request.template, request.occasion, request.to, request.at,
                                 message_id)
            session.expunge_all()
            return org, pending

    def _mark(self, row: EmailMessage, status: str) -> None:
        """`sending` before the SMTP conversation, `pending` again when the server refused it."""
        with self.db.transaction() as session:
            stored = session.get(EmailMessage, row.id)
            if stored.status != "sent":
                stored.status = status

    def _mark_sent(self, row: EmailMessage, subject: str, at: datetime, trial_reminder_days: int | None) -> None:
        with self.db.transaction() as session:
            stored = session.get(EmailMessage, row.id)
            stored.status, stored.subject, stored.sent_at = "sent", subject, at
            if trial_reminder_days is not None:   # the org's state: this reminder is not due again
                record_trial_reminder(session, row.org_id, trial_reminder_days)
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
        if invoice is not None:
            context.update(_invoice_totals(invoice, org.locale))
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
        if not request.attach_invoice or self.documents is None or not self.attach_pdfs:
            return None
        from db.invoices import invoice_document
        with self.db.transaction() as session:
            return invoice_document(session, request.attach_invoice)

    async def _deliver(self, message: MimeMessage, row: EmailMessage, subject: str) -> None:
        """One SMTP conversation. The acceptance is remembered before anything else is awaited
        (the QUIT after it included): a retry then records it instead of delivering again."""
        await asyncio.to_thread(self._mark, row, "sending")
        client = aiosmtplib.SMTP(hostname=self.smtp.host, port=self.smtp.port, username=self.smtp.username,
                                 password=self.smtp.password, start_tls=self.smtp.starttls, timeout=self.smtp.timeout)
        try:
            async with client:
                await client.send_message(message)
                self.accepted[row.id] = subject
        except (SMTPResponseException, SMTPConnectError):
            # The server said no, or never answered: nothing was delivered. If the database is
            # out too, the row stays `sending` and the retry sends it (said in the log).
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._mark, row, "pending")
            raise

    async def _record_sent(self, row: EmailMessage, subject: str, at: datetime, trial_reminder_days: int | None) -> None:
        """Retried until the database answers: the message is delivered and must not be again. An
        attempt that ends first (its timeout) leaves it in `self.accepted` for the next one."""
        delay, waited = MARK_RETRY_FIRST, False
        while True:
            try:
                await asyncio.to_thread(self._mark_sent, row, subject, at, trial_reminder_days)
                break
            except Exception as err:
                if not database_unavailable(err):
                    raise
                if not waited:   # part of the outage's count in the worker's log (activities/outages.py)
                    log.warning("%s to %s accepted by the SMTP server (%s); recording it sent waits for the database: "
                                "%s", row.template, row.recipient, row.message_id, database_reason(err),
                                extra={"failure_type": "database_unavailable",
                                       "failure_message": f"database unreachable: {database_reason(err)}"})
                    waited = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, MARK_RETRY_MAX)
        self.accepted.pop(row.id, None)

    @activity.defn
    async def send_email(self, request: EmailRequest) -> EmailResult:
        org, pending = await asyncio.to_thread(self._claim, request)
        delivered = []
        for row in pending:
            subject = self.accepted.get(row.id)
            if subject is None:   # not accepted by the SMTP server in this process's lifetime
                if row.status == "sending":
                    log.warning("%s to %s (%s): an earlier attempt's delivery was not confirmed (its SMTP conversation "
                                "failed after the message, or its process stopped); sending it again, same Message-ID",
                                row.template, row.recipient, row.message_id)
                message, subject = await asyncio.to_thread(self._compose, org, row, request)
                await self._deliver(message, row, subject)
            await self._record_sent(row, subject, request.at, request.trial_reminder_days)
            metrics.email_sent(request.template)
            delivered.append(row.recipient)
        recipients = [r.strip().lower() for r in (request.to or [org.admin_email])]
        return EmailResult(delivered=delivered, already_sent=[r for r in recipients if r not in delivered])
