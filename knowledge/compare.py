"""Comparisons: a question about two or more cities (威海和包头…有什么不同, 两地…, 哪个城市更宽松, 分别, 都要…吗)
gets each city's answer, labelled, side by side, every one cited.

What is compared is the question less its places and its wording of comparing; each city's answer is sought in
that city's measure alone (knowledge.qa.answer, not re-ranked here). A city whose measure is silent says so.
"""
from __future__ import annotations

import datetime as dt

from knowledge import dialogue
from knowledge.kb import KnowledgeBase, current_ids
from knowledge.qa import Answer, answer as qa_answer


def is_comparison(kb: KnowledgeBase, text: str) -> bool:
    """Normalised `text` asks about several covered cities: it names two or more, or says 两地, 哪个城市 …"""
    if len(current_ids(kb.measures, list(kb.measures), None)) < 2:  # cities, not measures
        return False
    if len(dialogue.cities_named(kb, text)) >= 2:
        return True
    return any(mk in text for mk in dialogue.words().get("compare_markers") or [])


def subject_of(kb: KnowledgeBase, text: str) -> str:
    """What is compared: the question less the places and the wording of comparing (两地的申报材料有什么区别 →
    申报材料); '' when nothing is left (哪个城市更宽松)."""
    w = dialogue.words()
    rest = dialogue.without_places(kb, text)
    rest = dialogue.remove_all(rest, w.get("compare_words"))
    if len(dialogue.bare(dialogue.remove_all(rest, w.get("fillers")))) < 2:
        return ""
    if not any(mk in rest for mk in w.get("question_markers") or []):
        rest = rest.strip("，,。?？的") + (w.get("compare_frame") or "")
    return rest


def answer(kb: KnowledgeBase, question: str, query: str, scope: list[str], as_of: dt.date) -> Answer:
    """Each measure's answer to `query` (already free of places), labelled; the citations of all."""
    blocks, citations, silent, followups, reasons = [], [], [], [], []
    corrections = []
    for mid in scope:
        m = kb.measures[mid]
        a = qa_answer(kb, query, as_of, mid, route=False)
        for c in a.corrections:
            if c not in corrections:
                corrections.append(c)
        if a.abstained or not a.citations:
            silent.append(mid)
            reasons.append(a.reason)
            blocks.append(f"【{m.city_short}】{m.citation_title}中没有这方面的规定。")
            continue
        blocks.append(f"【{m.city_short}】{a.answer}")
        citations.extend(a.citations)
        followups.extend(f for f in a.followups if f not in followups)
    if not citations:
        none = Answer(question=question, city=None, abstained=True,
                      answer="抱歉，" + "、".join(kb.measures[mid].citation_title for mid in scope)
                      + "中都没有找到这方面的规定，我无法比较。可以问我申报条件、申报材料、认定程序、复核、撤销、更名备案等方面的异同。",
                      citations=[], followups=[], reason=reasons[0] if reasons else "out_of_scope",
                      corrections=corrections)
        dialogue.traced(none, None, f"comparison of {query!r}: every measure silent")
        return none
    names = "、".join(kb.measures[mid].city_short for mid in scope)
    if silent:
        said = "、".join(kb.measures[mid].city_short for mid in scope if mid not in silent)
        lead = f"只有{said}的办法对此有规定，" + "、".join(kb.measures[mid].city_short for mid in silent) + "的办法没有。"
    else:
        lead = f"{names}的办法都有规定，分别如下："
    a = Answer(question=question, city=None, abstained=False, answer=lead + "\n\n" + "\n\n".join(blocks),
               citations=citations, followups=followups[:2], reason="comparison", corrections=corrections)
    return dialogue.traced(a, "comparison", f"comparison of {query!r} in " + ", ".join(scope)
                           + (f"; silent: {', '.join(silent)}" if silent else ""))
