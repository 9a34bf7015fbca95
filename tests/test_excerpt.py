"""Excerpts (knowledge/excerpt.py): whole sentences and items, never a dropped condition, never a dangling "："."""
from __future__ import annotations

import datetime as dt

from knowledge.excerpt import CONDITION_RE, excerpt
from knowledge.qa import answer


def _all(kb):
    for m in kb.measures.values():
        for n, art in m.articles.items():
            yield m, n, art, None
            for i, p in enumerate(art.paragraphs):
                if p.label:
                    yield m, n, art, i


def test_no_excerpt_ends_on_a_colon_or_cuts_a_condition(kb):
    for m, n, art, para in _all(kb):
        text = excerpt(kb, m, n, para, {})
        assert not text.rstrip().endswith(("：", ":")), f"{m.id} {n} {para}: {text}"
        for line in text.splitlines():
            if line.endswith("……"):
                whole = next(p.text for p in art.paragraphs if p.label and line.startswith(p.label))
                rest = whole[len(line) - len("……") - len(next(p.label for p in art.paragraphs
                                                            if p.label and line.startswith(p.label))):]
                assert not CONDITION_RE.search(rest), f"{m.id} {n}: a condition cut from {whole}"


def test_a_sub_item_of_an_any_of_list_keeps_the_lead_the_condition_and_every_branch(kb):
    m = kb.measures["weihai"]
    art = m.articles[12]
    sub = next(i for i, p in enumerate(art.paragraphs) if p.label == "（2）")
    text = excerpt(kb, m, 12, sub, {})
    for needed in ("不少于2个", "以下其中一项", "（1）", "（2）", "（3）", "15%", "10%"):
        assert needed in text, text


def test_a_list_question_gets_the_whole_list(kb):
    a = answer(kb, "申报的话要准备啥", dt.date(2026, 11, 22), "baotou")
    for label in ("（一）", "（二）", "（五）", "（九）"):
        assert label in a.answer, a.answer
    a = answer(kb, "威海申报条件是什么", dt.date(2026, 11, 22))
    assert "不少于2个" in a.answer and "以下其中一项" in a.answer and "……" not in a.answer
