"""Eligibility rules: the YAML cases in tests/data/rules/, and the readers of typed answers."""
import datetime as dt
from pathlib import Path

import pytest
import yaml

from knowledge.qa import resolve_city
from rules import engine
from rules.facts import AnswerError, load_facts, parse_bool, parse_date, parse_int, parse_percent, parse_share, read

CASES_DIR = Path(__file__).parent / "data" / "rules"
CASE_KEYS = {"name", "facts", "as_of", "expect", "failed", "missing", "next", "status", "notes_have",
             "measure_status", "base_off"}


def _cases():
    for path in sorted(CASES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            unknown = set(case) - CASE_KEYS
            assert not unknown, f"{path.name}: unknown keys {unknown} in {case['name']}"
            yield pytest.param(data, case, id=f"{data['city']}: {case['name']}")


@pytest.mark.parametrize("data,case", list(_cases()))
def test_rule_case(kb, data, case):
    rules = engine.load(data["city"])
    as_of = case.get("as_of") or data["as_of"]
    raw = {} if case.get("base_off") else dict(data["base"])
    raw.update(case.get("facts") or {})
    facts, ignored = engine.read_facts(rules, raw, as_of)
    assert not ignored
    v = engine.evaluate(rules, facts, as_of, lambda text: resolve_city(kb, text))
    detail = "\n".join(f"{r.condition.id}: {r.status} {r.reason}" for r in v.results)
    assert v.verdict == case["expect"], detail
    if "failed" in case:
        assert [r.condition.id for r in v.failed] == case["failed"], detail
    if "missing" in case:
        assert v.missing == case["missing"], detail
    if "next" in case:
        assert v.next_fact == case["next"], detail
    for cid, status in (case.get("status") or {}).items():
        assert next(r.status for r in v.results if r.condition.id == cid) == status, detail
    for text in case.get("notes_have") or []:
        assert any(text in n for n in v.notes), v.notes
    if "measure_status" in case:
        assert v.measure_status == case["measure_status"]
    out = v.as_dict()
    assert out["verdict"] == v.verdict and out["city"] == data["city"] and out["as_of"] == as_of.isoformat()
    assert all(f["article"]["measure"] == data["city"] and f["article"]["article"] for f in out["failed"])


def test_every_condition_cites_an_article_of_its_measure(kb):
    for measure in engine.available():
        rules = engine.load(measure)
        for c in rules.conditions:
            assert c.article in kb.measures[measure].articles, (measure, c.id)
        for e in rules.evidence:
            assert e["article"] in kb.measures[measure].articles


def test_a_rules_file_using_an_unknown_fact_is_refused(tmp_path):
    (tmp_path / "facts.yaml").write_text((engine.RULES_DIR / "facts.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "x.yaml").write_text("measure: x\nquestions: []\nconditions:\n"
                                     "  - {id: a, label: A, article: 1, test: {fact: no_such_fact, is: true}}\n",
                                     encoding="utf-8")
    with pytest.raises(engine.RulesError, match="no_such_fact"):
        engine.load("x", tmp_path)


TODAY = dt.date(2026, 11, 22)


@pytest.mark.parametrize("text,value", [("是", True), ("是的", True), ("有", True), ("对", True), ("yes", True),
                                        ("否", False), ("没有", False), ("没", False), ("不是", False), ("无", False),
                                        ("没发生过", False), ("从未", False), ("有过一次", True), ("No", False)])
def test_yes_no(text, value):
    assert parse_bool(text) is value


@pytest.mark.parametrize("text,value", [("15%", 15), ("百分之十五", 15), ("0.15", 15), ("15", 15), ("１５％", 15),
                                        ("服务收入300万，主营2000万", 15), ("百分之十二点五", 12.5),
                                        ("服务性收入三百万元，主营业务收入两千万元", 15)])
def test_share(text, value):
    assert parse_share(text) == pytest.approx(value)


@pytest.mark.parametrize("text,value", [("12%", 12), ("增长百分之十", 10), ("下降3%", -3), ("-2%", -2), ("10", 10),
                                        ("减少了百分之五", -5)])
def test_percent(text, value):
    assert parse_percent(text) == pytest.approx(value)


@pytest.mark.parametrize("text,value", [("3个", 3), ("两个", 2), ("0", 0), ("没有", 0), ("十二项", 12)])
def test_count(text, value):
    assert parse_int(text) == value


@pytest.mark.parametrize("text,value", [("2019年5月10日", "2019-05-10"), ("2019-05-10", "2019-05-10"),
                                        ("2019.5", "2019-05"), ("2019年", "2019"), ("2019/5/10", "2019-05-10"),
                                        ("二〇一九年五月十日", "2019-05-10"), ("2019年5月", "2019-05"),
                                        ("2019年5月10号成立", "2019-05-10")])
def test_date(text, value):
    assert parse_date(text, TODAY) == value


@pytest.mark.parametrize("kind,text", [("bool", "也许吧"), ("share", "很多"), ("share", "150%"), ("int", "2.5个"),
                                       ("date", "2019-13-01"), ("date", "2027年1月1日"), ("date", "前几年"), ("int", "好几个"),
                                       ("percent", "10%和12%")])
def test_unreadable_answers_say_how_to_write_them(kind, text):
    fact = next(f for f in load_facts().values() if f.type == kind)
    with pytest.raises(AnswerError) as exc:
        read(fact, text, TODAY)
    assert "例如" in str(exc.value) or "请" in str(exc.value)


def test_choice_words():
    reason = load_facts()["revoked_reason"]
    assert read(reason, "复核没通过", TODAY) == "review_failed"
    assert read(reason, "因为弄虚作假", TODAY) == "fraud"
    assert read(load_facts()["mu_efficiency_class"], "a类", TODAY) == "A"


def test_dialog_buttons_fit_telegram_callback_data():
    """Every answer button of every question stays within Telegram's 64 bytes of callback data."""
    for key, fact in load_facts().items():
        values = ["yes", "no"] if fact.type == "bool" else list(fact.choices) or [""]
        for value in values:
            assert len(f"ck:a:{key}:{value}".encode()) <= 64
        assert len(f"ck:skip:{key}".encode()) <= 64
