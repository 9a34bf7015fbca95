"""Direct answers from the enterprise's own facts: what follows for it, before the article.

A question carrying figures or dates the rules know (服务收入占比12%，能报吗; 11月2日办完更名，什么时候之前要备案)
is answered first with the computed outcome: which condition is met or not and by how much, what could still
qualify it (the any-of branches), the deadline or review date. Facts are found by rules/facts.py, outcomes
computed by rules/engine.py and rules/deadlines.py; this module only composes the reply.
"""
from __future__ import annotations

import re

from knowledge.kb import KnowledgeBase
from knowledge.qa import resolve_city

PLACE_SUFFIX_RE = re.compile(r"(省|市|区|县|旗|盟|州|镇|乡|开发区|高新区|园区|新区)$")


def looks_like_place(kb: KnowledgeBase, text: str) -> bool:
    return bool(PLACE_SUFFIX_RE.search(text)) or any(p in text for p in kb.other_places)


def place_of(kb: KnowledgeBase):
    """text → a measure id, 'other' (a real place no measure covers) or None (not a place)."""
    def where(text: str) -> str | None:
        city = resolve_city(kb, text)
        if city:
            return city
        return "other" if looks_like_place(kb, text) else None
    return where
