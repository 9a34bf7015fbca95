"""A WeCom test bench on loopback: our aiohttp app with the WeCom channel, a stand-in WeCom API, and a
client that builds real encrypted callbacks with wechatpy's crypto (used by test_wecom.py and bench_wecom.py)."""
from __future__ import annotations

import asyncio
import datetime as dt
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.channels.wecom import WecomChannel
from bot.config import Settings
from bot.runtime import Dispatcher
from bot.serve import build_app
from bot.storage import Store

CORP_ID = "ww0a1b2c3d4e5f6789"
AGENT_ID = "1000002"
SECRET = "test-secret"
TOKEN = "policybotCallbackToken"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"  # 43 characters, as WeCom issues them
TODAY = dt.date(2026, 11, 22)
OPEN_KFID = "wkAbCdEfGhIjKlMnOp"
KF_WINDOW, KF_QUOTA = 48 * 3600, 5


class FakeWecomApi:
    """gettoken and message/send, recording every call; `script` holds errcodes to answer message/send with."""

    def __init__(self):
        self.tokens_issued = 0
        self.sends: list[dict] = []  # every message/send call: {"token": …, "body": …}
        self.delivered: list[dict] = []  # what members got: {"touser", "content", "at"}
        self.script: list[dict] = []  # answers for the next message/send calls, then {"errcode": 0}
        self.app = web.Application()
        self.app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        self.app.router.add_post("/cgi-bin/message/send", self.send)
        self.sent = asyncio.Event()
        # 微信客服, as its documents describe it: messages kept in order, a cursor into them, the 5-in-48-hours
        # quota counted per customer since their last message (95001 past it), a welcome_code usable once
        self.kf_messages: list[dict] = []
        self.kf_sends: list[dict] = []  # every kf/send_msg call: {"body": …, "errcode": …, "at": …}
        self.kf_welcomes: list[dict] = []  # every kf/send_msg_on_event call
        self.kf_syncs: list[dict] = []  # every kf/sync_msg body
        self.kf_script: list[dict] = []  # answers for the next kf/send_msg calls
        self.kf_ignore_cursor = False  # as if our cursor had been lost: every message again, from the start
        self.kf_tokens: set[str] = set()
        self.kf_contact_ways: list[dict] = []
        self._welcome_codes: set[str] = set()
        for path, handler in (("kf/sync_msg", self.kf_sync), ("kf/send_msg", self.kf_send),
                              ("kf/send_msg_on_event", self.kf_on_event), ("kf/account/list", self.kf_accounts),
                              ("kf/add_contact_way", self.kf_contact_way)):
            self.app.router.add_post(f"/cgi-bin/{path}", handler)

    async def gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != CORP_ID or q.get("corpsecret") != SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        self.tokens_issued += 1
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": f"TOKEN{self.tokens_issued}",
                                  "expires_in": 7200})

    async def send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.sends.append({"token": request.query.get("access_token"), "body": body})
        self.sent.set()
        if request.query.get("access_token") != f"TOKEN{self.tokens_issued}":
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        answer = self.script.pop(0) if self.script else {"errcode": 0}
        answer = {"errmsg": "ok", "invaliduser": "", "msgid": f"m{len(self.sends)}", **answer}
        if answer["errcode"] == 0:  # what members see: WeCom's duplicate check drops a repeat in its interval
            seen = (body.get("touser"), (body.get("text") or {}).get("content"))
            window = body.get("duplicate_check_interval", 1800)
            if not (body.get("enable_duplicate_check") and any(
                    (d["touser"], d["content"]) == seen and time.time() - d["at"] < window for d in self.delivered)):
                self.delivered.append({"touser": seen[0], "content": seen[1], "at": time.time()})
        return web.json_response(answer)

    def texts(self) -> list[str]:
        return [s["body"]["text"]["content"] for s in self.sends]

    # ---- 微信客服 ---------------------------------------------------------------------------------------
    def _token_ok(self, request: web.Request) -> bool:
        return request.query.get("access_token") == f"TOKEN{self.tokens_issued}" and self.tokens_issued > 0

    def customer_writes(self, user: str, content: str, menu_id: str | None = None, send_time: int | None = None,
                        msgtype: str = "text") -> str:
        """A customer message waiting to be synced; returns the kf callback's Token to announce it with."""
        msgid = f"kfmsg{len(self.kf_messages) + 1:05d}"
        msg = {"msgid": msgid, "open_kfid": OPEN_KFID, "external_userid": user,
               "send_time": send_time or int(time.time()), "origin": 3, "msgtype": msgtype}
        if msgtype == "text":
            msg["text"] = {"content": content, **({"menu_id": menu_id} if menu_id else {})}
        else:
            msg[msgtype] = {"media_id": "MEDIA"}
        self.kf_messages.append(msg)
        return self._new_token()

    def customer_enters(self, user: str, scene_param: str = "", welcome_code: str = "", scene: str = "") -> str:
        msgid = f"kfmsg{len(self.kf_messages) + 1:05d}"
        event = {"event_type": "enter_session", "open_kfid": OPEN_KFID, "external_userid": user, "scene": scene,
                 "scene_param": scene_param}
        if welcome_code:
            event["welcome_code"] = welcome_code
            self._welcome_codes.add(welcome_code)
        self.kf_messages.append({"msgid": msgid, "send_time": int(time.time()), "origin": 4, "msgtype": "event",
                                 "event": event})
        return self._new_token()

    def _new_token(self) -> str:
        token = f"ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMz{len(self.kf_tokens):04d}"
        self.kf_tokens.add(token)
        return token

    async def kf_sync(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.kf_syncs.append(body)
        if not self._token_ok(request):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if body.get("open_kfid") != OPEN_KFID:
            return web.json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        if body.get("token") and body["token"] not in self.kf_tokens:
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        cursor = str(body.get("cursor") or "")
        start = 0 if self.kf_ignore_cursor or not cursor.startswith("c") else int(cursor[1:])
        limit = min(int(body.get("limit") or 1000), 1000)
        page = self.kf_messages[start:start + limit]
        end = start + len(page)
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": f"c{end}",
                                  "has_more": int(end < len(self.kf_messages)), "msg_list": page})

    def kf_room(self, user: str, now: float | None = None) -> int:
        """What the real API would still accept for this customer now."""
        now = now or time.time()
        last = max((m["send_time"] for m in self.kf_messages if m.get("origin") == 3 and m["external_userid"] == user),
                   default=None)
        if last is None or now - last >= KF_WINDOW:
            return 0
        return KF_QUOTA - len([s for s in self.kf_sends if s["body"]["touser"] == user and s["errcode"] == 0
                               and s["at"] >= last])

    async def kf_send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self._token_ok(request):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        answer = self.kf_script.pop(0) if self.kf_script else {"errcode": 0}
        if answer["errcode"] == 0:
            if body.get("open_kfid") != OPEN_KFID or body.get("msgtype") not in ("text", "msgmenu"):
                answer = {"errcode": 40008, "errmsg": "invalid message"}
            elif self.kf_room(body.get("touser", "")) <= 0:
                answer = {"errcode": 95001, "errmsg": "send msg count limit"}
            elif body["msgtype"] == "text" and len(body["text"]["content"].encode()) > 2048:
                answer = {"errcode": 44004, "errmsg": "text content too long"}
            elif body["msgtype"] == "msgmenu" and (len(body["msgmenu"].get("head_content", "").encode()) > 1024
                                                   or len(body["msgmenu"]["list"]) > 10):
                answer = {"errcode": 40058, "errmsg": "invalid msgmenu"}
        self.kf_sends.append({"body": body, "errcode": answer["errcode"], "at": time.time()})
        return web.json_response({"errmsg": "ok", "msgid": body.get("msgid") or f"s{len(self.kf_sends)}", **answer})

    async def kf_on_event(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self._token_ok(request):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if body.get("code") not in self._welcome_codes:
            return web.json_response({"errcode": 95016, "errmsg": "invalid code"})
        self._welcome_codes.discard(body["code"])  # usable once
        self.kf_welcomes.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "w1"})

    async def kf_accounts(self, request: web.Request) -> web.Response:
        if not self._token_ok(request):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "account_list": [
            {"open_kfid": OPEN_KFID, "name": "政策助手", "avatar": "https://example.invalid/a.png"}]})

    async def kf_contact_way(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not self._token_ok(request):
            return web.json_response({"errcode": 40014, "errmsg": "invalid access_token"})
        if body.get("open_kfid") != OPEN_KFID:
            return web.json_response({"errcode": 95000, "errmsg": "invalid open_kfid"})
        self.kf_contact_ways.append(body)
        scene = body.get("scene") or ""
        return web.json_response({"errcode": 0, "errmsg": "ok",
                                  "url": "https://work.weixin.qq.com/kf/kfcf0a1b2c3d4e5f6a7" +
                                         (f"?enc_scene=ENC{scene}" if scene else "")})

    def kf_texts(self, user: str | None = None, ok_only: bool = True) -> list[str]:
        """What reached the customer: texts, and menus as head + items."""
        out = []
        for s in self.kf_sends:
            b = s["body"]
            if (user and b["touser"] != user) or (ok_only and s["errcode"] != 0):
                continue
            if b["msgtype"] == "text":
                out.append(b["text"]["content"])
            else:
                out.append("\n".join([b["msgmenu"].get("head_content", "")] +
                                      [i["click"]["content"] for i in b["msgmenu"]["list"]]))
        return out


class Bench:
    """Everything running: `async with Bench(kb, tmp_path) as b: await b.text("u1", "你好")`."""

    def __init__(self, kb, tmp_path: Path, deadline: float | None = None):
        self.kb, self.tmp_path, self.deadline = kb, Path(tmp_path), deadline
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        self.fake = FakeWecomApi()
        self._msg_id = 7000000000000000000
        self._runners: list[web.AppRunner] = []

    async def __aenter__(self) -> "Bench":
        api_port = await self._serve(self.fake.app)
        self.settings = Settings(db=self.tmp_path / "wecom.db", wecom_corp_id=CORP_ID, wecom_agent_id=AGENT_ID,
                                 wecom_secret=SECRET, wecom_token=TOKEN, wecom_aes_key=AES_KEY,
                                 wecom_api_base_url=f"http://127.0.0.1:{api_port}/cgi-bin/")
        self.store = Store(self.settings.db)
        self.dispatcher = Dispatcher(self.settings, self.store, self.kb, today=lambda: TODAY)
        self.channel = WecomChannel(self.settings, self.dispatcher, self.store)
        if self.deadline is not None:
            self.channel.deadline = self.deadline
        port = await self._serve(build_app([self.channel]))
        self.url = f"http://127.0.0.1:{port}/wecom/callback"
        self.http = aiohttp.ClientSession()
        await self.channel.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.channel.stop()
        await self.http.close()
        for runner in reversed(self._runners):
            await runner.cleanup()

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        return runner.addresses[0][1]

    # ---- building callbacks -----------------------------------------------------------------------
    def next_msg_id(self) -> str:
        self._msg_id += 1
        return str(self._msg_id)

    @staticmethod
    def text_xml(user: str, content: str, msg_id: str, to: str = CORP_ID, agent: str = AGENT_ID) -> str:
        return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId><AgentID>{agent}</AgentID></xml>")

    @staticmethod
    def event_xml(user: str, event: str = "enter_agent", create_time: int | None = None) -> str:
        return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
                f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
                f"<Event><![CDATA[{event}]]></Event><EventKey><![CDATA[]]></EventKey><AgentID>{AGENT_ID}</AgentID></xml>")

    @staticmethod
    def kf_event_xml(token: str, open_kfid: str = OPEN_KFID, to: str = CORP_ID) -> str:
        """The callback 微信客服 posts: no AgentID, no sender, no message, only a Token to read them with."""
        return (f"<xml><ToUserName><![CDATA[{to}]]></ToUserName><CreateTime>{int(time.time())}</CreateTime>"
                f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
                f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")

    def envelope(self, inner: str, timestamp: int | None = None, nonce: str = "n0nce123",
                 crypto: WeChatCrypto | None = None, agent: str | None = AGENT_ID) -> tuple[dict, str]:
        """(query parameters, body) of a callback carrying `inner` encrypted and signed."""
        ts = str(timestamp or int(time.time()))
        env = (crypto or self.crypto).encrypt_message(inner, nonce, ts)
        root = ET.fromstring(env)
        params = {"msg_signature": root.findtext("MsgSignature"), "timestamp": ts, "nonce": nonce}
        agent_xml = f"<AgentID><![CDATA[{agent}]]></AgentID>" if agent is not None else ""  # 微信客服: none
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>{agent_xml}" \
               f"<Encrypt><![CDATA[{root.findtext('Encrypt')}]]></Encrypt></xml>"
        return params, body

    async def post(self, params: dict, body: str | bytes) -> tuple[int, str]:
        async with self.http.post(self.url, params=params, data=body) as resp:
            return resp.status, await resp.text()

    def open_reply(self, body: str) -> str:
        """The Content of an encrypted passive reply (its signature checked), '' for a plain `success`."""
        if body == "success":
            return ""
        root = ET.fromstring(body)
        inner = self.crypto.decrypt_message(body, root.findtext("MsgSignature"), root.findtext("TimeStamp"),
                                            root.findtext("Nonce"))
        return ET.fromstring(inner).findtext("Content") or ""

    async def text(self, user: str, content: str, msg_id: str | None = None) -> str:
        """Send a text message as `user`; returns the decrypted passive reply."""
        params, body = self.envelope(self.text_xml(user, content, msg_id or self.next_msg_id()))
        status, answer = await self.post(params, body)
        assert status == 200, (status, answer)
        return self.open_reply(answer)

    async def wait_sends(self, n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.fake.sends) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def counts(self) -> dict[str, int]:
        return {t: self.store.db.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("questions", "dialog_state", "seen_messages", "checks")}


def run(coro):
    """Drive one coroutine (pytest-asyncio is not a dependency)."""
    return asyncio.run(coro)
