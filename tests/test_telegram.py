"""The Telegram channel end to end over loopback HTTP: the real python-telegram-bot Application against
a stand-in Bot API server (tests/telegram_standin.py), in long-polling and in webhook mode.

pytest-asyncio is not installed: each test is sync and drives its own loop with asyncio.run.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time

import aiohttp
import pytest
from aiohttp import web
from telegram_standin import TOKEN, StandInBotAPI, buttons_of, callback_update, group_update, text_update

from bot.channels.base import Blocked, Transient
from bot.channels.telegram import (MAX_TEXT, SECRET_HEADER, WEBHOOK_PATH, RateLimits, TelegramChannel, keyboard,
                                   split_text, utf16_len)
from bot.config import ConfigError, Settings
from bot.runtime import Dispatcher
from bot.serve import build_app
from bot.storage import Store
from handlers.message import Button, Reply

TODAY = dt.date(2026, 11, 22)
SECRET = "s3cret-token_ABC"
FAST = RateLimits(chat_burst=100, max_retries=2)  # dialogs faster than one message a second per chat
UID = 4242


class Harness:
    def __init__(self, api: StandInBotAPI, channel: TelegramChannel, store: Store, url: str | None):
        self.api, self.channel, self.store, self.url = api, channel, store, url
        self.session: aiohttp.ClientSession | None = None

    def send_text(self, text: str, uid: int = UID) -> dict:
        return self.api.queue(text_update(self.api.next_update_id(), uid, text))

    def press(self, message: dict, label: str, uid: int = UID) -> dict:
        data = buttons_of(message)[label]
        return self.api.queue(callback_update(self.api.next_update_id(), uid, data, message))

    async def post(self, body, secret: str | None = SECRET) -> aiohttp.ClientResponse:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        async with self.session.post(self.url + WEBHOOK_PATH, data=data, headers=headers) as resp:
            await resp.read()
            return resp

    async def turn(self, update_or_text, uid: int = UID) -> dict:
        """Sends one update (polling), waits for one more message to that chat, returns it."""
        before = len(self.api.sent_to(uid))
        if isinstance(update_or_text, str):
            self.send_text(update_or_text, uid)
        sent = await self.api.wait_sent(before + 1, uid)
        await asyncio.sleep(0.02)  # a reply of several messages: let the rest arrive
        return self.api.sent_to(uid)[-1]


@contextlib.asynccontextmanager
async def running(kb, tmp_path, webhook: bool = False, limits: RateLimits = FAST, dispatcher_class=Dispatcher):
    api = await StandInBotAPI(poll_wait=0.3).start()
    db = tmp_path / "tg.db"
    runner = None
    url = None
    env = {"POLICYBOT_DB": str(db), "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api.base_url}
    if webhook:
        env.update(TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook", TELEGRAM_WEBHOOK_SECRET=SECRET)
    settings = Settings.load(env, env_file="")
    store = Store(db)
    channel = TelegramChannel(settings, dispatcher_class(settings, store, kb, today=lambda: TODAY), store,
                              limits=limits, poll_timeout=1)
    h = Harness(api, channel, store, None)
    try:
        if webhook:
            runner = web.AppRunner(build_app([channel]), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            h.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        await channel.start()
        async with aiohttp.ClientSession() as session:
            h.session = session
            yield h
    finally:
        await channel.stop()
        if runner:
            await runner.cleanup()
        await api.close()
    assert api.unknown == [], f"PTB called methods the stand-in does not know: {api.unknown}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


# ---- pure helpers ----------------------------------------------------------------------------------
def test_split_prefers_blank_lines_then_line_ends_then_a_hard_cut():
    para = "第一段" * 1000  # 3000 characters
    parts = split_text(para + "\n\n" + "第二段\n" * 600)
    assert parts[0] == para and all(utf16_len(p) <= MAX_TEXT for p in parts)
    assert "".join(parts).replace("\n", "") == (para + "第二段" * 600)
    lines = split_text("行" * 3000 + "\n" + "字" * 3000)
    assert lines == ["行" * 3000, "字" * 3000]
    hard = split_text("字" * 9000)
    assert [len(p) for p in hard] == [4096, 4096, 808]
    emoji = split_text("😀" * 3000)  # two UTF-16 units each: Telegram counts those
    assert all(utf16_len(p) <= MAX_TEXT for p in emoji) and "".join(emoji) == "😀" * 3000
    assert split_text("短消息") == ["短消息"]


def test_keyboard_has_one_or_two_buttons_a_row():
    rows = keyboard([Button("是", "y"), Button("否", "n"), Button("跳过", "s")]).inline_keyboard
    assert [[b.text for b in r] for r in rows] == [["是", "否"], ["跳过"]]
    rows = keyboard([Button("💬 申报需要提交哪些材料？", "q:0"), Button("是", "y")]).inline_keyboard
    assert [len(r) for r in rows] == [1, 1]
    assert keyboard([]) is None


def test_webhook_mode_needs_a_secret(kb, tmp_path):
    settings = Settings.load({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_URL": "https://x/telegram/webhook"},
                             env_file="")
    with pytest.raises(ConfigError):
        TelegramChannel(settings, None, Store(tmp_path / "x.db"))
    settings = Settings.load({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_URL": "https://x/telegram/webhook",
                              "TELEGRAM_WEBHOOK_SECRET": "has spaces!"}, env_file="")
    with pytest.raises(ConfigError, match="A-Z"):
        TelegramChannel(settings, None, Store(tmp_path / "x.db"))


# ---- long polling ----------------------------------------------------------------------------------
def test_start_registers_commands_and_a_question_is_answered_with_its_citation(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path) as h:
            commands = [p for m, p in h.api.calls if m == "setMyCommands"]
            names = [c["command"] for c in commands[0]["commands"]]
            assert names == ["start", "help", "ask", "check", "remind", "status", "cancel", "forget"]
            assert ("deleteWebhook" in [m for m, _ in h.api.calls])  # polling clears any webhook
            reply = await h.turn("威海复核多久一次")
            assert "第十八条" in reply["text"]
            reply = await h.turn("/help")
            assert "/check" in reply["text"] or "自测" in reply["text"]
            for command in ("/remind", "/status"):  # passed through as text, like every command
                reply = await h.turn(command)
                assert reply["text"] and "抱歉" not in reply["text"]
            assert h.store.db["questions"].count == 1
    run(scenario())


NEGATIVE = ("事故", "违法", "违规", "污染", "黑名单", "调查", "撤销", "处罚")


def _answer(question: str, buttons: dict[str, str]) -> tuple[str, str]:
    """What to do at one step of a self-check that should end eligible: ('press', label) or ('type', text)."""
    if "请核对" in question:
        return "press", "查看结论"
    if "是" in buttons and "否" in buttons:
        return "press", "否" if any(w in question for w in NEGATIVE) else "是"
    if "B" in buttons:
        return "press", "B"
    if "注册成立" in question or "哪天" in question:
        return "type", "2019-05-10"
    if "项目" in question:
        return "type", "3"
    if "服务性收入" in question or "占" in question:
        return "type", "25%"
    if "增长" in question:
        return "type", "15%"
    if "亩产" in question:
        return "type", "B"
    raise AssertionError(f"no answer for: {question}")


def test_a_self_check_driven_by_inline_buttons(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path) as h:
            msg = await h.turn("/check")
            assert "第1题" in msg["text"] and "注册" in msg["text"]
            msg = await h.turn("荣成市")
            assert "第2题" in msg["text"] and set(buttons_of(msg)) >= {"是", "否"}
            pressed, summary = [], None
            for _ in range(25):
                kind, what = _answer(msg["text"], buttons_of(msg))
                if kind == "press":
                    pressed.append(what)
                    if what == "查看结论":
                        summary = msg["text"]
                    before = len(h.api.sent_to(UID))
                    h.press(msg, what)
                    await h.api.wait_sent(before + 1, UID)
                    await asyncio.sleep(0.05)
                    msg = h.api.sent_to(UID)[-1]
                else:
                    msg = await h.turn(what)
                if summary:
                    break
            assert summary and "请核对" in summary and "荣成市" in summary
            assert len(pressed) >= 5
            everything = "\n".join(m["text"] for m in h.api.sent_to(UID))
            assert "符合申报的基本条件" in everything and "第十二条" in everything
            answered = [p for m, p in h.api.calls if m == "answerCallbackQuery"]
            assert len(answered) == len(pressed)  # every press answered
            # the order: each press is answered before the reply to it is sent
            names = [m for m, _ in h.api.calls if m in ("answerCallbackQuery", "sendMessage")]
            assert names[names.index("answerCallbackQuery") + 1] == "sendMessage"
    run(scenario())


class LongDispatcher(Dispatcher):
    """For the splitting test only: answers with ~5,000 characters in paragraphs and a button."""

    def handle_once(self, msg, key=None):
        paragraphs = [f"第{i}段：" + "申报条件说明" * 40 for i in range(1, 21)]  # 20 × ~245 characters
        return [Reply("\n\n".join(paragraphs), [Button("查看更多", "more")])], None


def test_a_long_answer_is_split_with_the_buttons_on_the_last_part(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path, dispatcher_class=LongDispatcher) as h:
            h.send_text("很长的问题")
            sent = await h.api.wait_sent(2, UID)
            await asyncio.sleep(0.1)
            sent = h.api.sent_to(UID)
            assert len(sent) == 2 and sum(len(m["text"]) for m in sent) >= 4900
            assert all(utf16_len(m["text"]) <= MAX_TEXT for m in sent)
            assert sent[0]["text"].endswith("申报条件说明") and sent[1]["text"].startswith("第")  # cut between paragraphs
            assert sent[0]["reply_markup"] is None and buttons_of(sent[1]) == {"查看更多": "more"}
    run(scenario())


def test_a_repeated_update_id_is_answered_once(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path) as h:
            update = text_update(h.api.next_update_id(), UID, "威海复核多久一次")
            h.api.queue(update)
            h.api.queue(json.loads(json.dumps(update)))  # Telegram re-serving an unconfirmed update
            await h.api.wait_sent(1, UID)
            await h.turn("谢谢")  # a later update is processed, so the duplicate had its chance
            assert sum("第十八条" in m["text"] for m in h.api.sent_to(UID)) == 1
    run(scenario())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PTB's own RetryAfter(int) in v22
def test_push_blocked_rate_limited_and_paced(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path, limits=RateLimits(chat_burst=2, chat_period=0.2, max_retries=1)) as h:
            await h.channel.push(str(UID), "提醒：复核", [Button("知道了", "ok")])
            assert h.api.sent_to(UID)[-1]["text"] == "提醒：复核"
            h.api.blocked.add(777)
            with pytest.raises(Blocked):
                await h.channel.push("777", "提醒")
            h.api.too_many[888] = [1]  # one 429: the rate limiter waits and retries
            t = time.monotonic()
            await h.channel.push("888", "提醒")
            assert time.monotonic() - t >= 1 and len(h.api.sent_to(888)) == 1
            h.api.too_many[999] = [1, 1]  # still 429 after the retry: Transient with Telegram's delay
            with pytest.raises(Transient) as caught:
                await h.channel.push("999", "提醒")
            assert caught.value.retry_after == 1
            t = time.monotonic()  # about one message per period per chat after a burst of two
            await asyncio.gather(*(h.channel.push("555", f"第{i}条") for i in range(5)))
            assert time.monotonic() - t >= 0.5
            assert [m["text"] for m in h.api.sent_to(555)] == [f"第{i}条" for i in range(5)]
    run(scenario())


# ---- webhook ---------------------------------------------------------------------------------------
def test_webhook_checks_the_secret_and_the_body(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path, webhook=True) as h:
            hooks = [p for m, p in h.api.calls if m == "setWebhook"]
            assert hooks and hooks[0]["secret_token"] == SECRET and hooks[0]["url"].endswith(WEBHOOK_PATH)
            update = text_update(h.api.next_update_id(), UID, "威海复核多久一次")
            assert (await h.post(update, secret="wrong")).status == 403
            assert (await h.post(update, secret=None)).status == 403
            assert (await h.post(b"{not json", secret=SECRET)).status == 400
            assert (await h.post(b"\xff\xfe", secret=SECRET)).status == 400
            assert (await h.post([1, 2], secret=SECRET)).status == 400
            assert (await h.post({"hello": "world"}, secret=SECRET)).status == 400
            assert (await h.post({"update_id": 5, "message": {"bogus": 1}}, secret=SECRET)).status == 400
            await asyncio.sleep(0.2)
            assert h.api.sent == [] and h.store.db["seen_messages"].count == 0
            assert h.store.db["questions"].count == 0 and h.store.db["dialog_state"].count == 0
            assert (await h.post(update)).status == 200
            assert (await h.post(update)).status == 200  # Telegram's retry of the same update
            await h.api.wait_sent(1, UID)
            await h.post(text_update(h.api.next_update_id(), UID, "谢谢"))
            await h.api.wait_sent(2, UID)
            texts = [m["text"] for m in h.api.sent_to(UID)]
            assert sum("第十八条" in t for t in texts) == 1 and len(texts) == 2
            async with h.session.get(h.url + WEBHOOK_PATH) as resp:
                assert resp.status == 405
    run(scenario())


def test_webhook_button_press(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path, webhook=True) as h:
            await h.post(text_update(h.api.next_update_id(), UID, "/check"))
            await h.post(text_update(h.api.next_update_id(), UID, "环翠区"))
            msg = (await h.api.wait_sent(2, UID))[-1]
            assert "第2题" in msg["text"]
            await h.post(callback_update(h.api.next_update_id(), UID, buttons_of(msg)["是"], msg))
            msg = (await h.api.wait_sent(3, UID))[-1]
            assert "第3题" in msg["text"]
            assert [m for m, _ in h.api.calls].count("answerCallbackQuery") == 1
    run(scenario())


def test_a_failed_send_is_logged_and_polling_goes_on(kb, tmp_path, caplog):
    async def scenario():
        async with running(kb, tmp_path) as h:
            h.api.blocked.add(31)
            h.send_text("威海复核多久一次", uid=31)
            reply = await h.turn("威海复核多久一次")  # another user, after the failed one
            assert "第十八条" in reply["text"]
    run(scenario())
    errors = [r for r in caplog.records if r.name == "bot.channels.telegram" and r.levelname == "ERROR"]
    assert errors and "Forbidden" in errors[0].getMessage()


def test_policybot_serve_runs_the_telegram_channel(kb, tmp_path):
    """bot/serve.py builds TelegramChannel from the settings, starts it, and stops it promptly."""
    import socket

    from bot import serve

    async def scenario():
        api = await StandInBotAPI(poll_wait=0.3).start()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        settings = Settings.load({"POLICYBOT_DB": str(tmp_path / "serve.db"), "POLICYBOT_PORT": str(port),
                                  "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE_URL": api.base_url}, env_file="")
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(serve.run(settings, kb, stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), 5)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert "telegram" in (await resp.json())["channels"]
            api.queue(text_update(api.next_update_id(), UID, "威海复核多久一次"))
            sent = await api.wait_sent(1, UID)
            assert "第十八条" in sent[0]["text"]
        finally:
            stop.set()
            t = time.monotonic()
            await asyncio.wait_for(task, 5)
            assert time.monotonic() - t < 3
            await api.close()
        assert api.unknown == []
    run(scenario())


def test_feedback_buttons_under_an_answer(kb, tmp_path):
    """👍/👎 are inline buttons under every answer; 👎 asks for one reason; both are stored with the question."""
    async def scenario():
        async with running(kb, tmp_path) as h:
            msg = await h.turn("威海申报需要什么条件？")
            assert {"👍 有帮助", "👎 没帮助"} <= set(buttons_of(msg))
            before = len(h.api.sent_to(UID))
            h.press(msg, "👎 没帮助")
            await h.api.wait_sent(before + 1, UID)
            await asyncio.sleep(0.05)
            asked = h.api.sent_to(UID)[-1]
            assert "哪里不对" in asked["text"] and "跳过" in buttons_of(asked)
            thanks = await h.turn("没说要交几份材料")
            assert "收到" in thanks["text"]
            rows = list(h.store.db.query("select question, feedback, feedback_reason from questions"))
            assert rows == [{"question": "威海申报需要什么条件？", "feedback": -1, "feedback_reason": "没说要交几份材料"}]
    run(scenario())


# ---- groups: state per chat and user, anonymous admins, only what is addressed to the bot ----------------
GROUP_A, GROUP_B = -1001, -1002


def test_anonymous_admins_of_two_groups_do_not_share_a_dialog(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path) as h:
            h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 0, "/check", anonymous=True))
            await h.api.wait_sent(1, GROUP_A)
            assert h.store.get_state("telegram", str(GROUP_A), str(GROUP_A)).get("check")
            h.api.queue(group_update(h.api.next_update_id(), GROUP_B, 0, "/cancel", anonymous=True))
            await h.api.wait_sent(1, GROUP_B)
            assert h.store.get_state("telegram", str(GROUP_A), str(GROUP_A)).get("check")  # A's dialog goes on
            assert h.store.get_state("telegram", "1087968824", str(GROUP_B)) == {}
            assert h.store.db["dialog_state"].count == 1
            # a member of group A has a dialog of their own, not the group's
            h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 77, "/cancel"))
            await h.api.wait_sent(2, GROUP_A)
            assert h.store.get_state("telegram", str(GROUP_A), str(GROUP_A)).get("check")
    run(scenario())


def test_in_a_group_only_commands_mentions_and_replies_to_the_bot_are_answered(kb, tmp_path):
    async def scenario():
        async with running(kb, tmp_path) as h:
            for text, kw in (("威海复核多久一次", {}), ("/help@another_bot", {})):
                h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 77, text, **kw))
            h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 77, "/help@policybot_test_bot"))
            first = await h.api.wait_sent(1, GROUP_A)
            await asyncio.sleep(0.3)
            assert len(h.api.sent_to(GROUP_A)) == 1 and first[0]["text"].startswith("您好")
            assert h.store.db["questions"].count == 0
            h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 77, "威海复核多久一次", mention=True))
            answers = await h.api.wait_sent(2, GROUP_A)
            assert "第十八条" in answers[-1]["text"]
            h.api.queue(group_update(h.api.next_update_id(), GROUP_A, 77, "包头呢", reply_to_bot=True))
            answers = await h.api.wait_sent(3, GROUP_A)
            assert h.store.db["questions"].count == 2
    run(scenario())


def test_an_update_handled_before_a_crash_gets_its_recorded_reply_once(kb, tmp_path):
    from handlers.message import Incoming

    async def scenario():
        async with running(kb, tmp_path) as h:
            update_id = h.api.next_update_id()
            # the previous process handled it and committed, then died before sendMessage
            h.channel.dispatcher.handle_once(Incoming("telegram", str(UID), "威海复核多久一次", chat_id=str(UID)),
                                             f"u{update_id}")
            assert h.store.db["questions"].count == 1
            update = text_update(update_id, UID, "威海复核多久一次")
            h.api.queue(update)  # Telegram serves it again: the recorded reply goes out, nothing is redone
            sent = await h.api.wait_sent(1, UID)
            assert "第十八条" in sent[0]["text"] and h.store.db["questions"].count == 1
            h.api.queue(json.loads(json.dumps(update)))  # and once sent, a further repeat is dropped
            await h.turn("谢谢")
            assert sum("第十八条" in m["text"] for m in h.api.sent_to(UID)) == 1


def test_a_follow_up_over_telegram_resolves_against_the_previous_question(kb, tmp_path):
    """那包头呢 and 有时间限制吗 on Telegram read as the chat's previous question asked again (the same handlers)."""
    async def scenario():
        async with running(kb, tmp_path) as h:
            reply = await h.turn("威海的企业改了名字需要备案吗")
            assert "第二十一条" in reply["text"]
            reply = await h.turn("有时间限制吗")
            assert "30个工作日" in reply["text"] and "第二十一条" in reply["text"] and "包头" not in reply["text"]
            reply = await h.turn("那包头呢")
            assert "第十三条" in reply["text"] and "第二十一条" not in reply["text"]
            state = h.store.get_state("telegram", str(UID))
            assert state["last"]["city"] == "baotou" and state["last"]["topic"] == "filing"
    run(scenario())
