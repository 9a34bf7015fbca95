"""Deadline rules read from a measure's own articles: the filing period after a change, the re-review
cycle and the validity of the title, each with the article it comes from.

Used for a measure that rules/deadlines.yaml does not (yet) hold, so that an imported measure has its own
deadlines with no hand editing; rules/deadlines.yaml, where it has an entry, is the reviewed version and wins.
Pure text reading; nothing here knows a city.
"""
from __future__ import annotations

import re

from knowledge.numerals import NUMERAL_CHARS, cn_to_int

_N = rf"([{NUMERAL_CHARS}\d]+)"
CHANGE_WORDS = ("更名", "名称变更", "重组", "变更名称", "名称发生变化")
FILING_RE = re.compile(rf"{_N}\s*个?\s*(工作日|自然日|日|天)(?:以)?内")
REVIEW_WORDS = r"(?:复核|复审|复评|运行评价|考核评价|绩效评价|评价|考核|评估)"
# 每两年组织一次复核, 实行每三年复核制度, 每年开展一次运行评价 (每年: every year), 三年复核一次
REVIEW_RE = re.compile(rf"每\s*([{NUMERAL_CHARS}\d]+)?\s*年[^。；]{{0,20}}?{REVIEW_WORDS}|{_N}\s*年\s*(?:组织)?(?:一次|一)?(?:抽查)?复核一次")
NO_REVIEW_RE = re.compile(r"(?:不再|不)(?:组织|进行|开展)[^。；]{0,6}复核")
TITLE_RE = re.compile(rf"(?:称号|资格|认定|示范)[^。；]{{0,8}}有效期(?:为|是)?\s*{_N}\s*年")


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。；\n])", text) if s.strip()]


def _short(sentence: str) -> str:
    return sentence.strip().rstrip("。；\n").strip()


def read_filing(articles: list[tuple[int, str]]) -> dict | None:
    """{days, unit (working_days | days), article, text} of 更名、重组 … 应在N个工作日内 … 备案/报告."""
    for number, text in articles:
        for sentence in _sentences(text):
            if not any(w in sentence for w in CHANGE_WORDS):
                continue
            m = FILING_RE.search(sentence, min(sentence.find(w) for w in CHANGE_WORDS if w in sentence))
            if m and re.search("备案|报告|报备|报送|报市|书面", sentence[m.end():] or sentence):
                days = cn_to_int(m.group(1))
                if not days:
                    continue
                unit = "working_days" if m.group(2) == "工作日" else "days"
                return {"days": days, "unit": unit, "article": number, "text": _short(sentence)}
    return None


def read_review(articles: list[tuple[int, str]]) -> dict:
    """{interval_years, article, text[, consequence]}; interval_years None where the measure sets none
    (with `says`: what it says instead, where it says something)."""
    for number, text in articles:
        for sentence in _sentences(text):
            m = REVIEW_RE.search(sentence)
            if m:
                years = cn_to_int(m.group(1) or m.group(2) or "一")  # 每年: every year
                if years:
                    rule = {"interval_years": years, "article": number, "text": _short(sentence)}
                    consequence = _consequence(articles, number)
                    if consequence:
                        rule["consequence"] = consequence
                    return rule
    for number, text in articles:
        for sentence in _sentences(text):
            if NO_REVIEW_RE.search(sentence):
                return {"interval_years": None, "article": None, "says": [{"article": number, "text": _short(sentence)}]}
    return {"interval_years": None, "article": None, "says": []}


def _consequence(articles: list[tuple[int, str]], review_article: int) -> dict | None:
    for number, text in articles:
        if "撤销" not in text or "复核" not in text or number == review_article and "撤销" not in text:
            continue
        if "之一的" in text:  # 有下列情况之一的，撤销其称号：（一）… 复核的；
            items = [_short(s).lstrip("（）()一二三四五六七八九十0123456789.、") for s in _sentences(text)
                     if "复核" in s and "每" not in s]
            if items:
                return {"article": number, "text": "有下列情形之一的，撤销示范称号：" + "；".join(items)}
        items = [_short(s) for s in _sentences(text) if "复核" in s and ("撤销" in s or "视为" in s)]
        if items:
            return {"article": number, "text": "；".join(items)}
    return None


def read_title_validity(articles: list[tuple[int, str]]) -> dict | None:
    """{years, article, text} of 示范称号有效期为N年."""
    for number, text in articles:
        for sentence in _sentences(text):
            m = TITLE_RE.search(sentence)
            if m and "本办法" not in sentence[: m.start()]:
                years = cn_to_int(m.group(1))
                if years:
                    return {"years": years, "article": number, "text": _short(sentence)}
    return None


def read_deadlines(articles: list[tuple[int, str]]) -> dict:
    """The three rules of a measure's articles (as (number, text) pairs), for rules/deadlines.yaml."""
    return {"filing": read_filing(articles), "review": read_review(articles),
            "title_validity": read_title_validity(articles)}


def measure_articles(measure) -> list[tuple[int, str]]:
    return [(n, a.text) for n, a in sorted(measure.articles.items())]
