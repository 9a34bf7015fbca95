"""A city with several measures: the one in force on the date answers; an old one asked by name answers
and says it was replaced."""
import datetime as dt
import shutil

import pytest

from bot.reminders import _measure, plan
from knowledge import kb as kbmod
from knowledge.qa import answer, covered_cities, place_resolver, resolve_city
from rules.deadlines import measure_rules, review_schedule

D = dt.date.fromisoformat
SUCCESSOR_META = """id: weihai2026
title: 威海市服务型制造示范企业认定管理办法
issuer: 威海市工业和信息化局
document_number: 威工信发〔2026〕50号
issued_on: 2026-08-01
in_force_from: 2026-09-01
in_force_until: 2031-08-31
supersedes: weihai
city:
  name: 威海市
  short: 威海
  province: 山东省
  aliases: [威海市, 威海]
  districts: [环翠区, 文登区, 荣成市, 荣成, 乳山市]
  authority: 威海市工业和信息化局
"""


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    source = tmp_path_factory.mktemp("succ") / "knowledge"
    shutil.copytree(kbmod.SOURCE_DIR, source, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (source / "measures" / "weihai.txt").read_text(encoding="utf-8")
    text = text.replace("每两年组织一次复核", "每三年组织一次复核")
    text = text.replace("本办法自2021年9月1日起施行，有效期至2026年8月31日。", "本办法自2026年9月1日起施行，有效期至2031年8月31日。")
    (source / "measures" / "weihai2026.txt").write_text(text, encoding="utf-8")
    (source / "measures" / "weihai2026.yaml").write_text(SUCCESSOR_META, encoding="utf-8")
    return kbmod.build(source)


def test_the_place_resolves_to_the_measure_in_force_on_the_date(kb):
    assert resolve_city(kb, "威海", D("2026-11-22")) == "weihai2026"
    assert resolve_city(kb, "荣成市", D("2026-11-22")) == "weihai2026"
    assert resolve_city(kb, "威海市", D("2025-01-01")) == "weihai"
    assert resolve_city(kb, "威海") == "weihai2026"  # no date: the newest
    assert resolve_city(kb, "weihai", D("2026-11-22")) == "weihai"  # an id is itself
    assert resolve_city(kb, "包头", D("2026-11-22")) == "baotou"
    assert covered_cities(kb).count("威海市") == 1
    # the in_city test of the old measure's rules accepts a place of the same city
    assert place_resolver(kb, "weihai", D("2026-11-22"))("荣成市") == "weihai"


def test_questions_use_the_measure_in_force(kb):
    now = answer(kb, "威海的示范企业多久复核一次", D("2026-11-22"))
    assert now.citations[0].measure == "weihai2026" and "取代" not in now.answer
    before = answer(kb, "威海的示范企业多久复核一次", D("2025-06-01"))
    assert before.citations[0].measure == "weihai"
    assert "取代" not in before.answer  # in 2025 it was the measure in force
    unscoped = answer(kb, "示范企业多久复核一次", D("2026-11-22"))
    assert "weihai" not in [c.measure for c in unscoped.citations]


@pytest.mark.parametrize("question", ["威工信发〔2021〕34号规定示范企业多久复核一次", "威海旧办法规定多久复核一次",
                                      "威海2021年版的办法多久复核一次"])
def test_an_old_measure_asked_by_name_answers_and_says_it_was_replaced(kb, question):
    a = answer(kb, question, D("2026-11-22"))
    assert a.citations and a.citations[0].measure == "weihai", a.answer
    assert "取代" in a.answer and "威工信发〔2026〕50号" in a.answer


def test_deadlines_and_reminders_follow_the_successor(kb):
    new = kb.measures["weihai2026"]
    assert measure_rules(new)["review"]["interval_years"] == 3  # read from its own article
    assert review_schedule(new, D("2026-10-01"), D("2026-11-22")).next_review == D("2029-10-01")
    assert _measure(kb, "weihai", D("2026-11-22")).id == "weihai2026"
    assert _measure(kb, "weihai", D("2026-01-01")).id == "weihai"
    sub = {"awarded_on": "2026-10-01", "changed_on": None, "source": "chat"}
    steps = plan(sub, _measure(kb, "weihai", D("2026-11-22")), D("2026-11-22"), (0,))
    assert [s["due_on"] for s in steps if s["kind"] == "review"] == ["2029-10-01"]


def test_the_chat_remembers_the_city_under_its_measure_in_force(kb):
    from handlers.context import Context
    from handlers.core import handle
    from handlers.message import Incoming
    ctx = Context(kb, D("2026-11-22"), False)
    result = handle(Incoming("console", "u1", text="威海的示范企业多久复核一次"), {}, ctx)
    assert result.state.get("city") == "weihai2026"
    assert "三年" in result.replies[0].text or "每三年" in result.replies[0].text


def test_an_enterprise_awarded_under_the_old_measure_is_reviewed_under_the_new_one(kb):
    new = kb.measures["weihai2026"]
    s = review_schedule(new, D("2024-06-01"), D("2026-11-22"))
    assert s.interval_years == 3 and s.next_review == D("2027-06-01")
    assert any("新办法施行前授牌" in n for n in s.notes)
    sub = {"awarded_on": "2024-06-01", "changed_on": None, "source": "chat"}
    steps = plan(sub, _measure(kb, "weihai", D("2026-11-22")), D("2026-11-22"), (0,))
    assert [s["due_on"] for s in steps if s["kind"] == "review"] == ["2027-06-01"]


def test_conversation_routes_use_one_measure_per_city(kb):
    from knowledge.conversation import ask_in_session
    v = answer(kb, "威海的办法什么时候到期", D("2026-11-22"))
    assert [c.measure for c in v.citations] == ["weihai2026"], v.answer
    old = answer(kb, "威工信发〔2021〕34号什么时候到期", D("2026-11-22"))
    assert [c.measure for c in old.citations] == ["weihai"] and "取代" in old.answer
    both = answer(kb, "威海和包头的申报条件有什么不同", D("2026-11-22"))
    assert sorted({c.measure for c in both.citations}) == ["baotou", "weihai2026"], both.answer
    follow = ask_in_session(kb, ["包头多久复核一次", "那威海呢"], D("2026-11-22"))
    assert follow.citations and follow.citations[0].measure == "weihai2026", follow.answer
