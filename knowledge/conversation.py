"""A conversation: follow-ups resolved against the previous turn, comparisons, validity, long messages.

- `routed(kb, question, as_of, city)`: what one message needs before ranking (knowledge.qa.answer calls it at its
  entry): a question about a measure's validity (validity.py), about several cities (compare.py), or a long
  message whose question comes after the enterprise introduces itself (the question part is answered, in the
  city the whole message names).
- `resolve(kb, question, previous, city)`: is the message a follow-up of the previous turn, and if so what it asks
  in full: the same question in another city (那包头呢, 换成威海的企业呢), in several (两地呢), or another aspect
  of the same topic in the same city (这个要几份, 不合格呢, 有时间限制吗: the topic's subject goes before it).
- `respond(kb, question, as_of, city, previous)`: the answer and the turn to remember; `ask_in_session(kb,
  turns, as_of, city)`: a whole conversation, the answer to its last turn (for scripts and the evaluation).

Pure: the date, the conversation's city and the previous turn come in as arguments. No city is named here: places
are the knowledge base's, conversational wording is knowledge/dialogue.yaml's.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field

from knowledge import compare, dialogue, intents, validity
from knowledge.kb import KnowledgeBase, article_refs, current_ids, find_names
from knowledge.qa import MAX_QUESTION_CHARS, Answer, answer as qa_answer, explicit_measures
from knowledge.textnorm import CJK_RE


MAX_ASKING_SENTENCE = 40  # characters: a longer asking sentence before the last one is background, not a question
MIN_QUESTION_WORDS = 2
MAX_QUESTIONS = 3
# a message declined for one of these reasons (knowledge.qa `reason`) reads like a question to decline: the previous
# topic put before it would only hide that (可以找中介代办吗)
DECISIVE_DECLINES = frozenset({"near_miss", "other_programme", "uncovered_city"})  # asking clauses of one long message answered one by one when none answers them together  # a long message's question naming no topic stands alone with this many content words


@dataclass
class Turn:
    """What a later message may refer back to."""
    question: str  # as typed
    query: str  # as resolved: what was answered
    city: str | None  # the one city the turn was about, or None (several, or none chosen)
    scope: list[str] = field(default_factory=list)  # measures asked about when several (a comparison)
    citations: list[list] = field(default_factory=list)  # [[measure, article], …] cited by the answer
    topic: str | None = None  # lexicon.yaml topic name

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> "Turn | None":
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return None
        try:
            return cls(str(data.get("question") or ""), data["query"], data.get("city") if isinstance(data.get("city"), str) else None,
                       [s for s in data.get("scope") or [] if isinstance(s, str)],
                       [[c[0], c[1]] for c in data.get("citations") or [] if isinstance(c, (list, tuple)) and len(c) == 2
                        and isinstance(c[0], str) and isinstance(c[1], int)],
                       data.get("topic") if isinstance(data.get("topic"), str) else None)
        except (TypeError, ValueError):
            return None


@dataclass
class Resolution:
    query: str  # what to answer
    city: str | None  # the city to answer it in (None: as the query names, else every city)
    kind: str | None = None  # None (stands alone), "city" (same question, another city), "aspect", "compare"
    scope: list[str] = field(default_factory=list)  # for "compare": the measures
    # it refers back only by naming no topic (有时间限制吗), not by 那/这个/…呢: asked as it stands first
    elliptic: bool = False


# ---- one message ------------------------------------------------------------------------------------
def routed(kb: KnowledgeBase, question: str, as_of: dt.date, city: str | None = None) -> Answer | None:
    """The answer when a message needs more than ranking (validity, comparison, a long message), else None."""
    raw = question or ""
    if not CJK_RE.search(raw) or len(raw.strip()) > MAX_QUESTION_CHARS:
        return None  # empty, not Chinese, too long: knowledge.qa says so
    text = dialogue.norm(kb, raw)
    if article_refs(text):
        return None  # 第二十五条…: knowledge.qa shows the article
    part = question_part(text, kb)
    asked = part or text
    # the cities the question names, else those of the whole message (我们在荣成…，请问包头的条件是什么: 包头)
    named = (part and dialogue.cities_named(kb, part)) or dialogue.cities_named(kb, text)
    if not named and _names_elsewhere(kb, text if part else asked):
        return None  # an uncovered city or province (in the introduction, or asked about): declined by knowledge.qa
    w = dialogue.words()
    bare_rest = dialogue.bare(dialogue.remove_all(dialogue.remove_all(dialogue.without_places(kb, asked),
                                                                      w.get("compare_words")), w.get("fillers")))
    lenient = any(x in asked for x in w.get("compare_leniency") or [])
    if not bare_rest and not lenient:  # 那包头呢, 两地呢 with nothing before it: ask what about
        return _unclear(kb, question, named)
    comparing = compare.is_comparison(kb, asked)
    explicit = explicit_measures(kb, text, named or ([city] if city in kb.measures else []), as_of)
    if explicit:  # an old measure asked about by name (its document number, 2021年版, 旧办法)
        scope = explicit
    elif comparing:  # 两地…, 哪个城市…: every city, whatever the conversation's
        scope = current_ids(kb.measures, named if len(named) >= 2 else list(kb.measures), as_of)
    else:
        scope = current_ids(kb.measures, named or ([city] if city in kb.measures else list(kb.measures)), as_of)
    if validity.is_validity_question(kb, asked):
        return validity.answer(kb, question, asked, scope, as_of)
    if comparing:
        what = compare.subject_of(kb, asked)
        if not what:
            what = dialogue.subject(dialogue.words().get("compare_default_topic"))
        return compare.answer(kb, question, what, scope, as_of)
    if part:
        one = named[0] if len(named) == 1 else (city if not named else None)
        if len(named) > 1:
            return None
        # the question with its topic's subject first: what the introduction says does not pull it elsewhere
        # (…去年服务收入占比18%，能申报吗 → 申报条件，能申报吗)
        subj = dialogue.subject(dialogue.topic_asked(part))
        a = qa_answer(kb, f"{subj}，{part}" if subj and subj not in part else part, as_of, one, route=False)
        if a.abstained:
            a = _each_question(kb, part, subj, as_of, one) or a
        a.question = question
        return dialogue.traced(a, None, f"long message, question: {part[:60]!r}")
    return None


def _unclear(kb: KnowledgeBase, question: str, named: list[str]) -> Answer:
    """A message naming only a place (那包头呢) and no earlier question to refer to: what about it?"""
    where = "、".join(kb.measures[m].city_short for m in named) if named else "哪个城市"
    a = Answer(question=question, city=named[0] if len(named) == 1 else None, abstained=True,
               answer=f"请问您想了解{where}的哪方面规定？例如申报条件、申报材料、认定程序、复核、撤销、更名备案。",
               citations=[], followups=[], reason="unclear")
    return dialogue.traced(a, None, "only a place or a comparison, no question")


def _each_question(kb: KnowledgeBase, part: str, subj: str, as_of: dt.date, city: str | None) -> Answer | None:
    """Several questions in a row (会有什么后果，以后还能再申报吗) that no article answers together: each asking
    clause on its own, after the subject, the answers one after the other; None when none is answered."""
    clauses = [c for c in _CLAUSE.split(part) if c]
    asking = [k for k, c in enumerate(clauses) if dialogue.asks(c)]
    if len(asking) < 2:
        return None
    answers, seen = [], set()
    for n, k in enumerate(asking[:MAX_QUESTIONS]):
        start = asking[n - 1] + 1 if n else 0  # with the clauses leading into it (如果…，会有什么后果)
        clause = "，".join(clauses[start:k + 1])
        own = dialogue.subject(dialogue.topic_asked(clause)) or subj
        a = qa_answer(kb, f"{own}，{clause}" if own and own not in clause else clause, as_of, city, route=False)
        cited = tuple((c.measure, c.article) for c in a.citations)
        if not a.abstained and cited not in seen:
            seen.add(cited)
            answers.append(a)
    if not answers:
        return None
    first = answers[0]
    texts, notes = [], set()
    for a in answers:  # the measure's status note once
        lines = [ln for ln in a.answer.split("\n") if not (ln.startswith("注：") and ln in notes)]
        notes.update(ln for ln in lines if ln.startswith("注："))
        texts.append("\n".join(lines))
    first.answer = "\n\n".join(texts)
    first.citations = [c for a in answers for c in a.citations]
    first.city = first.city if all(a.city == first.city for a in answers) else None
    return first


def _names_elsewhere(kb: KnowledgeBase, text: str) -> bool:
    provinces = kb.cache.get("_dialogue_provinces")
    if provinces is None:
        from knowledge.kb import provinces as all_provinces
        provinces = kb.cache["_dialogue_provinces"] = sorted(all_provinces(kb.measures), key=len, reverse=True)
    return bool(find_names(kb.other_places, text) or any(p in text for p in provinces))


_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
_CLAUSE = re.compile(r"[,，:：、\s]+")


def question_part(text: str, kb: KnowledgeBase | None = None) -> str | None:
    """In a long message, its question: the last sentence that asks something, from its first asking clause
    (with a clause leading into it, 如果公司改名了，…) on, and back to the nearest clause naming a topic when the
    question itself names none (现在想再申请，请问要等多久). None for a short message, when it is all question,
    or when the question says too little by itself and no clause near it names a topic."""
    w = dialogue.words()
    if len(text) < int(w.get("long_message_chars") or 50):
        return None
    leads = w.get("question_leads") or []
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    asking = [i for i, s in enumerate(sentences) if dialogue.asks(s)]
    if not asking:
        return None
    i = asking[-1]
    while i > 0 and i - 1 in asking and len(sentences[i - 1]) <= MAX_ASKING_SENTENCE:
        i -= 1  # 需要办什么手续？有没有时间要求？报给哪个部门？: the questions asked in a row
    clauses = [c for s in sentences[i:asking[-1] + 1] for c in _CLAUSE.split(s) if c]
    first = next((k for k, c in enumerate(clauses) if dialogue.asks(c)), 0)
    while first < len(clauses) - 1 and not dialogue.bare(dialogue.remove_all(clauses[first], w.get("question_requests"))):
        first += 1  # 想问问，如果…: the announcement is no part of the question
    while first > 0 and any(clauses[first - 1].startswith(lead) for lead in leads):
        first -= 1
    before = clauses[:first]  # the question's own sentence: 现在想再申请，请问要等多久
    part = "，".join(c.rstrip("。.;；") for c in clauses[first:])
    if not dialogue.topic_asked(part):  # 请问要等多久: the topic is in the clause before
        for k in range(len(before) - 1, max(len(before) - 4, -1), -1):
            if dialogue.topic_asked(before[k]):
                part = "，".join(before[k:] + clauses[first:])
                break
        else:
            if kb is None or len(kb.analyzer.query(part).content_words) < MIN_QUESTION_WORDS:
                return None  # no topic anywhere near, and little of its own: the whole message is the question
    part = part.strip("，")
    return part if len(part) < len(text.strip("，。 ")) else None


# ---- follow-ups -------------------------------------------------------------------------------------
def resolve(kb: KnowledgeBase, question: str, previous: Turn | None, city: str | None = None) -> Resolution:
    """Whether `question` refers back to `previous`, and what it asks in full."""
    alone = Resolution(question, city)
    if previous is None or not previous.query:
        return alone
    w = dialogue.words()
    text = dialogue.norm(kb, question)
    if len(text) > 2 * int(w.get("followup_max_chars") or 14) or question_part(text, kb):
        return alone
    named = dialogue.cities_named(kb, text)
    rest = dialogue.without_places(kb, text)
    core = dialogue.bare(dialogue.remove_all(rest, w.get("fillers")))
    marked = any(mk in text for mk in w.get("compare_markers") or [])
    short = len(core) <= int(w.get("followup_max_chars") or 14)
    anaphoric = (any(text.startswith(o) for o in w.get("followup_openers") or [])
                 or any(dialogue.bare(text).endswith(c) for c in w.get("followup_closers") or [])
                 or any(r in text for r in w.get("followup_inside") or []))
    own_topic = dialogue.topic_asked(rest)
    step = _next_step(kb, text, previous)
    if step is not None and len(named) <= 1:
        return step
    if not core or (marked and not dialogue.bare(dialogue.remove_all(compare.subject_of(kb, text) or "", w.get("fillers")))):
        # nothing but places (那包头呢, 换成威海的企业呢) or several cities (两地呢, 两个城市分别呢)
        cities = current_ids(kb.measures, list(kb.measures), None)  # one measure per city
        if len(named) >= 2 or (marked and len(cities) > 1):
            return Resolution(previous.query, None, "compare", named if len(named) >= 2 else cities)
        if len(named) == 1:
            return Resolution(previous.query, named[0], "city")
        return alone
    if len(named) > 1 or not short:
        return alone
    if not (anaphoric or not own_topic):
        return alone  # a new question of its own (更名要备案吗): only the conversation's city carries over
    target = named[0] if named else (previous.city if previous.city else city)
    # words of its own besides the kind of answer it asks for (有时间限制吗: 限制; 要等几年: none)
    elliptic = not anaphoric and bool(_own_words(kb, rest))
    if len(named) == 0 and previous.scope and not previous.city:
        return Resolution(_with_subject(previous, rest, own_topic), None, "compare", list(previous.scope),
                          elliptic=elliptic)
    return Resolution(_with_subject(previous, rest, own_topic), target, "aspect", elliptic=elliptic)


def _own_words(kb: KnowledgeBase, text: str) -> list[str]:
    """The content words of a message less those that only say what kind of answer it wants (几年, 期限是多少,
    交给谁: lexicon.yaml `intents`)."""
    q = kb.analyzer.query(text)
    framing = "".join(p for i in intents.detect(kb, q.text) for p in i.plain_patterns if p in q.text)
    return [w for w, _ in q.content_words if w not in framing]


def _next_step(kb: KnowledgeBase, text: str, previous: Turn) -> Resolution | None:
    """然后呢, 接下来呢 after an article: the next article of the same chapter (公示 → 授予), if the previous
    turn cited one article of one measure."""
    if not any(mk in text for mk in dialogue.words().get("next_step") or []):
        return None
    cited = {(m, n) for m, n in previous.citations}
    if len(cited) != 1:
        return None
    measure, number = next(iter(cited))
    here, after = kb.article(measure, number), kb.article(measure, number + 1)
    if here is None or after is None or here.chapter_title != after.chapter_title:
        return None
    return Resolution(f"第{number + 1}条", measure, "next")


def _with_subject(previous: Turn, rest: str, own_topic: str | None) -> str:
    """The follow-up with the previous topic's subject before it, unless it names a topic itself."""
    if own_topic:
        return rest
    subj = dialogue.subject(previous.topic)
    return f"{subj}，{rest}" if subj and subj not in rest else rest


def _topic(kb: KnowledgeBase, query: str, a: Answer) -> str | None:
    text = dialogue.norm(kb, query)
    asked = dialogue.topic_asked(question_part(text, kb) or text)  # a long message: its question's topic
    if asked:
        return asked
    for c in a.citations:
        t = dialogue.topic_of_article(kb, c.measure, c.article)
        if t:
            return t
    return None


def respond(kb: KnowledgeBase, question: str, as_of: dt.date, city: str | None = None,
            previous: Turn | None = None) -> tuple[Answer, Turn, Resolution]:
    """Answer one message of a conversation; returns the answer, the turn to remember, and how it was read."""
    res = resolve(kb, question, previous, city)
    if res.elliptic:  # 示范企业是什么意思 stands alone if it can; 有时间限制吗 cannot, and takes the previous topic
        plain = qa_answer(kb, question, as_of, res.city)
        if not plain.abstained or plain.reason in DECISIVE_DECLINES:
            plain.question = question
            res = Resolution(question, res.city)
            return plain, _turn(kb, question, res, plain), res
    if res.kind == "compare":
        q = dialogue.norm(kb, res.query)
        scope = current_ids(kb.measures, res.scope, as_of)  # each city's measure in force on the date
        if validity.is_validity_question(kb, q):
            a = validity.answer(kb, question, q, scope, as_of)
        else:
            a = compare.answer(kb, question, dialogue.without_places(kb, q), scope, as_of)
    elif res.kind == "city":
        q = dialogue.without_places(kb, dialogue.norm(kb, res.query))
        if compare.is_comparison(kb, q):  # 两地…有什么不同, then 那威海呢: what was compared, in that city
            q = compare.subject_of(kb, q) or dialogue.subject(dialogue.words().get("compare_default_topic"))
        a = qa_answer(kb, q, as_of, res.city)
    else:
        a = qa_answer(kb, res.query, as_of, res.city)
        if res.kind == "aspect" and res.query != question:
            # the message as it stands, in the same city: taken when the topic put before it did not help, or
            # when the decision is surer of it than of the two read together (更名备案 then 一年评几次)
            plain = qa_answer(kb, question, as_of, res.city)
            if not plain.abstained and (a.abstained or (plain.confidence or 0.0) > (a.confidence or 1.0)):
                a, res = plain, Resolution(question, res.city, "aspect")
    a.question = question
    if res.kind:
        dialogue.traced(a, None, f"follow-up ({res.kind}): {res.query[:60]!r}" + (f" in {res.city}" if res.city else ""))
    return a, _turn(kb, question, res, a), res


def _turn(kb: KnowledgeBase, question: str, res: Resolution, a: Answer) -> Turn:
    turn_city = a.city or (res.city if res.kind != "compare" else None)
    scope = res.scope if res.kind == "compare" else ([] if turn_city else sorted({c.measure for c in a.citations}))
    return Turn(question, res.query, turn_city, scope if len(scope) > 1 else [],
                [[c.measure, c.article] for c in a.citations], _topic(kb, res.query, a))


class Conversation:
    """One conversation in memory, as the chat keeps it: the conversation's city (a turn naming one city makes
    it the conversation's) and the previous turn."""

    def __init__(self, kb: KnowledgeBase, city: str | None = None):
        self.kb = kb
        self.city = city if city in kb.measures else None
        self.previous: Turn | None = None

    def ask(self, question: str, as_of: dt.date) -> Answer:
        a, self.previous, _ = respond(self.kb, question, as_of, self.city, self.previous)
        named = dialogue.cities_named(self.kb, dialogue.norm(self.kb, question))
        if len(named) == 1:
            self.city = named[0]
        return a


def ask_in_session(kb: KnowledgeBase, turns: list[str], as_of: dt.date, city: str | None = None) -> Answer:
    """A conversation of `turns` (earlier messages first) in one session; the answer to the last one.
    `city` is the conversation's city before the first turn (measure id, as `--city`); a turn naming one
    city makes it the conversation's city, as in chat."""
    if not turns:
        raise ValueError("ask_in_session needs at least one turn")
    conversation = Conversation(kb, city)
    for q in turns[:-1]:
        conversation.ask(q, as_of)
    return conversation.ask(turns[-1], as_of)
