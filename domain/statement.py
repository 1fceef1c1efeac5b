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
    country: str | None = None   # ISO 3166 alpha-2
    tax_id: str | None = None    # the buyer's tax number (NPWP), printed when known


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
    total: int                             # what is charged: its lines less the credit used
    status: InvoiceStatus
    status_at: datetime | None             # when it was voided or written off
    payments: list[ReceivedPayment]        # the successful ones
    credit_applied: int = 0                # the account credit it used (domain.credit)
    tax: int = 0                           # the tax its total includes, as issued
    tax_label: str | None = None           # "PPN 12%"; None: untaxed

    @property
    def charged(self) -> int:
        """Its lines: what the org was billed, whatever paid it."""
        return self.total + self.credit_applied


class EntryKind(StrEnum):
    INVOICE = "invoice"          # issued: the org owes its lines' total
    CREDIT_NOTE = "credit_note"  # an invoice below zero: the org is owed it (its account credit)
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
    credit_used: int = 0         # an invoice: the part of it the org's account credit paid
    tax: int = 0                 # an invoice: the tax its amount includes
    tax_label: str | None = None


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
    """The statement of [start, end) from every invoice the org was ever issued.

    A balance below zero is credit the org holds: a credit note lowers the balance by its amount
    and nothing more is needed when a later invoice uses the credit (the invoice adds its lines,
    the card pays the rest). A voided invoice takes all its lines back (the credit it used is the
    org's again); a written-off one takes back what was left to pay."""
    entries: list[StatementEntry] = []
    for invoice in invoices:
        kind = EntryKind.CREDIT_NOTE if invoice.charged < 0 else EntryKind.INVOICE
        entries.append(StatementEntry(invoice.issued_at, kind, invoice.number, invoice.charged,
                                      credit_used=invoice.credit_applied, tax=invoice.tax,
                                      tax_label=invoice.tax_label))
        ended = _ENDED_UNPAID.get(invoice.status)
        if ended is not None:
            # Invoices voided before status changes were logged end on the day they were issued.
            entries.append(StatementEntry(invoice.status_at or invoice.issued_at, ended, invoice.number,
                                          -(invoice.charged if ended == EntryKind.VOIDED else invoice.total)))
        entries.extend(StatementEntry(payment.at, EntryKind.PAYMENT, invoice.number, -payment.amount,
                                      payment.card_brand, payment.card_last4) for payment in invoice.payments)
    # At one instant an invoice comes before what settles it: the balance never dips below zero.
    entries.sort(key=lambda entry: (entry.at, entry.kind not in (EntryKind.INVOICE, EntryKind.CREDIT_NOTE)))
    opening = sum(entry.amount for entry in entries if entry.at < start)
    return Statement(buyer, currency, start, end, opening, [entry for entry in entries if start <= entry.at < end])
