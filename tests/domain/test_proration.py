import pytest

from domain.proration import days_left, period_days, prorate, round_half_up
from tests.domain.builders import utc

YEAR_START, YEAR_END = utc(2026, 1, 1), utc(2027, 1, 1)      # 365 days
FEB_START, FEB_END = utc(2026, 2, 1), utc(2026, 3, 1)        # 28 days


@pytest.mark.parametrize("numerator, denominator, expected", [
    (0, 7, 0),
    (1, 3, 0),      # 0.333
    (1, 2, 1),      # 0.5 -> up
    (2, 3, 1),      # 0.667
    (3, 2, 2),      # 1.5 -> up
    (5, 2, 3),      # 2.5 -> up (banker's rounding would give 2)
    (7, 2, 4),      # 3.5
    (10, 4, 3),     # 2.5
    (9, 4, 2),      # 2.25
    (11, 4, 3),     # 2.75
    (100, 1, 100),
    (-5, 2, -3),    # symmetric: half away from zero
    (-1, 3, 0),
    (-9, 4, -2),
])
def test_round_half_up(numerator, denominator, expected):
    assert round_half_up(numerator, denominator) == expected


@pytest.mark.parametrize("denominator", [0, -2])
def test_round_half_up_rejects_non_positive_denominator(denominator):
    with pytest.raises(ValueError, match="denominator must be positive"):
        round_half_up(5, denominator)


def test_days_left_are_calendar_days_the_purchase_day_included():
    assert (days_left(YEAR_START, YEAR_END, utc(2026, 7, 2)), period_days(YEAR_START, YEAR_END)) == (183, 365)
    assert days_left(FEB_START, FEB_END, utc(2026, 2, 15)) == 14
    # Late on the last day of February, that day is still bought: one day of 28.
    assert days_left(FEB_START, FEB_END, utc(2026, 2, 28, 23, 59, 59)) == 1


def test_days_left_clamp_moments_outside_the_period():
    assert days_left(FEB_START, FEB_END, utc(2026, 1, 1)) == 28
    assert days_left(FEB_START, FEB_END, utc(2026, 3, 5)) == 0


@pytest.mark.parametrize("start, end", [(FEB_END, FEB_START), (FEB_START, FEB_START)])
def test_empty_or_inverted_period_is_rejected(start, end):
    with pytest.raises(ValueError, match="empty billing period"):
        prorate(100, start, end, FEB_START)


def test_buying_at_the_period_start_costs_the_full_amount():
    assert prorate(3000, YEAR_START, YEAR_END, YEAR_START) == 3000
    assert prorate(90000, FEB_START, FEB_END, FEB_START) == 90000


def test_buying_before_the_period_start_costs_no_more_than_the_full_amount():
    assert prorate(3000, YEAR_START, YEAR_END, utc(2025, 12, 1)) == 3000


def test_buying_on_the_renewal_day_itself_costs_nothing():
    assert prorate(3000, YEAR_START, YEAR_END, YEAR_END) == 0
    assert prorate(300, FEB_START, FEB_END, FEB_END) == 0
    assert prorate(300, FEB_START, FEB_END, utc(2026, 3, 10)) == 0


def test_one_licence_half_way_through_a_yearly_cycle_costs_half_a_year():
    # Seed 000's example. 2027 is not a leap year: Jan 1 + 6 months leaves 184 of 365 days, the
    # nearest a calendar can get to half a year, whatever the hour of the purchase.
    assert prorate(3650, YEAR_START, YEAR_END, utc(2026, 7, 1, 12)) == 1840
    assert prorate(3650, YEAR_START, YEAR_END, utc(2026, 7, 1, 0)) == 1840


@pytest.mark.parametrize("at, full, expected", [
    # Jul 2 00:00 -> Jan 1 00:00 is 30+31+30+31+30+31 = 183 days of 365.
    (utc(2026, 7, 2), 3000, 1504),   # 3000 * 183/365 = 1504.11
    (utc(2026, 7, 2), 6000, 3008),   # 6000 * 183/365 = 3008.22
    (utc(2026, 7, 1), 3000, 1512),   # 3000 * 184/365 = 1512.33
    (utc(2026, 7, 1), 450000, 226849),  # IDR standard yearly: 450000 * 184/365 = 226849.32
])
def test_yearly_proration_by_the_day(at, full, expected):
    assert prorate(full, YEAR_START, YEAR_END, at) == expected


def test_idr_monthly_price_half_of_february():
    # 90000 rupiah for Feb 2026 (28 days), bought Feb 15 00:00: 14/28 left.
    assert prorate(90000, FEB_START, FEB_END, utc(2026, 2, 15)) == 45000


def test_idr_monthly_price_in_a_leap_february():
    # Feb 2028 has 29 days; Feb 15 leaves 15: 90000 * 15/29 = 46551.72 -> 46552.
    assert prorate(90000, utc(2028, 2, 1), utc(2028, 3, 1), utc(2028, 2, 15)) == 46552


def test_exact_half_cent_rounds_up():
    # Mail Lite 10 GB, 125 cents a month, half of February left: 62.5 -> 63.
    assert prorate(125, FEB_START, FEB_END, utc(2026, 2, 15)) == 63
    # 5 cents over 4 days with 2 days left: 2.5 -> 3.
    assert prorate(5, utc(2026, 2, 1), utc(2026, 2, 5), utc(2026, 2, 3)) == 3


@pytest.mark.parametrize("at, expected", [
    (utc(2026, 2, 2), 67),   # 2 of 3 days: 66.67
    (utc(2026, 2, 3), 33),   # 1 of 3 days: 33.33
])
def test_rounding_below_and_above_half(at, expected):
    assert prorate(100, utc(2026, 2, 1), utc(2026, 2, 4), at) == expected


def test_proration_counts_days_not_hours():
    # DOMAIN.md: by days. An hour into a 30-day month the whole first day is still bought.
    assert prorate(1000, utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 4, 1, 1)) == 1000
    assert prorate(1000, utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 4, 1, 23, 59)) == 1000
    # A period anchored at 09:00: bought on its last date before 09:00, nothing is left to pay.
    assert prorate(1000, utc(2026, 4, 1, 9), utc(2026, 5, 1, 9), utc(2026, 5, 1, 8)) == 0


def test_zero_amount_prorates_to_zero():
    assert prorate(0, FEB_START, FEB_END, utc(2026, 2, 10)) == 0


def test_negative_amounts_are_rejected():
    with pytest.raises(ValueError, match="never negative"):
        prorate(-1, FEB_START, FEB_END, utc(2026, 2, 10))


def test_naive_moment_is_rejected():
    from datetime import datetime
    with pytest.raises(ValueError, match="naive datetime"):
        prorate(100, FEB_START, FEB_END, datetime(2026, 2, 10))
