"""The WeCom server API for active push (`message/send`), as a small aiohttp client.

Why not wechatpy's `WeChatClient` (wechatpy 1.8.18)? It is built on `requests`, so every call blocks:
it would need a thread per call, and a thread cannot be cancelled when `serve` stops. Besides, its
`fetch_access_token` ignores `API_BASE_URL` (the gettoken URL is hard-coded to qyapi.weixin.qq.com, so
WECOM_API_BASE_URL would only half work), and with `auto_retry` (the default) an invalid or expired token
makes it fetch a new one and call itself again with no limit. Two endpoints are all we need, so this
client does them on the event loop with the rules spelled out:

- the access token is cached until shortly before `expires_in`; on errcode 40014 (invalid) or 42001
  (expired) it is fetched again and the call retried **once**; a second failure is `Transient`;
- errcode 45009 (API rate limit) is `Transient` with a back-off (10 s, doubling up to 10 min, reset by a
  success); while backing off, pushes raise `Transient` without calling the API;
- an unknown or unreachable member (errcode 81013 or 60111, or the user listed in `invaliduser`) is
  `Blocked`; network errors, HTTP errors, other errcodes are `Transient`;
- WeCom silently drops more than 30 messages a minute from one app to one member, so pushes go through
  a per-member sliding window of `PER_USER_LIMIT` (28) per 60 s: `send_text` waits for a free slot up to
  `max_wait` seconds, else raises `Transient(retry_after=…)`.

微信客服 (bot/channels/wechat_kf.py) is called with the same app's access token (the app must be listed under
「微信客服-可调用接口的应用」): `kf_sync_msg`, `kf_send_msg`, `kf_send_msg_on_event`, `kf_account_list`,
`kf_add_contact_way`. wechatpy 1.8 has no 微信客服 client at all, and the 2.0.0a26 pre-release's `sync_msg`
cannot pass `open_kfid` (required to read one account's messages with the callback's Token), so they are
here, with the same token rule (refreshed and retried once) and errors:
- a network or HTTP error, or an errcode we cannot act on, is `Transient`;
- the errcodes that say "not now, not this message" (`KF_FINAL`: 95001 the 5-message quota, 95002 past the
  48 hours, 95013 session ended, 95018 the session is with a person or not in a state the API may send in,
  95000/95004 a wrong account …) raise `KfRefused`: the caller drops the message, it never retries it.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time

import aiohttp

from bot.channels.base import Blocked, Transient

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin/"
DUPLICATE_WINDOW = 4 * 3600  # seconds, the longest message/send's duplicate check allows
TOKEN_ERRORS = (40014, 42001)  # invalid access_token, access_token expired
RATE_LIMITED = 45009
BLOCKED_ERRORS = (81013, 60111)  # user & party & tag all invalid; userid not found
PER_USER_LIMIT = 28  # WeCom's limit is 30 a minute per member: stay a little below
WINDOW = 60.0
TEXT_LIMIT = 2048  # bytes: WeCom truncates longer text messages (passive replies too)


KF_FINAL = {95000: "invalid open_kfid", 95001: "the customer's 5-message quota is used up",
            95002: "more than 48 hours since the customer's last message", 95004: "open_kfid does not exist",
            95007: "invalid sync token", 95008: "the sync token has expired", 95013: "the session has ended",
            95017: "this app may not call the 微信客服 API (「微信客服-可调用接口的应用」)",
            95018: "the session is not in a state the API may send in (a person took it over, or it ended)"}


class KfRefused(Exception):
    """微信客服 refused this message for good (quota, window, session state): drop it, do not retry."""

    def __init__(self, errcode: int, errmsg: str = ""):
        super().__init__(f"errcode {errcode}: {KF_FINAL.get(errcode, errmsg)}")
        self.errcode = errcode


class RateWindow:
    """A sliding window per key: at most `limit` events in any `window` seconds."""

    def __init__(self, limit: int = PER_USER_LIMIT, window: float = WINDOW, clock=time.monotonic,
                 max_keys: int = 10000):
        self.limit, self.window, self.clock, self.max_keys = limit, window, clock, max_keys
        self._events: collections.OrderedDict[str, collections.deque] = collections.OrderedDict()

    def wait_time(self, key: str) -> float:
        """Seconds until `key` may send again (0 when it may send now)."""
        q = self._events.get(key)
        if not q:
            return 0.0
        now = self.clock()
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) < self.limit:
            return 0.0
        return q[0] + self.window - now

    def record(self, key: str) -> None:
        q = self._events.setdefault(key, collections.deque())
        self._events.move_to_end(key)
        q.append(self.clock())
        while len(self._events) > self.max_keys:  # forget the members idle the longest
            self._events.popitem(last=False)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Pieces of at most `limit` UTF-8 bytes, cut at line ends where possible."""
    pieces, current = [], ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode("utf-8")) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(line.encode("utf-8")) > limit:  # one line longer than the limit: cut by characters
            cut = len(line.encode("utf-8")[:limit].decode("utf-8", "ignore"))
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not pieces:
        pieces.append(current)
    return pieces


class WecomApi:
    def __init__(self, corp_id: str, secret: str, agent_id: str, base_url: str | None = None,
                 timeout: float = 10.0):
        self.corp_id, self.secret = corp_id, secret
        self.agent_id = int(agent_id) if str(agent_id).isdigit() else agent_id
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.window = RateWindow()
        self.backoff_first, self.backoff_max = 10.0, 600.0
        self._backoff = 0.0
        self._paused_until = 0.0
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    # ---- access token -----------------------------------------------------------------------------
    async def token(self, stale: str | None = None) -> str:
        """The cached token; a fresh one when there is none, it expires, or it is `stale` (refused)."""
        async with self._token_lock:
            if self._token and self._token != stale and time.monotonic() < self._token_expires:
                return self._token
            data = await self._call("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret})
            errcode = _errcode(data)
            if errcode != 0 or not data.get("access_token"):
                log.error("WeCom gettoken failed: errcode %s %s", errcode, data.get("errmsg"))
                raise Transient(f"gettoken errcode {errcode}")
            self._token = str(data["access_token"])
            expires_in = data.get("expires_in") if isinstance(data.get("expires_in"), int) else 7200
            self._token_expires = time.monotonic() + max(60, expires_in - 300)
            return self._token

    # ---- sending ----------------------------------------------------------------------------------
    async def send_text(self, user_id: str, text: str, max_wait: float = 5.0, dedupe: bool = False) -> None:
        """One text message (cut into pieces of TEXT_LIMIT bytes) to one member; raises Blocked/Transient.

        `dedupe`: WeCom's own duplicate check (enable_duplicate_check; the same content to the same member
        within DUPLICATE_WINDOW is not delivered again), for reminders re-sent after a crash."""
        for piece in split_text(text):
            await self._send_one(user_id, piece, max_wait, dedupe)

    async def _send_one(self, user_id: str, text: str, max_wait: float, dedupe: bool = False) -> None:
        now = time.monotonic()
        if now < self._paused_until:
            raise Transient("WeCom API rate limit (45009): backing off", retry_after=self._paused_until - now)
        wait = self.window.wait_time(user_id)
        if wait > max_wait:
            raise Transient(f"more than {self.window.limit} messages a minute to {user_id}", retry_after=wait)
        if wait > 0:
            await asyncio.sleep(wait)
        self.window.record(user_id)  # counted even when it fails: WeCom may have delivered it
        body = {"touser": user_id, "msgtype": "text", "agentid": self.agent_id, "text": {"content": text},
                "safe": 0}
        if dedupe:
            body.update(enable_duplicate_check=1, duplicate_check_interval=DUPLICATE_WINDOW)
        token = await self.token()
        data = await self._call("POST", "message/send", params={"access_token": token}, json=body)
        if _errcode(data) in TOKEN_ERRORS:  # refresh once, retry once
            token = await self.token(stale=token)
            data = await self._call("POST", "message/send", params={"access_token": token}, json=body)
        errcode = _errcode(data)
        if errcode == RATE_LIMITED:
            self._backoff = min(self.backoff_max, self._backoff * 2 if self._backoff else self.backoff_first)
            self._paused_until = time.monotonic() + self._backoff
            raise Transient("WeCom API rate limit (45009)", retry_after=self._backoff)
        if errcode in BLOCKED_ERRORS or user_id in str(data.get("invaliduser") or "").split("|"):
            raise Blocked(f"WeCom cannot reach {user_id}: errcode {errcode} {data.get('errmsg', '')}")
        if errcode != 0:
            raise Transient(f"WeCom message/send errcode {errcode} {data.get('errmsg', '')}")
        self._backoff = 0.0

    # ---- 微信客服 ------------------------------------------------------------------------------------
    async def call(self, endpoint: str, body: dict) -> dict:
        """POST one JSON call with the access token (refreshed and retried once); the answer, errcode 0 or not."""
        now = time.monotonic()
        if now < self._paused_until:
            raise Transient("WeCom API rate limit (45009): backing off", retry_after=self._paused_until - now)
        token = await self.token()
        data = await self._call("POST", endpoint, params={"access_token": token}, json=body)
        if _errcode(data) in TOKEN_ERRORS:
            token = await self.token(stale=token)
            data = await self._call("POST", endpoint, params={"access_token": token}, json=body)
        if _errcode(data) == RATE_LIMITED:
            self._backoff = min(self.backoff_max, self._backoff * 2 if self._backoff else self.backoff_first)
            self._paused_until = time.monotonic() + self._backoff
            raise Transient("WeCom API rate limit (45009)", retry_after=self._backoff)
        return data

    async def _kf(self, endpoint: str, body: dict) -> dict:
        data = await self.call(endpoint, body)
        errcode = _errcode(data)
        if errcode in KF_FINAL:
            raise KfRefused(errcode, str(data.get("errmsg", "")))
        if errcode != 0:
            raise Transient(f"WeCom {endpoint} errcode {errcode} {data.get('errmsg', '')}")
        self._backoff = 0.0
        return data

    async def kf_sync_msg(self, open_kfid: str, cursor: str = "", token: str = "", limit: int = 1000) -> dict:
        """One page of messages: {msg_list, next_cursor, has_more}."""
        body = {"open_kfid": open_kfid, "limit": limit}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        data = await self._kf("kf/sync_msg", body)
        if not isinstance(data.get("msg_list", []), list):
            raise Transient("WeCom kf/sync_msg: msg_list is not a list")
        return data

    async def kf_send_msg(self, touser: str, open_kfid: str, message: dict, msgid: str | None = None) -> str:
        """One message (`message` = {"msgtype": "text", "text": {...}} or msgmenu); returns WeCom's msgid."""
        body = {"touser": touser, "open_kfid": open_kfid, **message}
        if msgid:
            body["msgid"] = msgid
        return str((await self._kf("kf/send_msg", body)).get("msgid") or "")

    async def kf_send_msg_on_event(self, code: str, message: dict) -> None:
        """The welcome (text or msgmenu) with an enter_session event's welcome_code: once, within 20 s."""
        await self._kf("kf/send_msg_on_event", {"code": code, **message})

    async def kf_account_list(self) -> list[dict]:
        data = await self._kf("kf/account/list", {"offset": 0, "limit": 100})
        return [a for a in data.get("account_list") or [] if isinstance(a, dict) and a.get("open_kfid")]

    async def kf_add_contact_way(self, open_kfid: str, scene: str = "") -> str:
        body = {"open_kfid": open_kfid}
        if scene:
            body["scene"] = scene
        url = (await self._kf("kf/add_contact_way", body)).get("url")
        if not url:
            raise Transient("WeCom kf/add_contact_way: no url")
        return str(url)

    async def _call(self, method: str, endpoint: str, **kwargs) -> dict:
        try:
            async with self._http().request(method, self.base_url + endpoint, **kwargs) as resp:
                if resp.status != 200:
                    raise Transient(f"WeCom {endpoint}: HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise Transient(f"WeCom {endpoint}: {exc.__class__.__name__}: {exc}") from None
        if not isinstance(data, dict):
            raise Transient(f"WeCom {endpoint}: unexpected answer")
        return data


def _errcode(data: dict) -> int:
    try:
        return int(data.get("errcode", 0))
    except (TypeError, ValueError):
        return -1
