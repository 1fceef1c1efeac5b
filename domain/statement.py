"""A statement of account: what an org owed before a range of days, every invoice, payment, void
and write-off within it, and what it owes after (what finance asks for at month end). Pure:
db/invoices.py reads the invoices and payments, activities/documents.py prints the result."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.periods import last_day_billed
from domain.states import InvoiceStatus


@dataclass(frozen=True)
class Buyer:
    """Who an invoice or statement is addressed to."""
    org_id: str
    name: str
    admin_email: str
    locale: str
    billing_address: str | None


@dataclass(frozen=True)
class ReceivedPayment:
    at: datetime
    amount: int
    card_brand: str | None
    card_last4: str | None


@dataclass(frozen=True)
class IssuedInvoice:
    number: str
    issued_at: datetime
    total: int
    status: InvoiceStatus
    status_at: datetime | None             # when it was voided or written off
    payments: list[ReceivedPayment]        # the successful ones


class EntryKind(StrEnum):
    INVOICE = "invoice"          # issued: the org owes its total
    PAYMENT = "payment"          # a successful charge
    VOIDED = "voided"            # an invoice that will never be collected was cancelled
    WRITTEN_OFF = "written_off"  # uncollectible after the last dunning retry


# An invoice that ends without payment takes its total back off the balance.
_ENDED_UNPAID = {InvoiceStatus.VOID: EntryKind.VOIDED, InvoiceStatus.UNCOLLECTIBLE: EntryKind.WRITTEN_OFF}


@dataclass(frozen=True)
class StatementEntry:
    at: datetime
    kind: EntryKind
    invoice: str
    amount: int                  # what it adds to the balance the org owes (a payment is negative)
    card_brand: str | None = None
    card_last4: str | None = None


@dataclass(frozen=True)
class Statement:
    buyer: Buyer
    currency: str
    start: datetime              # the range [start, end)
    end: datetime
    opening: int
    entries: list[StatementEntry]

    @property
    def closing(self) -> int:
        return self.opening + sum(entry.amount for entry in self.entries)

    @property
    def last_day(self) -> datetime:
        return last_day_billed(self.start, self.end)


def statement(buyer: Buyer, currency: str, invoices: list[IssuedInvoice], start: datetime,
              end: datetime) -> Statement:
    """The statement of [start, end) from every invoice the org was ever issued."""
    entries: list[StatementEntry] = []
    for invoice in invoices:
        entries.append(StatementEntry(invoice.issued_at, EntryKind.INVOICE, invoice.number, invoice.total))
        ended = _ENDED_UNPAID.get(invoice.status)
        if ended is not None:
            # Invoices voided before status changes were logged end on the day they were issued.
            entries.append(StatementEntry(invoice.status_at or invoice.issued_at, ended, invoice.number,
                                          -invoice.total))
        entries.extend(StatementEntry(payment.at, EntryKind.PAYMENT, invoice.number, -payment.amount,
                                      payment.card_brand, payment.card_last4) for payment in invoice.payments)
    # At one instant an invoice comes before what settles it: the balance never dips below zero.
    entries.sort(key=lambda entry: (entry.at, entry.kind != EntryKind.INVOICE))
    opening = sum(entry.amount for entry in entries if entry.at < start)
    return Statement(buyer, currency, start, end, opening, [entry for entry in entries if start <= entry.at < end])
