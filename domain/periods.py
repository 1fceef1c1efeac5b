"""Billing periods on the anniversary day: a cycle anchored on Jan 31 renews Feb 28 (29 in a
leap year), Mar 31, Apr 30. Periods are always computed from the anchor, never chained from
the previous (already clamped) date, so the day comes back once the month is long enough."""

from datetime import datetime, timedelta, timezone

from dateutil.relativedelta import relativedelta

from domain.states import Cycle


def require_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: billing times must be timezone-aware")
    return moment.astimezone(timezone.utc)


def months_in(cycle: Cycle) -> int:
    return 12 if cycle == Cycle.YEARLY else 1


def boundary(anchor: datetime, cycle: Cycle, index: int) -> datetime:
    """Start of period `index` (0 = the anchor itself)."""
    return require_utc(anchor) + relativedelta(months=months_in(cycle) * index)


def period_containing(anchor: datetime, cycle: Cycle, moment: datetime) -> tuple[datetime, datetime]:
    """The period [start, end) of an anchored cycle that contains `moment` (>= anchor)."""
    anchor, moment = require_utc(anchor), require_utc(moment)
    if moment < anchor:
        raise ValueError("moment precedes the cycle anchor")
    step = months_in(cycle)
    months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    index = max(0, months // step - 1)
    while boundary(anchor, cycle, index + 1) <= moment:
        index += 1
    return boundary(anchor, cycle, index), boundary(anchor, cycle, index + 1)


def next_boundary_after(anchor: datetime, cycle: Cycle, moment: datetime) -> datetime:
    return period_containing(anchor, cycle, moment)[1]


def last_day_billed(start: datetime, end: datetime) -> datetime:
    """The last day a period [start, end) covers, as invoices and receipts print it: the day
    before its end boundary (Jan 31 to Feb 28 prints "Jan 31 - Feb 27")."""
    return max(start, end - timedelta(days=1))


def anchor_renewing_at(renewal: datetime, cycle: Cycle) -> tuple[datetime, Cycle]:
    """The cycle start whose first renewal (`boundary`) is exactly `renewal`.
    Counting back a calendar month is not always enough: no start in February renews on 29-31
    March (a cycle anchored on Feb 28 renews on Mar 28, one on Mar 1 on Apr 1). On such a date
    the org bills in the other cycle, which can: a year back is exact except on Feb 29, where a
    month back (Jan 29) is."""
    renewal = require_utc(renewal)
    for candidate in (cycle, Cycle.YEARLY if cycle == Cycle.MONTHLY else Cycle.MONTHLY):
        start = renewal - relativedelta(months=months_in(candidate))
        if boundary(start, candidate, 1) == renewal:
            return start, candidate
    raise AssertionError(f"no cycle renews exactly at {renewal}")  # unreachable: see above
