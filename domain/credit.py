"""Account credit: money an org is owed. An invoice whose lines come to less than nothing (a
yearly switch crediting more than the year costs, say) is a credit note: nothing is charged
and its amount is kept as the org's credit, which the org's next invoices use up before
anything is charged to the card. Derived from the invoices, never kept as a separate number:
credit notes add to it, the credit an invoice used takes from it, and a voided invoice gives
back what it used (DOMAIN.md: nothing vanishes, nothing is paid twice)."""

from collections.abc import Iterable

from domain.states import InvoiceStatus


def account_credit(invoices: Iterable[tuple[InvoiceStatus, int, int]]) -> int:
    """The credit an org holds, from its invoices' (status, total, credit applied)."""
    credit = 0
    for status, total, applied in invoices:
        if status == InvoiceStatus.CREDITED:
            credit -= total
        if status != InvoiceStatus.VOID:
            credit -= applied
    return credit


def credit_to_apply(credit: int, lines_total: int) -> int:
    """How much of the org's credit a new invoice uses: as much as it costs, at most all of it."""
    return max(0, min(credit, lines_total))


def settled_without_charge(total: int) -> InvoiceStatus | None:
    """The status an invoice takes with nothing to charge: a credit note is credited to the
    account, an invoice covered by credit (or costing nothing) is paid; None: charge the card."""
    if total < 0:
        return InvoiceStatus.CREDITED
    if total == 0:
        return InvoiceStatus.PAID
    return None
