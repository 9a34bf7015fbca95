"""Reference measures (knowledge/reference/): other cities' measures kept only for what their example questions
teach a measure never seen. They are indexed and learned from, and never reach a user: no scope, no citation,
no city, no help text. Also the rules that decide another programme, and the validity article, as other
cities' measures word them."""
import datetime as dt
import shutil
from pathlib import Path

import pytest

from knowledge import intents
from knowledge import kb as kbmod
from knowledge.kb import KnowledgeBaseError, Measure
from knowledge.parser import parse_measure
from knowledge.qa import answer, covered_cities, hint
from knowledge.textnorm import normalize
from knowledge.validity import validity_of

DATA = Path(__file__).parent / "data" / "reference"
AS_OF = dt.date(2026, 11, 22)


def _questions(mid: str, n: int) -> list[str]:
    import yaml
    return [c["q"] for c in yaml.safe_load((DATA / f"qa_{mid}.yaml").read_text(encoding="utf-8"))][:n]


def test_references_are_indexed_and_learned_from_but_are_no_measures(kb):
    assert kb.references, "knowledge/reference/ holds the training measures"
    assert not set(kb.references) & set(kb.measures)
    assert set(kb.measure_ids) == set(kb.measures) | set(kb.references)
    taught = {lab[0] for lab in kb.examples.labels if lab}
    assert set(kb.references) <= taught  # their example questions are examples
    assert kb.stats["measures"] == len(kb.measures)


@pytest.mark.parametrize("mid", sorted(p.stem for p in DATA.glob("*.txt")))
def test_questions_written_for_a_reference_measure_never_cite_it(kb, mid):
    for q in _questions(mid, 40):
        for city in (None, mid):  # its id as the conversation's city is no city of this base
            a = answer(kb, q, AS_OF, city)
            assert all(c.measure in kb.measures for c in a.citations), (q, a.citations)
            assert a.city is None or a.city in kb.measures


def test_a_reference_city_is_not_covered(kb):
    name = next(iter(kb.references.values())).meta["city"]["name"]
    a = answer(kb, f"{name}服务型制造示范企业申报需要什么条件", AS_OF)
    assert a.abstained and a.reason == "uncovered_city", a
    assert name not in covered_cities(kb) and name not in hint(kb)


def test_a_reference_that_is_also_a_measure_is_refused(tmp_path):
    src = tmp_path / "knowledge"
    shutil.copytree(kbmod.SOURCE_DIR, src, ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.pyc", "calendar"))
    for suffix in (".txt", ".yaml"):
        shutil.copy(src / "measures" / f"baotou{suffix}", src / "reference" / f"baotou{suffix}")
    with pytest.raises(KnowledgeBaseError, match="baotou"):
        kbmod.build(src, learn=False)


# ---- another programme, as other cities' measures speak of it ------------------------------------------
OWN = normalize("上一年度营业收入5000万元（含）以上，其中属于重点产业链链主企业的，可放宽至3000万元。"
                "获得市级认定后，又被认定为国家级服务型制造示范的，再给予一次性奖励50万元。")


@pytest.mark.parametrize("question, other", [
    ("我们去年营收4500万，不是链主企业，能报示范企业吗", None),  # the measure's subject named: its question
    ("链主企业怎么认定", "链主企业"),  # the other programme itself
    ("获评国家级服务型制造示范还有奖励吗", None),  # a level already held, which the measure rewards
    ("我们今年又评上国家级示范企业，还能再拿多少", None),
    ("国家级服务型制造示范企业怎么申报", "国家级"),  # applying to the national programme
    ("专精特新企业怎么申报", "专精特新"),
])
def test_a_name_the_measure_uses_is_its_own_in_a_question_about_it(kb, question, other):
    assert intents.other_programme(kb.lexicon, normalize(question), kb.analyzer, OWN) == other


def test_the_validity_article_is_the_one_that_states_a_date_not_a_repeal():
    text = ("第一条 为推动服务型制造发展，制定本办法。\n"
            "第二条 本办法自2025年7月15日起施行，有效期至2030年12月31日。\n"
            "第三条 《某市服务型制造示范企业认定管理暂行办法》自本办法施行之日起废止。\n")
    parsed = parse_measure(text)
    v = validity_of(Measure("x", "某市办法", {}, {a.number: a for a in parsed.articles}))
    assert v.article == 2
    assert v.start == dt.date(2025, 7, 15) and v.end == dt.date(2030, 12, 31)
