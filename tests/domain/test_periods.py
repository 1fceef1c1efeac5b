from datetime import datetime, timedelta, timezone

import pytest

from domain.periods import boundary, months_in, next_boundary_after, period_containing, require_utc
from domain.states import Cycle
from tests.domain.builders import utc

JAN31 = utc(2026, 1, 31, 9)


@pytest.mark.parametrize("index, expected", [
    (0, utc(2026, 1, 31, 9)),
    (1, utc(2026, 2, 28, 9)),
    (2, utc(2026, 3, 31, 9)),   # the 31st comes back: computed from the anchor, not chained
    (3, utc(2026, 4, 30, 9)),
    (4, utc(2026, 5, 31, 9)),
    (5, utc(2026, 6, 30, 9)),
    (6, utc(2026, 7, 31, 9)),
    (7, utc(2026, 8, 31, 9)),
    (8, utc(2026, 9, 30, 9)),
    (11, utc(2026, 12, 31, 9)),
    (12, utc(2027, 1, 31, 9)),
    (13, utc(2027, 2, 28, 9)),
    (25, utc(2028, 2, 29, 9)),  # leap year reached from a 2026 anchor
])
def test_monthly_boundaries_anchored_on_jan_31(index, expected):
    assert boundary(JAN31, Cycle.MONTHLY, index) == expected


@pytest.mark.parametrize("index, expected", [
    (1, utc(2028, 2, 29, 9)),
    (2, utc(2028, 3, 31, 9)),
    (3, utc(2028, 4, 30, 9)),
    (13, utc(2029, 2, 28, 9)),
])
def test_monthly_boundaries_in_a_leap_year(index, expected):
    assert boundary(utc(2028, 1, 31, 9), Cycle.MONTHLY, index) == expected


@pytest.mark.parametrize("index, expected", [
    (1, utc(2026, 2, 28, 12)),
    (2, utc(2026, 3, 30, 12)),
    (12, utc(2027, 1, 30, 12)),
])
def test_monthly_boundaries_anchored_on_jan_30(index, expected):
    assert boundary(utc(2026, 1, 30, 12), Cycle.MONTHLY, index) == expected


@pytest.mark.parametrize("index, expected", [
    (0, utc(2024, 2, 29, 9)),
    (1, utc(2025, 2, 28, 9)),
    (2, utc(2026, 2, 28, 9)),
    (3, utc(2027, 2, 28, 9)),
    (4, utc(2028, 2, 29, 9)),
    (8, utc(2032, 2, 29, 9)),
])
def test_yearly_boundaries_anchored_on_leap_day(index, expected):
    assert boundary(utc(2024, 2, 29, 9), Cycle.YEARLY, index) == expected


@pytest.mark.parametrize("index, expected", [
    (1, utc(2027, 1, 31, 9)),
    (2, utc(2028, 1, 31, 9)),
    (10, utc(2036, 1, 31, 9)),
])
def test_yearly_boundaries(index, expected):
    assert boundary(JAN31, Cycle.YEARLY, index) == expected


def test_months_in_each_cycle():
    assert months_in(Cycle.MONTHLY) == 1
    assert months_in(Cycle.YEARLY) == 12


def test_boundary_is_returned_in_utc_for_an_offset_anchor():
    jakarta = timezone(timedelta(hours=7))
    anchor = datetime(2026, 1, 31, 23, 30, tzinfo=jakarta)  # = 2026-01-31 16:30 UTC
    result = boundary(anchor, Cycle.MONTHLY, 1)
    assert result == utc(2026, 2, 28, 16, 30)
    assert result.utcoffset() == timedelta(0)


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError, match="naive datetime"):
        boundary(datetime(2026, 1, 31, 9), Cycle.MONTHLY, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        period_containing(JAN31, Cycle.MONTHLY, datetime(2026, 2, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        period_containing(datetime(2026, 1, 31, 9), Cycle.MONTHLY, utc(2026, 2, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        require_utc(datetime(2026, 1, 1))


@pytest.mark.parametrize("moment, expected", [
    (utc(2026, 1, 31, 9), (utc(2026, 1, 31, 9), utc(2026, 2, 28, 9))),           # the anchor itself
    (utc(2026, 2, 28, 8, 59, 59), (utc(2026, 1, 31, 9), utc(2026, 2, 28, 9))),   # one second before
    (utc(2026, 2, 28, 9), (utc(2026, 2, 28, 9), utc(2026, 3, 31, 9))),           # on the boundary: next period
    (utc(2026, 3, 1), (utc(2026, 2, 28, 9), utc(2026, 3, 31, 9))),
    (utc(2026, 3, 31, 9), (utc(2026, 3, 31, 9), utc(2026, 4, 30, 9))),
    (utc(2026, 4, 30, 8), (utc(2026, 3, 31, 9), utc(2026, 4, 30, 9))),
    (utc(2030, 6, 15), (utc(2030, 5, 31, 9), utc(2030, 6, 30, 9))),              # far from the anchor
])
def test_period_containing_monthly(moment, expected):
    assert period_containing(JAN31, Cycle.MONTHLY, moment) == expected


@pytest.mark.parametrize("moment, expected", [
    (utc(2024, 2, 29, 9), (utc(2024, 2, 29, 9), utc(2025, 2, 28, 9))),
    (utc(2025, 2, 28, 9), (utc(2025, 2, 28, 9), utc(2026, 2, 28, 9))),
    (utc(2026, 3, 1), (utc(2026, 2, 28, 9), utc(2027, 2, 28, 9))),
    (utc(2028, 2, 28, 12), (utc(2027, 2, 28, 9), utc(2028, 2, 29, 9))),
    (utc(2028, 2, 29, 9), (utc(2028, 2, 29, 9), utc(2029, 2, 28, 9))),
])
def test_period_containing_yearly_from_leap_day(moment, expected):
    assert period_containing(utc(2024, 2, 29, 9), Cycle.YEARLY, moment) == expected


def test_period_containing_converts_an_offset_moment_to_utc():
    # 2026-02-28 15:00 in UTC+7 is 08:00 UTC: still one hour before the Feb 28 09:00 renewal.
    moment = datetime(2026, 2, 28, 15, 0, tzinfo=timezone(timedelta(hours=7)))
    assert period_containing(JAN31, Cycle.MONTHLY, moment) == (utc(2026, 1, 31, 9), utc(2026, 2, 28, 9))


def test_period_containing_rejects_a_moment_before_the_anchor():
    with pytest.raises(ValueError, match="precedes the cycle anchor"):
        period_containing(JAN31, Cycle.MONTHLY, utc(2026, 1, 31, 8, 59, 59))


@pytest.mark.parametrize("cycle, moment, expected", [
    (Cycle.MONTHLY, utc(2026, 2, 10), utc(2026, 2, 28, 9)),
    (Cycle.MONTHLY, utc(2026, 2, 28, 9), utc(2026, 3, 31, 9)),  # on a boundary: the following one
    (Cycle.MONTHLY, utc(2026, 1, 31, 9), utc(2026, 2, 28, 9)),
    (Cycle.YEARLY, utc(2026, 2, 10), utc(2027, 1, 31, 9)),
    (Cycle.YEARLY, utc(2027, 1, 31, 9), utc(2028, 1, 31, 9)),
])
def test_next_boundary_after(cycle, moment, expected):
    assert next_boundary_after(JAN31, cycle, moment) == expected
