"""Money is an integer count of the currency's minor unit. IDR is kept in whole rupiah
(minor unit 1, our choice); USD in cents."""

from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_currency

MINOR_UNIT_EXPONENT = {"USD": 2, "IDR": 0}
SUPPORTED_CURRENCIES = tuple(MINOR_UNIT_EXPONENT)


@dataclass(frozen=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError(f"money amounts are integer minor units, got {self.amount!r}")
        check_currency(self.currency)


def check_currency(currency: str) -> str:
    if currency not in MINOR_UNIT_EXPONENT:
        raise ValueError(f"unsupported currency {currency!r}; use one of {', '.join(SUPPORTED_CURRENCIES)}")
    return currency


def format_money(amount: int, currency: str, locale: str) -> str:
    exponent = MINOR_UNIT_EXPONENT[check_currency(currency)]
    value = Decimal(amount).scaleb(-exponent)
    if exponent == 0:
        return format_currency(value, currency, locale=locale, currency_digits=False, format="¤#,##0")
    return format_currency(value, currency, locale=locale)


# Stripe counts every currency we sell in with two decimals (IDR included: Rp 1 is 100 in its
# API), whatever our minor unit is.
STRIPE_EXPONENT = {"USD": 2, "IDR": 2}


def in_stripe_units(amount: int, currency: str) -> int:
    """An amount in our minor units as Stripe's API counts it."""
    return amount * 10 ** (STRIPE_EXPONENT[check_currency(currency)] - MINOR_UNIT_EXPONENT[currency])
