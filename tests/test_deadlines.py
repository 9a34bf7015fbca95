"""Deadlines: working days, the record-filing deadline, the re-review schedule, and their CLI."""
import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from rules.calendar import (CALENDAR_DIR, CalendarError, WorkCalendar, chinesecalendar_years, read_schedule_file,
                            statutory_holidays)
from rules.deadlines import DeadlineError, anniversary, filing_deadline, review_schedule

ROOT = Path(__file__).resolve().parent.parent
CASES = yaml.safe_load((ROOT / "tests" / "data" / "deadlines.yaml").read_text(encoding="utf-8"))
CASE_KEYS = {"name", "changed_on", "deadline", "estimated", "estimated_days"}
D = dt.date.fromisoformat
# The cases were worked out when 2027 had no published schedule: keep it so when a later chinesecalendar ships 2027.
PINNED = frozenset(y for y in chinesecalendar_years() if y <= 2026)


# ---- filing cases (tests/data/deadlines.yaml) -------------------------------------------------------
def pinned_calendar(folder: Path) -> WorkCalendar:
    """The shipped schedules up to 2026 only (data files and package), as when the cases were worked out."""
    for path in CALENDAR_DIR.glob("*.yaml"):
        if path.stem.isdigit() and int(path.stem) <= 2026:
            shutil.copy(path, folder / path.name)
    return WorkCalendar(calendar_dir=folder, package_years=PINNED)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_filing_case(case, tmp_path):
    assert set(case) <= CASE_KEYS, f"unknown keys {set(case) - CASE_KEYS}"
    result = filing_deadline(case["changed_on"], calendar=pinned_calendar(tmp_path))
    assert result.deadline == case["deadline"]
    assert result.working_days == 30
    assert result.estimated is case["estimated"]
    if "estimated_days" in case:
        assert sorted(result.estimated_holidays) == case["estimated_days"]
    assert result.articles == [{"measure": "baotou", "article": 13}, {"measure": "weihai", "article": 21}]


def test_shipped_and_package_schedules_give_the_same_answers():
    # knowledge/calendar/2026.yaml overrides chinesecalendar for 2026: both must agree on every day.
    with_file, package_only = WorkCalendar(), WorkCalendar(calendar_dir=None)
    assert with_file.schedule(2026).source == "file:2026.yaml"
    assert package_only.schedule(2026).source == "chinesecalendar"
    day = dt.date(2026, 1, 1)
    while day.year == 2026:
        assert with_file.is_workday(day) == package_only.is_workday(day), day
        day += dt.timedelta(days=1)


# ---- the estimate against the official schedules ------------------------------------------------------
CC_NAMES = {"元旦": "New Year's Day", "春节": "Spring Festival", "清明节": "Tomb-sweeping Day",
            "劳动节": "Labour Day", "端午节": "Dragon Boat Festival", "中秋节": "Mid-autumn Festival",
            "国庆节": "National Day"}


@pytest.mark.parametrize("year", [2025, 2026])
def test_estimated_holidays_are_the_official_ones(year):
    import chinese_calendar
    estimate = statutory_holidays(year)
    assert len(set(estimate)) == 13  # 国务院令第798号: 13 days, none falling together in these years
    for day, name in estimate.items():
        on_holiday, official = chinese_calendar.get_holiday_detail(day)
        assert on_holiday and official == CC_NAMES[name], (day, name, official)
    # and every official holiday of the year has its statutory days in the estimate
    official_names = {n for d, n in chinese_calendar.constants.holidays.items() if d.year == year}
    assert official_names <= {CC_NAMES[n] for n in estimate.values()}


def test_estimate_for_2027_by_hand():
    # 2027: 除夕 2/5, 正月初一 2/6; 清明 4/5; 端午 6/9; 中秋 9/15.
    assert statutory_holidays(2027) == {
        D("2027-01-01"): "元旦", D("2027-02-05"): "春节", D("2027-02-06"): "春节", D("2027-02-07"): "春节",
        D("2027-02-08"): "春节", D("2027-04-05"): "清明节", D("2027-05-01"): "劳动节", D("2027-05-02"): "劳动节",
        D("2027-06-09"): "端午节", D("2027-09-15"): "中秋节", D("2027-10-01"): "国庆节", D("2027-10-02"): "国庆节",
        D("2027-10-03"): "国庆节"}


def test_years_that_cannot_be_counted_are_refused():
    with pytest.raises(CalendarError):
        statutory_holidays(2024)  # before the 2025 rules: no estimate with the wrong rules
    with pytest.raises(CalendarError):
        WorkCalendar(calendar_dir=None).add_working_days(dt.date(2003, 6, 1), 30)


# ---- operator data files -------------------------------------------------------------------------------
CALENDAR_2027 = """\
# A made-up 2027 notice, for the test.
year: 2027
source: test
holidays:
  元旦: 2027-01-01..2027-01-03
  春节: 2027-02-05..2027-02-12
workdays:
  春节: [2027-02-20]
"""


def test_a_data_file_makes_2027_official_and_changes_the_answer(tmp_path):
    empty = WorkCalendar(calendar_dir=tmp_path, package_years=PINNED)
    estimated = filing_deadline(D("2027-01-29"), calendar=empty)
    assert estimated.estimated and estimated.deadline == D("2027-03-16")

    (tmp_path / "2027.yaml").write_text(CALENDAR_2027, encoding="utf-8")
    official = filing_deadline(D("2027-01-29"), calendar=WorkCalendar(calendar_dir=tmp_path, package_years=PINNED))
    # 2/1-2/4 = 1-4, 2/5-2/14 off, 2/15-2/19 = 5-9, Sat 2/20 = 10, 2/22-2/26 = 11-15, … 3/15-3/19 = 26-30
    assert official.deadline == D("2027-03-19")
    assert official.estimated is False and official.estimated_years == [] and official.estimated_holidays == {}


def test_a_data_file_overrides_chinesecalendar(tmp_path):
    # A (fictional) 2026 file with Monday 3/16 off moves the CONTRACT example by one working day.
    (tmp_path / "2026.yaml").write_text("year: 2026\nholidays: [2026-03-16, 2026-04-04..2026-04-06]\n",
                                        encoding="utf-8")
    result = filing_deadline(D("2026-03-02"), calendar=WorkCalendar(calendar_dir=tmp_path))
    assert result.deadline == D("2026-04-15") and not result.estimated


def test_a_december_day_listed_in_next_years_file(tmp_path):
    (tmp_path / "2027.yaml").write_text("holidays: {元旦: 2026-12-31..2027-01-01}\n", encoding="utf-8")
    cal = WorkCalendar(calendar_dir=tmp_path)
    assert not cal.is_workday(D("2026-12-31")) and cal.is_workday(D("2026-12-30"))


@pytest.mark.parametrize("text", [
    "holidays: [2027-13-01]\n", "holidays: ['2027-02-10..2027-02-01']\n", "holidays: [2025-05-01]\n",
    "workdays: [2027-02-10]\n",  # a Wednesday is no make-up workday
    "holidays: [2027-02-20]\nworkdays: [2027-02-20]\n", "year: 2028\n", "holiday: [2027-01-01]\n", "- 1\n", "a: [\n"])
def test_bad_data_files_are_refused_with_a_reason(tmp_path, text):
    path = tmp_path / "2027.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CalendarError, match="2027.yaml"):
        read_schedule_file(path)


def test_shipped_data_files_are_valid():
    for path in CALENDAR_DIR.glob("*.yaml"):
        read_schedule_file(path)


# ---- review schedule -------------------------------------------------------------------------------------
def test_review_contract_example(kb):
    r = review_schedule(kb.measures["weihai"], D("2024-06-01"), D("2026-11-22"))
    assert r.as_dict()["reviews"] == ["2026-06-01", "2028-06-01"]
    assert r.next_review == D("2028-06-01") and r.measure_status == "expired"
    assert any("失效" in n and "2026年8月31日" in n and "后续新办法" in n for n in r.notes)
    assert any("第十八条" in n for n in r.notes)


@pytest.mark.parametrize("awarded, as_of, reviews", [
    ("2022-03-10", "2024-03-10", ["2024-03-10"]),                 # due on as_of: still the next one
    ("2022-03-10", "2024-03-11", ["2024-03-10", "2026-03-10"]),
    ("2022-03-10", "2022-03-10", ["2024-03-10"]),                 # awarded today
    ("2024-02-29", "2025-01-01", ["2026-02-28"]),                 # 29 Feb → 28 Feb in a common year
    ("2024-02-29", "2026-03-01", ["2026-02-28", "2028-02-29"]),
])
def test_review_dates(kb, awarded, as_of, reviews):
    r = review_schedule(kb.measures["weihai"], D(awarded), D(as_of))
    assert [d.isoformat() for d in r.reviews] == reviews and r.next_review.isoformat() == reviews[-1]


def test_review_in_force_with_a_review_after_the_end_of_validity(kb):
    r = review_schedule(kb.measures["weihai"], D("2024-12-01"), D("2025-06-01"))
    assert r.measure_status == "in_force" and r.next_review == D("2026-12-01")
    assert any("有效期至2026年8月31日" in n and "2026-12-01" in n for n in r.notes)


def test_baotou_sets_no_periodic_review(kb):
    r = review_schedule(kb.measures["baotou"], D("2024-06-01"), D("2026-11-22")).as_dict()
    assert r["next_review"] is None and r["reviews"] == [] and r["measure_status"] == "unknown"
    assert any("未规定定期复核" in n and "第十二条" in n for n in r["notes"])
    assert any("第十六条" in n for n in r["notes"])


def test_review_input_errors(kb):
    with pytest.raises(DeadlineError):
        review_schedule(kb.measures["weihai"], D("2026-12-01"), D("2026-11-22"))
    with pytest.raises(DeadlineError):
        review_schedule(kb.measures["weihai"], D("2020-01-01"), D("2026-11-22"))  # before the measure


def test_anniversary():
    assert anniversary(D("2024-02-29"), 2) == D("2026-02-28") and anniversary(D("2024-02-29"), 4) == D("2028-02-29")


# ---- CLI -----------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(kb_file, monkeypatch, capsys):
    monkeypatch.setenv("POLICYBOT_DB", str(kb_file.parent / "p.db"))
    monkeypatch.setenv("POLICYBOT_KB", str(kb_file))

    def run(*args):
        code = main(["deadlines", *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_cli_filing_json(cli):
    code, out, _ = cli("filing", "--changed-on", "2026-03-02", "--json")
    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("changed_on", "deadline", "working_days", "estimated", "articles")} == {
        "changed_on": "2026-03-02", "deadline": "2026-04-14", "working_days": 30, "estimated": False,
        "articles": [{"measure": "baotou", "article": 13}, {"measure": "weihai", "article": 21}]}


def test_cli_filing_text(cli):
    code, out, _ = cli("filing", "--changed-on", "2026-03-02")
    assert code == 0 and "2026-04-14" in out
    assert "《包头市级服务型制造示范企业认定管理办法（试行）》第十三条" in out
    assert "《威海市服务型制造示范企业认定管理办法》第二十一条" in out and "估算" not in out
    code, out, _ = cli("filing", "--changed-on", "2035-12-03")  # a year far from any published schedule
    assert code == 0 and "估算" in out and "2036年" in out


def test_cli_review_json(cli):
    code, out, _ = cli("review", "--city", "荣成市", "--awarded-on", "2024-06-01", "--as-of", "2026-11-22", "--json")
    data = json.loads(out)
    assert code == 0
    assert {k: data[k] for k in ("city", "awarded_on", "as_of", "next_review", "reviews", "measure_status")} == {
        "city": "weihai", "awarded_on": "2024-06-01", "as_of": "2026-11-22", "next_review": "2028-06-01",
        "reviews": ["2026-06-01", "2028-06-01"], "measure_status": "expired"}
    assert data["notes"] and all(isinstance(n, str) for n in data["notes"])
    code, out, _ = cli("review", "--city", "稀土高新区", "--awarded-on", "2024-06-01", "--as-of", "2026-11-22", "--json")
    data = json.loads(out)
    assert data["city"] == "baotou" and data["next_review"] is None and data["reviews"] == []
    assert data["measure_status"] == "unknown"


def test_cli_review_text_and_default_as_of(cli):
    code, out, _ = cli("review", "--city", "威海", "--awarded-on", "2024-06-01", "--as-of", "2026-11-22")
    assert code == 0 and "2028-06-01" in out and "第十八条" in out and "已失效" in out
    code, out, _ = cli("review", "--city", "weihai", "--awarded-on", "2022-06-01")
    assert code == 0 and "下次复核" in out


@pytest.mark.parametrize("args", [
    ["filing"], ["filing", "--changed-on", "2026-02-30"], ["filing", "--changed-on", "yesterday"],
    ["filing", "--changed-on", "2300-01-01"],
    ["review", "--city", "济南", "--awarded-on", "2024-06-01"],
    ["review", "--city", "weihai"],
    ["review", "--city", "weihai", "--awarded-on", "2026-12-01", "--as-of", "2026-11-22"],
    ["review", "--city", "weihai", "--awarded-on", "2024-06-01", "--as-of", "2026-11-31"],
    ["nosuch"], [],
])
def test_cli_bad_input_exits_2_with_one_line(cli, args):
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_console_script(kb_file):
    exe = ROOT / ".venv" / "bin" / "policybot"
    if not exe.exists():
        found = shutil.which("policybot")
        if not found:
            pytest.skip("policybot is not installed")
        exe = Path(found)
    env = dict(os.environ, POLICYBOT_DB=str(kb_file.parent / "p.db"), POLICYBOT_KB=str(kb_file))
    r = subprocess.run([str(exe), "deadlines", "filing", "--changed-on", "2026-03-02", "--json"],
                       env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["deadline"] == "2026-04-14" and data["estimated"] is False and data["working_days"] == 30
