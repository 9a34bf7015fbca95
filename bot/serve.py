"""`policybot serve`: every configured channel, the HTTP server and the reminder loop, in one asyncio process.

The HTTP server (aiohttp) carries `GET /healthz`, each channel's routes (`/wecom/callback`,
`/telegram/webhook`) and the operator console under /admin/ (bot/console/). Channels are built from the
settings: Telegram when TELEGRAM_BOT_TOKEN is set,
WeCom when WECOM_CORP_ID/AGENT_ID/SECRET are, and with it 微信客服 (its events arrive on the WeCom callback and
its API is called with the same app's token; it stays idle until a customer writes). With neither, the
process still serves /healthz and delivers reminders of console subscribers to its log (local mode).

The dispatcher is called on the event loop's thread: an answer takes milliseconds, and one thread means
one SQLite connection and no locking between channels and the reminder loop.
"""
from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.channels.base import Channel, RefusalLog
from bot.config import Settings
from bot.runtime import Dispatcher
from bot.storage import Store

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # bytes; a WeCom callback or a Telegram update is a few KB


def build_channels(settings: Settings, dispatcher: Dispatcher, store: Store) -> list[Channel]:
    channels: list[Channel] = []
    if settings.telegram_enabled:
        from bot.channels.telegram import TelegramChannel
        channels.append(TelegramChannel(settings, dispatcher, store))
    if settings.wecom_enabled:
        from bot.channels.wechat_kf import WechatKfChannel
        from bot.channels.wecom import WecomChannel
        wecom = WecomChannel(settings, dispatcher, store)
        wecom.kf = WechatKfChannel(settings, dispatcher, store, wecom.api)
        channels += [wecom, wecom.kf]
    from bot.channels.console import ConsoleLog
    channels.append(ConsoleLog())
    return channels


HTTP_REFUSALS = RefusalLog("http")


class MalformedHttp(logging.Filter):
    """aiohttp logs a request it cannot parse (bad request line, headers, chunking) with a traceback at
    ERROR: that becomes a count and a rate-limited line (RefusalLog), without the traceback. Errors of
    our own handlers keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (HttpProcessingError, ConnectionResetError)):
            HTTP_REFUSALS.add(f"malformed HTTP ({type(exc).__name__})")
            return False
        return True


def build_app(channels: list[Channel], console=None) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def healthz(request: web.Request) -> web.Response:
        refused = {c.name: c.refusals.count for c in channels if getattr(c, "refusals", None)}
        refused["http"] = HTTP_REFUSALS.count
        return web.json_response({"ok": True, "channels": [c.name for c in channels], "refused": refused})

    app.router.add_get("/healthz", healthz)
    for channel in channels:
        app.add_routes(channel.routes())
    if console is not None:
        app.add_routes(console.routes())
    return app


async def run(settings: Settings, kb, stop: asyncio.Event | None = None, ready: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set (or SIGINT/SIGTERM when it is not given)."""
    store = Store(settings.db)
    dispatcher = Dispatcher(settings, store, kb)
    channels = build_channels(settings, dispatcher, store)
    stop = stop or _signal_event()
    from bot.console import Console
    from bot.reminders import ReminderLoop
    loop = ReminderLoop(settings, store, kb, {c.name: c for c in channels})

    def swap_kb(new_kb) -> None:
        """A knowledge base rebuilt after an operator taught it: every part of the process uses it from now on."""
        dispatcher.kb = new_kb
        loop.kb = new_kb
        for channel in channels:
            if hasattr(channel, "kb"):  # 微信客服 reads measures when it writes reminders
                channel.kb = new_kb

    console = Console(settings, store, lambda: dispatcher.kb, swap_kb, dispatcher.today)
    app = build_app(channels, console)
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedHttp) for f in server_log.filters):
        server_log.addFilter(MalformedHttp())
    # keepalive_timeout closes a connection idle after a response, and one that has not sent a whole request
    # head (aiohttp arms the timer at connect and only a parsed request disarms it): idle and slow headers
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=settings.idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.warning("policybot serving on http://%s:%s (%s)", settings.host, settings.port,
                ", ".join(c.name for c in channels))
    tasks = []
    try:
        for channel in channels:
            await channel.start()
        tasks.append(asyncio.create_task(loop.run(stop), name="reminders"))
        if ready:
            ready.set()
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(console.rebuilder.wait(), 30)  # a rebuild in progress writes its file whole
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down
            pass
        for channel in reversed(channels):
            try:
                await channel.stop()
            except Exception:  # noqa: BLE001 - shutting down: log and go on
                log.exception("stopping %s failed", channel.name)
        await runner.cleanup()


def _signal_event() -> asyncio.Event:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, event.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    return event
