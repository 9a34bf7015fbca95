"""Telegram: python-telegram-bot's Application carries the updates; this module only translates.

A text message or a pressed inline button becomes one `Incoming`; the dispatcher's replies come back as
messages (split under Telegram's 4096-character limit, the buttons as an inline keyboard on the last
part). Dialog state lives in our SQLite, never in PTB (no ConversationHandler, no persistence), so a
restarted process resumes every conversation.

Two ways in, one path through PTB:
- long polling (default): PTB's Updater fetches getUpdates into `application.update_queue`;
- webhook (TELEGRAM_WEBHOOK_URL set): Telegram POSTs to `/telegram/webhook` on our own aiohttp server
  (`bot/serve.py`); the route checks the secret-token header, parses the update and puts it on the same
  queue. `start()` registers the webhook with that secret.
Either way `Application.start()` processes the queue: updates of different chats concurrently, those
of one chat in order (a lock per chat). An update is handled once per update_id: its replies are recorded
in the transaction that records what it changed, and a repeat gets them if they were not sent yet.

Groups: only commands (for this bot), messages mentioning it and replies to it are handled; dialog
state is per chat and user, and an anonymous admin counts as the group it speaks for (`sender_id`).

Rate limits: `ChatRateLimiter` is PTB's AIORateLimiter (30 messages/s overall, 20/min per group, retries
after a RetryAfter) plus about one message per second per private chat, with a small burst.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, ContextTypes,
                          MessageHandler, filters)

from bot.channels.base import Blocked, DeliveryError, RefusalLog, Transient
from bot.config import ConfigError, Settings
from bot.runtime import Dispatcher
from bot.storage import Store
from handlers.message import Button, Incoming, Reply

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_FORM = re.compile(r"[A-Za-z0-9_-]{1,256}")
MAX_TEXT = MessageLimit.MAX_TEXT_LENGTH  # 4096, counted here in UTF-16 code units, as Telegram does
ALLOWED_UPDATES = ["message", "callback_query"]
COMMANDS = [
    ("start", "开始使用，查看功能介绍"),
    ("help", "帮助：我能做什么"),
    ("ask", "政策问答，例如 /ask {example}"),
    ("check", "申报条件自测"),
    ("remind", "订阅复核、备案等期限提醒"),
    ("status", "查看我的提醒"),
    ("cancel", "取消当前操作"),
    ("forget", "删除我的全部数据"),
]


def commands(kb) -> list[tuple[str, str]]:
    """The command menu, its example naming a city the knowledge base holds."""
    from handlers.help import ask_example
    example = ask_example(kb) if kb is not None else "申报需要什么条件"
    return [(c, d.format(example=example)) for c, d in COMMANDS]


TEXT_ONLY = "目前只能处理文字消息，请直接输入您的问题，或发送 /help 查看用法。"
SHORT_LABEL = 8  # labels up to this many characters go two to a row
BODY_SECONDS = 10.0  # a webhook body trickled in slower than this is cut off (408)


@dataclass(frozen=True)
class RateLimits:
    """Outgoing limits (Telegram's: ~30 messages/s per bot, 20/min per group, ~1/s per chat)."""
    overall_per_second: float = 30
    group_per_minute: float = 20
    chat_burst: float = 3  # a private chat may get this many messages at once, then one per `chat_period`
    chat_period: float = 1.0
    max_retries: int = 2  # retries after a RetryAfter, waiting as long as Telegram says


class ChatRateLimiter(AIORateLimiter):
    """AIORateLimiter plus a leaky bucket per private chat (AIORateLimiter only limits groups)."""

    def __init__(self, limits: RateLimits):
        super().__init__(overall_max_rate=limits.overall_per_second, overall_time_period=1 if limits.overall_per_second else 0,
                         group_max_rate=limits.group_per_minute, group_time_period=60 if limits.group_per_minute else 0,
                         max_retries=limits.max_retries)
        self._limits = limits
        self._chats: dict[int, Any] = {}

    def _chat_limiter(self, chat_id: int):
        from aiolimiter import AsyncLimiter
        if len(self._chats) > 4096:  # forget idle chats now and then
            for key, limiter in list(self._chats.items()):
                if limiter.has_capacity(limiter.max_rate):
                    del self._chats[key]
        if chat_id not in self._chats:
            self._chats[chat_id] = AsyncLimiter(self._limits.chat_burst, self._limits.chat_burst * self._limits.chat_period)
        return self._chats[chat_id]

    async def process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        chat_id = data.get("chat_id")
        if self._limits.chat_burst and isinstance(chat_id, int) and chat_id > 0:
            async with self._chat_limiter(chat_id):
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


# ---- rendering: pure functions ----------------------------------------------------------------------
def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """The longest prefix of `text` (in characters) that is at most `limit` UTF-16 units."""
    if utf16_len(text) <= limit:
        return len(text)
    units = 0
    for i, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return i
    return len(text)


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` units: cut at the last blank line, else the last line end, else hard."""
    parts: list[str] = []
    rest = text.strip("\n")
    while utf16_len(rest) > limit:
        window = rest[:_fit(rest, limit)]
        cut = window.rfind("\n\n")
        if cut <= 0:
            cut = window.rfind("\n")
        if cut <= 0:
            cut = len(window)
        parts.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    parts.append(rest)
    return [p for p in parts if p.strip()]


def keyboard(buttons: list[Button]) -> InlineKeyboardMarkup | None:
    """One or two buttons a row: two short labels share a row, a long one has its own."""
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    pending: list[InlineKeyboardButton] = []
    for b in buttons:
        button = InlineKeyboardButton(b.label, callback_data=b.data)
        if len(b.label) > SHORT_LABEL:
            if pending:
                rows.append(pending)
                pending = []
            rows.append([button])
            continue
        pending.append(button)
        if len(pending) == 2:
            rows.append(pending)
            pending = []
    if pending:
        rows.append(pending)
    return InlineKeyboardMarkup(rows)


def render(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """One reply as the messages to send: (text, keyboard), the keyboard on the last part only."""
    parts = split_text(reply.text) or (["请选择："] if reply.buttons else [])
    markup = keyboard(reply.buttons)
    return [(p, markup if i == len(parts) - 1 else None) for i, p in enumerate(parts)]


def base_file_url(base_url: str) -> str:
    """The file URL matching a Bot API base URL: `…/bot` → `…/file/bot`."""
    if base_url.endswith("/bot"):
        return base_url[: -len("/bot")] + "/file/bot"
    return base_url.rstrip("/") + "/file/bot"


# ---- the channel ------------------------------------------------------------------------------------
class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: Settings, dispatcher: Dispatcher, store: Store, *,
                 limits: RateLimits = RateLimits(), poll_timeout: float = 10):
        if not settings.telegram_token:
            raise ConfigError("TELEGRAM_BOT_TOKEN is not set")
        self.webhook_url = settings.telegram_webhook_url
        self.secret = settings.telegram_webhook_secret
        if self.webhook_url and not self.secret:
            raise ConfigError("Telegram webhook mode needs TELEGRAM_WEBHOOK_SECRET, so that forged updates are refused")
        if self.webhook_url and not SECRET_FORM.fullmatch(self.secret):
            raise ConfigError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        self.dispatcher = dispatcher
        self.store = store
        self.poll_timeout = poll_timeout
        builder = (ApplicationBuilder().token(settings.telegram_token)
                   .rate_limiter(ChatRateLimiter(limits))
                   .concurrent_updates(64)  # different chats in parallel; one chat in order (_chat_lock)
                   .job_queue(None))  # reminders live in SQLite (bot/reminders.py), not in PTB's JobQueue
        if settings.telegram_api_base_url:
            base = settings.telegram_api_base_url.rstrip("/")
            builder = builder.base_url(base).base_file_url(base_file_url(base))
        if self.webhook_url:
            builder = builder.updater(None)
        self.app: Application = builder.build()
        self.app.add_handler(CallbackQueryHandler(self._on_callback))
        self.app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_text))
        self.app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.ChatType.PRIVATE & ~filters.TEXT,
                                            self._on_other))
        self.app.add_error_handler(self._on_error)
        self._locks: dict[int, list] = {}  # chat id -> [lock, users]
        self.refusals = RefusalLog(self.name)
        self._started = False

    # ---- Channel protocol ----
    def routes(self) -> list[web.RouteDef]:
        return [web.post(WEBHOOK_PATH, self._webhook)] if self.webhook_url else []

    async def start(self) -> None:
        await self.app.initialize()  # getMe: a wrong token or base URL fails here, loudly
        try:
            await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in commands(self.dispatcher.kb)])
        except TelegramError:
            log.exception("telegram: set_my_commands failed; the command menu may be out of date")
        if self.webhook_url:
            await self.app.bot.set_webhook(self.webhook_url, secret_token=self.secret, allowed_updates=ALLOWED_UPDATES)
        else:
            await self.app.updater.start_polling(timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES)
        await self.app.start()
        self._started = True
        log.warning("telegram: @%s via %s", self.app.bot.username, "webhook" if self.webhook_url else "long polling")

    async def stop(self) -> None:
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        self._started = False

    async def push(self, user_id: str, text: str, buttons: list[Button] | None = None) -> None:
        try:
            chat_id = int(user_id)
        except ValueError:
            raise Blocked(f"not a Telegram user id: {user_id!r}") from None
        try:
            await self._send(chat_id, [Reply(text, list(buttons or []))])
        except Forbidden as e:  # blocked the bot, deactivated
            raise Blocked(str(e)) from e
        except RetryAfter as e:
            raise Transient(str(e), retry_after=_seconds(e)) from e
        except BadRequest as e:  # a BadRequest is a NetworkError in PTB: test it first
            if "chat not found" in e.message.lower() or "user not found" in e.message.lower():
                raise Blocked(str(e)) from e
            raise DeliveryError(str(e)) from e
        except NetworkError as e:  # TimedOut included
            raise Transient(str(e)) from e
        except TelegramError as e:
            raise DeliveryError(str(e)) from e

    # ---- webhook ----
    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not (self.secret and hmac.compare_digest(given.encode(), self.secret.encode())):
            return self._refuse(403, "forbidden", "bad secret token")
        try:
            data = json.loads(await asyncio.wait_for(request.read(), BODY_SECONDS))
        except asyncio.TimeoutError:
            return self._refuse(408, "too slow", "body too slow")
        except (ValueError, UnicodeDecodeError):
            return self._refuse(400, "not JSON", "not JSON")
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "too large", "body too large")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return self._refuse(400, "not a Telegram update", "not a Telegram update")
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception:  # noqa: BLE001 - a malformed update is the sender's problem, not a 500
            return self._refuse(400, "malformed update", "malformed update")
        await self.app.update_queue.put(update)
        return web.json_response({"ok": True})

    def _refuse(self, status: int, text: str, reason: str) -> web.Response:
        self.refusals.add(f"{status} {reason}")
        return web.Response(status=status, text=text)

    # ---- PTB handlers: translate, dispatch, render ----
    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if not message or not (message.from_user or message.sender_chat):
            return
        text = message.text or ""
        if message.chat.type != "private":
            text = self._addressed(message)
            if text is None:  # group talk not meant for the bot: not read, not stored
                return
        incoming = Incoming(self.name, sender_id(message), text=text, chat_id=str(message.chat_id),
                            message_id=str(message.message_id))
        async with self._chat_lock(message.chat_id):
            await self._dispatch(update.update_id, message.chat_id, incoming)

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if not query:
            return
        chat_id = query.message.chat.id if query.message else query.from_user.id
        async with self._chat_lock(chat_id):
            try:
                await query.answer()  # stops the button's spinner; the answer itself comes as a message
            except TelegramError as e:  # too old a query: still handle the press
                log.info("telegram: answerCallbackQuery failed: %s", e)
            await self._dispatch(update.update_id, chat_id, Incoming(
                self.name, str(query.from_user.id), text="", callback=query.data or "", chat_id=str(chat_id),
                message_id=str(query.message.message_id) if query.message else None))

    async def _dispatch(self, update_id: int, chat_id: int, incoming: Incoming) -> None:
        """Handle once per update_id: the replies are recorded with what the message changed, sent, then
        marked sent. An update delivered again (a restart before Telegram saw our offset) gets the recorded
        replies if they were not sent yet, and nothing if they were."""
        key = f"u{update_id}"
        replies, status = self.dispatcher.handle_once(incoming, key)
        if status == "sent":
            log.info("telegram: update %s seen before, ignored", update_id)
            return
        await self._send(chat_id, replies)
        self.dispatcher.delivered(self.name, key)

    def _addressed(self, message) -> str | None:
        """In a group, the text of a command for this bot, a message mentioning it, or a reply to it
        (the mention taken out); None for anything else."""
        text = message.text or ""
        me = (self.app.bot.username or "").lower()
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            target = command.partition("@")[2].lower()
            return text if not target or target == me else None
        reply_to = message.reply_to_message
        if reply_to and reply_to.from_user and reply_to.from_user.id == self.app.bot.id:
            return text
        if me:
            for entity in message.entities or ():
                if entity.type == "mention":
                    mention = message.parse_entity(entity)
                    if mention.lower() == "@" + me:
                        rest = (text.replace(mention, " ", 1)).strip(" ,，:：")
                        return rest or "/help"
        return None

    async def _on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message and self.store.first_time(self.name, f"u{update.update_id}"):
            await self._send(update.message.chat_id, [Reply(TEXT_ONLY)])

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        uid = update.update_id if isinstance(update, Update) else None
        log.error("telegram: error on update %s: %r", uid, context.error, exc_info=context.error)

    # ---- helpers ----
    async def _send(self, chat_id: int, replies: list[Reply]) -> None:
        for reply in replies:
            for text, markup in render(reply):
                await self.app.bot.send_message(chat_id, text, reply_markup=markup)

    @contextlib.asynccontextmanager
    async def _chat_lock(self, chat_id: int) -> AsyncIterator[None]:
        entry = self._locks.setdefault(chat_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._locks[chat_id]


def sender_id(message) -> str:
    """Who wrote a message, as its dialog knows them: the user, or, for an anonymous group admin (Telegram
    shows them all as one user, GroupAnonymousBot) and a channel posting in a group, the chat they speak for."""
    if message.sender_chat is not None:
        return str(message.sender_chat.id)
    return str(message.from_user.id)


def _seconds(e: RetryAfter) -> float:
    value = getattr(e, "_retry_after", None)  # a timedelta; the public attribute warns about its type in v22
    if value is None:
        value = e.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)
