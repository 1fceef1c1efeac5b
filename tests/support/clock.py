"""Moving the time-skipping server to calendar dates a test can compute by hand.

The server only moves forward from today's date; a test that wants "Jan 31" uses the same date
400*k years later. The Gregorian calendar repeats exactly every 400 years (same weekdays, same
leap years), so anniversary-day billing and proration are identical."""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta


def equivalent_after(date: datetime, now: datetime) -> tuple[datetime, relativedelta]:
    shift = relativedelta(years=0)
    while date + shift <= now + timedelta(minutes=1):
        shift = relativedelta(years=shift.years + 400)
    return date + shift, shift


async def advance_to(env, moment: datetime) -> None:  # noqa: ANN001
    delta = moment - await env.get_current_time()
    if delta > timedelta(0):
        await env.sleep(delta)
