"""Working days in China: weekends, public holidays and make-up workdays (调休).

Pure: every function takes its dates; nothing here reads the clock.

Where a year's official schedule comes from, first match wins:
1. a data file `<calendar dir>/<year>.yaml` (default: knowledge/calendar/), the State Council's notice as
   typed in by an operator;
2. the chinesecalendar package, for the years it ships (2004 up to its last release's year);
3. an estimate, for later years: weekends plus the statutory holidays of 《全国年节及纪念日放假办法》 as in
   force since 2025-01-01 (国务院令第798号) that can be computed (元旦, 除夕 and 正月初一至初三, 清明,
   5月1日至2日, 端午, 中秋, 10月1日至3日). Bridging days, days in lieu (补假) and make-up workdays are
   decided by each year's notice and cannot be computed, so they are not in the estimate.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

CALENDAR_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "calendar"
ESTIMATE_RULES_FROM = 2025  # 国务院令第798号 in force since 2025-01-01: estimates only from that year on
LAST_YEAR = 2099  # the lunar library is exact to 2100; nothing here needs more
_ONE_DAY = dt.timedelta(days=1)


class CalendarError(ValueError):
    """A year that cannot be counted, or a calendar data file that cannot be read; the message says why."""


@dataclass(frozen=True)
class YearSchedule:
    """One year's days off and make-up workdays, and where they come from."""
    year: int
    holidays: dict[dt.date, str]   # day → the holiday's name (weekends included when a notice lists them)
    workdays: frozenset[dt.date]   # make-up workdays: weekend days that are worked
    source: str                    # "file:<path>", "chinesecalendar" or "estimate"

    @property
    def estimated(self) -> bool:
        return self.source == "estimate"


# ---- the estimate ---------------------------------------------------------------------------------
def _lunar_to_solar(year: int, month: int, day: int) -> dt.date:
    from lunar_python import Lunar
    s = Lunar.fromYmd(year, month, day).getSolar()
    return dt.date(s.getYear(), s.getMonth(), s.getDay())


def _qingming(year: int) -> dt.date:
    from lunar_python import Solar
    t = Solar.fromYmd(year, 4, 15).getLunar().getJieQiTable()["清明"]
    return dt.date(t.getYear(), t.getMonth(), t.getDay())


def statutory_holidays(year: int) -> dict[dt.date, str]:
    """The statutory days off of a year (国务院令第798号, 第二条), without bridging days or days in lieu."""
    if not ESTIMATE_RULES_FROM <= year <= LAST_YEAR:
        raise CalendarError(f"{year}年的法定节假日无法估算（仅支持{ESTIMATE_RULES_FROM}–{LAST_YEAR}年）")
    days: dict[dt.date, str] = {dt.date(year, 1, 1): "元旦"}
    new_year = _lunar_to_solar(year, 1, 1)
    for d in (new_year - _ONE_DAY, new_year, new_year + _ONE_DAY, new_year + 2 * _ONE_DAY):
        days[d] = "春节"  # 除夕 is the day before 正月初一, whether 腊月 has 29 or 30 days
    days[_qingming(year)] = "清明节"
    days[dt.date(year, 5, 1)] = days[dt.date(year, 5, 2)] = "劳动节"
    days[_lunar_to_solar(year, 5, 5)] = "端午节"
    days[_lunar_to_solar(year, 8, 15)] = "中秋节"  # may fall on 10月1日–3日: then the day counts once
    for day in (1, 2, 3):
        days[dt.date(year, 10, day)] = "国庆节"
    return dict(sorted(days.items()))


# ---- chinesecalendar -------------------------------------------------------------------------------
_CC_NAMES = {"New Year's Day": "元旦", "Spring Festival": "春节", "Tomb-sweeping Day": "清明节",
             "Labour Day": "劳动节", "Dragon Boat Festival": "端午节", "Mid-autumn Festival": "中秋节",
             "National Day": "国庆节", "Anti-Fascist 70th Day": "抗战胜利70周年纪念日"}


@lru_cache(maxsize=1)
def _chinesecalendar() -> tuple[dict[dt.date, str], frozenset[dt.date], frozenset[int]]:
    from chinese_calendar.constants import Holiday, holidays, workdays
    # A year counts as covered when its notice is in the package: its last holiday, National Day, is listed.
    years = frozenset(d.year for d, name in holidays.items() if name == Holiday.national_day.value)
    names = {d: _CC_NAMES.get(name, name) for d, name in holidays.items()}
    return names, frozenset(workdays), years


def chinesecalendar_years() -> frozenset[int]:
    """The years whose official schedule the installed chinesecalendar ships."""
    return _chinesecalendar()[2]


# ---- data files ------------------------------------------------------------------------------------
def _dates(item, where: str) -> list[dt.date]:
    """One entry of a data file: a date, or a range "YYYY-MM-DD..YYYY-MM-DD" (both ends included)."""
    if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
        return [item]
    if isinstance(item, str) and ".." in item:
        first, _, last = (part.strip() for part in item.partition(".."))
        try:
            start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        except ValueError:
            raise CalendarError(f"{where}: not a date range YYYY-MM-DD..YYYY-MM-DD: {item!r}") from None
        if end < start:
            raise CalendarError(f"{where}: range ends before it starts: {item!r}")
        return [start + i * _ONE_DAY for i in range((end - start).days + 1)]
    if isinstance(item, str):
        try:
            return [dt.date.fromisoformat(item.strip())]
        except ValueError:
            pass
    raise CalendarError(f"{where}: not a date or a date range: {item!r}")


def _entries(value, where: str) -> dict[dt.date, str]:
    """A list of dates/ranges, or a mapping name → list of dates/ranges."""
    if value is None:
        return {}
    groups = value.items() if isinstance(value, dict) else [("", value)]
    out: dict[dt.date, str] = {}
    for name, items in groups:
        for item in items if isinstance(items, list) else [items]:
            for d in _dates(item, where):
                out[d] = str(name or "")
    return out


def read_schedule_file(path: Path) -> YearSchedule:
    """A year's official schedule from a data file (format: the comment header of knowledge/calendar/2026.yaml)."""
    where = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, ValueError) as exc:  # ValueError: an impossible date (2027-13-01)
        raise CalendarError(f"calendar file {where}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CalendarError(f"calendar file {where}: expected a mapping at the top")
    unknown = set(data) - {"year", "source", "holidays", "workdays"}
    if unknown:
        raise CalendarError(f"calendar file {where}: unknown keys {sorted(unknown)}")
    try:
        year = int(path.stem)
    except ValueError:
        raise CalendarError(f"calendar file {where}: the name must be the year, e.g. 2027.yaml") from None
    if data.get("year") is not None and data["year"] != year:
        raise CalendarError(f"calendar file {where}: says year {data['year']}")
    holidays = _entries(data.get("holidays"), f"calendar file {where}: holidays")
    workdays = _entries(data.get("workdays"), f"calendar file {where}: workdays")
    for d in [*holidays, *workdays]:
        # A notice may start a holiday in the last days of December of the year before (元旦).
        if not (d.year == year or (d.year == year - 1 and d.month == 12)):
            raise CalendarError(f"calendar file {where}: {d} is not in {year}")
    both = set(holidays) & set(workdays)
    if both:
        raise CalendarError(f"calendar file {where}: {min(both)} is both a holiday and a workday")
    weekday_workdays = [d for d in workdays if d.weekday() < 5]
    if weekday_workdays:
        raise CalendarError(f"calendar file {where}: {weekday_workdays[0]} is a weekday, not a make-up workday")
    return YearSchedule(year, dict(sorted(holidays.items())), frozenset(workdays), f"file:{path.name}")


# ---- the calendar ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """The result of counting working days after a start day."""
    start: dt.date                 # the day not counted (民法典第二百零一条)
    end: dt.date                   # the last working day counted
    working_days: int
    estimated: bool                # some day of start+1 … end is in a year without an official schedule
    estimated_years: list[int]
    estimated_holidays: dict[dt.date, str]  # holidays in the span that come from the estimate


class WorkCalendar:
    """Working-day arithmetic over official schedules, with estimates for years that have none.

    `calendar_dir` is the folder of operator data files (<year>.yaml); None means none at all.
    `package_years`: the years to take from chinesecalendar (default: all it ships); tests may narrow it.
    """

    def __init__(self, calendar_dir: Path | None = CALENDAR_DIR, package_years: frozenset[int] | None = None):
        self.calendar_dir = Path(calendar_dir) if calendar_dir is not None else None
        self.package_years = chinesecalendar_years() if package_years is None else frozenset(package_years)
        self._cache: dict[int, YearSchedule] = {}

    def schedule(self, year: int) -> YearSchedule:
        if year not in self._cache:
            self._cache[year] = self._load(year)
        return self._cache[year]

    def _load(self, year: int) -> YearSchedule:
        if self.calendar_dir is not None:
            path = self.calendar_dir / f"{year}.yaml"
            if path.is_file():
                return read_schedule_file(path)
        if year in self.package_years:
            names, workdays, _ = _chinesecalendar()
            return YearSchedule(year, {d: n for d, n in sorted(names.items()) if d.year == year},
                                frozenset(d for d in workdays if d.year == year), "chinesecalendar")
        return YearSchedule(year, statutory_holidays(year), frozenset(), "estimate")

    def is_official(self, year: int) -> bool:
        return not self.schedule(year).estimated

    def _official_override(self, day: dt.date) -> bool | None:
        # A data file for next year may list the last days of December (a 元旦 holiday starting early).
        if day.month == 12 and self.calendar_dir is not None and (self.calendar_dir / f"{day.year + 1}.yaml").is_file():
            nxt = self.schedule(day.year + 1)
            if day in nxt.holidays:
                return False
            if day in nxt.workdays:
                return True
        return None

    def is_workday(self, day: dt.date) -> bool:
        override = self._official_override(day)
        if override is not None:
            return override
        s = self.schedule(day.year)
        if day in s.workdays:
            return True
        if day in s.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: dt.date, n: int) -> Span:
        """The n-th working day after `start` (start itself not counted)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day, counted = start, 0
        estimated_years: set[int] = set()
        estimated_holidays: dict[dt.date, str] = {}
        while counted < n:
            day += _ONE_DAY
            s = self.schedule(day.year)
            if s.estimated:
                estimated_years.add(day.year)
                if day in s.holidays:
                    estimated_holidays[day] = s.holidays[day]
            if self.is_workday(day):
                counted += 1
        return Span(start, day, n, bool(estimated_years), sorted(estimated_years), estimated_holidays)
