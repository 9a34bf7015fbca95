"""Kinds of question (lexicon.yaml `intents`) and questions about other programmes or documents.

An intent is recognised by patterns in the question (多久, 后果, 能不能报 …) and says what wording an article
answering it has (工作日, 撤销其 …); a `required` one means an article without such wording cannot answer.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from knowledge.kb import KnowledgeBase
from knowledge.textnorm import normalize

DOCUMENT_RE = re.compile(r"《[^》]+》|〔\d{4}〕\d+号|\[\d{4}\]\d+号")  # a cited document


@dataclass
class Intent:
    """A kind of question (lexicon.yaml `intents`), its patterns and wordings normalised once."""
    patterns: list
    article_has: list
    plain_patterns: list[str]
    required: bool
    situational: bool
    subject: bool


@functools.lru_cache(maxsize=4096)
def compile_wording(w) -> str | re.Pattern:
    """A lexicon wording: `re:…` a regular expression, else normalised plain text."""
    w = str(w)
    return re.compile(w[3:]) if w.startswith("re:") else normalize(w)


def compiled(kb: KnowledgeBase) -> list[Intent]:
    cache = kb.cache.setdefault("_intents_cache", [])
    if not cache:
        for i in (kb.lexicon.get("intents") or {}).values():
            patterns = i.get("patterns") or []
            cache.append(Intent([compile_wording(p) for p in patterns], [compile_wording(w) for w in i.get("article_has") or []],
                                [normalize(str(p)) for p in patterns if not str(p).startswith("re:")],
                                bool(i.get("required")), bool(i.get("situational")), bool(i.get("subject"))))
    return cache


def has_wording(text: str, wording, analyzer=None) -> bool:
    """A compiled wording: normalised plain text, or a regular expression (`re:\\d+月` in the lexicon).
    With the analyzer, plain text matches on token boundaries only (元 is not in 多元化)."""
    if isinstance(wording, re.Pattern):
        return wording.search(text) is not None
    if analyzer is None:
        return wording in text
    return analyzer.occurs(text, wording)


def detect(kb: KnowledgeBase, text: str) -> list[Intent]:
    """The kinds of answer `text` asks for (remembered: every step of a question asks, and example
    questions are read again and again)."""
    memo = kb.cache.setdefault("_intents_memo", {})
    found = memo.get(text)
    if found is None:
        if len(memo) > 8192:
            memo.clear()
        found = memo[text] = [i for i in compiled(kb) if any(has_wording(text, p, kb.analyzer) for p in i.patterns)]
    return found


def article_has(kb: KnowledgeBase, measure: str, number: int, intent: Intent) -> bool:
    """Is an article worded the way an answer of this kind is (cached)?"""
    memo = kb.cache.setdefault("_article_has", {})
    key = (measure, number, id(intent))
    found = memo.get(key)
    if found is None:
        text = kb.article_normalized(measure, number)
        found = memo[key] = any(has_wording(text, w, kb.analyzer) for w in intent.article_has)
    return found


def wordings(kb: KnowledgeBase, text: str) -> list:
    """The wordings an answer takes for the kinds of question `text` asks."""
    return [w for i in detect(kb, text) for w in i.article_has]


def _names_domain(other: dict, text: str, analyzer=None) -> bool:
    """Does the question name what the measures are about (lexicon other_programmes `domain`), as a word or
    as the head of a compound (示范 in 能报示范企业吗)?"""
    found = (lambda w: analyzer.begins(text, w)) if analyzer is not None else (lambda w: w in text)
    return any(found(str(w)) for w in other.get("domain") or [])


def other_programme(lexicon: dict, text: str, analyzer=None, own: str = "") -> str | None:
    """Another programme or document the question is about (专精特新, 国家级示范, what a cited
    《指南》 contains …), or None. With the analyzer, names match on token boundaries (高企 is not in 提高企业).
    A name the measures in scope use themselves (`own`: their text; a measure that also recognises 示范项目)
    is theirs, not another programme."""
    other = lexicon.get("other_programmes") or {}
    found = (lambda w: analyzer.occurs(text, w)) if analyzer is not None else (lambda w: w in text)
    for name in other.get("names") or []:
        name = str(name)
        # a name the measures use themselves is theirs only in a question about them: 专精特新企业怎么申报
        # asks about that programme even where the measure relaxes a condition for 专精特新 enterprises, while
        # 不是链主企业，能报示范企业吗 does not (a name that is itself of the domain, 示范项目, always is)
        if found(name) and (name not in own or not (_names_domain(other, name, analyzer)
                                                    or _names_domain(other, text.replace(name, " "), analyzer))):
            return name
    if DOCUMENT_RE.search(text) and any(has_wording(text, compile_wording(p)) for p in other.get("document_content") or []):
        return "document"
    if not any(has_wording(text, compile_wording(u)) for u in other.get("unless") or []):
        # a level the measures in scope speak of themselves (对首次获得国家级示范认定的，给予一次性奖励), asked
        # about at the city's own level (市里还奖励吗), is theirs
        local = any(has_wording(text, compile_wording(w)) for w in [*(other.get("local") or []), *(other.get("held") or [])])
        for level in other.get("levels") or []:
            if found(str(level)) and not (local and str(level) in own):
                return level
    return None
