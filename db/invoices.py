"""Invoices as stored: numbering, lines, status changes, and reading one back for the decision
that follows its payment. The invoice events of the timeline are written here."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.events import record_event
from db.models import Invoice, InvoiceLine
from domain.billing import Line
from domain.decisions import EmailLine, InvoiceDraft
from domain.payments import PaidInvoice
from domain.states import InvoiceKind, InvoiceStatus
from domain.subscription import Item, ItemKind


@dataclass(frozen=True)
class InvoiceRef:
    number: str
    total: int
    currency: str


def create_invoice(session: Session, org_id: str, business_key: str, draft: InvoiceDraft, currency: str,
                   now: datetime) -> Invoice:
    existing = session.scalar(select(Invoice).where(Invoice.business_key == business_key))
    if existing is not None:
        return existing
    sequence = (session.scalar(select(func.count(Invoice.id)).where(Invoice.org_id == org_id)) or 0) + 1
    invoice = Invoice(number=f"INV-{org_id}-{sequence:04d}", org_id=org_id, business_key=business_key, kind=draft.kind,
                      status=InvoiceStatus.OPEN, currency=currency, total=draft.total,
                      period_start=draft.period_start, period_end=draft.period_end, created_at=now)
    session.add(invoice)
    session.flush()
    for line in draft.lines:
        session.add(InvoiceLine(invoice_id=invoice.id, description=line.description, quantity=line.quantity,
                                unit_amount=line.unit_amount, amount=line.amount, item_kind=str(line.item.kind),
                                item_code=line.item.code, period_start=line.start, period_end=line.end))
    record_event(session, org_id, now, "invoice", {"number": invoice.number, "total": invoice.total,
                                                   "currency": currency, "status": "open", "kind": str(draft.kind)})
    return invoice


def invoice_by_number(session: Session, number: str) -> Invoice:
    invoice = session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        raise LookupError(f"unknown invoice {number}")
    return invoice


def set_invoice_status(session: Session, invoice: Invoice, status: InvoiceStatus, now: datetime) -> None:
    if invoice.status == status:
        return
    invoice.status = status
    if status == InvoiceStatus.PAID:
        invoice.paid_at = now
    record_event(session, invoice.org_id, now, "invoice", {"number": invoice.number, "total": invoice.total,
                                                           "currency": invoice.currency, "status": str(status)})


def paid_invoice(session: Session, number: str) -> PaidInvoice:
    invoice = invoice_by_number(session, number)
    itemised = [Line(line.description, Item(ItemKind(line.item_kind), line.item_code), line.quantity,
                     line.unit_amount, line.amount, line.period_start, line.period_end)
                for line in invoice.lines if line.item_kind and line.period_start and line.period_end]
    return PaidInvoice(invoice.number, InvoiceKind(invoice.kind), invoice.total,
                       [EmailLine(line.description, line.amount, line.period_start, line.period_end)
                        for line in invoice.lines],
                       itemised, invoice.period_start, invoice.period_end)
