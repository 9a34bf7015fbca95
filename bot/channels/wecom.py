"""WeCom (企业微信) self-built app: the callback (`GET`/`POST /wecom/callback`) and active push.

The path of a message: signature (msg_signature over token, timestamp, nonce and the ciphertext) →
decrypt (wechatpy's PrpCrypto; the receiveid inside must be WECOM_CORP_ID) → parse (wechatpy) →
`Incoming` → the dispatcher → replies rendered as one text → encrypted passive reply.

What is refused, with a 4xx and nothing stored or sent (never a 500); each refusal is counted and logged
only in a rate-limited summary (`RefusalLog`), so forged traffic cannot flood the log:
- a bad signature (403), a wrong corp id or agent id (403), a timestamp more than `REPLAY_WINDOW`
  (5 minutes) away from our clock either side (403: a replayed or forged request);
- a body over `BODY_LIMIT` (413) or slower than `BODY_SECONDS` (408), an envelope with `<!DOCTYPE`,
  `<!ENTITY` or any other `<!` declaration except CDATA (400), garbage XML or ciphertext (400).
The decrypted message is checked for declarations outside its CDATA sections only: what a user typed
(`<!` included) is text. Control characters XML does not allow are stripped from it, not refused.

Buttons: WeCom text has none, so they become numbered lines (`1. 是`). The channel keeps, in memory, the
buttons of the last answer to each user (`ButtonMemory`, the 10 000 most recent users); a typed number
within range presses that button (its `data` goes to the dispatcher as `callback`), anything else is
text. After a restart the numbers are forgotten: a typed number is then passed as text, and the
self-check re-asks its question (it accepts 是/否 and the other typed answers anyway).

Retries and crashes: WeCom retries a callback it got no answer to within 5 seconds. A message is handled
once per key (`msg:<MsgId>`, events `evt:<FromUserName>:<CreateTime>:<Event>`, stored hashed): the
dispatcher records its replies in the transaction that records what it changed (`handle_once`). A retry,
also one after a kill -9 between that commit and our HTTP answer, gets the recorded reply passively.

Deadline: the dispatcher runs on the event loop's thread (one SQLite connection). When the answer is not
ready `DEADLINE` (4 s) after the request arrived, the callback answers `success`, the message is marked
`push` and the replies go out through message/send (then `pushed`); a retry of it gets `success`. A
process that dies before pushing leaves the mark, and the next one pushes on start (`_resume_pushes`).

Long answers: WeCom truncates text over 2048 bytes, so the passive reply carries the first piece and
the rest follows through message/send.
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import hmac
import logging
import re
import time
import unicodedata
import xml.etree.ElementTree as ET

from aiohttp import web
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.enterprise.replies import TextReply

from bot.channels.base import BackgroundTasks, Blocked, RefusalLog, Transient
from bot.clock import now_shanghai
from bot.channels.wecom_api import WecomApi, split_text
from bot.config import Settings
from bot.runtime import Dispatcher
from bot.storage import Store
from handlers.message import Button, Incoming, Reply

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
REPLAY_WINDOW = 300  # seconds either side of our clock
BODY_LIMIT = 16 * 1024  # bytes; a callback carries at most a 2048-byte text, about 3 KB encrypted
DEADLINE = 4.0  # seconds; WeCom gives up (and retries) after 5
BODY_SECONDS = 10.0  # a callback's body arrives in one packet; one taking longer is cut off (408)
RESUME_HOURS = 6  # answers recorded to be pushed, resumed after a restart when not older than this
SUCCESS = "success"
UNSUPPORTED = "目前只能处理文字消息，请直接输入您的问题，或回复“自测”开始申报条件自测。"
_DECLARATION = re.compile(rb"<!(?!\[CDATA\[)")  # <!DOCTYPE, <!ENTITY, <!ELEMENT, comments …
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.S)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


class ButtonMemory:
    """The buttons of the last answer to each user, so that a typed number can press one."""

    def __init__(self, max_users: int = 10000):
        self.max_users = max_users
        self._buttons: collections.OrderedDict[str, list[Button]] = collections.OrderedDict()

    def remember(self, user_id: str, buttons: list[Button]) -> None:
        self._buttons.pop(user_id, None)
        if buttons:
            self._buttons[user_id] = list(buttons)
            while len(self._buttons) > self.max_users:
                self._buttons.popitem(last=False)

    def press(self, user_id: str, text: str) -> str | None:
        """The button data a typed number stands for, or None."""
        number = unicodedata.normalize("NFKC", text).strip().rstrip(".。、")
        buttons = self._buttons.get(user_id) or []
        if number.isdecimal() and 0 < int(number) <= len(buttons):
            return buttons[int(number) - 1].data
        return None


def render(replies: list[Reply]) -> tuple[str, list[Button]]:
    """The replies as one text, buttons as numbered options at the end."""
    buttons = [b for r in replies for b in r.buttons]
    parts = [r.text for r in replies if r.text]
    if buttons:
        parts.append("回复编号选择：\n" + "\n".join(f"{i}. {b.label}" for i, b in enumerate(buttons, 1)))
    return "\n\n".join(parts), buttons


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode("utf-8")).hexdigest()


class WecomChannel:
    name = "wecom"

    def __init__(self, settings: Settings, dispatcher: Dispatcher, store: Store, api: WecomApi | None = None):
        self.settings, self.dispatcher, self.store = settings, dispatcher, store
        self.corp_id = settings.wecom_corp_id or ""
        self.agent_id = str(settings.wecom_agent_id or "")
        self.token = settings.wecom_token or ""
        self._crypto = WeChatCrypto(self.token, settings.wecom_aes_key, self.corp_id) if (
            settings.wecom_token and settings.wecom_aes_key) else None
        self.api = api or WecomApi(self.corp_id, settings.wecom_secret or "", self.agent_id,
                                   settings.wecom_api_base_url)
        self.buttons = ButtonMemory()
        self.deadline = DEADLINE
        self.clock = time.time  # the replay window's clock (tests move it)
        self.refusals = RefusalLog(self.name)
        self._tasks = BackgroundTasks(log, "WeCom background send")
        self.kf = None  # the 微信客服 channel (bot/channels/wechat_kf.py): its events arrive here too

    # ---- Channel protocol ---------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.verify_url), web.post(PATH, self.callback)]

    async def start(self) -> None:
        if self._crypto is None:
            log.error("WeCom callbacks are refused: WECOM_TOKEN and WECOM_AES_KEY are not set")
        self._background(self._resume_pushes())

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self.api.close()

    platform_dedupe = True  # message/send can drop a repeat itself (reminders re-sent after a crash)

    async def push(self, user_id: str, text: str, buttons: list[Button] | None = None,
                   max_wait: float = 5.0, dedupe: bool = False) -> None:
        """Active push (message/send); raises Blocked or Transient (see bot/channels/wecom_api.py)."""
        body, shown = render([Reply(text, list(buttons or []))])
        await self.api.send_text(user_id, body, max_wait=max_wait, dedupe=dedupe)
        if shown:
            self.buttons.remember(user_id, shown)

    # ---- GET: URL verification ------------------------------------------------------------------
    async def verify_url(self, request: web.Request) -> web.Response:
        try:
            q = request.query
            # base64 has no spaces: a "+" that was not percent-encoded arrives as one
            timestamp, nonce, echostr = self._fresh(q), q.get("nonce", ""), q.get("echostr", "").replace(" ", "+")
            if not echostr:
                raise Refused(400, "no echostr")
            self._check_signature(q.get("msg_signature", ""), timestamp, nonce, echostr)
            plain = self._decrypt(echostr)
        except Refused as exc:
            return self._refuse(request, exc)
        except Exception:  # noqa: BLE001 - never a 500
            log.exception("WeCom URL verification failed")
            return web.Response(status=400, text="bad request")
        return web.Response(text=plain, content_type="text/plain")

    # ---- POST: messages and events ----------------------------------------------------------------
    async def callback(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        try:
            q = request.query
            timestamp, nonce = self._fresh(q), q.get("nonce", "")
            body = await self._body(request)
            encrypt = _envelope(body)
            self._check_signature(q.get("msg_signature", ""), timestamp, nonce, encrypt)
            msg = self._message(self._decrypt(encrypt))
        except Refused as exc:
            return self._refuse(request, exc)
        except Exception:  # noqa: BLE001 - never a 500
            log.exception("WeCom callback refused")
            return web.Response(status=400, text="bad request")
        try:
            return await self._answer(msg, nonce, arrived)
        except Exception:  # noqa: BLE001 - accepted already: do not make WeCom retry
            log.exception("WeCom callback failed after it was accepted")
            return web.Response(text=SUCCESS)

    async def _answer(self, msg, nonce: str, arrived: float) -> web.Response:
        raw = msg._data
        if _is_kf_event(raw):  # 微信客服: no message inside, only a token to read them with
            if self.kf is not None:
                self.kf.notify(_text(raw.get("Token")), _text(raw.get("OpenKfId")))
            return web.Response(text=SUCCESS)
        user = _text(raw.get("FromUserName"))
        kind = _text(raw.get("MsgType")).lower()
        if kind == "event":
            event = _text(raw.get("Event")).lower()
            if event != "enter_agent":
                return web.Response(text=SUCCESS)
            key, incoming = f"evt:{user}:{_text(raw.get('CreateTime'))}:{event}", Incoming(self.name, user, "/start")
        else:
            msg_id = _text(raw.get("MsgId")) or f"{user}:{_text(raw.get('CreateTime'))}"
            key = f"msg:{msg_id}"
            if kind == "text":
                text = _text(raw.get("Content"))
                callback = self.buttons.press(user, text)
                incoming = Incoming(self.name, user, "" if callback else text, callback=callback, message_id=msg_id)
            else:
                incoming = None
        if incoming is None:
            if not self.store.first_time(self.name, key):
                return web.Response(text=SUCCESS)
            return self._passive(UNSUPPORTED, user, nonce)

        task = asyncio.ensure_future(self._dispatch(incoming, key))
        try:
            replies, before = await asyncio.wait_for(asyncio.shield(task),
                                                     max(0.0, self.deadline - (time.monotonic() - arrived)))
        except asyncio.TimeoutError:
            replies, before = None, None
        if before in ("push", "pushed"):  # a retry of an answer that goes (or went) out through message/send
            return web.Response(text=SUCCESS)
        if replies is None or time.monotonic() - arrived > self.deadline:
            log.warning("WeCom answer missed the %.1f s deadline: sending it through message/send", self.deadline)
            self._background(self._push_later(user, task, key))
            return web.Response(text=SUCCESS)
        text, shown = render(replies)
        self.buttons.remember(user, shown)
        first, *rest = split_text(text)
        if rest and before is None:
            self._background(self._push_pieces(user, rest, delay=0.5))
        return self._passive(first, user, nonce)

    async def _dispatch(self, incoming: Incoming, key: str) -> tuple[list[Reply], str | None]:
        """The replies, and the status recorded when this message was handled before (a WeCom retry, maybe
        after a crash): its recorded replies come back, nothing is handled twice."""
        return self.dispatcher.handle_once(incoming, key)

    async def _push_later(self, user: str, task: asyncio.Future, key: str) -> None:
        replies, _ = await task
        self.dispatcher.delivered(self.name, key, "push")  # a crash from here on: start() pushes it again
        text, shown = render(replies)
        self.buttons.remember(user, shown)
        await self._push_pieces(user, split_text(text))
        self.dispatcher.delivered(self.name, key, "pushed")

    async def _resume_pushes(self) -> None:
        """Answers recorded as to be pushed by a process that died before it pushed them."""
        since = (now_shanghai() - dt.timedelta(hours=RESUME_HOURS)).isoformat()
        for row in self.store.handled_to_push(self.name, since):
            text, _ = render([Reply(r.get("text") or "") for r in row["reply"]])
            if text.strip():
                await self._push_pieces(row["user_id"], split_text(text))
            self.store.set_hashed_status(self.name, row["hashed_key"], "pushed")

    async def _push_pieces(self, user: str, pieces: list[str], delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)  # after the passive reply
        for piece in pieces:
            try:
                await self.api.send_text(user, piece, max_wait=WINDOW_WAIT)
            except (Blocked, Transient) as exc:
                log.warning("WeCom reply to %s not delivered: %s", user, exc)
                return

    def _background(self, coro) -> None:
        self._tasks.start(coro)

    def _passive(self, text: str, user: str, nonce: str) -> web.Response:
        reply = TextReply(content=text.replace("]]>", "]]]]><![CDATA[>"))  # keep the CDATA section closed
        reply.source, reply.target = self.corp_id, user
        reply.agent = int(self.agent_id) if self.agent_id.isdigit() else 0
        xml = self._crypto.encrypt_message(reply.render(), nonce or "nonce", str(int(self.clock())))
        return web.Response(text=xml, content_type="application/xml")

    # ---- checks -------------------------------------------------------------------------------------
    def _fresh(self, q) -> str:
        if self._crypto is None:
            raise Refused(403, "WECOM_TOKEN / WECOM_AES_KEY not configured")
        timestamp = q.get("timestamp", "")
        if not (timestamp.isdigit() and len(timestamp) <= 12):
            raise Refused(400, "no timestamp")
        if abs(self.clock() - int(timestamp)) > REPLAY_WINDOW:
            raise Refused(403, "stale timestamp")
        return timestamp

    def _check_signature(self, given: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected, given.encode("ascii", "replace").decode("ascii")):
            raise Refused(403, "bad signature")

    def _decrypt(self, encrypt: str) -> str:
        try:
            return PrpCrypto(self._crypto.key).decrypt(encrypt, self.corp_id)
        except InvalidCorpIdException:
            raise Refused(403, "wrong corp id") from None
        except Exception as exc:  # noqa: BLE001 - binascii, struct, ValueError, IndexError, UnicodeDecodeError …
            raise Refused(400, f"undecryptable ({exc.__class__.__name__})") from None

    def _message(self, xml: str):
        xml = _XML_ILLEGAL.sub("", xml)  # control characters a user typed: dropped, the text still answered
        if _DECLARATION.search(_CDATA.sub(b"", xml.encode("utf-8"))):  # markup, not what the user typed
            raise Refused(400, "XML declarations are not accepted")
        try:
            msg = parse_message(xml)
            raw = msg._data
            to_user = _text(raw.get("ToUserName"))
            agent = _text(raw.get("AgentID"))
        except Exception as exc:  # noqa: BLE001 - ExpatError, KeyError, TypeError, AttributeError …
            raise Refused(400, f"unreadable message ({exc.__class__.__name__})") from None
        if to_user != self.corp_id:
            raise Refused(403, "wrong corp id")
        if agent and self.agent_id and agent != self.agent_id:
            raise Refused(403, "wrong agent id")
        if not _text(raw.get("FromUserName")) and not _is_kf_event(raw):
            raise Refused(400, "no sender")
        return msg

    async def _body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > BODY_LIMIT:
            raise Refused(413, "body too large")
        body = bytearray()
        try:
            async with asyncio.timeout(BODY_SECONDS):  # a body trickled in byte by byte is cut off
                while chunk := await request.content.read(BODY_LIMIT + 1 - len(body)):
                    body += chunk
                    if len(body) > BODY_LIMIT:
                        raise Refused(413, "body too large")
        except Refused:
            raise
        except TimeoutError:
            raise Refused(408, "body too slow") from None
        except Exception:  # noqa: BLE001 - a broken or malformed upload
            raise Refused(400, "unreadable body") from None
        return bytes(body)

    def _refuse(self, request: web.Request, exc: Refused) -> web.Response:
        self.refusals.add(f"{request.method} {exc.status} {exc.reason}")
        return web.Response(status=exc.status, text=exc.reason)


WINDOW_WAIT = 65.0  # a reply to the user's own message may wait for the per-member window


def _envelope(body: bytes) -> str:
    """The ciphertext of the outer XML (`<xml><Encrypt>…</Encrypt>…</xml>`)."""
    if _DECLARATION.search(body):
        raise Refused(400, "XML declarations are not accepted")
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, ValueError):
        raise Refused(400, "not XML") from None
    encrypt = root.findtext("Encrypt")
    if root.tag != "xml" or not encrypt or not encrypt.strip():
        raise Refused(400, "no Encrypt")
    return encrypt.strip()


def _is_kf_event(raw: dict) -> bool:
    return _text(raw.get("MsgType")).lower() == "event" and _text(raw.get("Event")).lower() == "kf_msg_or_event"


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""
