"""Answers a policy question from the knowledge base: city scoping, retrieval, abstention, the reply.

Pure: the date (`as_of`) and the conversation's city come in as arguments; nothing here reads the clock,
the environment or the database.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from knowledge.kb import (KnowledgeBase, Measure, Unit, article_refs, city_measures, current_ids, find_names,
                          levels_named, provinces, successor, to_cn_number)
from knowledge import intents
from knowledge.excerpt import excerpt
from knowledge.textnorm import CJK_RE, normalize, strip_controls

MAX_QUESTION_CHARS = 500
# Abstention: answer only when the best passage is a real match for the question. The thresholds and
# weights below were chosen by grid searches over the question sets that are now example questions;
# tests/test_qa_eval.py says which sets remain tests and what each scored when first seen.
MIN_SCORE = 2.0  # BM25 of the best passage
MIN_COVERAGE = 0.3  # share of the question's meaning the article must contain
MAX_FOREIGN_SHARE = 0.6  # share of the question's meaning in words the measures never use
FOREIGN_INFORMATION = 3.0  # one such word this informative (奖金, 所得税) …
MIN_COVERAGE_WITH_FOREIGN = 0.6  # … needs this much coverage to still answer
ITEM_WEIGHT = 0.85  # an item's match counts a little less than its whole article's
WHOLE_ARTICLE_RATIO = 0.8  # an item whose article scores this close is shown as the whole list
INTENT_BOOST = 1.5  # an article worded the way the question's kind of answer is (lexicon.yaml `intents`)
DEFINITION_BOOST = 2.5  # the article defining the very term a question asks about (服务型制造是…)
REQUIRED_NEAR_TOP = 0.4  # an article holding the demanded fact may answer if this close to the best
OFF_TOPIC_NEXT = 0.6  # an article off the question's topics gives way to the next on one this close (0.5–0.65 alike)
# Example questions (measures/<id>.questions.yaml, near_misses.yaml).
EXAMPLE_WEIGHT = 0.6  # ranking: final += weight × BM25 of the article's best look-alike example question
EXAMPLE_CANDIDATES = 5
EXAMPLE_DEPTH = 40  # the best-matching example questions looked at
STRONG_EXAMPLE = 25.0  # an article whose example scores this much is answered despite low coverage
DECLINE_EXAMPLE_MIN = 16.0  # a near-miss example this close …
DECLINE_EXAMPLE_RATIO = 1.3  # … and this much closer than any answerable one: decline
DECLINE_EXAMPLE_DEPTH = 3  # the closest near-misses looked at for a detail of theirs in the question
LATIN_WEIGHT = 1.0  # a foreign word the measures never use (look into, chatgpt): little, but left uncovered
COVERAGE_FLOOR = 0.25  # re-ranking: final = BM25 × (floor + coverage)
SECOND_CITY_RATIO = 0.75  # a second city is answered alongside when its best match is this close


@dataclass
class Citation:
    measure: str
    article: int
    title: str

    def as_dict(self) -> dict:
        return {"measure": self.measure, "article": self.article, "title": self.title}


@dataclass
class Answer:
    question: str
    city: str | None
    abstained: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    followups: list[str] = field(default_factory=list)
    reason: str | None = None  # why it abstained: empty, too_long, not_chinese, uncovered_city, out_of_scope, no_article
    corrections: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"question": self.question, "city": self.city, "abstained": self.abstained, "answer": self.answer,
                "citations": [c.as_dict() for c in self.citations], "followups": self.followups,
                "reason": self.reason, "corrections": [list(c) for c in self.corrections]}


# ---- places ---------------------------------------------------------------------------------------
def resolve_city(kb: KnowledgeBase, text: str, as_of: dt.date | None = None) -> str | None:
    """The measure id a place name points to (威海, 威海市, 荣成市, weihai), or None: of a city with several
    measures, the one that applies on `as_of` (without a date, the newest); a measure's own id is itself."""
    text = strip_controls(unicodedata.normalize("NFKC", text or "")).lower()
    if not text:
        return None
    if text in kb.measures:
        return text
    ids = kb.places.get(text) or kb.places.get(text.removesuffix("市"))
    if not ids:
        ids = cities_in(kb, text)
    current = current_ids(kb.measures, ids, as_of)
    return current[0] if len(current) == 1 else None  # two cities share the name: not guessed


def place_resolver(kb: KnowledgeBase, measure: str, as_of: dt.date | None):
    """For the rules engine's in_city test: a place of `measure`'s city resolves to `measure` itself, whichever
    of the city's measures applies on the day."""
    def resolve(text: str) -> str | None:
        mid = resolve_city(kb, text, as_of)
        if mid and measure in kb.measures and measure in city_measures(kb.measures, mid):
            return measure
        return mid
    return resolve


OLD_WORDS = ("旧办法", "原办法", "老办法", "之前的办法", "以前的办法", "上一版", "旧版", "原来的办法", "过去的办法")


def explicit_measures(kb: KnowledgeBase, text: str, cities: list[str], as_of: dt.date) -> list[str]:
    """Measures a question names explicitly, where a city has several: by document number, by a title only
    one of them has, by year (2021年版, 2021年的办法), or as 旧办法/原办法 (the one before the one in force)."""
    squeezed = re.sub(r"\s+", "", text)
    found: list[str] = []
    groups = {tuple(city_measures(kb.measures, mid)) for mid in kb.measures}
    for ids in groups:
        if len(ids) < 2:
            continue
        titles = [kb.measures[i].title for i in ids]
        years = [(_year(kb.measures[i])) for i in ids]
        for i, title, year in zip(ids, titles, years):
            m = kb.measures[i]
            number = unicodedata.normalize("NFKC", str(m.meta.get("document_number") or "")).lower().replace(" ", "")
            hit = (number and number in squeezed) or (titles.count(title) == 1 and title in squeezed)
            if not hit and year and years.count(year) == 1:
                hit = any(f"{year}{w}" in squeezed for w in ("年版", "版", "年的办法", "年办法", "年出台", "年发布", "年印发"))
            if hit and i not in found:
                found.append(i)
        if not found and any(w in squeezed for w in OLD_WORDS):
            city_ids = set(current_ids(kb.measures, cities, as_of)) if cities else set()
            current = current_ids(kb.measures, [ids[0]], as_of)[0]
            if current in city_ids or (not cities and len(groups) == 1):
                pos = ids.index(current)
                if pos > 0:
                    found.append(ids[pos - 1])
    return found


def _year(m: Measure) -> int | None:
    d = m.meta.get("in_force_from") or m.meta.get("issued_on")
    return d.year if d else None


def cities_in(kb: KnowledgeBase, text: str) -> list[str]:
    names = sorted(kb.places, key=len, reverse=True)
    ids: list[str] = []
    for name in find_names(names, text):
        for mid in kb.places[name]:
            if mid not in ids:
                ids.append(mid)
    return ids


def _provinces_of(kb: KnowledgeBase) -> list[str]:
    cache = kb.cache.setdefault("_provinces_cache", [])
    if not cache:
        cache.extend(sorted(provinces(kb.measures), key=lambda n: (-len(n), n)))
    return cache


def covered_cities(kb: KnowledgeBase) -> str:
    names = [(m.meta.get("city") or {}).get("name") or m.id for m in kb.measures.values()]
    return "、".join(dict.fromkeys(names))  # a city with several measures is named once


# ---- the answer -----------------------------------------------------------------------------------
def _meaningful(text: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def _status_note(m: Measure, as_of: dt.date, kb: KnowledgeBase | None = None) -> str:
    new = successor(kb.measures, m.id) if kb is not None else None
    if new is not None and (not new.meta.get("in_force_from") or new.meta["in_force_from"] <= as_of):
        since = new.meta.get("in_force_from")
        number = f"（{new.meta['document_number']}）" if new.meta.get("document_number") else ""
        return (f"注：该办法已被{new.citation_title}{number}取代" + (f"（自{since.year}年{since.month}月{since.day}日起施行）" if since else "")
                + "，以上为原办法的规定；现行规定请以新办法为准。")
    status = m.status(as_of)
    if status == "expired":
        end = m.meta["in_force_until"]
        return (f"注：该办法有效期至{end.year}年{end.month}月{end.day}日，已到期，以上为原办法规定。"
                + (m.meta.get("successor_hint") or ""))
    if status == "unknown":
        return "注：" + (m.meta.get("validity_note") or "该办法的有效期无法确定，请向主管部门确认。")
    return ""


def _topic(lexicon: dict, text: str) -> str | None:
    best, hits = None, 0
    for name, topic in (lexicon.get("topics") or {}).items():
        n = sum(text.count(k) for k in topic.get("keywords") or [])
        if n > hits:
            best, hits = name, n
    return best


def _article_topic(kb: KnowledgeBase, measure: str, article: int) -> str | None:
    cache = kb.cache.setdefault("_topic_cache", {})
    key = (measure, article)
    if key not in cache:
        cache[key] = _topic(kb.lexicon, kb.measures[measure].articles[article].text)
    return cache[key]


def followups(kb: KnowledgeBase, m: Measure, article: int) -> list[str]:
    topics = kb.lexicon.get("topics") or {}
    current = _article_topic(kb, m.id, article)
    if not current:
        return []
    covered = {_article_topic(kb, m.id, a) for a in m.articles}
    out = []
    for name in topics[current].get("related") or []:
        if name in covered and name in topics:
            out.append(topics[name]["question"].format(city=m.city_short))
    return out[:2]


def _weight(kb: KnowledgeBase, word: str) -> float:
    """A question word's weight: its information in everyday Chinese, but never more than its IDF in the
    measures (服务型制造示范企业 is rare in Chinese yet stands in most articles: it tells them apart little)."""
    idf = kb.index.idf.get(f"w:{word}")
    if idf is None and not CJK_RE.search(word):
        return LATIN_WEIGHT
    weight = kb.analyzer.information(word)
    return weight if idf is None else min(weight, idf)


def _coverage(kb: KnowledgeBase, content, unit_terms: set[str]) -> float:
    """Share of the question's meaning (information-weighted words) that the passage contains."""
    total = matched = 0.0
    for word, alts in content:
        weight = _weight(kb, word)
        total += weight
        if any(kb.analyzer.contains(unit_terms, w) for w in alts):
            matched += weight
    return matched / total if total else 1.0  # nothing to cover (一年评几次): the intent and score decide


def _abstain(question: str, city: str | None, reason: str, text: str, corrections=()) -> Answer:
    return Answer(question, city, True, text, [], [], reason, list(corrections))


def hint(kb: KnowledgeBase) -> str:
    """An example question naming the first city the base holds (no city is written into the code)."""
    first = next((m.city_short for m in kb.measures.values()), "")
    return f"例如：“{first}申报示范企业需要什么条件？”“更名后多久内要备案？”"


def answer(kb: KnowledgeBase, question: str, as_of: dt.date, city: str | None = None, route: bool = True) -> Answer:
    """Answer one question. `city` is the measure id chosen earlier (CLI --city, the conversation).
    `route`: validity, comparisons and long messages go first to knowledge/conversation.py (which calls back
    with route=False)."""
    if route:
        from knowledge.conversation import routed
        routed_answer = routed(kb, question, as_of, city)
        if routed_answer is not None:
            return routed_answer
    raw = strip_controls(question or "")
    if not _meaningful(raw):
        return _abstain(question, city, "empty", "请输入您想咨询的问题，" + hint(kb))
    if len(raw) > MAX_QUESTION_CHARS:
        return _abstain(question, city, "too_long", f"问题有{len(raw)}字，太长了。请用一两句话（{MAX_QUESTION_CHARS}字以内）描述您的问题，" + hint(kb))
    text = normalize(raw, kb.analyzer.t2s)
    if not CJK_RE.search(text) and not article_refs(text):
        return _abstain(question, city, "not_chinese", "请用中文提问，" + hint(kb))

    q = kb.analyzer.query(raw)
    # a city named, or mistyped (包投 is repaired to 包头 like any domain term)
    named = cities_in(kb, text) or cities_in(kb, " ".join(term for _, term in q.corrections))
    if not named:
        province = next((p for p in _provinces_of(kb) if p in text), None)
        if province and not any(w in text for w in (kb.lexicon.get("other_programmes") or {}).get("basis") or []):
            # a covered city's province named without the city: the province's own programme
            return _abstain(question, None, "uncovered_city",
                            f"抱歉，目前只收录了{covered_cities(kb)}的服务型制造示范企业认定管理办法，"
                            f"不涵盖“{province}”省级（自治区级）的政策，请向省级工业和信息化主管部门咨询。")
    explicit = explicit_measures(kb, text, named or ([city] if city in kb.measures else []), as_of)
    if explicit:  # an old measure asked about by name: answered from it, saying it was replaced
        scope = explicit
    elif named:
        scope = current_ids(kb.measures, named, as_of)
    else:
        others = find_names(kb.other_places, text)
        if others:
            return _abstain(question, None, "uncovered_city",
                            f"抱歉，目前只收录了{covered_cities(kb)}的服务型制造示范企业认定管理办法，"
                            f"暂不涵盖“{others[0]}”的政策，请向当地工业和信息化主管部门咨询。")
        scope = current_ids(kb.measures, [city] if city in kb.measures else list(kb.measures), as_of)
    scope_city = scope[0] if len(scope) == 1 else None

    refs = article_refs(text)
    if refs:
        return _by_reference(kb, question, refs, scope, scope_city, as_of)

    unknown = kb.analyzer.unknown_words(q)
    if intents.other_programme(kb.lexicon, q.text) or intents.other_programme(kb.lexicon, q.expanded) \
            or any(f"{w}企业" in q.text for w in unknown):
        # another programme, or another category of enterprise (高新技术企业): another policy
        return _decline(kb, question, scope_city, q)
    chosen = _select(kb, q, scope, unknown)
    if not chosen:
        if len(scope) == 1 and len(kb.measures) > 1:
            others = [m for m in current_ids(kb.measures, list(kb.measures), as_of)
                      if city_measures(kb.measures, m) != city_measures(kb.measures, scope[0])]
            elsewhere = _select(kb, q, others, unknown)
            if elsewhere:  # the city asked about says nothing on it, another city's measure does
                here, there = kb.measures[scope[0]], kb.measures[elsewhere[0].unit.measure]
                return _abstain(question, scope[0], "out_of_scope",
                                f"{here.citation_title}中没有这方面的规定，建议向{here.meta.get('city', {}).get('authority') or '当地主管部门'}咨询。"
                                f"（供参考：{there.cite(elsewhere[0].unit.article)}对此有规定。）", q.corrections)
        return _decline(kb, question, scope_city, q)
    listing = any(w in q.text for w in kb.lexicon.get("list_words") or [])

    parts, citations, follow = [], [], []
    labelled = len(chosen) > 1
    for c in chosen:
        u = c.unit
        m = kb.measures[u.measure]
        body = excerpt(kb, m, u.article, None if listing else u.para, q.terms, q.text)
        head = f"【{m.city_short}】" if labelled else ""
        lines = [head + body, f"——{m.cite(u.article)}"]
        note = _status_note(m, as_of, kb)
        if note:
            lines.append(note)
        parts.append("\n".join(lines))
        citations.append(Citation(m.id, u.article, m.cite(u.article)))
        follow.extend(f for f in followups(kb, m, u.article) if f not in follow)
    answer_city = chosen[0].unit.measure if len(chosen) == 1 else None
    return Answer(question, answer_city, False, "\n\n".join(parts), citations, follow[:2], None, q.corrections)


def _select(kb: KnowledgeBase, q, scope: list[str], unknown: list[str]) -> list[Candidate]:
    """The articles that answer the question, one per measure, best first; empty when none really does."""
    situational = any(i.situational for i in intents.detect(kb, q.text))
    # a situation's own words (厂里, 废水) neither make the question foreign nor count against coverage
    skip = {w for w, alts in q.content_words if not any(kb.analyzer.contains(kb.analyzer.vocabulary, a) for a in alts)}
    ev = evidence(kb, q, scope)
    # what asks for a definition (定义, 概念) is no part of what is defined: 服务型制造 defined as "是…" covers it
    framing = {p for i in intents.detect(kb, q.text) if i.subject for p in i.plain_patterns}
    skip = (skip if situational else set()) | {w for w, _ in q.content_words if w in framing}
    # words the measures never use where the enterprise introduces itself (我们是东河区一家做机械配件的小厂，…)
    # are context, whatever it asks; its words the measures use (注册, 分公司) still count
    intro = _introduction(kb, q.text)
    skip |= {w for w, alts in q.content_words if w in intro
             and not any(kb.analyzer.contains(kb.analyzer.vocabulary, a) for a in alts)}
    ranked = rank(kb, q, scope, skip=skip, ev=ev)
    if _near_miss_closer(kb, q, ev, ranked[0] if ranked else None):
        return []  # it reads like a question these measures do not answer
    foreign = [] if situational else [kb.analyzer.information(w) for w in _foreign(kb, q, unknown)]
    meaning = sum(_weight(kb, w) for w, _ in q.content_words) or 1.0
    # a question demanding a kind of fact (重新申请, a date …) is answered by the best article holding one,
    # if it ranks near the top
    if ranked and any(i.required for i in intents.detect(kb, q.text)):
        top = ranked[0].final
        ranked = [c for c in ranked if c.final >= REQUIRED_NEAR_TOP * top and not _lacks_required_fact(kb, q.text, c)]
    ranked = _on_topic(kb, q.text, ranked)
    chosen: list[Candidate] = []
    for c in _best_per_measure(ranked):
        if chosen and c.final < chosen[0].final * SECOND_CITY_RATIO:
            break
        vouched = ev.by_article.get((c.unit.measure, c.unit.article), 0.0) >= STRONG_EXAMPLE
        if ((not vouched and not _confident(c, max(foreign, default=0.0), sum(foreign) / meaning))
                or _off_topic(kb, q.text, c)):
            break
        chosen.append(c)
    return chosen


def _near_miss_closer(kb: KnowledgeBase, q, ev: "Evidence", best: "Candidate | None") -> bool:
    """A near-miss example is clearly closer than any answerable one, and what it asks beyond the best
    article is in the question too: a word the article lacks (模板, 含税, 几份), a kind of question it gives
    no answer of (具体指什么, 找谁提), or another level it does not name (国家级). A near-miss that only shares
    what the best article says (申报, 条件, 收入增长) is no reason to decline."""
    if not ev.covered or ev.decline < DECLINE_EXAMPLE_MIN or ev.decline <= ev.best * DECLINE_EXAMPLE_RATIO:
        return False
    if best is None:
        return True
    terms = kb.article_terms(best.unit.measure, best.unit.article)
    article = kb.article_normalized(best.unit.measure, best.unit.article)
    words = [alts for _, alts in q.content_words if not any(kb.analyzer.contains(terms, a) for a in alts)]
    kinds = [id(i) for i in intents.detect(kb, q.text) if not any(intents.has_wording(article, w) for w in i.article_has)]
    levels = {n for n in levels_named(kb.lexicon, kb.measures, q.text) if n not in article}
    for i in ev.near[:DECLINE_EXAMPLE_DEPTH]:
        if ev.scores[i] <= ev.best * DECLINE_EXAMPLE_RATIO or ev.scores[i] < DECLINE_EXAMPLE_MIN:
            continue
        example_terms, example_text = _example(kb, i)
        if (any(kb.analyzer.contains(example_terms, a) for alts in words for a in alts)
                or any(id(k) in kinds for k in intents.detect(kb, example_text))
                or levels & levels_named(kb.lexicon, kb.measures, example_text)):
            return True
    return False


def _example(kb: KnowledgeBase, i: int) -> tuple[set[str], str]:
    """An example question's search terms and its normalised text (cached)."""
    cache = kb.cache.setdefault("_example_cache", {})
    if i not in cache:
        q = kb.analyzer.query(kb.examples.texts[i])
        cache[i] = (set(q.terms), q.text)
    return cache[i]


@dataclass
class Candidate:
    unit: Unit  # the best passage of the article
    score: float  # BM25 of that passage
    coverage: float  # share of the question's meaning that the article contains
    final: float


@dataclass
class Evidence:
    """How the question compares with the example questions (knowledge/measures/<id>.questions.yaml,
    knowledge/near_misses.yaml): BM25 of the best look-alike per article, and of the best one to decline."""
    by_article: dict[tuple[str, int], float]
    best: float
    decline: float
    covered: bool = False  # the measures in scope have example questions of their own
    near: list[int] = field(default_factory=list)  # the closest near-misses to decline, best first
    scores: np.ndarray | None = None  # BM25 of every example


def evidence(kb: KnowledgeBase, q, scope: list[str]) -> Evidence:
    ex = kb.examples
    if ex is None:
        return Evidence({}, 0.0, 0.0)
    scores = ex.scores(q.terms)
    near = _declining(kb, ex, scope, levels_named(kb.lexicon, kb.measures, q.text))
    decline = float(scores[near].max()) if near.any() else 0.0
    closest = [int(i) for i in np.argsort(-np.where(near, scores, 0.0))[:DECLINE_EXAMPLE_DEPTH] if near[i] and scores[i] > 0]
    scoped = np.isin(ex.measure_pos, [kb.measure_ids.index(m) for m in scope])
    in_scope = scoped & (scores > 0)
    hits = np.nonzero(in_scope)[0]
    if len(hits) > EXAMPLE_DEPTH:
        hits = hits[np.argpartition(-scores[hits], EXAMPLE_DEPTH - 1)[:EXAMPLE_DEPTH]]
    by_article: dict[tuple[str, int], float] = {}
    for i in hits:
        label, score = ex.labels[int(i)], float(scores[i])
        if score > by_article.get(label, 0.0):
            by_article[label] = score
    return Evidence(by_article, max(by_article.values(), default=0.0), decline, bool(scoped.any()), closest, scores)


def _declining(kb: KnowledgeBase, ex, scope: list[str], levels: frozenset[str] = frozenset()) -> np.ndarray:
    """Which examples are questions to decline here: those for any measure, and those for measures that
    include every one in scope (a question declined for 包头 is not declined for 威海, nor for both); one
    naming another level or a province (省级…, 山东省…) only for a question naming it too."""
    cache = kb.cache.setdefault("_declining", {})
    key = (tuple(sorted(scope)), levels)
    if key not in cache:
        mask = ex.measure_pos < 0
        for i, measures in ex.decline_only_for.items():
            mask[i] = set(scope) <= measures
        for i, names in ex.decline_only_naming.items():
            mask[i] = mask[i] and bool(names & levels)
        cache[key] = mask
    return cache[key]


def _whole_unit(kb: KnowledgeBase, measure: str, article: int) -> int:
    cache = kb.cache.setdefault("_whole_units", {})
    if not cache:
        cache.update({(u.measure, u.article): i for i, u in enumerate(kb.units) if u.para is None})
    return cache[(measure, article)]


def rank(kb: KnowledgeBase, q, scope: list[str], depth: int = 30, skip: set[str] = frozenset(),
         ev: Evidence | None = None) -> list[Candidate]:
    """Articles in scope, best first: BM25 finds the candidates, coverage of the question (less the words
    in `skip`) re-ranks them, and so does how closely the question resembles what each article answers."""
    ev = ev or Evidence({}, 0.0, 0.0)
    content = [(w, alts) for w, alts in q.content_words if w not in skip]
    scores = kb.index.scores(q.terms)
    if len(scope) < len(kb.measures):
        scores = np.where(kb.measure_mask(scope), scores, 0.0)
    depth = min(depth, len(scores))
    top = np.argpartition(-scores, depth - 1)[:depth] if depth < len(scores) else np.arange(len(scores))
    best: dict[tuple[str, int], tuple[float, Unit]] = {}
    whole: dict[tuple[str, int], tuple[float, Unit]] = {}
    for i in top:
        score = float(scores[i])
        if score <= 0:
            continue
        u = kb.units[int(i)]
        key = (u.measure, u.article)
        if u.para is None:
            whole[key] = (score, u)
        else:
            score *= ITEM_WEIGHT
        if key not in best or score > best[key][0]:
            best[key] = (score, u)
    for key in sorted(ev.by_article, key=lambda k: -ev.by_article[k])[:EXAMPLE_CANDIDATES]:
        if key not in best:  # an article only its look-alike questions found
            i = _whole_unit(kb, *key)
            best[key] = (float(scores[i]), kb.units[i])
    wanted = intents.wordings(kb, q.text)
    defined = _defined_subject(kb, q.text)
    if defined and not any(defined.search(kb.article_normalized(m, a)) for m, a in best):
        defined = None  # no candidate defines it: favour definitions in general
    out = []
    for (mid, art), (score, u) in best.items():
        if u.para is not None and (mid, art) in whole and whole[(mid, art)][0] >= WHOLE_ARTICLE_RATIO * score:
            u = whole[(mid, art)][1]  # the item barely beats its article: the question is about the whole list
        coverage = _coverage(kb, content, kb.article_terms(mid, art))
        final = score * (COVERAGE_FLOOR + coverage)
        article = kb.article_normalized(mid, art)
        if defined is not None:
            if defined.search(article):
                final *= DEFINITION_BOOST
        elif wanted and any(intents.has_wording(article, w) for w in wanted):
            final *= INTENT_BOOST
        final += EXAMPLE_WEIGHT * ev.by_article.get((mid, art), 0.0)
        out.append(Candidate(u, score, coverage, final))
    out.sort(key=lambda c: -c.final)
    return out


def _defined_subject(kb: KnowledgeBase, text: str) -> re.Pattern | None:
    """For a question asking what a term is: a pattern for the sentence defining it ("服务型制造是",
    "所称的服务型制造,是")."""
    if not any(i.subject for i in intents.detect(kb, text)):
        return None
    terms = [t for t in kb.analyzer.domain_terms if t in text]  # longest first
    if not terms:
        return None
    return re.compile(re.escape(normalize(terms[0])) + r"[,，]?(是|指)")


def _lacks_required_fact(kb: KnowledgeBase, text: str, c: Candidate) -> bool:
    """The question demands a kind of fact (an amount, a date …) that the article does not hold."""
    article = kb.article_normalized(c.unit.measure, c.unit.article)
    return any(not any(intents.has_wording(article, w) for w in i.article_has) for i in intents.detect(kb, text) if i.required)


def _foreign(kb: KnowledgeBase, q, unknown: list[str]) -> list[str]:
    """Unknown words that make a question foreign: not those of the enterprise introducing itself, nor
    the words of a kind of question (怎么界定 asks for a definition)."""
    context = _introduction(kb, q.text)
    framing = "".join(p for i in intents.detect(kb, q.text) for p in i.plain_patterns if p in q.text)
    return [w for w in unknown if w not in context and w not in framing]


def _introduction(kb: KnowledgeBase, text: str) -> str:
    """The clauses where the enterprise introduces itself (lexicon.yaml `self_introduction`)."""
    intro = tuple(kb.lexicon.get("self_introduction") or [])
    return "".join(c for c in re.split(r"[,，。;；!！?？\s]", text) if any(m in c for m in intro))


def _off_topic(kb: KnowledgeBase, text: str, c: Candidate) -> bool:
    """The question names topics of the measures (复核, 公示 … from lexicon.yaml `topics`) and the article
    has no keyword of any of them: it would answer another question (公示期几天 → the 30 days of 备案)."""
    asked = _asked(text)
    named = [t.get("keywords") or [] for t in (kb.lexicon.get("topics") or {}).values()
             if any(k in asked for k in t.get("keywords") or [])]
    if not named:
        return False
    article = kb.article_normalized(c.unit.measure, c.unit.article)
    return not any(k in article for keywords in named for k in keywords)


def _asked(text: str) -> str:
    """The question less its background: a clause before the last telling what happened (…了, …被…: 复核不合格被撤了，
    也要等三年才能重新申请吗: the question is about applying again, not about 复核)."""
    clauses = [c for c in re.split(r"[,，。;；!！?？\s]", text) if c]
    return "，".join(c for i, c in enumerate(clauses) if i == len(clauses) - 1 or not any(m in c for m in "了被"))


def _on_topic(kb: KnowledgeBase, text: str, ranked: list[Candidate]) -> list[Candidate]:
    """A measure's best article on none of the topics the question names (每年开展一次 for 每年都要复核吗)
    gives way to its next article on one, if that covers at least as much of the question and ranks
    close; otherwise it stays, and is declined (复核要交哪些材料: neither 申报材料 nor 复核 answers it)."""
    out = ranked
    for top in _best_per_measure(ranked):
        if not _off_topic(kb, text, top):
            continue
        same = [c for c in ranked if c.unit.measure == top.unit.measure]
        after = next((c for c in same if not _off_topic(kb, text, c)), None)
        if after and after.coverage >= top.coverage and after.final >= OFF_TOPIC_NEXT * top.final:
            passed = {id(c) for c in same[:same.index(after)]}
            out = [c for c in out if id(c) not in passed]
    return out


def _best_per_measure(ranked: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for c in ranked:
        if c.unit.measure not in seen:
            seen.add(c.unit.measure)
            out.append(c)
    return out


def _confident(c: Candidate, foreign_max: float, foreign_share: float) -> bool:
    """Answer only a real match: enough score and coverage, and not a question mostly about something else."""
    if c.score < MIN_SCORE or c.coverage < MIN_COVERAGE or foreign_share > MAX_FOREIGN_SHARE:
        return False
    return not (foreign_max >= FOREIGN_INFORMATION and c.coverage < MIN_COVERAGE_WITH_FOREIGN)


def _decline(kb: KnowledgeBase, question: str, city: str | None, q) -> Answer:
    return _abstain(question, city, "out_of_scope",
                    f"抱歉，这个问题不在{covered_cities(kb)}服务型制造示范企业认定管理办法的范围内，我无法回答。"
                    "可以问我申报条件、申报材料、认定程序、复核、撤销、更名备案等问题，" + hint(kb), q.corrections)


def _by_reference(kb: KnowledgeBase, question: str, refs: list[int], scope: list[str], scope_city: str | None,
                  as_of: dt.date) -> Answer:
    parts, citations, missing = [], [], []
    labelled = len(scope) > 1
    for mid in scope:
        m = kb.measures[mid]
        for n in refs[:3]:
            art = m.articles.get(n)
            if art is None:
                missing.append(f"{m.citation_title}共{len(m.articles)}条，没有第{to_cn_number(n)}条。")
                continue
            head = f"【{m.city_short}】" if labelled else ""
            lines = [head + art.text, f"——{m.cite(n)}"]
            note = _status_note(m, as_of, kb)
            if note:
                lines.append(note)
            parts.append("\n".join(lines))
            citations.append(Citation(mid, n, m.cite(n)))
    if not citations:
        return _abstain(question, scope_city, "no_article", "".join(missing))
    text = "\n\n".join(parts + ([" ".join(missing)] if missing and not labelled else []))
    city = citations[0].measure if len({c.measure for c in citations}) == 1 else None
    return Answer(question, city, False, text, citations, [], None)
