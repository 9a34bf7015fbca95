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

    def envelope(self, inner: str, timestamp: int | None = None, nonce: str = "n0nce123",
                 crypto: WeChatCrypto | None = None) -> tuple[dict, str]:
        """(query parameters, body) of a callback carrying `inner` encrypted and signed."""
        ts = str(timestamp or int(time.time()))
        env = (crypto or self.crypto).encrypt_message(inner, nonce, ts)
        root = ET.fromstring(env)
        params = {"msg_signature": root.findtext("MsgSignature"), "timestamp": ts, "nonce": nonce}
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><AgentID><![CDATA[{AGENT_ID}]]></AgentID>" \
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
