"""Tax on an invoice (DOMAIN.md "Tax"): by the buyer's country, from rules kept as data in the
catalog. A rule names the tax ("PPN"), its rate, the share of the price that is its base (11/12
for Indonesian services since 2025), and the day it applies from: an invoice is taxed by the
newest rule of its buyer's country valid on the day it is issued. A buyer with no rule (no
country, or a country whose rules say nothing: an export of services) pays none.

The tax is computed once per invoice, on the sum of its lines (credits included), and stored with
it: tax = rate x (share x subtotal), the base not rounded before the rate, the result rounded half
away from zero to the currency's minor unit (money is kept in minor units, so: to an integer).
Decimal arithmetic throughout, never floats nor Python's round (half to even)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pycountry

from domain.errors import InvalidInput

# Wide enough that the exact value of rate x share x amount for any amount we keep is decided
# without doubt on which side of a half it falls (a share's denominator is small).
_PRECISION = 60


@dataclass(frozen=True)
class TaxRule:
    name: str             # as printed: "PPN", "VAT"
    rate: Decimal         # 0.12 for 12%
    base_share: Fraction  # the part of the price taxed: 11/12
    valid_from: date      # invoices issued from this day on

    @property
    def label(self) -> str:
        return f"{self.name} {percent(self.rate)}"


# By ISO 3166 alpha-2 country code, oldest rule first.
TaxRules = Mapping[str, Sequence[TaxRule]]


@dataclass(frozen=True)
class InvoiceTax:
    """What an invoice keeps of its tax, from the rule in force when it was issued (None: untaxed)."""
    name: str | None = None
    rate: str = "0"       # the rate as a decimal string ("0.12"): exact, read back as a Decimal
    base: int = 0         # the tax base shown (DPP), rounded like the tax
    amount: int = 0

    @property
    def label(self) -> str | None:
        return f"{self.name} {percent(Decimal(self.rate))}" if self.name else None


UNTAXED = InvoiceTax()


def percent(rate: Decimal) -> str:
    """0.12 -> '12%', 0.125 -> '12.5%'."""
    value = (rate * 100).normalize()
    return f"{value:f}%"


def half_away_from_zero(value: Decimal) -> int:
    """To the minor unit (an integer), a half going away from zero (-0.5 -> -1)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rule_for(rules: TaxRules, country: str | None, issued_on: date) -> TaxRule | None:
    """The rule in force for a buyer in `country` on the day an invoice is issued."""
    if not country:
        return None
    valid = [rule for rule in rules.get(country, ()) if rule.valid_from <= issued_on]
    return max(valid, key=lambda rule: rule.valid_from, default=None)


def tax_on(subtotal: int, rule: TaxRule | None) -> InvoiceTax:
    """The tax of an invoice whose lines (credits included) come to `subtotal` minor units. Below
    zero (a credit note) the tax is below zero too: the org is owed it with the rest."""
    if rule is None:
        return UNTAXED
    with localcontext() as context:
        context.prec = _PRECISION
        base = Decimal(subtotal) * rule.base_share.numerator / rule.base_share.denominator
        tax = base * rule.rate
    return InvoiceTax(rule.name, str(rule.rate), half_away_from_zero(base), half_away_from_zero(tax))


def check_country(code: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code (any case) as stored, upper case; '' or None: no country."""
    if code is None or not code.strip():
        return None
    code = code.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput(f"country: {code!r} is not an ISO 3166 alpha-2 country code (ID, US, SG, ...)")
    return code


TAX_ID_MAX = 40


def check_tax_id(tax_id: str | None) -> str | None:
    """The buyer's tax number (NPWP) as printed on its invoices; '' or None: none."""
    if tax_id is None or not tax_id.strip():
        return None
    tax_id = tax_id.strip()
    if len(tax_id) > TAX_ID_MAX or not all(ch.isalnum() or ch in ".-/ " for ch in tax_id):
        raise InvalidInput(f"tax_id: {tax_id[:TAX_ID_MAX]!r} is not a tax number (at most {TAX_ID_MAX} letters, "
                           "digits, dots, dashes, slashes or spaces)")
    return tax_id
