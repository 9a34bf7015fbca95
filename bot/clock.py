"""The one place that reads the clock: dates and times in Asia/Shanghai, whatever the server's zone."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def now_shanghai() -> dt.datetime:
    return dt.datetime.now(SHANGHAI)


def today_shanghai() -> dt.date:
    return now_shanghai().date()
