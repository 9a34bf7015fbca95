"""The fact reader against tables of phrasings: our own (facts_dev.yaml) and a blind one written by someone who
never saw the parser (fact_phrasings.yaml, placed by the integrator; 100 % required: read right or refused)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from handlers.direct import place_of
from rules.facts import AnswerError, TextDateLoader, read_text

DATA = Path(__file__).parent / "data"
TABLES = [p for p in (DATA / "facts_dev.yaml", DATA / "fact_phrasings.yaml") if p.is_file()]


def _as_expected(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2100:
        return value  # a year written bare in YAML is compared as a number below
    return value


def score(path: Path, kb) -> tuple[int, list[str]]:
    table = yaml.load(path.read_text(encoding="utf-8"), Loader=TextDateLoader)  # noqa: S506 - a SafeLoader
    as_of = table["as_of"] if isinstance(table["as_of"], dt.date) else dt.date.fromisoformat(str(table["as_of"]))
    where = place_of(kb)
    wrong = []
    for case in table["cases"]:
        expect = _as_expected(case.get("expect"))
        try:
            r = read_text(case["fact"], str(case["text"]), as_of, where)
            got, bound = r.value, r.inexact
        except AnswerError:
            got, bound = None, False
        if isinstance(expect, (int, float)) and not isinstance(expect, bool) and isinstance(got, (int, float)) \
                and not isinstance(got, bool):
            ok = abs(got - expect) <= 0.01 or (str(got) == str(expect))
        else:
            ok = str(got) == str(expect) if expect is not None and got is not None else got is expect
        if case.get("range") and not bound:
            ok = False
        if not ok:
            wrong.append(f"{case['fact']}: {case['text']!r} → {got!r}, expected {expect!r}")
    return len(table["cases"]), wrong


@pytest.mark.parametrize("path", TABLES, ids=[p.stem for p in TABLES])
def test_every_phrasing_is_read_right_or_refused(path, kb):
    total, wrong = score(path, kb)
    assert not wrong, f"{len(wrong)}/{total} wrong:\n" + "\n".join(wrong)


if __name__ == "__main__":  # first-look score of a table: python tests/test_facts.py tests/data/fact_phrasings.yaml
    import sys

    from knowledge.kb import load
    kb = load(Path("data/kb.pickle"))
    for name in sys.argv[1:]:
        total, wrong = score(Path(name), kb)
        print(f"{name}: {total - len(wrong)}/{total} right ({(total - len(wrong)) / total:.1%})")
        print("\n".join(wrong))
