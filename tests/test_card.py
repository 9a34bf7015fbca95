"""The verdict card and the checklist, over every rule case (tests/data/rules/*.yaml) and with nothing answered."""
from __future__ import annotations

import re

import pytest

from handlers.check import render_card, render_checklist
from knowledge.qa import resolve_city
from rules import engine

from test_rules import _cases

MAX_LINES = 15


def _verdicts(kb):
    for p in _cases():
        data, case = p.values
        rules = engine.load(data["city"])
        as_of = case.get("as_of") or data["as_of"]
        raw = {} if case.get("base_off") else dict(data["base"])
        raw.update(case.get("facts") or {})
        facts, _ = engine.read_facts(rules, raw, as_of)
        yield case["name"], engine.evaluate(rules, facts, as_of, lambda text: resolve_city(kb, text), interview=True)
    worst = {"registered_in": "青岛", "is_manufacturer": False, "independent_legal_person": False,
             "established_on": "2026-01-01", "major_accident_2y": True, "illegal_or_under_investigation": True,
             "has_service_unit": False, "service_projects_3y": 0, "service_revenue_share": 1, "revenue_growth": -5,
             "profit_growth": -5, "ever_revoked": True, "revoked_on": "2025-01-01", "revoked_reason": "fraud",
             "blacklisted": True, "major_violation_2y": True, "env_pollution_notice_2y": True, "profitable": False,
             "sound_service_system": False}
    for city in engine.available():
        rs = engine.load(city)
        yield f"{city}: everything wrong", engine.evaluate(rs, {k: v for k, v in worst.items() if k in rs.questions},
                                                          data["as_of"], lambda t: None, interview=True)
        yield f"{city}: nothing answered", engine.evaluate(engine.load(city), {}, data["as_of"], lambda t: None,
                                                           interview=True)


def test_every_card_is_short_plain_and_shows_the_answers(kb):
    for name, v in _verdicts(kb):
        card = render_card(v)
        lines = card.splitlines()
        assert len(lines) <= MAX_LINES, f"{name}: {len(lines)} lines\n{card}"
        assert "不在撤销" not in card and "：否（第二十条）" not in card, name  # no double negative
        assert lines[0].startswith("【申报条件自测") and ("注意" in lines[1]) == (v.measure_status != "in_force"), name
        for key, value in v.facts.items():  # the enterprise's own figures are on the card
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key in v.ruleset.questions:
                assert f"{value:g}" in card, f"{name}: {key}={value} not on\n{card}"


@pytest.mark.parametrize("city", engine.available())
def test_each_proof_is_listed_once(city):
    text = render_checklist(engine.load(city))
    items = [line[2:] for line in text.splitlines() if line.startswith("· ")]
    assert len(items) == len(set(items))
    assert sum(1 for i in items if re.match(r"^营业执照", i)) <= 1, text
