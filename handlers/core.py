"""The dialog core: routes one neutral message to the dialog it belongs to.

Every channel (console, Telegram, WeCom, 微信客服) calls `handle` and renders what it returns; nothing here
knows which channel it is. Routing is declared in four tables, tried in this order:

  CALLBACKS  a pressed button, by the prefix of its data (ck:…, rm:…)
  COMMANDS   /name commands
  DIALOGS    the dialog under way (删除确认, 提醒, 自测): it gets the message, except a question typed in the
             middle of it, which is answered before the dialog asks its question again
  ENTRIES    words that start something (自测, 提醒, 我们更名了 …)
  FALLBACKS  greetings, thanks, and anything else as a policy question

Adding an entry is one row. A dialog idle for more than IDLE_LIMIT ends, with a note on the next message
(the time comes in through the context, never from the clock).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from handlers import admin
from handlers import ask as ask_dialog
from handlers import check as check_dialog
from handlers import feedback
from handlers import remind as remind_dialog
from handlers import words
from handlers.context import Context
from handlers.help import ask_example, show_help
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.qa import resolve_city

IDLE_LIMIT = dt.timedelta(days=1)
FORGET_WORDS = ("删除我的数据", "删除数据", "清除我的数据")
GREETINGS = ("你好", "您好", "在吗", "在不在", "hi", "hello", "嗨", "哈喽", "早上好", "下午好", "晚上好", "帮助", "菜单")
THANKS = ("谢谢", "多谢", "感谢", "谢了", "thanks", "thank you", "好的", "知道了", "明白了", "ok")

Handler = Callable[[Incoming, str, dict, Context], Result]


@dataclass(frozen=True)
class Route:
    name: str
    when: Callable[[str, dict], bool]  # (text, state) → does this route take the message?
    run: Handler


@dataclass(frozen=True)
class Dialog:
    """A dialog under way: whether it is active, its handler, whether it would take this text as its answer
    (a question it would not take is answered instead), and how it asks its question again."""
    name: str
    active: Callable[[dict], bool]
    run: Handler
    accepts: Callable[[str, dict, Context], bool]
    prompt: Callable[[dict, Context], Result] | None
    end: Callable[[dict], None]
    reads_every_answer: bool = False  # its handler validates whatever it gets (it may see an unanswerable question)


# ---- small handlers ------------------------------------------------------------------------------------
def _forget_ask(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    state["pending"] = "forget"
    return Result([Reply("将删除我们保存的您的全部数据（对话进度、提问记录），且无法恢复。确认删除吗？（回复“确认”或点按钮）",
                         [Button("确认删除", "forget:yes"), Button("取消", "forget:no")])], state)


def _forget_answer(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    state.pop("pending", None)
    if words.is_yes(text):
        return _forget_now()
    return Result([Reply("已取消，您的数据未删除。")], state)


def _forget_now() -> Result:
    return Result([Reply("您的数据已全部删除。")], {}, [Event("forget")])


def _help(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    return show_help(state, ctx)


def _thanks(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    return Result([Reply("不客气！还有其他问题可以直接问我。")], state)


def _ask(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    return ask_dialog.ask(msg, text, state, ctx)


def _cancel(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    state.pop("pending", None)
    if state.pop("remind", None):
        return Result([Reply("已取消，没有保存任何信息。")], state)
    if check_dialog.active(state):
        return check_dialog.cancel(state)
    return Result([Reply("已取消。")], state)


def _ask_command(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    if not arg:
        return Result([Reply(f"请在 /ask 后面写上问题，例如：/ask {ask_example(ctx.kb)}？")], state)
    return ask_dialog.ask(msg, arg, state, ctx)


def _city(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    if arg:
        mid = resolve_city(ctx.kb, arg, ctx.today)
        if not mid:
            return Result([Reply(f"没有找到“{arg}”对应的城市。目前支持：{_cities(ctx)}。")], state)
        state["city"] = mid
        if isinstance(state.get("last"), dict):  # a follow-up (这个要几份) is now about the city chosen
            state["last"] = {**state["last"], "city": mid, "scope": []}
        return Result([Reply(f"好的，之后的问题按{ctx.kb.measures[mid].city_short}的办法回答。")], state)
    current = state.get("city")
    now = f"当前城市：{ctx.kb.measures[current].city_short}。" if current in ctx.kb.measures else "尚未选择城市。"
    buttons = [Button(m.city_short, f"city:{m.id}") for m in ctx.kb.measures.values()]
    return Result([Reply(now + "请选择城市：", buttons)], state)


def _cities(ctx: Context) -> str:
    return "、".join(m.city_short for m in ctx.kb.measures.values())


def _admin(name: str) -> Handler:
    return lambda msg, arg, state, ctx: admin.handle(msg, name, arg, state, ctx)


def _city_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    if arg in ctx.kb.measures:
        return _city(msg, arg, state, ctx)
    return _expired(state)


def _forget_button(msg: Incoming, arg: str, state: dict, ctx: Context) -> Result:
    if state.get("pending") != "forget":
        return _expired(state)
    state.pop("pending")
    return _forget_now() if arg == "yes" else Result([Reply("已取消，您的数据未删除。")], state)


def _expired(state: dict) -> Result:
    return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)


# ---- the tables ----------------------------------------------------------------------------------------
CALLBACKS: dict[str, Handler] = {  # button data "kind:arg" → handler(msg, arg, state, ctx)
    "q": lambda msg, arg, state, ctx: ask_dialog.followup(msg, arg, state, ctx),
    "ck": lambda msg, arg, state, ctx: check_dialog.on_button(msg, arg, state, ctx),
    "rm": lambda msg, arg, state, ctx: remind_dialog.on_button(msg, arg, state, ctx),
    "city": _city_button,
    "forget": _forget_button,
    "fb": feedback.on_button,
}

COMMANDS: dict[str, Handler] = {  # /name arg → handler(msg, arg, state, ctx)
    "start": _help,
    "help": _help,
    "ask": _ask_command,
    "city": _city,
    "forget": _forget_ask,
    "check": lambda msg, arg, state, ctx: check_dialog.start(msg, state, ctx),
    "remind": lambda msg, arg, state, ctx: remind_dialog.start(msg, state, ctx),
    "subscribe": lambda msg, arg, state, ctx: remind_dialog.start(msg, state, ctx),
    "status": lambda msg, arg, state, ctx: remind_dialog.status(msg, state, ctx),
    "unsubscribe": lambda msg, arg, state, ctx: remind_dialog.unsubscribe(msg, state, ctx),
    "cancel": _cancel,
    "stats": _admin("stats"),
    "unanswered": _admin("unanswered"),
    "due": _admin("due"),
}

DIALOGS: list[Dialog] = [
    Dialog("forget", lambda s: s.get("pending") == "forget", _forget_answer,
           lambda text, s, ctx: True, None, lambda s: s.pop("pending", None)),
    Dialog("remind", remind_dialog.active, remind_dialog.on_text, remind_dialog.accepts, remind_dialog.prompt,
           lambda s: s.pop("remind", None)),
    Dialog("check", check_dialog.active, check_dialog.on_text, check_dialog.accepts, check_dialog.prompt,
           lambda s: s.pop("check", None), reads_every_answer=True),
    Dialog("feedback", feedback.waiting_for_reason, feedback.on_reason_text, feedback.accepts_reason, None,
           lambda s: s.pop("fb_reason", None)),
]

ENTRIES: list[Route] = [  # checked before the dialog under way, except 删除确认 and 提醒 (see handle)
    Route("forget", lambda t, s: t in FORGET_WORDS, _forget_ask),
    Route("check", lambda t, s: check_dialog.is_trigger(t), lambda m, t, s, c: check_dialog.start(m, s, c)),
    Route("check-redo", lambda t, s: check_dialog.wants_to_correct(s, t), check_dialog.on_text),
    Route("subscribe", lambda t, s: remind_dialog.wants_subscribe(t), lambda m, t, s, c: remind_dialog.start(m, s, c)),
    Route("unsubscribe", lambda t, s: remind_dialog.wants_unsubscribe(t),
          lambda m, t, s, c: remind_dialog.unsubscribe(m, s, c)),
    Route("status", lambda t, s: remind_dialog.wants_status(t), lambda m, t, s, c: remind_dialog.status(m, s, c)),
    Route("change", lambda t, s: remind_dialog.reports_change(t), remind_dialog.report_change),
]

FALLBACKS: list[Route] = [
    Route("vote", feedback.is_vote, feedback.on_text_vote),  # + / - typed after an answer
    Route("greeting", lambda t, s: words.bare(t).strip("?？") in GREETINGS, _help),
    Route("thanks", lambda t, s: words.bare(t) in THANKS, _thanks),
    Route("ask", lambda t, s: True, _ask),
]

# Dialogs that keep their messages even from entry words (a half-finished 提醒 handles 取消提醒 itself).
CAPTURING = ("forget", "remind")


# ---- routing -------------------------------------------------------------------------------------------
def handle(msg: Incoming, state: dict, ctx: Context) -> Result:
    state = dict(state or {})
    note = _expire_idle(state, ctx)
    result = _route(msg, state, ctx)
    if note:
        result.replies.insert(0, Reply(note))
    if any(d.active(result.state) for d in DIALOGS) and ctx.now is not None:
        result.state["touched"] = ctx.now.isoformat()
    else:
        result.state.pop("touched", None)
    return result


def _route(msg: Incoming, state: dict, ctx: Context) -> Result:
    if msg.callback:
        kind, _, arg = msg.callback.partition(":")
        run = CALLBACKS.get(kind)
        return run(msg, arg, state, ctx) if run else _expired(state)
    text = (msg.text or "").strip()
    if text.startswith("/"):
        name, _, arg = text[1:].partition(" ")
        name = name.split("@", 1)[0].lower()  # /help@SomeBot in Telegram groups
        run = COMMANDS.get(name)
        if run is None:
            return Result([Reply(f"没有 /{name} 这个命令。输入 /help 查看可用命令。")], state)
        return run(msg, arg.strip(), state, ctx)
    dialog = next((d for d in DIALOGS if d.active(state)), None)
    if dialog is None or dialog.name not in CAPTURING:
        for route in ENTRIES:
            if route.when(text, state):
                return route.run(msg, text, state, ctx)
    if dialog is not None:
        if dialog.prompt and words.is_question(text) and not words.is_cancel(text) \
                and not dialog.accepts(text, state, ctx):
            return _answer_and_resume(msg, text, state, ctx, dialog)
        return dialog.run(msg, text, state, ctx)
    for route in FALLBACKS:
        if route.when(text, state):
            return route.run(msg, text, state, ctx)
    raise AssertionError("the last fallback takes every message")


def _answer_and_resume(msg: Incoming, text: str, state: dict, ctx: Context, dialog: Dialog) -> Result:
    """A question typed in the middle of a dialog: its answer, then the dialog's question again."""
    answered = ask_dialog.ask(msg, text, state, ctx)
    if dialog.reads_every_answer and any(e.kind == "question" and e.data.get("abstained") for e in answered.events):
        return dialog.run(msg, text, state, ctx)  # nothing to answer: the dialog says how to answer it
    resumed = dialog.prompt(answered.state, ctx)
    replies = answered.replies + [Reply("（" + _RESUME[dialog.name] + "）\n" + resumed.replies[0].text,
                                        resumed.replies[0].buttons)] + resumed.replies[1:]
    return Result(replies, resumed.state, answered.events + resumed.events)


_RESUME = {"remind": "提醒设置还在进行，请接着回答；回复“取消”可退出", "check": "自测还在进行，请接着回答；回复“取消”可退出"}


def _expire_idle(state: dict, ctx: Context) -> str:
    """End a dialog left idle for more than IDLE_LIMIT; the note says so."""
    touched = state.get("touched")
    if not touched or ctx.now is None:
        return ""
    try:
        idle = ctx.now - dt.datetime.fromisoformat(touched)
    except (TypeError, ValueError):
        state.pop("touched", None)
        return ""
    if idle <= IDLE_LIMIT:
        return ""
    ended = [d for d in DIALOGS if d.active(state)]
    for d in ended:
        d.end(state)
    state.pop("touched", None)
    names = {"forget": "删除数据的确认", "remind": "提醒设置", "check": "申报条件自测"}
    if not ended:
        return ""
    return f"上次的{'、'.join(names[d.name] for d in ended)}超过一天没有继续，已经结束（未保存）。需要时可重新开始。"
