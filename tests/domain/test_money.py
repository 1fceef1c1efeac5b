import pytest

from domain.money import MINOR_UNIT_EXPONENT, SUPPORTED_CURRENCIES, Money, check_currency, format_money


@pytest.mark.parametrize("amount, currency, locale, expected", [
    (1500, "USD", "en", "$15.00"),
    (5, "USD", "en", "$0.05"),
    (0, "USD", "en", "$0.00"),
    (123456789, "USD", "en", "$1,234,567.89"),
    (-1500, "USD", "en", "-$15.00"),           # a credit line
    (1500, "USD", "id", "US$15,00"),
    (123456789, "USD", "id", "US$1.234.567,89"),
    (150000, "IDR", "id", "Rp150.000"),        # whole rupiah: no decimals
    (1234567, "IDR", "id", "Rp1.234.567"),
    (90000, "IDR", "id", "Rp90.000"),
    (150000, "IDR", "en", "IDR150,000"),
])
def test_format_money(amount, currency, locale, expected):
    assert format_money(amount, currency, locale) == expected


def test_minor_units():
    assert MINOR_UNIT_EXPONENT == {"USD": 2, "IDR": 0}
    assert SUPPORTED_CURRENCIES == ("USD", "IDR")


def test_money_accepts_integer_minor_units():
    money = Money(1500, "USD")
    assert (money.amount, money.currency) == (1500, "USD")
    assert Money(150000, "IDR").amount == 150000


@pytest.mark.parametrize("amount", [15.0, 0.5, True, "1500", None])
def test_money_rejects_non_integer_amounts(amount):
    with pytest.raises(TypeError, match="integer minor units"):
        Money(amount, "USD")


def test_money_rejects_unsupported_currency():
    with pytest.raises(ValueError) as err:
        Money(100, "EUR")
    assert str(err.value) == "unsupported currency 'EUR'; use one of USD, IDR"


def test_format_money_rejects_unsupported_currency():
    with pytest.raises(ValueError, match="unsupported currency 'usd'; use one of USD, IDR"):
        format_money(100, "usd", "en")


def test_check_currency_returns_a_supported_code():
    assert check_currency("IDR") == "IDR"
