"""A stand-in Telegram Bot API server on loopback, for the Telegram tests and the benchmark.

It speaks enough of the Bot API for python-telegram-bot's Application: getMe, getUpdates (serves the
queued updates whose id is at least `offset`; a short long-poll), sendMessage (recorded; can answer
403 or 429 for a chat), answerCallbackQuery, setMyCommands, setWebhook, deleteWebhook, close, logOut.
Unknown methods are logged and recorded in `unknown`, and answered `true`.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time

from aiohttp import web

log = logging.getLogger(__name__)
TOKEN = "123456:TEST-token"
BOT = {"id": 123456, "is_bot": True, "first_name": "政策助手", "username": "policybot_test_bot",
       "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
JSON_PARAMS = {"chat_id", "reply_markup", "allowed_updates", "commands", "offset", "timeout", "limit",
               "drop_pending_updates", "show_alert", "cache_time"}


class StandInBotAPI:
    def __init__(self, poll_wait: float = 0.5):
        self.poll_wait = poll_wait
        self.pending: list[dict] = []  # updates not yet confirmed by an offset
        self.sent: list[dict] = []  # sendMessage calls that succeeded
        self.calls: list[tuple[str, dict]] = []  # every call but getUpdates
        self.unknown: list[str] = []
        self.blocked: set[int] = set()  # chats answering 403
        self.too_many: dict[int, list[int]] = {}  # chat -> retry_after values still to answer with 429
        self._new_update = asyncio.Event()
        self._new_message = asyncio.Event()
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> "StandInBotAPI":
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    # ---- what tests do ----
    def next_update_id(self) -> int:
        return next(self._update_ids)

    def queue(self, update: dict) -> dict:
        self.pending.append(update)
        self._new_update.set()
        return update

    def sent_to(self, chat_id: int) -> list[dict]:
        return [m for m in self.sent if m["chat_id"] == chat_id]

    async def wait_sent(self, count: int, chat_id: int | None = None, timeout: float = 5) -> list[dict]:
        """Waits until `count` messages were sent (to `chat_id`, if given); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.sent if chat_id is None else self.sent_to(chat_id)
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"expected {count} messages, got {len(got)}: {[m['text'][:40] for m in got]}")
            self._new_message.clear()
            try:
                await asyncio.wait_for(self._new_message.wait(), left)
            except asyncio.TimeoutError:
                pass

    # ---- the Bot API ----
    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await self._params(request)
        if method.lower() != "getupdates":
            self.calls.append((method, params))
        handler = getattr(self, "_m_" + method.lower(), None)
        if handler is None:
            log.warning("stand-in Bot API: unknown method %s %s", method, params)
            self.unknown.append(method)
            return self._ok(True)
        return await handler(params)

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            return await request.json()
        form = await request.post()
        out = {}
        for key, value in form.items():
            if key in JSON_PARAMS and isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            out[key] = value
        return out

    @staticmethod
    def _ok(result) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(code: int, description: str, **parameters) -> web.Response:
        body = {"ok": False, "error_code": code, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=code)

    async def _m_getme(self, params):
        return self._ok(BOT)

    async def _m_getupdates(self, params):
        offset = int(params.get("offset") or 0)
        if offset:
            self.pending = [u for u in self.pending if u["update_id"] >= offset]
        timeout = float(params.get("timeout") or 0)
        if not self.pending and timeout:
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), min(timeout, self.poll_wait))
            except asyncio.TimeoutError:
                pass
        limit = int(params.get("limit") or 100)
        return self._ok(self.pending[:limit])

    async def _m_sendmessage(self, params):
        chat_id = int(params["chat_id"])
        text = params.get("text") or ""
        if chat_id in self.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if self.too_many.get(chat_id):
            return self._error(429, "Too Many Requests: retry after", retry_after=self.too_many[chat_id].pop(0))
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return self._error(400, "Bad Request: message is too long")
        message = {"message_id": next(self._ids), "date": int(time.time()), "text": text,
                   "chat": {"id": chat_id, "type": "private", "first_name": "用户"}, "from": BOT}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.sent.append({"chat_id": chat_id, "text": text, "reply_markup": params.get("reply_markup"),
                          "message_id": message["message_id"]})
        self._new_message.set()
        return self._ok(message)

    async def _m_answercallbackquery(self, params):
        return self._ok(True)

    async def _m_setmycommands(self, params):
        return self._ok(True)

    async def _m_setwebhook(self, params):
        return self._ok(True)

    async def _m_deletewebhook(self, params):
        return self._ok(True)

    async def _m_close(self, params):
        return self._ok(True)


# ---- updates as Telegram sends them ----
def user(uid: int) -> dict:
    return {"id": uid, "is_bot": False, "first_name": "测试", "language_code": "zh-hans"}


def text_update(update_id: int, uid: int, text: str, message_id: int = 1) -> dict:
    msg = {"message_id": message_id, "date": int(time.time()), "chat": {"id": uid, "type": "private", "first_name": "测试"},
           "from": user(uid), "text": text}
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": msg}


def callback_update(update_id: int, uid: int, data: str, message: dict | None = None) -> dict:
    query = {"id": f"cq{update_id}", "from": user(uid), "chat_instance": "ci1", "data": data}
    if message:
        query["message"] = {"message_id": message["message_id"], "date": int(time.time()), "text": message["text"],
                            "chat": {"id": message["chat_id"], "type": "private", "first_name": "测试"}, "from": BOT}
    return {"update_id": update_id, "callback_query": query}


def buttons_of(message: dict) -> dict[str, str]:
    """label -> callback_data of a sent message's inline keyboard."""
    markup = message.get("reply_markup") or {}
    return {b["text"]: b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row}


ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: every anonymous admin of every group


def group_update(update_id: int, group_id: int, uid: int, text: str, *, anonymous: bool = False,
                 reply_to_bot: bool = False, mention: bool = False, message_id: int = 1) -> dict:
    """A message in a group: from a user, or from an anonymous admin (from GroupAnonymousBot, sender_chat the
    group); optionally a reply to one of the bot's messages, or mentioning the bot (@policybot_test_bot …)."""
    chat = {"id": group_id, "type": "supergroup", "title": f"群{group_id}"}
    if mention:
        text = f"@{BOT['username']} {text}"
    msg = {"message_id": message_id, "date": int(time.time()), "chat": chat, "text": text,
           "from": {"id": ANONYMOUS_ADMIN, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
           if anonymous else user(uid)}
    if anonymous:
        msg["sender_chat"] = chat
    if text.startswith("/"):
        msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if mention:
        msg["entities"] = [{"type": "mention", "offset": 0, "length": len(BOT["username"]) + 1}]
    if reply_to_bot:
        msg["reply_to_message"] = {"message_id": 999, "date": int(time.time()), "chat": chat, "from": BOT,
                                   "text": "上一条回答"}
    return {"update_id": update_id, "message": msg}
