"""Policy questions: one question in, a short cited answer (or an honest decline) out."""
from __future__ import annotations

from handlers import feedback
from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result
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
    turn = int(state.get("turn") or 0) + 1  # numbers this user's questions: feedback names the one it is about
    new_state["turn"] = turn
    new_state.pop("fb_reason", None)
    buttons = [Button(f"💬 {f}", f"q:{i}") for i, f in enumerate(a.followups)]
    if a.abstained:
        new_state.pop("fb_turn", None)
    else:  # 👍/👎 under every answer (a decline is reviewed by operators anyway)
        new_state["fb_turn"] = turn
        buttons += feedback.buttons(turn)
    event = Event("question", {"question": question, "city": a.city, "abstained": a.abstained, "reason": a.reason,
                               "citation": a.citations[0].title if a.citations else None, "turn": turn})
    return Result([Reply(render(a), buttons)], new_state, [event])


def followup(msg: Incoming, index: str, state: dict, ctx: Context) -> Result:
    """A follow-up button: ask the suggested question."""
    options = state.get("followups") or []
    try:
        question = options[int(index)]
    except (ValueError, IndexError):
        return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
    return ask(msg, question, state, ctx)
