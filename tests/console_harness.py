"""The operator console served for tests: the real aiohttp app of `serve` (bot.serve.build_app with the console),
a real Store and Dispatcher, on 127.0.0.1 in a background thread with its own event loop.

Tests talk to it over HTTP (requests, or a browser). What runs inside the server (the dispatcher, the rebuild) is
called on its loop with `server.call`, so the server's SQLite connection stays on its own thread.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import shutil
import threading
from pathlib import Path

import pytest
import requests
from aiohttp import web

from bot.clock import now_shanghai, today_shanghai
from bot.config import Settings
from bot.console import Console, auth
from bot.runtime import Dispatcher
from bot.serve import build_app
from bot.storage import Store

PASSWORD = "correct horse battery"


class ConsoleServer:
    def __init__(self, tmp_path: Path, kb, kb_file: Path, **settings):
        self.db = tmp_path / "console.db"
        kb_path = tmp_path / "kb.pickle"
        shutil.copy(kb_file, kb_path)
        self.settings = Settings(db=self.db, kb=kb_path, **settings)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(kb,), daemon=True)
        self._thread.start()
        self._ready.wait(30)
        self.url = f"http://127.0.0.1:{self.port}"

    def _serve(self, kb) -> None:
        asyncio.set_event_loop(self.loop)
        self.store = Store(self.db)
        self.dispatcher = Dispatcher(self.settings, self.store, kb, today=today_shanghai)

        def swap(new_kb) -> None:
            self.dispatcher.kb = new_kb

        self.console = Console(self.settings, self.store, lambda: self.dispatcher.kb, swap, today_shanghai)
        self.runner = web.AppRunner(build_app([], self.console), access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = self.runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()

    def call(self, fn, *args, timeout: float = 120):
        """Run fn(*args) on the server's loop thread (a coroutine function is awaited); its result."""
        async def run():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def add_operator(self, name: str = "alice", password: str = PASSWORD) -> None:
        self.call(lambda: self.store.add_operator(name, auth.hash_password(password)))

    def ask(self, text: str, user: str = "u1", channel: str = "console"):
        from handlers.message import Incoming
        return self.call(lambda: self.dispatcher.handle(Incoming(channel, user, text)))

    def press(self, data: str, user: str = "u1", channel: str = "console"):
        from handlers.message import Incoming
        return self.call(lambda: self.dispatcher.handle(Incoming(channel, user, "", callback=data)))

    def seed_activity(self, days: int = 20) -> None:
        """A few weeks of questions (answered, declined, 👍/👎), as the dashboard would see them."""
        answered = [("威海申报需要什么条件？", "weihai", "《威海市服务型制造示范企业认定管理办法》第十二条"),
                    ("更名以后多久要备案", "baotou", "《包头市级服务型制造示范企业认定管理办法（试行）》第十三条"),
                    ("申报要交哪些材料", "weihai", "《威海市服务型制造示范企业认定管理办法》第十四条")]

        def seed():
            now = now_shanghai()
            for d in range(days):
                at = now - dt.timedelta(days=d, hours=1)
                for i in range((d * 7) % 5 + 1):
                    q, city, cite = answered[(d + i) % 3]
                    self.store.log_question("telegram", f"seed{i}", q, city, False, None, cite, at=at, turn=d)
                if d % 3 == 0:
                    self.store.log_question("wecom", "seedx", f"奖励资金多少钱{d}", None, True, "out_of_scope", None, at=at)
            self.store.db.execute("update questions set feedback = case when id % 4 = 0 then -1 else 1 end "
                                  "where abstained = 0 and id % 2 = 0")
            self.store.db.conn.commit()
        self.call(seed)

    def rebuilt(self) -> None:
        """Wait until the background rebuild (if any) is over."""
        self.call(self.console.rebuilder.wait, timeout=180)

    def query(self, sql: str, args=()) -> list[dict]:
        return self.call(lambda: list(self.store.db.query(sql, list(args))))

    def close(self) -> None:
        try:
            self.rebuilt()
            self.call(self.runner.cleanup)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token in the page"
    return m.group(1)


def login(server: ConsoleServer, name: str = "alice", password: str = PASSWORD) -> requests.Session:
    """A logged-in HTTP session, the way CONTRACT.md describes (GET the form, POST its fields)."""
    s = requests.Session()
    page = s.get(server.url + "/admin/login")
    r = s.post(server.url + "/admin/login", data={"username": name, "password": password,
                                                  "csrf_token": csrf_of(page.text)}, allow_redirects=False)
    assert r.status_code == 303, r.text
    return s


@pytest.fixture
def server(tmp_path, kb, kb_file):
    """A console server with one operator (PASSWORD), closed after the test."""
    s = ConsoleServer(tmp_path, kb, kb_file)
    s.add_operator()
    yield s
    s.close()
