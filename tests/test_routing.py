"""Declared routing (handlers/core.py): questions in the middle of a dialog, idle dialogs, shared words."""
from __future__ import annotations

import datetime as dt

from handlers import core, words
from handlers.context import Context
from handlers.message import Incoming

NOW = dt.datetime(2026, 11, 22, 10, 0)


def say(kb, state, text, now=NOW):
    ctx = Context(kb, now.date(), now=now)
    result = core.handle(Incoming("console", "u", text), state, ctx)
    return "\n".join(r.text for r in result.replies), result.state


def test_a_question_in_the_middle_of_remind_is_answered_never_stored(kb):
    out, state = say(kb, {}, "提醒")
    out, state = say(kb, state, "威海复核多久一次？")
    assert "第十八条" in out or "两年" in out
    assert state["remind"]["step"] == "city" and "city" not in state["remind"]["data"]
    out, state = say(kb, state, "威海")
    assert state["remind"]["step"] == "name"
    out, state = say(kb, state, "更名后多久要备案？")
    assert "30个工作日" in out and "企业名称" in out
    assert "name" not in state["remind"]["data"]
    out, state = say(kb, state, "威海某某科技有限公司")
    assert state["remind"]["data"]["name"] == "威海某某科技有限公司"


def test_a_question_in_the_middle_of_the_self_check_is_answered_and_it_resumes(kb):
    out, state = say(kb, {}, "自测")
    out, state = say(kb, state, "威海复核多久一次？")
    assert "自测还在进行" in out and "第1题" in out
    assert "registered_in" not in state["check"]["facts"] and state["check"]["city"] is None
    out, state = say(kb, state, "荣成市")
    assert state["check"]["facts"]["registered_in"] == "荣成市"


def test_a_dialog_idle_for_more_than_a_day_ends_with_a_note(kb):
    out, state = say(kb, {}, "提醒")
    assert state.get("touched")
    out, state = say(kb, state, "威海某某科技有限公司", NOW + dt.timedelta(days=1, minutes=1))
    assert "超过一天" in out and "remind" not in state
    out, state = say(kb, {}, "自测")
    out, state = say(kb, state, "荣成市", NOW + dt.timedelta(hours=23))
    assert "超过一天" not in out and state["check"]["facts"]["registered_in"] == "荣成市"


def test_one_list_of_yes_no_cancel_words():
    assert words.is_yes("确认") and words.is_yes("好的") and words.is_no("不用") and words.is_cancel("算了")
    assert words.is_question("更名后多久要备案？") and words.is_question("能报吗")
    assert not words.is_question("前几年吧") and not words.is_question("威海某某科技有限公司")


def test_the_tables_route_every_command_and_button_kind():
    assert {"help", "check", "remind", "status", "cancel", "forget"} <= set(core.COMMANDS)
    assert {"q", "ck", "rm", "city", "forget"} <= set(core.CALLBACKS)
    assert core.FALLBACKS[-1].when("随便什么", {})


def test_an_answer_giving_more_facts_records_them_and_they_are_not_asked(kb):
    state = {}
    for text in ("自测", "荣成市", "是", "是", "2019年5月", "没有", "没有", "有", "两个"):
        out, state = say(kb, state, text)
    assert state["check"]["pending"] == "service_revenue_share"
    out, state = say(kb, state, "主营3000万，服务收入400万，营收去年增长了15%")
    facts = state["check"]["facts"]
    assert facts["service_revenue_share"] == 13.33 and facts["revenue_growth"] == 15
    assert "也记下了" in out and state["check"]["pending"] not in ("revenue_growth", "service_revenue_share")
