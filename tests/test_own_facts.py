"""Questions carrying the enterprise's own facts are answered with the computed outcome first (tests/data/own_facts.yaml)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from handlers.ask import answer_with_facts
from rules.facts import TextDateLoader

CASES = yaml.load((Path(__file__).parent / "data" / "own_facts.yaml").read_text(encoding="utf-8"),
                  Loader=TextDateLoader)  # noqa: S506 - a SafeLoader
AS_OF = dt.date.fromisoformat(CASES["as_of"])


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["q"] for c in CASES["cases"]])
def test_own_facts_lead_the_answer(kb, case):
    assert set(case) <= {"q", "facts", "say", "not", "city"}
    a, direct = answer_with_facts(kb, case["q"], AS_OF, case.get("city"))
    if "facts" in case:
        read = {k: r.value for k, r in direct.found.facts.items()} if direct else {}
        expected = {k: (v if isinstance(v, str) else float(v)) for k, v in case["facts"].items()}
        assert {k: (v if isinstance(v, str) else float(v)) for k, v in read.items()} == pytest.approx(expected)
    lead = direct.text if direct else ""
    for text in case.get("say") or []:
        assert text in lead or (text.startswith("第") and text in a.answer), f"{text!r} not in\n{a.answer}"
    for text in case.get("not") or []:
        assert text not in a.answer, f"{text!r} in\n{a.answer}"
    if direct:
        assert a.answer.startswith(direct.text) and not a.abstained and a.citations
