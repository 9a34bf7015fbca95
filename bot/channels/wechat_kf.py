"""微信客服 (WeCom customer service): any WeChat user chats with the bot, no WeCom account needed.

The path of a message: WeCom posts an encrypted `kf_msg_or_event` event to `/wecom/callback` (the WeCom
channel checks and decrypts it, exactly like its own callbacks, and hands us its `Token` and `OpenKfId`) →
`kf/sync_msg` from the cursor kept in SQLite (`kf_cursors`, one per account), page by page → each message
handled once → replies through `kf/send_msg`.

Exactly once: handling a message is one SQLite transaction: its msgid recorded as handled (`kf_messages`),
the dialog core's state and events (the dispatcher, the same path as every channel), and the replies
queued in `kf_outbox`. Then the queue is sent, each row marked sent or dropped. A crash before the commit
leaves nothing: the message is read again (the cursor is saved only after a page is handled) and handled
then; a crash after it leaves the replies queued, sent at the next start. So a message is never answered
twice, and an answer is lost only in the instant between WeCom's acknowledgement and our update of the row.

What is handled (`origin` 3, the customer): text, and menu clicks (a text with `menu_id`, which carries the
pressed button's data); other kinds get one short note. Events (`origin` 4): `enter_session` gets the welcome
through `kf/send_msg_on_event` with its `welcome_code` (valid 20 s, once), and its `scene_param` (or the
link's `scene`) preselects the city, resolved through the knowledge base (`policybot kf link --city`
makes such a link). Messages of the receptionists (`origin` 5) and other events are skipped.

Replies: all replies of one turn become one text (cut at line ends into pieces of at most 2048 bytes); the
buttons become a `msgmenu` (at most 10 `click` items; the head holds the last piece when it fits 1024
bytes). WeCom lets us send at most 5 messages within 48 hours of the customer's last message: the sent rows
since that message are counted (`kf_outbox`), and what would exceed it is merged (the menu goes, its text
stays) or dropped with one log line. A refusal (95001 quota, 95018 session taken over …) drops the rest of
that customer's queue with one log line; a network error leaves it queued for the next message or start.
Nothing is retried in a loop.

Reminders: `push` sends only within the window and quota, else raises `Deferred`; the reminder then waits
(`reminders due` shows it as "no channel: phone them") and goes out with the reply to the customer's next
message ("您有1条待查看的提醒"). The dialog core learns the window from the dispatcher's `capabilities`.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import re
import time

from bot.channels.base import BackgroundTasks, Blocked, Deferred, Transient
from bot.channels.wecom_api import KfRefused, WecomApi, split_text
from bot.config import Settings
from bot.runtime import Dispatcher
from bot.storage import Store
from handlers.message import Button, Incoming, Reply

log = logging.getLogger(__name__)

NAME = "wechat_kf"
WINDOW = 48 * 3600  # seconds after the customer's last message in which we may write
QUOTA = 5  # messages within that window
TEXT_LIMIT = 2048  # bytes of a text message
MENU_HEAD_LIMIT = 1024  # bytes of a msgmenu's head_content
MENU_ITEMS = 10
MENU_ID_LIMIT = 64  # bytes of a click item's id (our button data is at most 64 bytes anyway)
MENU_LABEL_LIMIT = 128  # bytes of a click item's content
WELCOME_VALID = 20  # seconds a welcome_code can be used
MAX_PAGES = 100  # pages of one sync (1000 messages each), so that a bad cursor cannot loop for ever
MAX_ATTEMPTS = 3  # a queued reply failing this many times (network) is dropped
CUSTOMER, EVENT = 3, 4
UNSUPPORTED = "目前只能处理文字消息，请直接输入您的问题，或回复“自测”开始申报条件自测。"
_SCENE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def text_message(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


def menu_message(head: str, buttons: list[Button], tail: str = "") -> dict:
    items = [{"type": "click", "click": {"id": b.data, "content": _cut(b.label, MENU_LABEL_LIMIT)}}
             for b in buttons if b.data and _bytes(b.data) <= MENU_ID_LIMIT and b.label][:MENU_ITEMS]
    menu = {"head_content": _cut(head, MENU_HEAD_LIMIT), "list": items}
    if tail:
        menu["tail_content"] = _cut(tail, MENU_HEAD_LIMIT)
    return {"msgtype": "msgmenu", "msgmenu": menu}


def render(replies: list[Reply]) -> list[dict]:
    """The replies of one turn as 微信客服 messages: text pieces, the buttons as a menu at the end."""
    text = "\n\n".join(r.text for r in replies if r.text)
    buttons = [b for r in replies for b in r.buttons]
    pieces = split_text(text, TEXT_LIMIT) if text else []
    if not buttons:
        return [text_message(p) for p in pieces if p]
    if pieces and _bytes(pieces[-1]) <= MENU_HEAD_LIMIT:
        return [text_message(p) for p in pieces[:-1]] + [menu_message(pieces[-1], buttons)]
    return [text_message(p) for p in pieces] + [menu_message("请选择：", buttons)]


def fit(messages: list[dict], room: int) -> tuple[list[dict], int]:
    """At most `room` messages: a menu with text in its head becomes that text (the items go), then what
    still does not fit is left off. Returns (messages, how many were left off)."""
    if len(messages) <= room:
        return messages, 0
    out = []
    for m in messages:
        if m["msgtype"] == "msgmenu":
            head = m["msgmenu"].get("head_content", "")
            if head and head != "请选择：":
                out.append(text_message(head))
            continue
        out.append(m)
    merged: list[dict] = []  # neighbouring texts that fit one message together
    for m in out:
        if merged and _bytes(merged[-1]["text"]["content"]) + 2 + _bytes(m["text"]["content"]) <= TEXT_LIMIT:
            merged[-1] = text_message(merged[-1]["text"]["content"] + "\n\n" + m["text"]["content"])
        else:
            merged.append(m)
    kept = merged[:max(0, room)]
    return kept, len(merged) - len(kept)


def message_text(message: dict) -> str:
    if message.get("msgtype") == "msgmenu":
        menu = message["msgmenu"]
        return "\n".join([menu.get("head_content", "")] + [i["click"]["content"] for i in menu.get("list", [])])
    return (message.get("text") or {}).get("content", "")


class WechatKfChannel:
    name = NAME

    def __init__(self, settings: Settings, dispatcher: Dispatcher, store: Store, api: WecomApi, kb=None):
        self.settings, self.dispatcher, self.store, self.api = settings, dispatcher, store, api
        self.kb = kb if kb is not None else getattr(dispatcher, "kb", None)
        self.clock = time.time
        self._sync_locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._send_locks: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._again: set[str] = set()
        self._tokens: dict[str, str] = {}  # the newest callback Token per account (valid 10 minutes)
        self._tasks = BackgroundTasks(log, "微信客服 background task")
        if dispatcher is not None and hasattr(dispatcher, "capabilities"):
            dispatcher.capabilities[NAME] = {"push_window_hours": WINDOW // 3600}

    # ---- Channel protocol -----------------------------------------------------------------------------
    def routes(self) -> list:
        return []  # the callback arrives on /wecom/callback (bot/channels/wecom.py)

    async def start(self) -> None:
        """After a restart: send what was queued, and read what arrived while we were down."""
        self._background(self._resume())

    async def stop(self) -> None:
        await self._tasks.cancel_all()

    async def push(self, user_id: str, text: str, buttons: list[Button] | None = None) -> None:
        """A message outside a turn (a reminder): only within the customer's window and quota, else `Deferred`."""
        async with self._send_locks[user_id]:
            customer = self.store.kf_customer(user_id)
            room = self._room(customer) - len(self.store.kf_pending(user_id))
            messages, left_off = fit(render([Reply(text, list(buttons or []))]), room)
            if not messages or left_off:
                raise Deferred("outside the customer's 48-hour window or its 5 messages")
            for message in messages:
                try:
                    await self.api.kf_send_msg(user_id, customer["open_kfid"], message)
                except KfRefused as exc:
                    log.warning("微信客服 push refused: %s", exc)
                    raise Deferred(str(exc)) from None
                with self.store.transaction():
                    self.store.kf_queue(user_id, customer["open_kfid"], "push", [(message, [])], status="sent",
                                        sent_at=self.clock())

    # ---- the callback's event ------------------------------------------------------------------------
    def notify(self, token: str, open_kfid: str) -> None:
        """A `kf_msg_or_event` arrived (already verified): read that account's new messages."""
        if not open_kfid or len(open_kfid) > 64:
            log.warning("微信客服 event without a usable OpenKfId: ignored")
            return
        self._background(self.sync(open_kfid, token))

    async def sync(self, open_kfid: str, token: str = "") -> int:
        """Read and handle every new message of one account; returns how many were handled. One sync per
        account at a time: an event arriving meanwhile makes the running one read once more."""
        if token:
            self._tokens[open_kfid] = token
        lock = self._sync_locks[open_kfid]
        if lock.locked():
            self._again.add(open_kfid)
            return 0
        handled = 0
        async with lock:
            while True:
                self._again.discard(open_kfid)
                handled += await self._sync_once(open_kfid, self._tokens.pop(open_kfid, ""))
                if open_kfid not in self._again:
                    return handled

    async def _sync_once(self, open_kfid: str, token: str) -> int:
        handled = 0
        cursor = self.store.kf_cursor(open_kfid)
        for _ in range(MAX_PAGES):
            try:
                page = await self.api.kf_sync_msg(open_kfid, cursor, token)
            except KfRefused as exc:
                if token and exc.errcode in (95007, 95008):  # the callback's token expired: read without it
                    token = ""
                    continue
                log.warning("微信客服 sync_msg refused: %s", exc)
                return handled
            except Transient as exc:
                log.warning("微信客服 sync_msg failed: %s", exc)
                return handled
            for msg in page.get("msg_list") or []:
                try:
                    if await self._handle(msg, open_kfid):
                        handled += 1
                except Exception:  # noqa: BLE001 - one bad message must not stop the others
                    log.exception("微信客服 message could not be handled")
            next_cursor = str(page.get("next_cursor") or "")
            if next_cursor and next_cursor != cursor:
                cursor = next_cursor
                self.store.kf_set_cursor(open_kfid, cursor)
            elif not self.store.kf_cursor(open_kfid):
                self.store.kf_set_cursor(open_kfid, cursor)  # remember the account for the next start
            if not page.get("has_more") or not next_cursor:
                return handled
        log.warning("微信客服 sync of %s stopped after %d pages", open_kfid, MAX_PAGES)
        return handled

    # ---- one message ---------------------------------------------------------------------------------
    async def _handle(self, msg: dict, open_kfid: str) -> bool:
        if not isinstance(msg, dict) or not msg.get("msgid"):
            return False
        msgid = str(msg["msgid"])
        origin = msg.get("origin")
        if origin == CUSTOMER:
            return await self._customer_message(msg, msgid, open_kfid)
        if origin == EVENT and msg.get("msgtype") == "event":
            event = msg.get("event") if isinstance(msg.get("event"), dict) else {}
            kind = event.get("event_type")
            if kind == "enter_session":
                return await self._enter_session(event, msgid, msg, open_kfid)
            if kind == "msg_send_fail":
                log.warning("微信客服 reports a message not delivered (fail_type %s)", event.get("fail_type"))
        return False

    async def _customer_message(self, msg: dict, msgid: str, open_kfid: str) -> bool:
        user = str(msg.get("external_userid") or "")
        if not user:
            return False
        sent_at = _number(msg.get("send_time")) or self.clock()
        kfid = str(msg.get("open_kfid") or open_kfid)
        too_old = self.clock() - sent_at > WINDOW
        if msg.get("msgtype") == "text" and isinstance(msg.get("text"), dict):
            content = str(msg["text"].get("content") or "")
            menu_id = str(msg["text"].get("menu_id") or "")
            incoming = Incoming(NAME, user, "" if menu_id else content, callback=menu_id or None, message_id=msgid)
        else:
            incoming = None
        with self.store.transaction():
            if not self.store.kf_first_time(msgid):
                return False
            if too_old:  # read after a long outage: no reply is possible any more
                log.warning("微信客服 message older than 48 hours skipped")
                return True
            self.store.kf_customer_wrote(user, kfid, sent_at)
            replies = self.dispatcher.handle(incoming) if incoming else [Reply(UNSUPPORTED)]
            answer = render(replies)
            waiting = self.store.waiting_reminders(NAME, user)
            reminders = self._waiting_messages(waiting) if waiting else []
            room = self._room(self.store.kf_customer(user)) - len(self.store.kf_pending(user))
            fitted, left_off = fit(answer, room)
            queued = [(m, []) for m in fitted]
            if len(queued) + len(reminders) <= room:
                queued += reminders  # else the reminders wait for the next message
            if left_off:
                log.warning("微信客服 reply cut to the 5-message quota: %d message(s) left off", left_off)
            self.store.kf_queue(user, kfid, msgid, queued)
        await self.flush(user)
        return True

    def _waiting_messages(self, waiting: list[dict]) -> list[tuple[dict, list[int]]]:
        from bot.reminders import compose
        today = dt.datetime.fromtimestamp(self.clock(), dt.timezone(dt.timedelta(hours=8))).date()
        texts = []
        for r in waiting:
            measure = self.kb.measures.get(r["city"]) if self.kb is not None else None
            text, late = compose(r, measure, today)
            if late:  # its "系统暂停" note does not apply: it waited for the customer, as they were told
                text = text.split("\n", 1)[-1]
            texts.append(text)
        body = f"您有{len(waiting)}条待查看的提醒：\n\n" + "\n\n".join(texts)
        pieces = split_text(body, TEXT_LIMIT)
        ids = [r["id"] for r in waiting]
        # the reminders count as delivered with the last piece
        return [(text_message(p), ids if i == len(pieces) - 1 else []) for i, p in enumerate(pieces)]

    def _room(self, customer: dict | None) -> int:
        """How many messages may still be sent to this customer now (0 outside the window)."""
        if not customer or not customer.get("last_msg_at"):
            return 0
        last = float(customer["last_msg_at"])
        if self.clock() - last >= WINDOW:
            return 0
        return max(0, QUOTA - self.store.kf_sent_since(customer["external_userid"], last))

    async def flush(self, user: str) -> int:
        """Send this customer's queued replies, within the window and quota; returns how many went out."""
        sent = 0
        async with self._send_locks[user]:
            rows = self.store.kf_pending(user)
            customer = self.store.kf_customer(user)
            for i, row in enumerate(rows):
                if self._room(customer) <= 0:
                    for rest in rows[i:]:
                        self.store.kf_mark(rest["id"], "dropped", "outside the window or quota")
                    log.warning("微信客服: %d queued message(s) dropped: outside the 48-hour window or its 5 messages",
                                len(rows) - i)
                    break
                message = json.loads(row["body"])
                try:
                    await self.api.kf_send_msg(user, row["open_kfid"], message, msgid=_msgid(row))
                except KfRefused as exc:
                    for rest in rows[i:]:
                        self.store.kf_mark(rest["id"], "dropped", str(exc))
                    log.warning("微信客服: %d queued message(s) dropped: %s", len(rows) - i, exc)
                    break
                except (Transient, Blocked) as exc:
                    if (row.get("attempts") or 0) + 1 >= MAX_ATTEMPTS:
                        self.store.kf_mark(row["id"], "dropped", str(exc))
                        log.warning("微信客服 message dropped after %d attempts: %s", MAX_ATTEMPTS, exc)
                    else:
                        self.store.kf_mark(row["id"], "pending", str(exc))
                        log.warning("微信客服 send failed, kept for later: %s", exc)
                    break
                with self.store.transaction():
                    self.store.kf_mark(row["id"], "sent", sent_at=self.clock())
                    self._delivered(row, message)
                sent += 1
        return sent

    def _delivered(self, row: dict, message: dict) -> None:
        ids = json.loads(row.get("reminder_ids") or "[]")
        if not ids:
            return
        today = dt.datetime.fromtimestamp(self.clock(), dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        for r in self.store.waiting_reminders(NAME, row["external_userid"]):
            if r["id"] in ids:
                self.store.record_delivery(r, message_text(message), late=r["send_on"] < today)

    async def _enter_session(self, event: dict, msgid: str, msg: dict, open_kfid: str) -> bool:
        user = str(event.get("external_userid") or "")
        if not user:
            return False
        code = str(event.get("welcome_code") or "")
        fresh = self.clock() - (_number(msg.get("send_time")) or self.clock()) < WELCOME_VALID
        with self.store.transaction():
            if not self.store.kf_first_time(msgid):
                return False
            city = self._scene_city(event)
            replies = self.dispatcher.handle(Incoming(NAME, user, "/start"))
            if city:  # the link's city: the dialog core keeps it for this customer's questions
                replies += self.dispatcher.handle(Incoming(NAME, user, f"/city {city}"))
        if not (code and fresh):
            return True
        text = "\n\n".join(r.text for r in replies if r.text)
        buttons = [b for r in replies for b in r.buttons]
        welcome = menu_message(text, buttons) if buttons and _bytes(text) <= MENU_HEAD_LIMIT else \
            text_message(split_text(text, TEXT_LIMIT)[0])
        try:
            await self.api.kf_send_msg_on_event(code, welcome)
        except (KfRefused, Transient) as exc:
            log.warning("微信客服 welcome not sent: %s", exc)
        return True

    def _scene_city(self, event: dict) -> str | None:
        from knowledge.qa import resolve_city
        if self.kb is None:
            return None
        for key in ("scene_param", "scene"):
            value = str(event.get(key) or "").strip()
            if value and len(value) <= 128:
                city = resolve_city(self.kb, value)
                if city:
                    return city
        return None

    # ---- after a restart -----------------------------------------------------------------------------
    async def _resume(self) -> None:
        for row in self.store.kf_pending():
            await self.flush(row["external_userid"])
        for open_kfid in self.store.kf_accounts():
            await self.sync(open_kfid)

    def _background(self, coro) -> None:
        self._tasks.start(coro)


def scene_for(city_id: str) -> str:
    """add_contact_way's scene for a city (its id), or ValueError when WeCom would refuse it."""
    if not _SCENE.match(city_id):
        raise ValueError(f"a scene is at most 32 of 0-9 A-Z a-z _ -, not {city_id!r}")
    return city_id


def _msgid(row: dict) -> str:
    """Our msgid for a queued row: the same on a resend (WeCom refuses a msgid it has seen in the account, so
    a crash between its acknowledgement and our update cannot deliver a reply twice), unique across databases."""
    return f"pb{int(float(row['created_at']) * 1000):x}{int(row['id']):x}"[:32]


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
