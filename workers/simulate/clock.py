"""The simulated clock.

The test server starts at the real current time and only moves forward, while a scenario may
start in the past. The Gregorian calendar repeats every 400 years (weekdays, leap years, month
lengths), so the run happens 400*k years later, for the smallest k that puts the start in the
server's future, and every time printed is shifted back."""

import re
from dataclasses import dataclass, field
from datetime import datetime

from dateutil.relativedelta import relativedelta

GREGORIAN_CYCLE_YEARS = 400
_DATE = re.compile(r"(?<!\d)(\d{4})(-\d{2}-\d{2})(?!\d)")


@dataclass(frozen=True)
class ShiftedClock:
    start: datetime    # the scenario's start and end, in the real calendar
    until: datetime
    shift: relativedelta = field(default_factory=relativedelta)

    @classmethod
    def after(cls, start: datetime, until: datetime, now: datetime) -> "ShiftedClock":
        """The clock whose shifted start lies after `now`, the test server's time."""
        k = 0
        while start + relativedelta(years=GREGORIAN_CYCLE_YEARS * k) <= now:
            k += 1
        return cls(start, until, relativedelta(years=GREGORIAN_CYCLE_YEARS * k))

    def shifted(self, moment: datetime) -> datetime:
        return moment + self.shift

    def unshift(self, moment: datetime) -> datetime:
        return (moment - self.shift).replace(microsecond=0)

    def text(self, moment: datetime) -> str:
        return self.unshift(moment).isoformat()

    def unshift_message(self, message: str) -> str:
        """Refusals quote dates (`renewal date (2426-03-15)`): give them back in the real calendar."""
        years = self.shift.years
        if not years:
            return message
        low = self.shifted(self.start).year - 1
        high = self.shifted(self.until).year + 2

        def back(match: re.Match) -> str:
            year = int(match.group(1))
            return f"{year - years:04d}{match.group(2)}" if low <= year <= high else match.group(0)
        return _DATE.sub(back, message)
