"""Throughput of the Telegram path: updates per second from the Bot API to the reply's sendMessage.

One process, loopback: the stand-in Bot API server (tests/telegram_standin.py), the real
python-telegram-bot Application, our aiohttp server (webhook mode) and the real dispatcher and
knowledge base. Each update is a policy question from a different user (as when many people write at
once); an update counts when its reply has reached the stand-in's sendMessage. Telegram's own cap of ~30
messages/s per bot is switched off (RateLimits(overall_per_second=0)), or it would be the figure; the
per-chat limiter stays on (one message per user here, so it does not bind).

    from bench_telegram import bench; bench(500)              # webhook POSTs
    bench(500, mode="polling")                                # getUpdates batches of up to 100
"""
from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from telegram_standin import TOKEN, StandInBotAPI, text_update  # noqa: E402

from bot.channels.telegram import SECRET_HEADER, WEBHOOK_PATH, RateLimits, TelegramChannel  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.runtime import Dispatcher  # noqa: E402
from bot.serve import build_app  # noqa: E402
from bot.storage import Store  # noqa: E402
from knowledge import kb as kbmod  # noqa: E402

QUESTIONS = ["威海复核多久一次", "包头申报需要什么条件", "更名后多久要备案", "威海示范企业有什么奖励",
             "申报材料有哪些", "被撤销称号后还能再申报吗", "包头的认定有效期是几年", "威海服务收入占比要求多少"]
SECRET = "bench-secret"


def _kb():
    path = Settings.load().kb_path
    return kbmod.load(path) if path.exists() else kbmod.build(kbmod.SOURCE_DIR)


async def _run(n: int, mode: str, kb) -> float:
    api = await StandInBotAPI(poll_wait=0.2).start()
    tmp = tempfile.mkdtemp()
    env = {"POLICYBOT_DB": str(Path(tmp) / "bench.db"), "TELEGRAM_BOT_TOKEN": TOKEN,
           "TELEGRAM_API_BASE_URL": api.base_url}
    if mode == "webhook":
        env.update(TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram/webhook", TELEGRAM_WEBHOOK_SECRET=SECRET)
    settings = Settings.load(env, env_file="")
    store = Store(settings.db)
    channel = TelegramChannel(settings, Dispatcher(settings, store, kb), store,
                              limits=RateLimits(overall_per_second=0), poll_timeout=1)
    updates = [text_update(i + 1, 10_000 + i, QUESTIONS[i % len(QUESTIONS)], message_id=i + 1)
               for i in range(n)]
    runner = None
    try:
        if mode == "webhook":
            runner = web.AppRunner(build_app([channel]), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}{WEBHOOK_PATH}"
        await channel.start()
        t = time.perf_counter()
        if mode == "webhook":
            async with aiohttp.ClientSession() as session:
                async def post(update):
                    async with session.post(url, json=update, headers={SECRET_HEADER: SECRET}) as resp:
                        assert resp.status == 200, resp.status
                for i in range(0, n, 20):  # 20 deliveries in flight, like Telegram's max_connections
                    await asyncio.gather(*(post(u) for u in updates[i:i + 20]))
                await api.wait_sent(n, timeout=120)
        else:
            for u in updates:
                api.queue(u)
            await api.wait_sent(n, timeout=120)
        elapsed = time.perf_counter() - t
    finally:
        await channel.stop()
        if runner:
            await runner.cleanup()
        await api.close()
    return n / elapsed


def bench(n: int = 500, mode: str = "webhook") -> float:
    """Updates per second through the Telegram path (webhook POSTs or getUpdates batches)."""
    logging.getLogger("telegram").setLevel(logging.ERROR)
    logging.getLogger("bot.channels.telegram").setLevel(logging.ERROR)
    kb = _kb()
    return asyncio.run(_run(n, mode, kb))


if __name__ == "__main__":
    for mode in ("webhook", "polling"):
        print(f"telegram {mode}: {bench(500, mode):.0f} updates/s")
