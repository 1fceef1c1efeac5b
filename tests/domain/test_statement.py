"""The statement of account, by hand: what finance reads at month end."""

from datetime import datetime, timezone

from domain.statement import Buyer, EntryKind, IssuedInvoice, ReceivedPayment, statement
from domain.states import InvoiceStatus

BUYER = Buyer("acme", "Acme", "admin@acme.test", "en", None)


def day(month: int, d: int, hour: int = 9) -> datetime:
    return datetime(2026, month, d, hour, tzinfo=timezone.utc)


INVOICES = [
    IssuedInvoice("INV-1", day(1, 5), 10000, InvoiceStatus.PAID, None, [ReceivedPayment(day(1, 5), 10000, "visa", "4242")]),
    IssuedInvoice("INV-2", day(1, 20), 5000, InvoiceStatus.VOID, day(2, 2), []),
    IssuedInvoice("INV-3", day(2, 5), 7000, InvoiceStatus.UNCOLLECTIBLE, day(3, 1), []),
    IssuedInvoice("INV-4", day(2, 28), 3000, InvoiceStatus.PAID, None, [ReceivedPayment(day(3, 3), 3000, "visa", "4242")]),
    IssuedInvoice("INV-5", day(2, 28, 10), 2500, InvoiceStatus.OPEN, None, []),
]


def test_february_opens_with_what_january_left_and_closes_with_what_is_owed():
    february = statement(BUYER, "USD", INVOICES, day(2, 1, 0), day(3, 1, 0))
    assert february.opening == 5000                       # INV-2, issued in January, not yet voided
    assert [(e.invoice, e.kind, e.amount) for e in february.entries] == [
        ("INV-2", EntryKind.VOIDED, -5000), ("INV-3", EntryKind.INVOICE, 7000),
        ("INV-4", EntryKind.INVOICE, 3000), ("INV-5", EntryKind.INVOICE, 2500)]
    assert february.closing == 12500                      # INV-3, INV-4 and INV-5 unpaid at the month end
    assert february.last_day == day(2, 28, 0)


def test_march_writes_off_and_collects():
    march = statement(BUYER, "USD", INVOICES, day(3, 1, 0), day(4, 1, 0))
    assert march.opening == 12500
    assert [(e.invoice, e.kind, e.amount) for e in march.entries] == [
        ("INV-3", EntryKind.WRITTEN_OFF, -7000), ("INV-4", EntryKind.PAYMENT, -3000)]
    assert march.closing == 2500
    assert march.entries[1].card_last4 == "4242"


def test_an_invoice_paid_the_instant_it_is_issued_comes_first():
    january = statement(BUYER, "USD", INVOICES[:1], day(1, 1, 0), day(2, 1, 0))
    assert [e.kind for e in january.entries] == [EntryKind.INVOICE, EntryKind.PAYMENT]
    assert (january.opening, january.closing) == (0, 0)


# A credit note (a yearly switch crediting $50.00 more than the year costs), then the invoices that
# use the credit: one paid partly by it, one voided (its credit given back), one written off.
CREDITS = [
    IssuedInvoice("INV-6", day(4, 2), -5000, InvoiceStatus.CREDITED, day(4, 2), []),
    IssuedInvoice("INV-7", day(4, 10), 1000, InvoiceStatus.PAID, None, [ReceivedPayment(day(4, 10), 1000, "visa", "4242")],
                  credit_applied=3000),
    IssuedInvoice("INV-8", day(4, 12), 0, InvoiceStatus.VOID, day(4, 13), [], credit_applied=2000),
    IssuedInvoice("INV-9", day(4, 20), 500, InvoiceStatus.UNCOLLECTIBLE, day(4, 28), [], credit_applied=2000),
]


def test_a_credit_note_is_owed_to_the_org_until_later_invoices_use_it():
    april = statement(BUYER, "USD", CREDITS, day(4, 1, 0), day(5, 1, 0))
    balances, balance = [], april.opening
    for entry in april.entries:
        balance += entry.amount
        balances.append((entry.invoice, entry.kind, entry.amount, balance))
    assert balances == [
        ("INV-6", EntryKind.CREDIT_NOTE, -5000, -5000),   # the org is owed $50.00: its account credit
        ("INV-7", EntryKind.INVOICE, 4000, -1000),        # $40.00 billed: $30.00 of it from the credit...
        ("INV-7", EntryKind.PAYMENT, -1000, -2000),       # ... the card paid the rest
        ("INV-8", EntryKind.INVOICE, 2000, 0),            # covered by the last $20.00 of credit...
        ("INV-8", EntryKind.VOIDED, -2000, -2000),        # ... voided: the $20.00 is the org's again
        ("INV-9", EntryKind.INVOICE, 2500, 500),          # $20.00 from the credit, $5.00 to pay
        ("INV-9", EntryKind.WRITTEN_OFF, -500, 0)]        # what was left to pay written off
    assert april.closing == 0
    assert [e.credit_used for e in april.entries if e.kind == EntryKind.INVOICE] == [3000, 2000, 2000]
