"""Dialog transcripts (tests/data/transcripts/*.yaml) replayed through the console channel."""
from pathlib import Path

import pytest
import yaml

from bot.channels.console import ConsoleChannel

TRANSCRIPTS = sorted((Path(__file__).parent / "data" / "transcripts").glob("*.yaml"))
STEP_KEYS = {"user", "say", "not", "restart"}


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=[p.stem for p in TRANSCRIPTS])
def test_transcript(path, kb, tmp_path):
    """Each step types a line and checks the reply; `restart: true` starts a new process on the same database."""
    import datetime as dt

    from bot.config import Settings
    from bot.runtime import Dispatcher
    from bot.storage import Store
    db = tmp_path / "transcript.db"

    def channel():
        return ConsoleChannel(Dispatcher(Settings(db=db), Store(db), kb, today=lambda: dt.date(2026, 11, 22)), "tester")

    script = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert set(script) <= {"name", "steps", "check_db_empty"}, f"unknown keys in {path.name}"
    console = channel()
    for i, step in enumerate(script["steps"]):
        assert set(step) <= STEP_KEYS, f"{path.name} step {i}: unknown keys {set(step) - STEP_KEYS}"
        if step.get("restart"):
            console = channel()
            continue
        out = console.send(str(step["user"]))
        for text in step.get("say") or []:
            assert text in out, f"{path.name} step {i} ({step['user']!r}): {text!r} not in\n{out}"
        for text in step.get("not") or []:
            assert text not in out, f"{path.name} step {i} ({step['user']!r}): {text!r} in\n{out}"
    if script.get("check_db_empty"):
        store = Store(db)
        for table in ("dialog_state", "questions", "checks"):
            rows = list(store.db.query(f"select * from {table} where user_id = 'tester'"))
            assert rows == [], f"{table} still holds {rows}"


def test_state_survives_a_restart(kb, tmp_path):
    """A new process (new Store, new Dispatcher) on the same database resumes the conversation's city."""
    import datetime as dt

    from bot.config import Settings
    from bot.runtime import Dispatcher
    from bot.storage import Store
    db = tmp_path / "restart.db"
    first = ConsoleChannel(Dispatcher(Settings(db=db), Store(db), kb, today=lambda: dt.date(2026, 11, 22)), "u1")
    assert "包头" in first.send("/city 包头")
    second = ConsoleChannel(Dispatcher(Settings(db=db), Store(db), kb, today=lambda: dt.date(2026, 11, 22)), "u1")
    out = second.send("更名后多久要备案")
    assert "第十三条" in out and "第二十一条" not in out


def test_a_failing_handler_gives_a_chinese_apology_not_a_traceback(dispatcher, monkeypatch):
    import bot.runtime
    monkeypatch.setattr(bot.runtime, "handle", lambda *a: 1 / 0)
    out = ConsoleChannel(dispatcher, "u2").send("你好")
    assert "抱歉" in out and "Traceback" not in out


def test_a_random_walk_through_the_self_check_never_breaks(dispatcher):
    """Seeded random input in the middle of self-checks: every reply is a real one, never the apology."""
    import random

    from bot.runtime import SORRY
    pool = ["自测", "/check", "我能申报吗", "荣成市", "昆都仑区", "青岛", "是", "否", "有", "没有", "1", "2", "3", "4",
            "2019年5月", "2019-05-10", "2026-12-01", "两个", "百分之十五", "0.15", "下降3%", "B", "复核不合格",
            "跳过", "返回", "重填第3题", "重填第99题", "重新开始", "继续", "确认", "说明", "?", "取消", "/cancel",
            "/help", "😀😀", "", "x" * 10000, "\x00\x07", "威海复核多久一次", "删除我的数据", "算了", "/forget"]
    rng = random.Random(20261122)
    console = ConsoleChannel(dispatcher, "walker")
    for _ in range(600):
        out = console.send(rng.choice(pool))
        assert SORRY not in out and "Traceback" not in out


def test_operator_commands_for_admins_only(kb, tmp_path):
    import datetime as dt

    from bot.config import Settings
    from bot.reminders import schedule
    from bot.runtime import Dispatcher
    from bot.storage import Store
    db = tmp_path / "ops.db"
    store = Store(db)
    d = Dispatcher(Settings(db=db, admins=frozenset({"console:boss"})), store, kb, today=lambda: dt.date(2026, 11, 22))
    sub_id, _ = store.upsert_subscription({"credit_code": "91371000MA3C8K2L0W", "name": "甲公司", "city": "weihai",
                                           "awarded_on": "2024-12-10", "channel": None, "user_id": None,
                                           "source": "import"})
    schedule(store, kb, sub_id, dt.date(2026, 11, 22), (30, 7, 1, 0))
    user, boss = ConsoleChannel(d, "someone"), ConsoleChannel(d, "boss")
    for q in ("今天天气怎么样", "今天天气怎么样", "威海复核多久一次", "自测"):
        user.send(q)
    for command in ("/stats", "/unanswered", "/due 30"):
        out = user.send(command)
        assert "仅限主管部门管理员" in out and "甲公司" not in out and "天气" not in out
    stats = boss.send("/stats 7")
    assert "提问 3 次（未能回答 2 次）" in stats and "自测 1 次" in stats and "订阅企业 1 家（可联系 0 家）" in stats
    assert "今天天气怎么样（2次" in boss.send("/unanswered")
    due = boss.send("/due 30")
    assert "甲公司" in due and "2026-12-03" in due and "无联系渠道" in due
    assert "用法" in boss.send("/due abc")
