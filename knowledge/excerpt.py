"""Excerpts of an article for an answer: the whole article, or whole sentences and whole items.

An excerpt never drops a condition: an item is never cut, an item or sentence that ends on "：" brings what it
introduces, a sub-item of an "以下其中一项" list brings its siblings, and a question about the list itself (申报要准备啥)
gets the whole list. Pure: the knowledge base and the question's terms come in as arguments.
"""
from __future__ import annotations

import re

from knowledge.kb import KnowledgeBase, Measure
from knowledge.textnorm import normalize

WHOLE_CHARS = 400  # an article this short is shown whole
LONG_LIST_CHARS = 600  # a list longer than this shows each descriptive item by its first sentence
SECOND_BLOCK_RATIO = 0.6  # a second passage is shown when it matches this close to the best
CONDITION_RE = re.compile(r"\d|[一二两三四五六七八九十百]+[个年项%]|应当|应为|应具|应在|须|必须|不得|不少于|不低于|以上|以下|以内|满足|其中一项|之一|任一|条件")
ANY_OF_RE = re.compile(r"其中一项|其中之一|之一|任一|任意一")


def excerpt(kb: KnowledgeBase, m: Measure, article: int, para: int | None = None,
            terms: dict[str, float] | None = None, question: str = "") -> str:
    """The passage of `article` that answers: `para` is the best matching item (None: the article)."""
    art = m.articles[article]
    ps = art.paragraphs
    wanted = {t[2:] for t in (terms or {}) if t.startswith("w:")}
    norm = (lambda s: normalize(s, kb.analyzer.t2s)) if kb is not None else (lambda s: s)
    if para is not None and ps[para].label:
        block = _block_of(ps, para)
        lead = ps[block[0]] if not ps[block[0]].label else None
        if lead is not None and lead.text.endswith("：") and not _item_specific(norm, wanted, lead.text, ps[para].text):
            return _render(ps, block, len(art.text) > LONG_LIST_CHARS)  # the question is about the list
        return _render(ps, _item_with_context(ps, para, block), False)
    if len(art.text) <= WHOLE_CHARS:
        return art.text
    blocks = _blocks(ps)
    scored = []
    for i, b in enumerate(blocks):
        text = norm("".join(ps[j].text for j in b))
        scored.append((sum(kb.index.idf.get(f"w:{w}", 0.0) for w in wanted if w in text) if kb else 0.0, -i, i))
    best = sorted(scored, reverse=True)
    chosen = {best[0][2]}
    if len(best) > 1 and best[1][0] > 0 and best[1][0] >= SECOND_BLOCK_RATIO * best[0][0]:
        chosen.add(best[1][2])
    parts = []
    for i in sorted(chosen):
        b = blocks[i]
        if len(b) == 1 and not ps[b[0]].label and len(ps[b[0]].text) > WHOLE_CHARS:
            parts.append(_sentences_of(norm, wanted, ps[b[0]].text))
        else:
            parts.append(_render(ps, b, sum(len(ps[j].text) for j in b) > LONG_LIST_CHARS))
    return "\n".join(parts)


def _blocks(ps) -> list[list[int]]:
    """Paragraph indices grouped: an unlabelled paragraph and the items that follow it."""
    blocks: list[list[int]] = []
    for i, p in enumerate(ps):
        if not p.label or not blocks:
            blocks.append([i])
        else:
            blocks[-1].append(i)
    return blocks


def _block_of(ps, para: int) -> list[int]:
    return next(b for b in _blocks(ps) if para in b)


def _item_specific(norm, wanted: set[str], lead: str, item: str) -> bool:
    """The question names something of this item that its list's lead does not say."""
    lead_n, item_n = norm(lead), norm(item)
    return any(w in item_n and w not in lead_n for w in wanted)


def _item_with_context(ps, para: int, block: list[int]) -> list[int]:
    """The item with its list's lead, its parent item, its siblings under an "以下其中一项", and the sub-items
    it introduces when it ends on "："."""
    keep = {para}
    if not ps[block[0]].label:
        keep.add(block[0])
    p = ps[para]
    if p.level >= 2:
        parent = next((j for j in reversed(block) if j < para and ps[j].level < p.level), None)
        if parent is not None:
            keep.add(parent)
            if ANY_OF_RE.search(ps[parent].text) or ps[parent].text.endswith("："):
                keep.update(_children(ps, block, parent))
    if p.text.endswith("："):
        keep.update(_children(ps, block, para))
    return sorted(keep)


def _children(ps, block: list[int], parent: int) -> list[int]:
    out = []
    for j in block:
        if j <= parent:
            continue
        if ps[j].level <= ps[parent].level:
            break
        out.append(j)
    return out


def _render(ps, indices: list[int], shorten: bool) -> str:
    lines = []
    for j in indices:
        p = ps[j]
        text = _first_sentence(p.text) if shorten and p.label else p.text
        lines.append(f"{p.label or ''}{text}")
    return "\n".join(lines)


def _first_sentence(text: str) -> str:
    """A descriptive item by its first sentence; an item holding a condition or a number stays whole."""
    m = re.match(r"(.+?[。；])(.+)$", text, re.S)
    if not m or CONDITION_RE.search(m.group(2)) or m.group(1).endswith("："):
        return text
    return m.group(1) + "……"


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[。；！？])", text) if s.strip()]


def _sentences_of(norm, wanted: set[str], text: str) -> str:
    """The best matching whole sentences of a long paragraph, in order; one ending on "：" brings the next."""
    sents = _sentences(text)
    hits = [sum(1 for w in wanted if w in norm(s)) for s in sents]
    top = max(hits, default=0)
    keep = [i for i, h in enumerate(hits) if h and h >= SECOND_BLOCK_RATIO * top] or [0]
    out = set(keep)
    for i in keep:
        j = i
        while sents[j].rstrip().endswith("：") and j + 1 < len(sents):
            j += 1
            out.add(j)
    return "".join(sents[i] for i in sorted(out))
