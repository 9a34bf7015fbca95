"""Policy questions: one question in, a short cited answer (or an honest decline) out."""
from __future__ import annotations

from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result
from handlers.direct import direct_answer
from knowledge.qa import Answer, answer, cities_in


def render(a: Answer) -> str:
    """The answer as chat text (follow-ups are offered as buttons by `ask`)."""
    if a.corrections and not a.abstained:
        fixed = "、".join(f"“{old}”→“{new}”" for old, new in a.corrections)
        return f"（已按{fixed}理解）\n{a.answer}"
    return a.answer


def ask(msg: Incoming, question: str, state: dict, ctx: Context) -> Result:
    """Answer `question`, scoped by the city named in it or earlier in the conversation."""
    a = answer(ctx.kb, question, ctx.today, state.get("city"))
    new_state = dict(state)
    named = cities_in(ctx.kb, question)
    if len(named) == 1:  # the conversation's city is the one the user names, not one an answer happens to be about
        new_state["city"] = named[0]
    new_state["followups"] = a.followups
    buttons = [Button(f"💬 {f}", f"q:{i}") for i, f in enumerate(a.followups)]
    text = render(a)
    citation = a.citations[0].title if a.citations else None
    abstained, reason = a.abstained, a.reason
    direct = direct_answer(ctx.kb, question, ctx.today, state.get("city"))
    if direct:  # the enterprise's own facts: what follows for it first, then the article(s)
        text = direct.text + "\n\n" + (text if not a.abstained else _articles(ctx, direct))
        abstained, reason = False, "own_facts"
        if citation is None and direct.citations:
            mid, n = direct.citations[0]
            citation = ctx.kb.measures[mid].cite(n)
        if direct.facts:
            new_state["prefill"] = {"facts": direct.facts, "city": direct.cities[0] if len(direct.cities) == 1 else None}
            buttons = [Button("📝 用这些信息自测", "ck:prefill")] + buttons
            text += "\n想逐项预判，可以点“用这些信息自测”（已说过的不再问）。"
    event = Event("question", {"question": question, "city": a.city, "abstained": abstained, "reason": reason,
                               "citation": citation})
    return Result([Reply(text, buttons)], new_state, [event])


def _articles(ctx: Context, direct) -> str:
    """The articles the direct answer rests on, when the question itself matched none."""
    from knowledge.excerpt import excerpt
    parts = []
    for mid, n in dict.fromkeys(direct.citations):
        m = ctx.kb.measures[mid]
        parts.append(f"{excerpt(ctx.kb, m, n)}\n——{m.cite(n)}")
    return "\n\n".join(parts[:2])


def followup(msg: Incoming, index: str, state: dict, ctx: Context) -> Result:
    """A follow-up button: ask the suggested question."""
    options = state.get("followups") or []
    try:
        question = options[int(index)]
    except (ValueError, IndexError):
        return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
    return ask(msg, question, state, ctx)
