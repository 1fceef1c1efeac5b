"""Invoices as stored: numbering, lines, status changes, and reading one back for the decision
that follows its payment. A decision's invoices and their timeline entries are written here
(write_invoices), the entries recorded by the unit of work with the decision's own."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import BUSINESS_KEY_COLUMN, STATUS_AT, Invoice, InvoiceLine, InvoicePdf, Organisation, Payment
from domain.billing import Line
from domain.decisions import Decision, EmailLine, Event, InvoiceDraft
from domain.limits import bounded, shown
from domain.org import InvoiceRef
from domain.payments import PaidInvoice
from domain.statement import Buyer, IssuedInvoice, ReceivedPayment, Statement
from domain.statement import statement as statement_of
from domain.states import ChargeOutcome, InvoiceKind, InvoiceStatus
from domain.subscription import Item, ItemKind
from domain.tax import InvoiceTax


def write_invoices(session: Session, org_id: str, key: str, decision: Decision, currency: str, now: datetime
                   ) -> tuple[InvoiceRef | None, list[Event]]:
    """A decision's invoices: the status changes it makes, then the invoice it issues, named by
    the step's business `key` (a retried step finds it again); their entries for the audit log,
    which the unit of work records with the decision's own."""
    entries = [entry for update in decision.invoice_updates
               for entry in _status_set(invoice_by_number(session, update.number), update.status, now)]
    if decision.invoice is None:
        return None, entries
    invoice, issued = issue_invoice(session, org_id, bounded(f"{org_id}:{key}", BUSINESS_KEY_COLUMN),
                                    decision.invoice, currency, now)
    return InvoiceRef(invoice.number, invoice.total, invoice.currency), entries + issued


def issue_invoice(session: Session, org_id: str, business_key: str, draft: InvoiceDraft, currency: str,
                  now: datetime) -> tuple[Invoice, list[Event]]:
    """The invoice numbered and written with its lines, and its audit entry; the one already
    issued with this business key, and no entry, when there is one."""
    existing = session.scalar(select(Invoice).where(Invoice.business_key == business_key))
    if existing is not None:
        return existing, []
    sequence = (session.scalar(select(func.count(Invoice.id)).where(Invoice.org_id == org_id)) or 0) + 1
    invoice = Invoice(number=f"INV-{org_id}-{sequence:04d}", org_id=org_id, business_key=business_key, kind=draft.kind,
                      status=InvoiceStatus.OPEN, currency=currency, subtotal=draft.lines_total,
                      tax_name=draft.tax.name, tax_rate=draft.tax.rate, tax_base=draft.tax.base, tax=draft.tax.amount,
                      total=draft.total, credit_applied=draft.credit_applied,
                      period_start=draft.period_start, period_end=draft.period_end,
                      created_at=draft.issued_at or now)
    session.add(invoice)
    session.flush()
    for line in draft.lines:
        session.add(InvoiceLine(invoice_id=invoice.id, description=line.description, quantity=line.quantity,
                                unit_amount=line.unit_amount, amount=line.amount, item_kind=str(line.item.kind),
                                item_code=line.item.code, period_start=line.start, period_end=line.end))
    details = {"number": invoice.number, "subtotal": invoice.subtotal, "tax": invoice.tax, "total": invoice.total,
               "currency": currency, "status": "open", "kind": str(draft.kind)}
    if draft.credit_applied:
        details["credit_applied"] = draft.credit_applied
    return invoice, [Event("invoice", details)]


def invoice_by_number(session: Session, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise LookupError(f"unknown invoice {number}")
    return invoice


def set_invoice_status(session: Session, invoice: Invoice, status: InvoiceStatus, now: datetime) -> None:
    for entry in _status_set(invoice, status, now):
        record_event(session, invoice.org_id, now, entry.type, entry.data)


def _status_set(invoice: Invoice, status: InvoiceStatus, now: datetime) -> list[Event]:
    """The invoice's new status and its time; its audit entry (none when it had that status)."""
    if invoice.status == status:
        return []
    invoice.status = status
    if status in STATUS_AT:
        setattr(invoice, STATUS_AT[status], now)
    return [Event("invoice", {"number": invoice.number, "subtotal": invoice.subtotal, "tax": invoice.tax,
                              "total": invoice.total, "currency": invoice.currency, "status": str(status)})]


def _printed(line: InvoiceLine) -> EmailLine:
    item = Item(ItemKind(line.item_kind), line.item_code) if line.item_kind else None
    return EmailLine(line.description, line.amount, line.period_start, line.period_end, item, line.quantity,
                     line.unit_amount)


def paid_invoice(session: Session, number: str) -> PaidInvoice:
    invoice = invoice_by_number(session, number)
    itemised = [Line(line.description, Item(ItemKind(line.item_kind), line.item_code), line.quantity,
                     line.unit_amount, line.amount, line.period_start, line.period_end)
                for line in invoice.lines if line.item_kind and line.period_start and line.period_end]
    return PaidInvoice(invoice.number, InvoiceKind(invoice.kind), invoice.total,
                       [_printed(line) for line in invoice.lines],
                       itemised, invoice.period_start, invoice.period_end, invoice.credit_applied or 0)


# ---- invoices and statements as documents ------------------------------------------------------

@dataclass(frozen=True)
class DocumentPayment:
    at: datetime
    attempt: int
    amount: int
    outcome: str
    decline_reason: str | None
    card_brand: str | None
    card_last4: str | None


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    kind: InvoiceKind
    status: InvoiceStatus
    status_at: datetime | None  # when it was paid, voided or written off
    currency: str
    total: int
    issued_at: datetime
    period_start: datetime | None
    period_end: datetime | None
    buyer: Buyer
    lines: list[EmailLine]
    payments: list[DocumentPayment]
    credit_applied: int = 0      # the account credit it used: subtotal + tax less this is its total
    # As issued (never recomputed): its lines before tax, and the tax (domain.tax; name None: untaxed).
    subtotal: int = 0
    tax: int = 0
    tax_base: int = 0
    tax_rate: str = "0"
    tax_name: str | None = None

    @property
    def tax_details(self) -> InvoiceTax:
        return InvoiceTax(self.tax_name, self.tax_rate, self.tax_base, self.tax)


def _buyer(session: Session, org_id: str) -> Buyer:
    org = session.get(Organisation, org_id)
    return Buyer(org.id, org.name, org.admin_email, org.locale, org.billing_address, org.country, org.tax_id)


def invoice_document(session: Session, number: str) -> InvoiceDocument:
    invoice = invoice_by_number(session, number)
    status = InvoiceStatus(invoice.status)
    lines = [_printed(line) for line in invoice.lines]
    payments = [DocumentPayment(p.created_at, p.attempt, p.amount, str(p.outcome), p.decline_reason, p.card_brand,
                                p.card_last4)
                for p in session.scalars(select(Payment).where(Payment.invoice_id == invoice.id).order_by(Payment.attempt))]
    return InvoiceDocument(invoice.number, InvoiceKind(invoice.kind), status, invoice.status_at, invoice.currency,
                           invoice.total, invoice.created_at, invoice.period_start, invoice.period_end, _buyer(session, invoice.org_id),
                           lines, payments, invoice.credit_applied or 0, invoice.subtotal, invoice.tax,
                           invoice.tax_base, invoice.tax_rate, invoice.tax_name)


def stored_pdf(session: Session, number: str, state: str) -> bytes | None:
    """The invoice's PDF as rendered for this state of it, if it was."""
    return session.scalar(select(InvoicePdf.pdf).join(Invoice, Invoice.id == InvoicePdf.invoice_id).where(
        Invoice.number == number, InvoicePdf.state == state))


def store_pdf(session: Session, number: str, state: str, pdf: bytes, at: datetime) -> None:
    """Keep the PDF of this state of the invoice (unique: a second one for the same state is
    refused by the database, IntegrityError)."""
    invoice_id = session.scalar(select(Invoice.id).where(Invoice.number == number))
    if invoice_id is None:
        raise LookupError(f"unknown invoice {shown(number)}")
    session.add(InvoicePdf(invoice_id=invoice_id, state=state, pdf=pdf, created_at=at))


def statement(session: Session, org_id: str, start: datetime, end: datetime) -> Statement:
    """Every invoice and payment of the org in [start, end), with the balance it owes before and after."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise LookupError(f"unknown org {shown(org_id)}")
    invoices = [IssuedInvoice(invoice.number, invoice.created_at, invoice.total, InvoiceStatus(invoice.status),
                              invoice.status_at,
                              [ReceivedPayment(p.created_at, p.amount, p.card_brand, p.card_last4)
                               for p in session.scalars(select(Payment).where(
                                   Payment.invoice_id == invoice.id, Payment.outcome == ChargeOutcome.SUCCEEDED)
                                   .order_by(Payment.attempt))], invoice.credit_applied or 0, invoice.tax,
                              InvoiceTax(invoice.tax_name, invoice.tax_rate).label)
                for invoice in session.scalars(select(Invoice).where(Invoice.org_id == org_id).order_by(Invoice.id))]
    return statement_of(_buyer(session, org_id), org.currency, invoices, start, end)
