"""Pro-rata shares of a billing period, by days (DOMAIN.md, seed 000: "charged for the dates
remaining until the nearest renewal date").

A day is a UTC calendar date. A period [start, end) holds the dates from start's date up to,
not including, end's date; a purchase on a date pays for that date and every later one in the
period. Buying on the renewal date itself costs nothing now: the item is billed in full at that
renewal. Amounts are rounded half up (away from zero) to the currency's minor unit."""

from datetime import datetime
from fractions import Fraction

from domain.periods import require_utc


def days_between(start: datetime, end: datetime) -> int:
    """Calendar days from start's date to end's date (negative when end comes first)."""
    return (require_utc(end).date() - require_utc(start).date()).days


def period_days(period_start: datetime, period_end: datetime) -> int:
    days = days_between(period_start, period_end)
    if days <= 0:
        raise ValueError("empty billing period")
    return days


def days_left(period_start: datetime, period_end: datetime, at: datetime) -> int:
    """Days of [start, end) still to come on `at`'s date, clamped to the period."""
    total = period_days(period_start, period_end)
    return min(total, max(0, days_between(at, period_end)))


def overlap_days(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> int:
    return max(0, days_between(max(require_utc(a_start), require_utc(b_start)),
                               min(require_utc(a_end), require_utc(b_end))))


def round_half_up(numerator: int, denominator: int) -> int:
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator < 0:
        return -round_half_up(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def round_fraction(value: Fraction) -> int:
    return round_half_up(value.numerator, value.denominator)


def prorate(full_cycle_amount: int, period_start: datetime, period_end: datetime, at: datetime) -> int:
    """The full-period amount times the share of the period's days left on `at`."""
    if full_cycle_amount < 0:
        raise ValueError("amounts are never negative")
    return round_half_up(full_cycle_amount * days_left(period_start, period_end, at),
                         period_days(period_start, period_end))
