"""The words of conversation (knowledge/dialogue.yaml) and small helpers on them, shared by conversation.py,
compare.py and validity.py. Nothing here names a city: places come from the knowledge base."""
from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

from knowledge.kb import KnowledgeBase, current_ids, find_names
from knowledge.textnorm import normalize

PATH = Path(__file__).resolve().parent / "dialogue.yaml"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a mapping with the same key twice (a silent overwrite hides a mistake)."""


def _unique_mapping(loader, node, deep=False):
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


@functools.lru_cache(maxsize=1)
def words() -> dict:
    """dialogue.yaml, every word normalised as questions are (两个城市 → 2个城市)."""
    return _normalised(yaml.load(PATH.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {})  # noqa: S506


def _normalised(value):
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return normalize(value) if isinstance(value, str) else value


def norm(kb: KnowledgeBase, text: str) -> str:
    return normalize(text or "", kb.analyzer.t2s)


def places_named(kb: KnowledgeBase, text: str) -> list[str]:
    """The covered places named in normalised text (威海, 荣成市, 稀土高新区 …), longest first as found."""
    names = kb.cache.get("_dialogue_place_names")
    if names is None:
        names = kb.cache["_dialogue_place_names"] = sorted(kb.places, key=len, reverse=True)
    return find_names(names, text)


def cities_named(kb: KnowledgeBase, text: str) -> list[str]:
    """The cities a text names, one measure id each (of a city with several measures, the newest: the
    answer maps it to the one in force on the date)."""
    ids: list[str] = []
    for name in places_named(kb, text):
        for mid in kb.places[name]:
            if mid not in ids:
                ids.append(mid)
    return current_ids(kb.measures, ids, None)


def without_places(kb: KnowledgeBase, text: str) -> str:
    """Text less the covered places named in it, and the joiners between them (威海和包头 → '')."""
    joiners = sorted(words().get("compare_joiners") or [], key=len, reverse=True)
    out = text
    for name in places_named(kb, text):
        alt = "|".join(re.escape(j) for j in joiners)
        out = re.sub(rf"(?:{alt})?{re.escape(name)}(?:市)?(?:{alt})?" if alt else re.escape(name), "", out)
    return out


def remove_all(text: str, phrases) -> str:
    for p in sorted(phrases or [], key=len, reverse=True):
        text = text.replace(p, "")
    return text


def bare(text: str) -> str:
    """Only letters and digits: punctuation and spaces dropped."""
    return re.sub(r"[^\w]", "", text)


def asks(text: str) -> bool:
    """Does a sentence or clause ask something (？, 吗, 什么, 几 …, not 这几年 or 十几个)?"""
    if "?" in text or "？" in text:
        return True
    plain = remove_all(text, words().get("question_markers_not"))
    return any(mk in plain for mk in words().get("question_markers") or [])


def topic_asked(text: str) -> str | None:
    """The topic (lexicon.yaml `topics` name) a question names in its own words: the one named most, and of
    those the one named last (材料有虚假，会有什么后果，以后还能再申报吗: what it asks comes last)."""
    best, key = None, (0, -1)
    for name, topic in (words().get("topics") or {}).items():
        found = [text.rfind(a) for a in topic.get("asks") or [] if a in text]
        if found and (len(found), max(found)) > key:
            best, key = name, (len(found), max(found))
    return best


def topic_of_article(kb: KnowledgeBase, measure: str, article: int) -> str | None:
    """The topic an article is on, by lexicon.yaml `topics` keywords."""
    cache = kb.cache.setdefault("_dialogue_article_topic", {})
    key = (measure, article)
    if key not in cache:
        art = kb.article(measure, article)
        best, hits = None, 0
        if art is not None:
            for name, topic in (kb.lexicon.get("topics") or {}).items():
                n = sum(art.text.count(k) for k in topic.get("keywords") or [])
                if n > hits:
                    best, hits = name, n
        cache[key] = best
    return cache[key]


def subject(topic: str | None) -> str:
    return ((words().get("topics") or {}).get(topic) or {}).get("subject") or ""


def city_label(kb: KnowledgeBase, mid: str) -> str:
    return kb.measures[mid].city_short


def traced(answer, reason: str | None, trace: str):
    """Say what decided an answer: `reason` (kept when it says why it declined) and a short `trace`, where the
    Answer has one (knowledge.qa's `trace` field)."""
    if reason and not answer.abstained:
        answer.reason = reason
    if "trace" in getattr(type(answer), "__dataclass_fields__", {}):
        before = getattr(answer, "trace", "") or ""
        answer.trace = (trace + ("; " + before if before else ""))[:300]
    return answer
