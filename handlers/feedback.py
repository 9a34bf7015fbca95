"""赞/踩 on answers: 👍/👎 under every answer, and one optional reason after a 👎.

Channels offer the two as buttons (inline on Telegram, numbered on WeCom and 微信客服); typing `+` or `-` (or the
emoji) works everywhere, and is how the terminal chat offers it. The vote goes to the runtime as an event and is
stored with the question it is about (`turn` numbers a user's questions, so a button under an older answer lands on
that answer, not on the latest).
"""
from __future__ import annotations

from handlers.context import Context
from handlers.message import Button, Event, Incoming, Reply, Result

UP_WORDS = ("+", "＋", "👍", "+1", "赞")
DOWN_WORDS = ("-", "－", "👎", "-1", "踩")
SKIP_WORDS = ("跳过", "不用", "不用了", "算了", "没有", "无", "不说了", "skip")
QUESTION_ENDINGS = ("?", "？", "吗", "呢", "么")
ASK_REASON = "抱歉没帮上忙。能说说哪里不对吗？（直接输入原因，一句话即可；不想说可点“跳过”）"


def buttons(turn: int) -> list[Button]:
    return [Button("👍 有帮助", f"fb:+:{turn}"), Button("👎 没帮助", f"fb:-:{turn}")]


def is_vote(text: str, state: dict) -> bool:
    return bool(state.get("fb_turn")) and text.strip() in UP_WORDS + DOWN_WORDS


def waiting_for_reason(state: dict) -> bool:
    return bool(state.get("fb_reason"))


def on_text_vote(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    """`+` / `-` typed: a vote on the latest answer."""
    return _vote(+1 if text.strip() in UP_WORDS else -1, int(state["fb_turn"]), state)


def on_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    """fb:+:<turn>, fb:-:<turn>, fb:skip:<turn>."""
    kind, _, turn_text = arg.partition(":")
    if not turn_text.isdigit() or kind not in ("+", "-", "skip"):
        return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
    if kind == "skip":
        state.pop("fb_reason", None)
        return Result([Reply("好的，感谢您的反馈！")], state)
    return _vote(+1 if kind == "+" else -1, int(turn_text), state)


def on_reason(msg: Incoming, text: str, state: dict, ctx: Context) -> Result | None:
    """The one optional reason after a 👎; None when the text is something else (a new question, a command):
    then the caller routes it as usual and the reason is not asked again."""
    turn = state.pop("fb_reason", None)
    text = text.strip()
    if not accepts_reason(text, state, ctx):
        return None
    if text.lower() in SKIP_WORDS:
        return Result([Reply("好的，感谢您的反馈！")], state)
    return Result([Reply("收到，谢谢！我们会据此改进回答。")], state,
                  [Event("feedback", {"turn": int(turn), "reason": text[:500]})])


def accepts_reason(text: str, state: dict, ctx: Context) -> bool:
    """Whether a text typed after 👎 is the reason (not a new question, nor a command)."""
    text = text.strip()
    return bool(text) and not text.startswith("/") and not text.endswith(QUESTION_ENDINGS)


def on_reason_text(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    """The text after 👎: the reason, a skip, or a new question (answered; the reason is not asked again)."""
    done = on_reason(msg, text, state, ctx)
    if done is not None:
        return done
    from handlers import ask as ask_dialog  # ask imports this module for its buttons
    return ask_dialog.ask(msg, text, state, ctx)


def _vote(vote: int, turn: int, state: dict) -> Result:
    event = Event("feedback", {"turn": turn, "vote": vote})
    if vote > 0:
        state.pop("fb_reason", None)
        return Result([Reply("感谢您的反馈！")], state, [event])
    state["fb_reason"] = turn
    return Result([Reply(ASK_REASON, [Button("跳过", f"fb:skip:{turn}")])], state, [event])
