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
# ours, and every blind table (fact_phrasings.yaml, and a held-out half placed beside it as fact_phrasings_*.yaml)
TABLES = [DATA / "facts_dev.yaml"] + sorted(DATA.glob("fact_phrasings*.yaml"))


def _as_expected(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2100:
        return value  # a year written bare in YAML is compared as a number below
    return value


def score(path: Path, kb) -> tuple[int, list[str], list[str]]:
    """(cases, wrong, misread): wrong is every case not read as expected; misread the subset read as something
    else than expected (a refusal, got None, is wrong but not misread)."""
    table = yaml.load(path.read_text(encoding="utf-8"), Loader=TextDateLoader)  # noqa: S506 - a SafeLoader
    as_of = table["as_of"] if isinstance(table["as_of"], dt.date) else dt.date.fromisoformat(str(table["as_of"]))
    where = place_of(kb)
    wrong, misread = [], []
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
            if got is not None:
                misread.append(wrong[-1])
    return len(table["cases"]), wrong, misread


# Tables the reader was developed against: every phrasing read exactly as expected.
DEVELOPED = [p for p in TABLES if p.name != "fact_phrasings_holdout.yaml"]
# The held-out half of the blind table, first scored after the reader was done: 99/104 (95.2 %) read as expected,
# the 5 others refused (asked again), none read as something else. It is held to that: never a misreading.
HELD_OUT = DATA / "fact_phrasings_holdout.yaml"


@pytest.mark.parametrize("path", DEVELOPED, ids=[p.stem for p in DEVELOPED])
def test_every_phrasing_is_read_as_expected(path, kb):
    total, wrong, _ = score(path, kb)
    assert not wrong, f"{len(wrong)}/{total} wrong:\n" + "\n".join(wrong)


def test_held_out_phrasings_are_read_right_or_refused(kb):
    total, wrong, misread = score(HELD_OUT, kb)
    assert not misread, f"{len(misread)}/{total} read as something else:\n" + "\n".join(misread)
    assert total - len(wrong) >= 99, f"{total - len(wrong)}/{total} read as expected:\n" + "\n".join(wrong)


if __name__ == "__main__":  # first-look score of a table: python tests/test_facts.py tests/data/fact_phrasings.yaml
    import sys

    from knowledge.kb import load
    kb = load(Path("data/kb.pickle"))
    for name in sys.argv[1:]:
        total, wrong, misread = score(Path(name), kb)
        print(f"{name}: {total - len(wrong)}/{total} right ({(total - len(wrong)) / total:.1%})")
        print(f"read as something else: {len(misread)}")
        print("\n".join(wrong))


def test_seeded_garbage_is_read_or_refused_never_a_crash():
    """Random pieces of figures, units and dates: every fact reader answers or raises AnswerError, nothing else."""
    import random

    from rules import facts as F
    pieces = ["成立", "99999999", "9" * 40, "年", "个月", "前", "半", "多", "主营", "服务收入", "万", "亿", "%", "百分之", "十",
              "几", "三四", "到", "-", "/", ".", "月", "日", "号", "上个月", "去年", "上周", "增长", "下降", "翻了", "番", "倍",
              "是", "没有", "，", "0", "2019", "13", "32", "〇", "点", "项目", "个", "以上", "不到", "约", "更名", "授牌", "从",
              "涨到", "利润", "占比", "成", "分之", "１", "？", "吗", "\x00", "😀", "A类", "被", "不算重大"]
    rng = random.Random(20261201)
    today = dt.date(2026, 12, 1)
    facts = F.load_facts()
    for _ in range(1500):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        F.facts_in(text, today, {15.0: {"service_revenue_share"}})
        for fact in facts.values():
            try:
                F.read(fact, text, today)
            except F.AnswerError:
                pass
