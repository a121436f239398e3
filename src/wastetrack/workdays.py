"""Working days (工作日) for the liaison loop's deadlines.

The enforcement agreements count deadlines in working days: Saturdays and Sundays are off,
and so are the public holidays, which the State Council sets each year together with the
weekends worked instead (调休). wastetrack ships no holiday calendar (it would be wrong the
year it is not updated): ``Params.holidays`` lists the days off and ``Params.extra_workdays``
the weekend days worked. Without them a deadline that spans a holiday falls early, so a
reminder may come a few days too soon, never too late.
"""

from __future__ import annotations

from datetime import date, timedelta

from wastetrack.config import Params


class Workdays:
    """Working-day arithmetic under one calendar (``Params.holidays`` / ``Params.extra_workdays``)."""

    def __init__(self, params: Params) -> None:
        self.holidays = {date.fromisoformat(d) for d in params.holidays}
        self.extra = {date.fromisoformat(d) for d in params.extra_workdays}

    def is_workday(self, day: date) -> bool:
        if day in self.extra:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add(self, start: date, n: int) -> date:
        """The ``n``-th working day after ``start`` (``start`` itself does not count; n=0 → start)."""
        day, left = start, int(n)
        while left > 0:
            day += timedelta(days=1)
            if self.is_workday(day):
                left -= 1
        return day

    def between(self, start: date, end: date) -> int:
        """Working days in (start, end]: how many working days after ``start`` ``end`` is (0 if not later)."""
        n, day = 0, start
        while day < end:
            day += timedelta(days=1)
            n += self.is_workday(day)
        return n
