"""Account credit (domain.credit): a credit note's amount is kept by the org and used by its next
invoices; nothing is charged for an invoice the credit covers; a voided invoice gives it back."""

from domain.credit import account_credit, credit_to_apply, settled_without_charge
from domain.states import InvoiceStatus


def test_a_credit_note_is_kept_and_used_up_by_the_next_invoices():
    held = [(InvoiceStatus.CREDITED, -5000, 0)]
    assert account_credit(held) == 5000
    assert credit_to_apply(5000, 3000) == 3000 and credit_to_apply(5000, 8000) == 5000
    used = held + [(InvoiceStatus.PAID, 0, 3000), (InvoiceStatus.OPEN, 1500, 1000)]
    assert account_credit(used) == 1000
    # Voided: what it used is the org's again; written off: the credit paid for service given.
    assert account_credit(held + [(InvoiceStatus.VOID, 0, 3000)]) == 5000
    assert account_credit(held + [(InvoiceStatus.UNCOLLECTIBLE, 500, 3000)]) == 2000


def test_what_is_settled_without_a_charge():
    assert settled_without_charge(-1) == InvoiceStatus.CREDITED
    assert settled_without_charge(0) == InvoiceStatus.PAID
    assert settled_without_charge(1) is None
    assert credit_to_apply(0, 500) == 0 and credit_to_apply(700, -300) == 0
