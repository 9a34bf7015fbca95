"""The dialog core: routes one neutral message to the dialog it belongs to.

Every channel (console, Telegram, WeCom) calls `handle` and renders what it returns; nothing here
knows which channel it is.
"""
from __future__ import annotations

from handlers import ask as ask_dialog
from handlers import admin
from handlers import check as check_dialog
from handlers import feedback
from handlers import remind as remind_dialog
from handlers.context import Context
from handlers.help import ask_example, show_help
from handlers.message import Button, Event, Incoming, Reply, Result
from knowledge.qa import resolve_city

FORGET_WORDS = ("删除我的数据", "删除数据", "清除我的数据")
GREETINGS = ("你好", "您好", "在吗", "在不在", "hi", "hello", "嗨", "哈喽", "早上好", "下午好", "晚上好", "帮助", "菜单")
THANKS = ("谢谢", "多谢", "感谢", "谢了", "thanks", "thank you", "好的", "知道了", "明白了", "ok")
YES = ("是", "确认", "确定", "好", "对", "yes", "y", "删除", "确认删除")


def handle(msg: Incoming, state: dict, ctx: Context) -> Result:
    state = dict(state or {})
    if msg.callback:
        return _button(msg, state, ctx)
    text = (msg.text or "").strip()
    if state.get("pending") == "forget":
        state.pop("pending")
        if text.lower() in YES:
            return _forget_now()
        return Result([Reply("已取消，您的数据未删除。")], state)
    if feedback.waiting_for_reason(state):
        done = feedback.on_reason(msg, text, state, ctx)
        if done is not None:
            return done
    if text.startswith("/"):
        return _command(msg, text, state, ctx)
    if text in FORGET_WORDS:
        return _forget_ask(state)
    if remind_dialog.active(state):
        return remind_dialog.on_text(msg, text, state, ctx)
    if check_dialog.is_trigger(text):
        return check_dialog.start(msg, state, ctx)
    if check_dialog.active(state) or check_dialog.wants_to_correct(state, text):
        return check_dialog.on_text(msg, text, state, ctx)
    if remind_dialog.wants_subscribe(text):
        return remind_dialog.start(msg, state, ctx)
    if remind_dialog.wants_unsubscribe(text):
        return remind_dialog.unsubscribe(msg, state, ctx)
    if remind_dialog.wants_status(text):
        return remind_dialog.status(msg, state, ctx)
    if remind_dialog.reports_change(text):
        return remind_dialog.report_change(msg, text, state, ctx)
    if feedback.is_vote(text, state):
        return feedback.on_text_vote(msg, text, state, ctx)
    bare = text.strip("!！?？。.~～ ").lower()
    if bare in GREETINGS:
        return show_help(state, ctx)
    if bare in THANKS:
        return Result([Reply("不客气！还有其他问题可以直接问我。")], state)
    return ask_dialog.ask(msg, text, state, ctx)


def _command(msg: Incoming, text: str, state: dict, ctx: Context) -> Result:
    name, _, arg = text[1:].partition(" ")
    name = name.split("@", 1)[0].lower()  # /help@SomeBot in Telegram groups
    arg = arg.strip()
    if name in ("start", "help"):
        return show_help(state, ctx)
    if name == "ask":
        if not arg:
            return Result([Reply(f"请在 /ask 后面写上问题，例如：/ask {ask_example(ctx.kb)}？")], state)
        return ask_dialog.ask(msg, arg, state, ctx)
    if name == "city":
        return _city(arg, state, ctx)
    if name == "forget":
        return _forget_ask(state)
    if name == "check":
        return check_dialog.start(msg, state, ctx)
    if name in ("remind", "subscribe"):
        return remind_dialog.start(msg, state, ctx)
    if name == "status":
        return remind_dialog.status(msg, state, ctx)
    if name == "unsubscribe":
        return remind_dialog.unsubscribe(msg, state, ctx)
    if name in ("stats", "unanswered", "due"):
        return admin.handle(msg, name, arg, state, ctx)
    if name == "cancel":
        state.pop("pending", None)
        if state.pop("remind", None):
            return Result([Reply("已取消，没有保存任何信息。")], state)
        if check_dialog.active(state):
            return check_dialog.cancel(state)
        return Result([Reply("已取消。")], state)
    return Result([Reply(f"没有 /{name} 这个命令。输入 /help 查看可用命令。")], state)


def _city(arg: str, state: dict, ctx: Context) -> Result:
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


def _forget_ask(state: dict) -> Result:
    state["pending"] = "forget"
    return Result([Reply("将删除我们保存的您的全部数据（对话进度、提问记录），且无法恢复。确认删除吗？（回复“确认”或点按钮）",
                         [Button("确认删除", "forget:yes"), Button("取消", "forget:no")])], state)


def _forget_now() -> Result:
    return Result([Reply("您的数据已全部删除。")], {}, [Event("forget")])


def _button(msg: Incoming, state: dict, ctx: Context) -> Result:
    kind, _, arg = (msg.callback or "").partition(":")
    if kind == "q":
        return ask_dialog.followup(msg, arg, state, ctx)
    if kind == "ck":
        return check_dialog.on_button(msg, arg, state, ctx)
    if kind == "rm":
        return remind_dialog.on_button(msg, arg, state, ctx)
    if kind == "fb":
        return feedback.on_button(msg, arg, state, ctx)
    if kind == "city" and arg in ctx.kb.measures:
        return _city(arg, state, ctx)
    if kind == "forget" and state.get("pending") == "forget":
        state.pop("pending")
        return _forget_now() if arg == "yes" else Result([Reply("已取消，您的数据未删除。")], state)
    return Result([Reply("这个按钮已过期，请直接输入您的问题。")], state)
