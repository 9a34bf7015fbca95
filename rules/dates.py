"""Date arithmetic the rules share, read the way the law reads it."""
from __future__ import annotations

import datetime as dt


def anniversary(day: dt.date, years: int) -> dt.date:
    """The same day `years` later; where it does not exist (29 February in a common year), the month's last
    day (民法典 第二百零三条)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)
