"""Policy questions: one question in, a short cited answer (or an honest decline) out."""
from __future__ import annotations

from handlers import feedback
from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result
from handlers.direct import direct_answer
from dataclasses import replace

from knowledge.conversation import Turn, respond
from knowledge.kb import current_ids
from knowledge.qa import Answer, Citation, answer, cities_in


def render(a: Answer) -> str:
    """The answer as chat text (follow-ups are offered as buttons by `ask`)."""
    if a.corrections and not a.abstained:
        fixed = "、".join(f"“{old}”→“{new}”" for old, new in a.corrections)
        return f"（已按{fixed}理解）\n{a.answer}"
    return a.answer


def answer_with_facts(kb, question: str, today, city: str | None = None):
    """The answer to a question, led by what the enterprise's own facts in it mean (handlers/direct.py):
    the outcome first, then the article(s); citations merged. Returns (Answer, Direct or None)."""
    return with_facts(kb, answer(kb, question, today, city), question, today, city)


# declines that no fact of the enterprise overturns: a city or a programme the rules are not about, no question
NOT_OURS = frozenset({"uncovered_city", "other_programme", "empty", "too_long", "not_chinese"})


def with_facts(kb, a: Answer, question: str, today, city: str | None = None):
    """An answer already found (a follow-up resolved, a comparison …), led by the outcome of the facts in it."""
    if a.abstained and a.reason in NOT_OURS:
        return a, None
    direct = direct_answer(kb, question, today, city)
    if not direct:
        return a, None
    body = render(a) if not a.abstained else _articles(kb, direct)
    cites = list(a.citations) if not a.abstained else []
    for mid, n in direct.citations:
        if not any((c.measure, c.article) == (mid, n) for c in cites):
            cites.append(Citation(mid, n, kb.measures[mid].cite(n)))
    city_of = a.city if not a.abstained else (direct.cities[0] if len(direct.cities) == 1 else None)
    merged = replace(a, answer=direct.text + "\n\n" + body, abstained=False, reason="own_facts",
                     citations=cites, city=city_of, corrections=[] if a.abstained else a.corrections)
    return merged, direct


def ask(msg: Incoming, question: str, state: dict, ctx: Context) -> Result:
    """Answer `question`, scoped by the city named in it or earlier in the conversation; a follow-up (那包头呢,
    这个要几份) is read against the previous question, kept in the state as `last`. Facts of the enterprise in it
    (服务收入占比12%) lead the answer with what follows for it."""
    a, turn, res = respond(ctx.kb, question, ctx.today, state.get("city"), Turn.from_dict(state.get("last")))
    a, direct = with_facts(ctx.kb, a, question, ctx.today, state.get("city"))
    new_state = dict(state)
    new_state["last"] = turn.as_dict()
    named = current_ids(ctx.kb.measures, cities_in(ctx.kb, question), ctx.today)  # one per city
    if len(named) == 1:  # the conversation's city is the one the user names, not one an answer happens to be about
        new_state["city"] = named[0]
    new_state["followups"] = a.followups
    number = int(state.get("turn") or 0) + 1  # numbers this user's questions: feedback names the one it is about
    new_state["turn"] = number
    new_state.pop("fb_reason", None)
    buttons = [Button(f"💬 {f}", f"q:{i}") for i, f in enumerate(a.followups)]
    text = a.answer if direct else render(a)
    if direct and direct.facts:  # offer the self-check with what was said already filled in
        new_state["prefill"] = {"facts": direct.facts, "city": direct.cities[0] if len(direct.cities) == 1 else None,
                                "on": ctx.today.isoformat()}
        buttons = [Button("📝 用这些信息自测", "ck:prefill")] + buttons
        text += "\n想逐项预判，可以点“用这些信息自测”（已说过的不再问）。"
    if a.abstained:
        new_state.pop("fb_turn", None)
    else:  # 👍/👎 under every answer (a decline is reviewed by operators anyway)
        new_state["fb_turn"] = number
        buttons += feedback.buttons(number)
    event = Event("question", {"question": question, "city": a.city, "abstained": a.abstained, "reason": a.reason,
                               "trace": a.trace, "citation": a.citations[0].title if a.citations else None,
                               "turn": number,
                               "resolved": res.query if res.kind else None})
    return Result([Reply(text, buttons)], new_state, [event])


def _articles(kb, direct) -> str:
    """The articles the direct answer rests on, when the question itself matched none."""
    from knowledge.excerpt import excerpt
    parts = []
    for mid, n in list(dict.fromkeys(direct.citations))[:2]:
        m = kb.measures[mid]
        parts.append(f"{excerpt(kb, m, n)}\n——{m.cite(n)}")
    return "\n\n".join(parts)


def followup(msg: Incoming, index: str, state: dict, ctx: Context) -> Result:
    """A follow-up button: ask the suggested question."""
    options = state.get("followups") or []
    try:
        question = options[int(index)]
    except (ValueError, IndexError):
        return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
    return ask(msg, question, state, ctx)
