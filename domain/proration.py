"""Pro-rata charges to the single renewal date.

Rounding rule: the charge is the full-cycle amount times the share of the period left,
measured in seconds, rounded half up to the currency's minor unit. Buying on the renewal day
itself (no time left) costs nothing now: the item is billed in full at that renewal."""

from datetime import datetime

from domain.periods import require_utc


def remaining_fraction(period_start: datetime, period_end: datetime, at: datetime) -> tuple[int, int]:
    """(numerator, denominator) of the part of [start, end) still to come at `at`."""
    start, end, at = require_utc(period_start), require_utc(period_end), require_utc(at)
    if end <= start:
        raise ValueError("empty billing period")
    total = int((end - start).total_seconds())
    left = int((end - max(start, min(at, end))).total_seconds())
    return left, total


def round_half_up(numerator: int, denominator: int) -> int:
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    if numerator < 0:
        return -round_half_up(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def prorate(full_cycle_amount: int, period_start: datetime, period_end: datetime, at: datetime) -> int:
    if full_cycle_amount < 0:
        raise ValueError("amounts are never negative")
    left, total = remaining_fraction(period_start, period_end, at)
    return round_half_up(full_cycle_amount * left, total)
