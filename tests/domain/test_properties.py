"""Property-based tests (Hypothesis) of rounding, proration and periods. The example database is
disabled so running the suite writes nothing outside tests/domain. The org model's invariants
are tested statefully in test_model_invariants.py."""

import calendar
import math
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.periods import boundary, period_containing
from domain.proration import prorate, round_half_up
from domain.states import Cycle

SETTINGS = settings(max_examples=200, deadline=None, database=None)

moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 12, 31),
                       timezones=st.just(timezone.utc))


# --- rounding and proration --------------------------------------------------------------

@SETTINGS
@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=1, max_value=10**9))
def test_round_half_up_matches_exact_arithmetic(numerator, denominator):
    assert round_half_up(numerator, denominator) == math.floor(Fraction(numerator, denominator) + Fraction(1, 2))


@SETTINGS
@given(full=st.integers(min_value=0, max_value=10**9),
       start=moments,
       days=st.integers(min_value=1, max_value=400),
       offset=st.integers(min_value=-500 * 86400, max_value=900 * 86400))
def test_proration_is_between_zero_and_the_full_amount(full, start, days, offset):
    end = start + timedelta(days=days)
    at = start + timedelta(seconds=offset)
    charge = prorate(full, start, end, at)
    assert 0 <= charge <= full
    # Dates of [start, end) from at's date on: the purchase date is bought whole.
    left = min(max((end.date() - at.date()).days, 0), days)
    assert charge == math.floor(Fraction(full * left, days) + Fraction(1, 2))
    if at <= start:
        assert charge == full
    if at.date() >= end.date():
        assert charge == 0


@SETTINGS
@given(full=st.integers(min_value=0, max_value=10**8), start=moments,
       days=st.integers(min_value=1, max_value=400),
       a=st.integers(min_value=0, max_value=400 * 86400), b=st.integers(min_value=0, max_value=400 * 86400))
def test_proration_never_grows_as_time_passes(full, start, days, a, b):
    end = start + timedelta(days=days)
    early, late = sorted((a, b))
    assert prorate(full, start, end, start + timedelta(seconds=late)) <= \
        prorate(full, start, end, start + timedelta(seconds=early))


# --- periods ---------------------------------------------------------------------------------

@SETTINGS
@given(anchor=moments, later=st.integers(min_value=0, max_value=10 * 366 * 86400),
       cycle=st.sampled_from(list(Cycle)))
def test_period_containing_brackets_the_moment_on_anniversary_days(anchor, later, cycle):
    moment = anchor + timedelta(seconds=later)
    start, end = period_containing(anchor, cycle, moment)
    assert start <= moment < end
    for edge in (start, end):
        last_day = calendar.monthrange(edge.year, edge.month)[1]
        assert edge.day == min(anchor.day, last_day)
        assert edge.time() == anchor.time()
        if cycle == Cycle.YEARLY:
            assert edge.month == anchor.month
    months = (end.year - start.year) * 12 + end.month - start.month
    assert months == (12 if cycle == Cycle.YEARLY else 1)


@SETTINGS
@given(anchor=moments, index=st.integers(min_value=0, max_value=300))
def test_every_boundary_starts_its_own_period(anchor, index):
    b = boundary(anchor, Cycle.MONTHLY, index)
    assert period_containing(anchor, Cycle.MONTHLY, b) == (b, boundary(anchor, Cycle.MONTHLY, index + 1))
