"""Reminders: planning, the sweep (late, blocked, transient), the import, and a crash of a real serve process."""
import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stdnum.cn import uscc

from bot.channels.base import Blocked, Transient
from bot.channels.console import ConsoleLog
from bot.config import Settings
from bot.importer import import_file
from bot.reminders import ReminderLoop, compose, plan, schedule
from bot.storage import Store
from helpers import free_port as _free_port

ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
LEADS = (30, 7, 1, 0)


def code(n: int, region: str = "371000") -> str:
    body = f"91{region}{n:09d}"[:17]
    return body + uscc.calc_check_digit(body)


def sub(store, n, city="weihai", awarded="2024-12-10", channel="console", user=None, **extra):
    sub_id, _ = store.upsert_subscription({"credit_code": code(n), "name": f"企业{n}", "city": city,
                                          "awarded_on": awarded, "channel": channel, "user_id": user or f"u{n}",
                                          "source": "import", **extra})
    return sub_id


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=SHANGHAI)


class FakeChannel:
    """A channel whose push fails as told: {user_id: [exception or None per attempt]}."""
    name = "telegram"

    def __init__(self, script=None):
        self.script = script or {}
        self.sent = []

    async def push(self, user_id, text, buttons=None):
        outcomes = self.script.get(user_id) or []
        outcome = outcomes.pop(0) if outcomes else None
        if outcome:
            raise outcome
        self.sent.append((user_id, text))


def test_plan_for_weihai_review_filing_and_expiry(kb):
    steps = plan({"awarded_on": "2024-12-10", "changed_on": "2026-11-02", "source": "chat"}, kb.measures["weihai"],
                 dt.date(2026, 11, 22), LEADS)
    got = {(s["kind"], s["due_on"], s["send_on"]) for s in steps}
    assert ("review", "2026-12-10", "2026-12-03") in got and ("review", "2026-12-10", "2026-11-10") not in got
    assert ("filing", "2026-12-14", "2026-12-14") in got and ("filing", "2026-12-14", "2026-12-07") in got
    assert not any(s["kind"] == "expiry" for s in steps)  # a chat subscriber was told when subscribing


def test_baotou_gets_no_invented_review(kb):
    steps = plan({"awarded_on": "2025-03-01", "source": "import"}, kb.measures["baotou"], dt.date(2026, 11, 22), LEADS)
    assert steps == []


def test_an_imported_weihai_enterprise_is_told_once_that_the_measure_expired(kb, store):
    sub_id = sub(store, 1)
    assert schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS) == 4
    assert schedule(store, kb, sub_id, dt.date(2026, 11, 23), LEADS) == 0  # idempotent, no second notice
    expiry = [r for r in store.upcoming("2026-12-31") if r["kind"] == "expiry"]
    assert len(expiry) == 1


def test_sweep_sends_only_in_hours_then_once(kb, store):
    sub_id = sub(store, 2)
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    ch = FakeChannel()
    schedule(store, kb, sub(store, 3, channel="telegram", user="t3"), dt.date(2026, 11, 22), LEADS)
    now = {"t": at("2026-11-22", 8)}
    loop = ReminderLoop(Settings(), store, kb, {"telegram": ch, "console": ConsoleLog()}, clock=lambda: now["t"])
    assert asyncio.run(loop.sweep()) == 0  # 08:00 in Shanghai: too early
    now["t"] = at("2026-11-22", 9)
    assert asyncio.run(loop.sweep()) == 2  # the expiry notice of each
    assert asyncio.run(loop.sweep()) == 0
    assert [t for _, t in ch.sent][0].startswith("【办法到期提醒】")
    rows = list(store.db.query("select reminder_id, count(*) c from deliveries group by reminder_id"))
    assert len(rows) == 2 and all(r["c"] == 1 for r in rows)


def test_a_reminder_that_fell_due_while_down_is_sent_late_once_saying_so(kb, store):
    sub_id = sub(store, 4)
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    ch = ConsoleLog()
    loop = ReminderLoop(Settings(), store, kb, {"console": ch}, clock=lambda: at("2026-12-05"))
    assert asyncio.run(loop.sweep()) == 2  # the expiry notice and the review reminder of 12-03, two days late
    texts = [r["text"] for r in store.db.query("select text from deliveries where late = 1")]
    assert len(texts) == 2 and all("补发" in t for t in texts)
    assert any("2026-12-10（还有5天）" in t for t in texts)


def test_blocked_user_becomes_inactive_without_retries(kb, store):
    sub_id = sub(store, 5, channel="telegram", user="t5")
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    ch = FakeChannel({"t5": [Blocked("Forbidden: bot was blocked by the user")]})
    loop = ReminderLoop(Settings(), store, kb, {"telegram": ch}, clock=lambda: at("2026-12-10"))
    assert asyncio.run(loop.sweep()) == 0
    assert store.subscription(sub_id)["active"] == 0
    assert asyncio.run(loop.sweep()) == 0 and ch.sent == []
    assert not list(store.db.query("select * from reminders where status = 'pending'"))


def test_transient_errors_back_off_then_deliver_once(kb, store):
    sub_id = sub(store, 6, channel="telegram", user="t6")
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    ch = FakeChannel({"t6": [Transient("timed out"), Transient("429", retry_after=30)]})
    now = {"t": at("2026-11-22")}
    loop = ReminderLoop(Settings(), store, kb, {"telegram": ch}, clock=lambda: now["t"])
    assert asyncio.run(loop.sweep()) == 0
    row = next(iter(store.db.query("select * from reminders where kind = 'expiry'")))
    assert row["attempts"] == 1 and row["next_try_at"] > now["t"].isoformat()
    assert asyncio.run(loop.sweep()) == 0  # not before its retry time
    now["t"] += dt.timedelta(minutes=3)
    assert asyncio.run(loop.sweep()) == 0  # second failure, RetryAfter 30 s
    now["t"] += dt.timedelta(seconds=31)
    assert asyncio.run(loop.sweep()) == 1
    assert len(ch.sent) == 1


def test_compose_filing_cites_the_subscribers_measure(kb):
    text, late = compose({"kind": "filing", "due_on": "2026-12-14", "send_on": "2026-12-07", "name": "甲公司",
                          "change_kind": "rename"}, kb.measures["baotou"], dt.date(2026, 12, 7))
    assert not late and "更名" in text and "还有7天" in text and "第十三条" in text and "第二十一条" not in text


def test_import_is_idempotent_by_credit_code_and_reports_bad_rows(kb, store, tmp_path):
    f = tmp_path / "awarded.csv"
    f.write_text("企业名称,统一社会信用代码,城市,授牌日期,渠道,用户ID\n"
                 f"甲公司,{code(7)},荣成市,2024-12-10,wecom,zhangsan\n"
                 f"乙公司,{code(8, '150200')},稀土高新区,2025-03-01,,\n"
                 f"丙公司,{code(9)[:-1]}X,威海,2024-01-01,,\n"
                 f"丁公司,{code(10)},青岛,2024-01-01,,\n"
                 f"戊公司,{code(11)},威海,2024-13-01,,\n", encoding="gb18030")
    first = import_file(f, store, kb, dt.date(2026, 11, 22), LEADS)
    assert (first.new, first.updated, first.unchanged) == (2, 0, 0) and len(first.refused) == 3
    assert {line for line, _ in first.refused} == {4, 5, 6}
    again = import_file(f, store, kb, dt.date(2026, 11, 22), LEADS)
    assert (again.new, again.updated, again.unchanged, again.reminders) == (0, 0, 2, 0)
    assert len(store.all_subscriptions()) == 2


def test_forget_deletes_a_users_subscriptions_reminders_and_deliveries(kb, store):
    sub_id = sub(store, 12, user="me", source="chat")
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    asyncio.run(ReminderLoop(Settings(), store, kb, {"console": ConsoleLog()}, clock=lambda: at("2026-11-22")).sweep())
    store.forget("console", "me")
    for table in ("subscriptions", "reminders", "deliveries"):
        assert list(store.db.query(f"select * from {table}")) == []


def test_forget_keeps_the_bureaus_record_and_clears_only_its_contact(kb, store):
    sub_id = sub(store, 13, user="me")  # imported, with this user as its contact
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    asyncio.run(ReminderLoop(Settings(), store, kb, {"console": ConsoleLog()}, clock=lambda: at("2026-11-22")).sweep())
    store.forget("console", "me")
    kept = store.subscription(sub_id)
    assert kept["name"] == "企业13" and kept["channel"] is None and kept["user_id"] is None
    assert list(store.db.query("select * from deliveries")) == []
    assert store.db["reminders"].count > 0


# ---- a real `policybot serve`, killed in the middle of a sweep -------------------------------------------
def _serve(env):
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_kill_9_in_the_middle_of_a_sweep_then_restart_delivers_each_once(kb_file, tmp_path):
    db = tmp_path / "crash.db"
    n = 1000
    rows = "\n".join(f"企业{i},{code(100 + i)},威海,2024-12-10,console,c{i}" for i in range(n))
    (tmp_path / "list.csv").write_text("name,credit_code,city,awarded_on,channel,user_id\n" + rows + "\n",
                                       encoding="utf-8")
    env = dict(os.environ, POLICYBOT_DB=str(db), POLICYBOT_KB=str(kb_file), POLICYBOT_SEND_HOURS="0-24",
               POLICYBOT_SWEEP_SECONDS="0.2", POLICYBOT_PORT=str(_free_port()))
    r = subprocess.run([sys.executable, "-m", "bot.cli", "reminders", "import", str(tmp_path / "list.csv")], env=env,
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    store = Store(db)
    due = {row["id"] for row in store.db.query("select id from reminders where send_on <= ?",
                                               [dt.datetime.now(SHANGHAI).date().isoformat()])}
    assert len(due) == n

    def delivered() -> int:
        return next(iter(store.db.execute("select count(*) from deliveries").fetchone()))

    proc = _serve(env)
    try:
        deadline = time.monotonic() + 60
        while delivered() < 50 and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # in the middle of the sweep
        proc.wait(10)
        killed_at = delivered()
        assert 0 < killed_at < n, f"the kill should land mid-sweep, {killed_at} of {n} delivered"
        proc = _serve(env)
        deadline = time.monotonic() + 60
        while delivered() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # a duplicate, if any, would land now
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    log = list(store.db.query("select reminder_id, count(*) as c from deliveries group by reminder_id"))
    assert {row["reminder_id"] for row in log} == due
    assert all(row["c"] == 1 for row in log)
    assert not list(store.db.query("select * from reminders where id in (%s) and status != 'sent'"
                                   % ",".join(map(str, due))))


def test_after_a_review_passes_the_daily_top_up_plans_the_next(kb, store):
    sub_id = sub(store, 13, awarded="2024-12-10")
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    assert store.subscription(sub_id)["replan_on"] == "2026-12-11"
    loop = ReminderLoop(Settings(), store, kb, {"console": ConsoleLog()}, clock=lambda: at("2026-12-11"))
    asyncio.run(loop.sweep())
    reviews = {r["due_on"] for r in store.db.query("select due_on from reminders where kind = 'review'")}
    assert reviews == {"2026-12-10", "2028-12-10"}
    assert store.subscription(sub_id)["replan_on"] == "2028-12-11"


def test_unsubscribe_then_subscribe_again_brings_the_reminders_back(kb, store):
    sub_id = sub(store, 14)
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS)
    store.deactivate(sub_id, "unsubscribed")
    assert store.upcoming("2026-12-31") == []
    store.upsert_subscription({"credit_code": code(14), "active": 1, "inactive_reason": None})
    assert schedule(store, kb, sub_id, dt.date(2026, 11, 22), LEADS) == 4
    assert len(store.upcoming("2026-12-31")) == 4


@pytest.mark.parametrize("text,is_report", [("我们更名了", True), ("我们在2026年10月8日完成了更名", True),
                                            ("公司名称变更手续已经办完了", True), ("我们公司重组了", True),
                                            ("更名后多久要备案？", False), ("更名了要备案吗", False), ("企业更名", False),
                                            ("改名需要备案吗", False)])
def test_a_change_report_is_told_from_a_question(text, is_report):
    from handlers.remind import reports_change
    assert reports_change(text) is is_report


def test_a_change_date_without_year_is_the_last_one_up_to_today():
    from rules.facts import read_text  # the one fact reader: a change is recent, 11月2日 is the last 2 November
    assert read_text("changed_on", "11月2日", dt.date(2026, 11, 22)).value == "2026-11-02"
    assert read_text("changed_on", "12月30号", dt.date(2026, 11, 22)).value == "2025-12-30"


def test_the_clock_is_shanghais_whatever_the_servers_time_zone():
    out = subprocess.run([sys.executable, "-c", "from bot.clock import now_shanghai, today_shanghai; "
                          "n = now_shanghai(); print(n.utcoffset().total_seconds(), n.date() == today_shanghai())"],
                         env=dict(os.environ, TZ="America/Los_Angeles"), cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.split() == ["28800.0", "True"], out.stderr
