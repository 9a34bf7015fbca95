"""Policy questions: one question in, a short cited answer (or an honest decline) out."""
from __future__ import annotations

from handlers import feedback
from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.conversation import Turn, respond
from knowledge.kb import current_ids
from knowledge.qa import Answer, cities_in


def render(a: Answer) -> str:
    """The answer as chat text (follow-ups are offered as buttons by `ask`)."""
    if a.corrections and not a.abstained:
        fixed = "、".join(f"“{old}”→“{new}”" for old, new in a.corrections)
        return f"（已按{fixed}理解）\n{a.answer}"
    return a.answer


def ask(msg: Incoming, question: str, state: dict, ctx: Context) -> Result:
    """Answer `question`, scoped by the city named in it or earlier in the conversation; a follow-up (那包头呢,
    这个要几份) is read against the previous question, kept in the state as `last`."""
    a, turn, res = respond(ctx.kb, question, ctx.today, state.get("city"), Turn.from_dict(state.get("last")))
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
    if a.abstained:
        new_state.pop("fb_turn", None)
    else:  # 👍/👎 under every answer (a decline is reviewed by operators anyway)
        new_state["fb_turn"] = number
        buttons += feedback.buttons(number)
    event = Event("question", {"question": question, "city": a.city, "abstained": a.abstained, "reason": a.reason,
                               "citation": a.citations[0].title if a.citations else None, "turn": number,
                               "resolved": res.query if res.kind else None})
    return Result([Reply(render(a), buttons)], new_state, [event])


def followup(msg: Incoming, index: str, state: dict, ctx: Context) -> Result:
    """A follow-up button: ask the suggested question."""
    options = state.get("followups") or []
    try:
        question = options[int(index)]
    except (ValueError, IndexError):
        return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
    return ask(msg, question, state, ctx)
