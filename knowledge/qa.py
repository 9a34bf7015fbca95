"""Answers a policy question from the knowledge base: city scoping, retrieval, abstention, the reply.

Pure: the date (`as_of`) and the conversation's city come in as arguments; nothing here reads the clock,
the environment or the database.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.kb import (KnowledgeBase, Measure, Unit, article_refs, city_measures, current_ids, find_names,
                          levels_named, provinces, successor, to_cn_number)
from knowledge import dialogue, intents, ranker, yamlio
from knowledge.excerpt import excerpt
from knowledge.textnorm import CJK_RE, normalize, strip_controls

MAX_QUESTION_CHARS = 500
# Every tuned value is declared, with how it was chosen, in knowledge/pipeline.yaml; the ranker's and the
# decision's coefficients and the answer threshold are learned at build time (knowledge/ranker.py).
_PIPELINE = yamlio.pipeline()
P = _PIPELINE["ranker"]
A = _PIPELINE["answer"]
LATIN_WEIGHT = P["latin_weight"]


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
    # what decided it: why it abstained (empty, too_long, not_chinese, uncovered_city, other_programme,
    # out_of_scope …) or why it answered (ranked, by_reference …)
    reason: str | None = None
    corrections: list[tuple[str, str]] = field(default_factory=list)
    trace: str = ""  # the evidence, short (the top candidates and their scores)
    ranking: list[str] = field(default_factory=list)  # measure:article of the best candidates, declined or not
    confidence: float | None = None  # the decision's probability that the first cited article answers (ranked)

    def as_dict(self) -> dict:
        return {"question": self.question, "city": self.city, "abstained": self.abstained, "answer": self.answer,
                "citations": [c.as_dict() for c in self.citations], "followups": self.followups,
                "reason": self.reason, "trace": self.trace, "corrections": [list(c) for c in self.corrections]}


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


def place_names(kb: KnowledgeBase, names, text: str) -> list[str]:
    """Place names found in text (longest first, each span once), where a word starts: 威海市 and 济南高新区
    name a place, 提高 does not name 高… (the name must begin at a token boundary of the text)."""
    found = find_names(names, text)
    if not found:
        return found
    cuts = kb.analyzer.bounds(text)
    out = []
    for name in found:
        start = text.find(name)
        while start >= 0 and start not in cuts:
            start = text.find(name, start + 1)
        if start >= 0:
            out.append(name)
    return out


def cities_in(kb: KnowledgeBase, text: str) -> list[str]:
    names = kb.cache.get("_place_order")
    if names is None:
        names = kb.cache["_place_order"] = sorted(kb.places, key=len, reverse=True)
    ids: list[str] = []
    for name in place_names(kb, names, text):
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


def _lead(text: str) -> str:
    """An article's lead: its first sentence, up to the list it may introduce (有下列情形之一的，撤销其称号：)."""
    first, *rest = re.split(r"(?<=[。：:；;\n])", text, maxsplit=1)
    if len(first) < 20 and rest:  # 市工业和信息化局每年发布申报指南。申报单位…提交申报材料：
        first += re.split(r"(?<=[。：:；;\n])", rest[0], maxsplit=1)[0]
    return first


def _article_topic(kb: KnowledgeBase, measure: str, article: int) -> str | None:
    """The role an article plays in its measure (lexicon.yaml `topics`): the first topic whose `lead` wording
    stands in the article's lead sentence (what the article is about, in the way any measure of this kind
    opens such an article), else the topic whose keywords the article names most."""
    cache = kb.cache.setdefault("_topic_cache", {})
    key = (measure, article)
    if key not in cache:
        cache[key] = article_role(kb.lexicon, kb.article_normalized(measure, article),
                                  kb.measure(measure).articles[article].text)
    return cache[key]


def article_role(lexicon: dict, normalized: str, text: str | None = None) -> str | None:
    """The topic of an article (its normalised text; `text` as written, for the keyword count)."""
    lead = _lead(normalized)
    for name, topic in (lexicon.get("topics") or {}).items():
        if any(intents.has_wording(lead, intents.compile_wording(w)) for w in topic.get("lead") or []):
            return name
    return _topic(lexicon, normalized if text is None else text)


def followups(kb: KnowledgeBase, m: Measure, article: int) -> list[str]:
    topics = kb.lexicon.get("topics") or {}
    current = _article_topic(kb, m.id, article)
    if not current:
        return []
    covered = {_article_topic(kb, m.id, a) for a in m.articles}
    out = []
    for name in topics[current].get("related") or []:
        if name in covered and name in topics and topics[name].get("question"):
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


def _abstain(question: str, city: str | None, reason: str, text: str, corrections=(), trace: str = "") -> Answer:
    return Answer(question, city, True, text, [], [], reason, list(corrections), trace or reason)


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

    # a long message is read for what it asks (its question sentences), not the enterprise's story; the
    # city may be named anywhere in it
    q = kb.analyzer.query(focus(kb, raw))
    # a city named, or mistyped (包投 is repaired to 包头 like any domain term)
    named = cities_in(kb, text) or cities_in(kb, " ".join(term for _, term in q.corrections))
    if not named:
        province = next(iter(place_names(kb, _provinces_of(kb), text)), None)
        if province and not any(w in text for w in (kb.lexicon.get("other_programmes") or {}).get("basis") or []):
            # a covered city's province named without the city: the province's own programme
            return _abstain(question, None, "uncovered_city",
                            f"抱歉，目前只收录了{covered_cities(kb)}的服务型制造示范企业认定管理办法，"
                            f"不涵盖“{province}”省级（自治区级）的政策，请向省级工业和信息化主管部门咨询。",
                            trace=f"province named without a covered city: {province}")
    explicit = explicit_measures(kb, text, named or ([city] if city in kb.measures else []), as_of)
    if explicit:  # an old measure asked about by name: answered from it, saying it was replaced
        scope = explicit
    elif named:
        scope = current_ids(kb.measures, named, as_of)
    else:
        others = place_names(kb, kb.other_places, text)
        if others:
            return _abstain(question, None, "uncovered_city",
                            f"抱歉，目前只收录了{covered_cities(kb)}的服务型制造示范企业认定管理办法，"
                            f"暂不涵盖“{others[0]}”的政策，请向当地工业和信息化主管部门咨询。",
                            trace=f"uncovered place named: {others[0]}")
        scope = current_ids(kb.measures, [city] if city in kb.measures else list(kb.measures), as_of)
    scope_city = scope[0] if len(scope) == 1 else None

    refs = article_refs(text)
    if refs:
        return _by_reference(kb, question, refs, scope, scope_city, as_of)

    unknown = kb.analyzer.unknown_words(q)
    # the enterprise saying what it is (我们是一家数控机床企业) asks about no other category of enterprise
    asked = _without_introduction(kb, q.text)
    own = _scope_text(kb, scope)
    other = (intents.other_programme(kb.lexicon, q.text, kb.analyzer, own)
             or intents.other_programme(kb.lexicon, q.expanded, kb.analyzer, own)
             or next((f"{w}企业" for w in unknown if kb.analyzer.occurs(asked, f"{w}企业")), None))
    if other:  # another programme, or another category of enterprise (高新技术企业): another policy
        return _decline(kb, question, scope_city, q, "other_programme", f"names another programme: {other}")
    info: dict = {}
    chosen = _select(kb, q, scope, unknown, info)
    if not chosen:
        if len(scope) == 1 and len(kb.measures) > 1:
            others = [m for m in current_ids(kb.measures, list(kb.measures), as_of)
                      if city_measures(kb.measures, m) != city_measures(kb.measures, scope[0])]
            elsewhere = _select(kb, q, others, unknown)
            # in domain as in training: a measure with examples of its own answers it confidently
            taught = [m for m in others if m in taught_elsewhere(kb, scope[0])]
            confident = (elsewhere if taught == others else _select(kb, q, taught, unknown)) if taught else []
            top = info.get("top")
            if confident and top is not None and top.p >= ranker.model_of(kb).threshold_in_domain(top):
                # another city's measure answers it confidently: the question is of the domain, and the
                # best article here passes the threshold fitted for that state (knowledge/ranker.py)
                chosen = [top]
                info["decided"] = "in_domain:" + confident[0].unit.measure
                info["trace"] = (f"in domain ({confident[0].unit.measure}:{confident[0].unit.article} confident), "
                                 f"threshold {ranker.model_of(kb).threshold_in_domain(top):.2f}; " + info.get("trace", ""))
            elif elsewhere:  # the city asked about says nothing on it, another city's measure does
                here, there = kb.measures[scope[0]], kb.measures[elsewhere[0].unit.measure]
                a = _abstain(question, scope[0], "other_city_only",
                             f"{here.citation_title}中没有这方面的规定，建议向{here.meta.get('city', {}).get('authority') or '当地主管部门'}咨询。"
                             f"（供参考：{there.cite(elsewhere[0].unit.article)}对此有规定。）", q.corrections)
                a.trace = f"{scope[0]}: {info.get('trace', '')}; {there.id} answers: {elsewhere[0].unit.article}"
                a.ranking = info.get("ranking", [])
                return a
    if not chosen:
        a = _decline(kb, question, scope_city, q, info.get("why", "not_confident"), info.get("trace", ""))
        a.ranking = info.get("ranking", [])
        return a
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
    return Answer(question, answer_city, False, "\n\n".join(parts), citations, follow[:2], info.get("decided", "ranked"),
                  q.corrections, info.get("trace", ""), info.get("ranking", []), chosen[0].p)


# ---- candidates and their features ----------------------------------------------------------------
# What the ranker sees of a (question, article) pair: nothing names a measure or an article, so what it
# learns on one measure's example questions carries over to another's articles.
RANK_FEATURES = (
    "s_rel",  # BM25 of the article's best passage, over the best in the question's scope
    "s_log",  # log(1 + that BM25)
    "coverage",  # share of the question's meaning (information-weighted words) the article contains
    "coverage_gap",  # coverage less the best coverage among the candidates
    "intent",  # the question asks a kind of answer (lexicon `intents`) worded the way this article is
    "lacks_required",  # it demands a kind of fact (an amount, a date …) the article does not hold
    "defines",  # the article defines the very term the question asks about
    "off_topic",  # the question names topics (lexicon `topics`) and the article has none of them
    "ex_article",  # log(1 + BM25 of this article's best look-alike example question): 0 for an unseen measure
    "ex_article_rel",  # that, over the best of any candidate
    "ex_topic",  # log(1 + BM25 of the best example question of ANY measure about this article's topic)
    "ex_topic_rel",  # that, over the best topic
    "is_item",  # the best passage is one item of the article
    "bm25_rank",  # 1 / (1 + rank of the article by BM25)
    "near_miss_detail",  # a near-miss closer than any answerable example asks something this article lacks
    "s_rel_x_coverage",  # relative BM25 times coverage: a strong match of what the question means
    "ex_rel_x_coverage",  # the same for the article's look-alike example questions
    "ex_analog",  # log(1 + best example BM25 of the most similar articles of OTHER measures × their similarity)
    "ex_analog_rel",  # that, over the best of any candidate
    "lead_coverage",  # share of the question's meaning in the article's chapter title and lead sentence
    "lead_gap",  # that less the best among the candidates
)
RF = {name: i for i, name in enumerate(RANK_FEATURES)}


@dataclass
class Candidate:
    unit: Unit  # the best passage of the article
    score: float  # BM25 of that passage
    coverage: float  # share of the question's meaning that the article contains
    x: np.ndarray  # its features (RANK_FEATURES)
    r: float = 0.0  # the ranker's score (a logit)
    p: float = 0.0  # for the best of a measure: the probability that it answers the question
    d: np.ndarray | None = None  # for the best of a measure: its decision features (knowledge/ranker.py)
    regime: str = "unseen"  # its measure's own example questions known ("seen") or not


@dataclass
class Evidence:
    """How the question compares with the example questions (knowledge/measures/<id>.questions.yaml,
    knowledge/near_misses.yaml): BM25 of the best look-alike per article and per topic, and of the best
    one to decline."""
    by_article: dict[tuple[str, int], float]
    best: float
    decline: float
    covered: bool = False  # the measures in scope have example questions of their own
    near: list[int] = field(default_factory=list)  # the closest near-misses to decline, best first
    scores: np.ndarray | None = None  # BM25 of every example
    by_topic: dict[int, float] = field(default_factory=dict)  # topic position -> best example of any measure
    seen: frozenset = frozenset()  # the measures in scope with example questions of their own
    by_article_any: dict[tuple[str, int], float] = field(default_factory=dict)  # as by_article, any measure


@dataclass
class Analysis:
    """A question read against the measures in scope: candidates with features, and what holds for the
    whole question."""
    candidates: list[Candidate]
    ev: Evidence
    foreign_share: float  # share of its meaning in words the measures never use
    foreign_max: float  # information of the most informative such word
    situational: bool  # "given our situation, can we …": the situation's own words need not be covered
    n_content: int
    # a measure without examples of its own, asked about alone: how confidently the other cities' measures
    # with examples answer the same question (their best p less its threshold; -1 when none is read), and
    # how similar each candidate (position) is to that answer's article (cosine of IDF-weighted terms)
    elsewhere_margin: float = -1.0
    elsewhere_sim: dict = field(default_factory=dict)
    # and whether each candidate plays the same role in its measure as that answer in its own (lexicon.yaml
    # `topics`): +1 the same topic, -1 another, 0 unknown
    elsewhere_topic: dict = field(default_factory=dict)


def _topic_names(kb: KnowledgeBase) -> list[str]:
    return list((kb.lexicon.get("topics") or {}))


def _example_topics(kb: KnowledgeBase) -> np.ndarray:
    """The topic (position in lexicon `topics`) of each example question's article; -1 for a near-miss."""
    cache = kb.cache.get("_example_topics")
    if cache is None:
        names = _topic_names(kb)
        out = []
        for label in kb.examples.labels:
            t = _article_topic(kb, *label) if label else None
            out.append(names.index(t) if t in names else -1)
        cache = kb.cache["_example_topics"] = np.asarray(out, dtype=np.int32)
    return cache


def evidence(kb: KnowledgeBase, q, scope: list[str], drop: np.ndarray | None = None,
             topic_drop: np.ndarray | None = None) -> Evidence:
    """`drop`: example questions to ignore (training: the question itself, or its whole measure);
    `topic_drop`: those to ignore for the per-topic evidence (training: the question's own article's)."""
    ex = kb.examples
    if ex is None:
        return Evidence({}, 0.0, 0.0)
    raw = ex.scores(q.terms)
    scores = raw if drop is None else np.where(drop, 0.0, raw)
    topic_scores = scores if topic_drop is None else np.where(topic_drop, 0.0, raw)
    near = _declining(kb, ex, scope, levels_named(kb.lexicon, kb.measures, q.text))
    decline = float(scores[near].max()) if near.any() else 0.0
    closest = [int(i) for i in np.argsort(-np.where(near, scores, 0.0))[:P["decline_depth"]] if near[i] and scores[i] > 0]
    scoped = np.isin(ex.measure_pos, [kb.measure_ids.index(m) for m in scope])
    known = ex.measure_pos[ex.measure_pos >= 0] if drop is None else ex.measure_pos[(ex.measure_pos >= 0) & ~drop]
    seen = frozenset(kb.measure_ids[int(p)] for p in np.unique(known)) & frozenset(scope)
    covered = bool(seen)
    by_article = _best_per_article(ex, scores, scoped)
    topics = _example_topics(kb)
    by_topic: dict[int, float] = {}
    answerable = (topics >= 0) & (topic_scores > 0)
    if answerable.any():
        best = np.zeros(len(_topic_names(kb)), dtype=np.float32)
        np.maximum.at(best, topics[answerable], topic_scores[answerable])
        by_topic = {int(t): float(s) for t, s in enumerate(best) if s > 0}
    by_any = _best_per_article(ex, scores, ex.measure_pos >= 0)
    return Evidence(by_article, max(by_article.values(), default=0.0), decline, covered, closest, scores, by_topic,
                    seen, by_any)


def _best_per_article(ex, scores: np.ndarray, among: np.ndarray) -> dict[tuple[str, int], float]:
    """BM25 of each article's best look-alike among the `example_depth` best-matching examples of `among`."""
    hits = np.nonzero(among & (scores > 0))[0]
    depth = P["example_depth"]
    if len(hits) > depth:
        hits = hits[np.argpartition(-scores[hits], depth - 1)[:depth]]
    best: dict[tuple[str, int], float] = {}
    for i in hits:
        label, score = ex.labels[int(i)], float(scores[i])
        if score > best.get(label, 0.0):
            best[label] = score
    return best


def analyse(kb: KnowledgeBase, q, scope: list[str], unknown: list[str], drop: np.ndarray | None = None,
            topic_drop: np.ndarray | None = None) -> Analysis:
    """The candidates for a question in `scope`, with their features (also used to train the ranker)."""
    detected = intents.detect(kb, q.text)
    situational = any(i.situational for i in detected)
    vocab = kb.analyzer.vocabulary
    # a situation's own words (厂里, 废水) neither make the question foreign nor count against coverage
    strange = {w for w, alts in q.content_words if not any(kb.analyzer.contains(vocab, a) for a in alts)}
    # what asks for a definition (定义, 概念) is no part of what is defined: 服务型制造 defined as "是…" covers it
    framing = {p for i in detected if i.subject for p in i.plain_patterns}
    skip = (strange if situational else set()) | {w for w, _ in q.content_words if w in framing}
    # words the measures never use where the enterprise introduces itself (我们是东河区一家做机械配件的小厂，…)
    # are context, whatever it asks; its words the measures use (注册, 分公司) still count
    intro = _introduction(kb, q.text)
    skip |= {w for w in strange if w in intro}
    ev = evidence(kb, q, scope, drop, topic_drop)
    candidates = _candidates(kb, q, scope, skip, ev)
    foreign = [] if situational else [kb.analyzer.information(w) for w in _foreign(kb, q, unknown)]
    meaning = sum(_weight(kb, w) for w, _ in q.content_words) or 1.0
    return Analysis(candidates, ev, sum(foreign) / meaning, max(foreign, default=0.0), situational, len(q.content_words))


def _candidates(kb: KnowledgeBase, q, scope: list[str], skip: set[str], ev: Evidence) -> list[Candidate]:
    """Articles in scope that BM25 or their look-alike example questions find, each with its features."""
    content = [(w, alts) for w, alts in q.content_words if w not in skip]
    scores = kb.index.scores(q.terms)
    if len(scope) < len(kb.measure_ids):  # (reference measures are indexed too: never candidates unless in scope)
        scores = np.where(kb.measure_mask(scope), scores, 0.0)
    depth = min(P["candidate_depth"], len(scores))
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
            score *= P["item_weight"]
        if key not in best or score > best[key][0]:
            best[key] = (score, u)
    for key in sorted(ev.by_article, key=lambda k: -ev.by_article[k])[:P["example_candidates"]]:
        if key not in best:  # an article only its look-alike questions found
            i = _whole_unit(kb, *key)
            best[key] = (float(scores[i]), kb.units[i])
    if not best:
        return []
    detected = intents.detect(kb, q.text)
    wanted = [i for i in detected if i.article_has]
    required = [i for i in detected if i.required]
    named_topics = _named_topics(kb, q.text)
    title_term = _asks_title_term(q.text)
    kinds = kb.lexicon.get("subject_kinds") or []
    kind_asked = [k for k in kinds if k in q.text]
    defined = _defined_subject(kb, q.text)
    names = _topic_names(kb)
    top_score = max(s for s, _ in best.values()) or 1.0
    by_bm25 = {key: n for n, key in enumerate(sorted(best, key=lambda k: -best[k][0]))}
    ex_best = max(ev.by_article.values(), default=0.0)
    topic_best = max(ev.by_topic.values(), default=0.0)
    near = _near_miss_context(kb, q, ev)
    analogs = _analogs(kb)
    out = []
    for (mid, art), (score, u) in best.items():
        if u.para is not None and (mid, art) in whole and whole[(mid, art)][0] >= P["whole_article_ratio"] * score:
            u = whole[(mid, art)][1]  # the item barely beats its article: the question is about the whole list
        coverage = _coverage(kb, content, kb.article_terms(mid, art))
        article = kb.article_normalized(mid, art)
        x = np.zeros(len(RANK_FEATURES), dtype=np.float64)
        x[RF["s_rel"]] = score / top_score
        x[RF["s_log"]] = np.log1p(score)
        x[RF["coverage"]] = coverage
        x[RF["intent"]] = float(any(intents.article_has(kb, mid, art, i) for i in wanted))
        # the share of the kinds of fact demanded that the article does not hold (a question asking two things,
        # 多久能再申报，奖金要退吗, is half answered by an article holding one)
        x[RF["lacks_required"]] = (sum(not intents.article_has(kb, mid, art, i) for i in required) / len(required)
                                   if required else 0.0)
        x[RF["defines"]] = float(defined is not None and bool(defined.search(article)))
        x[RF["off_topic"]] = float(bool(named_topics) and not any(k in article for ks in named_topics for k in ks)
                                   # how long a title lasts is not how long the measure does
                                   or (title_term and _article_topic(kb, mid, art) == "validity")
                                   # an article on another kind of demonstration (示范平台的条件 asked, 示范企业's given)
                                   or _other_kind(kb, mid, art, kind_asked, kinds))
        ex_article = ev.by_article.get((mid, art), 0.0)
        x[RF["ex_article"]] = np.log1p(ex_article)
        x[RF["ex_article_rel"]] = ex_article / ex_best if ex_best else 0.0
        topic = _article_topic(kb, mid, art)
        ex_topic = ev.by_topic.get(names.index(topic), 0.0) if topic in names else 0.0
        x[RF["ex_topic"]] = np.log1p(ex_topic)
        x[RF["ex_topic_rel"]] = ex_topic / topic_best if topic_best else 0.0
        x[RF["is_item"]] = float(u.para is not None)
        x[RF["bm25_rank"]] = 1.0 / (1 + by_bm25[(mid, art)])
        x[RF["near_miss_detail"]] = float(_near_miss_detail(kb, q, near, mid, art))
        x[RF["ex_analog"]] = np.log1p(max((sim * ev.by_article_any.get(b, 0.0) for b, sim in analogs.get((mid, art), ())),
                                          default=0.0))
        x[RF["lead_coverage"]] = _coverage(kb, content, kb.article_lead_terms(mid, art))
        out.append(Candidate(u, score, coverage, x))
    gap = max(c.coverage for c in out)
    lead_best = max(c.x[RF["lead_coverage"]] for c in out)
    analog_best = max(c.x[RF["ex_analog"]] for c in out)
    for c in out:
        c.x[RF["ex_analog_rel"]] = c.x[RF["ex_analog"]] / analog_best if analog_best else 0.0
        c.x[RF["coverage_gap"]] = c.coverage - gap
        c.x[RF["lead_gap"]] = c.x[RF["lead_coverage"]] - lead_best
        c.x[RF["s_rel_x_coverage"]] = c.x[RF["s_rel"]] * c.coverage
        c.x[RF["ex_rel_x_coverage"]] = c.x[RF["ex_article_rel"]] * c.coverage
    return out


def article_similarity(kb: KnowledgeBase, a: tuple[str, int], b: tuple[str, int]) -> float:
    """Cosine of two articles' IDF-weighted terms (cached per article)."""
    cache = kb.cache.setdefault("_article_vectors", {})
    vectors = []
    for key in (a, b):
        v = cache.get(key)
        if v is None:
            idf = kb.index.idf
            terms = {t: idf.get(t, 0.0) for t in kb.article_terms(*key)}
            v = cache[key] = (terms, float(np.sqrt(sum(w * w for w in terms.values()))) or 1.0)
        vectors.append(v)
    (va, na), (vb, nb) = vectors
    if len(va) > len(vb):
        va, vb = vb, va
    return sum(w * vb[t] for t, w in va.items() if t in vb) / (na * nb)


def taught_elsewhere(kb: KnowledgeBase, measure: str) -> list[str]:
    """The measures of other cities that have example questions of their own (cached per base)."""
    if kb.examples is None:
        return []
    cache = kb.cache.get("_taught")
    if cache is None:
        pos = np.unique(kb.examples.measure_pos[kb.examples.measure_pos >= 0])
        cache = kb.cache["_taught"] = [kb.measure_ids[int(p)] for p in pos]
    mine = city_measures(kb.measures, measure) if measure in kb.measures else [measure]
    return [m for m in cache if m not in mine]


def read_elsewhere(kb: KnowledgeBase, a: Analysis, other: Analysis, model) -> None:
    """Sets on `a` (one measure without examples) what the other cities' measures with examples say
    (`other`: the question read against them): the features elsewhere_margin and elsewhere_sim."""
    tops = [c for c in model.best_per_measure(other) if c.regime == "seen"]
    if not tops:
        return
    best = max(tops, key=lambda c: c.p - model.threshold(c))
    a.elsewhere_margin = best.p - model.threshold(best)
    key = (best.unit.measure, best.unit.article)
    a.elsewhere_sim = {k: article_similarity(kb, (c.unit.measure, c.unit.article), key)
                       for k, c in enumerate(a.candidates)}
    theirs = _article_topic(kb, *key)
    a.elsewhere_topic = {k: 0.0 if theirs is None or mine is None else (1.0 if mine == theirs else -1.0)
                         for k, mine in ((k, _article_topic(kb, c.unit.measure, c.unit.article))
                                         for k, c in enumerate(a.candidates))}


def _analogs(kb: KnowledgeBase) -> dict[tuple[str, int], list[tuple[tuple[str, int], float]]]:
    """For each article, the most similar articles of the other measures that have example questions
    (cosine of their IDF-weighted terms): what is asked of those is likely asked of it (cached)."""
    cache = kb.cache.get("_analogs")
    if cache is not None:
        return cache
    cache = kb.cache["_analogs"] = {}
    if kb.examples is None:
        return cache
    taught = sorted({lab for lab in kb.examples.labels if lab})
    if not taught:
        return cache
    idf = kb.index.idf

    def vector(m, a):
        return {t: idf.get(t, 0.0) for t in kb.article_terms(m, a)}
    taught_vectors = {lab: vector(*lab) for lab in taught}
    norms = {lab: np.sqrt(sum(w * w for w in v.values())) for lab, v in taught_vectors.items()}
    for m in [*kb.measures.values(), *kb.references.values()]:
        for a in m.articles:
            v = vector(m.id, a)
            norm = np.sqrt(sum(w * w for w in v.values())) or 1.0
            sims = []
            for lab, tv in taught_vectors.items():
                if lab[0] == m.id:
                    continue
                shared = sum(w * w for t, w in v.items() if t in tv)
                sims.append((lab, shared / (norm * (norms[lab] or 1.0))))
            sims.sort(key=lambda x: -x[1])
            cache[(m.id, a)] = sims[:P["analogs"]]
    return cache


def _near_miss_context(kb: KnowledgeBase, q, ev: Evidence) -> list[tuple[set[str], str, frozenset]]:
    """The closest near-misses that are closer to the question than any answerable example question."""
    if not ev.near or ev.decline <= ev.best:
        return []
    out = []
    for i in ev.near:
        if ev.scores[i] <= ev.best:
            continue
        out.append(_example(kb, i))
    return out


def _near_miss_detail(kb: KnowledgeBase, q, near, measure: str, article: int) -> bool:
    """One of those near-misses asks what this article lacks and the question asks it too: a word the article
    lacks (模板, 含税, 几份), a kind of question it gives no answer of (具体指什么, 找谁提), or another level
    it does not name (国家级). One that only shares what the article says (申报, 条件) is no reason."""
    if not near:
        return False
    terms = kb.article_terms(measure, article)
    text = kb.article_normalized(measure, article)
    words = [alts for _, alts in q.content_words if not any(kb.analyzer.contains(terms, a) for a in alts)]
    kinds = [id(i) for i in intents.detect(kb, q.text) if not intents.article_has(kb, measure, article, i)]
    levels = {n for n in levels_named(kb.lexicon, kb.measures, q.text) if n not in text}
    for example_terms, example_text, example_levels in near:
        if (any(kb.analyzer.contains(example_terms, a) for alts in words for a in alts)
                or any(id(k) in kinds for k in intents.detect(kb, example_text))
                or levels & example_levels):
            return True
    return False


def _example(kb: KnowledgeBase, i: int) -> tuple[set[str], str, frozenset]:
    """An example question's search terms, its normalised text and the levels it names (cached)."""
    cache = kb.cache.setdefault("_example_cache", {})
    if i not in cache:
        q = kb.analyzer.query(kb.examples.texts[i])
        cache[i] = (set(q.terms), q.text, levels_named(kb.lexicon, kb.measures, q.text))
    return cache[i]


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


def _defined_subject(kb: KnowledgeBase, text: str) -> re.Pattern | None:
    """For a question asking what a term is: a pattern for the sentence defining it ("服务型制造是",
    "所称的服务型制造,是")."""
    if not any(i.subject for i in intents.detect(kb, text)):
        return None
    terms = [t for t in kb.analyzer.domain_terms if t in text]  # longest first
    if not terms:
        return None
    return re.compile(re.escape(normalize(terms[0])) + r"[,，]?(是|指)")


def _foreign(kb: KnowledgeBase, q, unknown: list[str]) -> list[str]:
    """Unknown words that make a question foreign: not those of the enterprise introducing itself, nor
    the words of a kind of question (怎么界定 asks for a definition)."""
    context = _introduction(kb, q.text)
    framing = "".join(p for i in intents.detect(kb, q.text) for p in i.plain_patterns if p in q.text)
    return [w for w in unknown if w not in context and w not in framing]


def _scope_text(kb: KnowledgeBase, scope: list[str]) -> str:
    """The normalised text of the measures in scope (cached per scope)."""
    cache = kb.cache.setdefault("_scope_text", {})
    key = tuple(sorted(scope))
    if key not in cache:
        cache[key] = "\n".join(kb.article_normalized(m, a) for m in key for a in kb.measure(m).articles)
    return cache[key]


def focus(kb: KnowledgeBase, text: str) -> str:
    """What a long message asks: its sentences with a question marker (lexicon `question_markers`) and its
    last sentence, less the enterprise introducing itself. A short one is left whole."""
    if len(text) <= P["long_question_chars"]:
        return text
    markers = tuple(kb.lexicon.get("question_markers") or [])
    sentences = [x for x in re.split(r"(?<=[。！？!?；;\n])", text) if x.strip()]
    intro = tuple(kb.lexicon.get("self_introduction") or [])
    kept = [x for i, x in enumerate(sentences)
            if (i == len(sentences) - 1 or any(m in x for m in markers)) and not any(m in x for m in intro)]
    out = "".join(kept).strip()
    return out if out else text


def _without_introduction(kb: KnowledgeBase, text: str) -> str:
    intro = tuple(kb.lexicon.get("self_introduction") or [])
    return "，".join(c for c in re.split(r"[,，。;；!！?？\s]", text) if c and not any(m in c for m in intro))


def _introduction(kb: KnowledgeBase, text: str) -> str:
    """The clauses where the enterprise introduces itself (lexicon.yaml `self_introduction`)."""
    intro = tuple(kb.lexicon.get("self_introduction") or [])
    return "".join(c for c in re.split(r"[,，。;；!！?？\s]", text) if any(m in c for m in intro))


def _named_topics(kb: KnowledgeBase, text: str) -> list[list[str]]:
    """The keywords of the topics (复核, 公示 … from lexicon.yaml `topics`) the question asks about: an article
    with none of them is off topic, it would answer another question (公示期几天 → the 30 days of 备案)."""
    asked = _asked(text)
    return [t.get("keywords") or [] for t in (kb.lexicon.get("topics") or {}).values()
            if any(k in asked for k in t.get("keywords") or [])]


def _other_kind(kb: KnowledgeBase, measure: str, article: int, asked: list[str], kinds: list[str]) -> bool:
    """The question names one kind of demonstration (lexicon.yaml `subject_kinds`: 示范企业, 示范平台 …) and the
    article's lead names another and not it."""
    if len(asked) != 1:
        return False
    lead = re.split(r"[。：:\n]", kb.article_normalized(measure, article), maxsplit=1)[0]  # its whole first sentence
    return asked[0] not in lead and any(k in lead for k in kinds if k != asked[0])


def _asks_title_term(text: str) -> bool:
    """Does the question ask how long something the measure grants lasts (称号有效期几年, 牌子管几年), rather
    than the measure itself (dialogue.yaml validity: `asks` and `title_words`)?"""
    w = dialogue.words().get("validity") or {}
    return any(t in text for t in w.get("title_words") or []) and any(a in text for a in w.get("asks") or [])


def _asked(text: str) -> str:
    """The question less its background: a clause before the last telling what happened (…了, …被…: 复核不合格被撤了，
    也要等三年才能重新申请吗: the question is about applying again, not about 复核)."""
    clauses = [c for c in re.split(r"[,，。;；!！?？\s]", text) if c]
    return "，".join(c for i, c in enumerate(clauses) if i == len(clauses) - 1 or not any(m in c for m in "了被"))


# ---- the decision ---------------------------------------------------------------------------------
def _select(kb: KnowledgeBase, q, scope: list[str], unknown: list[str], info: dict | None = None) -> list[Candidate]:
    """The articles that answer the question, one per measure, most probable first; empty when none is
    probable enough. The ranker orders each measure's candidates; the decision model gives the probability
    that the best is right; it answers when that passes the threshold fitted by cross-validation by measure
    (knowledge/ranker.py). `info` receives the ranking and what decided (why, trace)."""
    info = {} if info is None else info
    model = ranker.model_of(kb)
    a = analyse(kb, q, scope, unknown)
    if len(scope) == 1 and scope[0] not in a.ev.seen and "seen" in model.regimes:
        # a measure without examples asked about alone: what the other cities' measures with examples say
        # is a decision feature (learned in training exactly so, knowledge/ranker.py)
        others = taught_elsewhere(kb, scope[0])
        if others:
            read_elsewhere(kb, a, analyse(kb, q, others, unknown), model)
    tops = model.best_per_measure(a)
    ranked = sorted(a.candidates, key=lambda c: -c.r)
    info["ranking"] = [f"{c.unit.measure}:{c.unit.article}" for c in ranked[:5]]
    info["trace"] = "; ".join(
        f"{c.unit.measure}:{c.unit.article} p={c.p:.2f}/{model.threshold(c):.2f} ({c.regime}) r={c.r:.1f} "
        f"cov={c.coverage:.2f}" for c in tops[:2])
    if not tops:
        info["why"] = "no_candidate"
        return []
    info["top"] = tops[0]
    chosen: list[Candidate] = []
    for c in tops:
        if c.p < model.threshold(c):
            if not chosen:
                info["why"] = "low_probability:" + model.explain(c)
                info["trace"] = f"decided by {model.explain(c)}; " + info["trace"]
            break
        if chosen and c.r < chosen[0].r - A["second_city_margin"]:
            break
        chosen.append(c)
    info["decided"] = f"probable:{model.explain(chosen[0], negative=False)}" if chosen else None
    return chosen


def _decline(kb: KnowledgeBase, question: str, city: str | None, q, reason: str = "out_of_scope",
             trace: str = "") -> Answer:
    a = _abstain(question, city, reason,
                 f"抱歉，这个问题不在{covered_cities(kb)}服务型制造示范企业认定管理办法的范围内，我无法回答。"
                 "可以问我申报条件、申报材料、认定程序、复核、撤销、更名备案等问题，" + hint(kb), q.corrections)
    a.trace = trace
    return a


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
    return Answer(question, city, False, text, citations, [], "by_reference", [], "article " + ",".join(map(str, refs[:3])))
