"""What every network channel offers `policybot serve`: HTTP routes, a start/stop, and active push.

A channel translates platform messages to `handlers.message.Incoming`, hands them to the dispatcher and
renders the replies back; it decides nothing. `push` is how reminders (and slow replies) reach a user
outside a conversation turn; it raises `Blocked` when the user can no longer be reached (blocked the
bot, left the company: the subscriber is marked inactive, never retried) and `Transient` for errors
worth retrying later (network, rate limits; `retry_after` in seconds when the platform says).
`Deferred`: the platform lets us write to the user only for a while after their own message (微信客服:
48 hours): the message waits for their next one, and is not retried by the loop meanwhile.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Protocol

from aiohttp import web

from handlers.message import Button


class RefusalLog:
    """Requests refused (forged, stale, malformed): counted, and logged at most once per `every` seconds as
    one INFO line with the counts by reason, so that nobody can flood the log; each one at DEBUG."""

    def __init__(self, name: str, every: float = 60.0, clock=time.monotonic):
        self.name, self.every, self.clock = name, every, clock
        self.log = logging.getLogger(f"policybot.refused.{name}")
        self.total: collections.Counter[str] = collections.Counter()
        self._window: collections.Counter[str] = collections.Counter()
        self._last: float | None = None

    def add(self, reason: str) -> None:
        self.total[reason] += 1
        self._window[reason] += 1
        self.log.debug("%s: refused: %s", self.name, reason)
        now = self.clock()
        if self._last is None or now - self._last >= self.every:
            counts = ", ".join(f"{r}: {n}" for r, n in self._window.most_common())
            self.log.info("%s: %d request(s) refused since the last report (%s)", self.name,
                          sum(self._window.values()), counts)
            self._window.clear()
            self._last = now

    @property
    def count(self) -> int:
        return sum(self.total.values())


class BackgroundTasks:
    """Tasks a channel starts outside a request (late pushes, syncs): kept until done, a failure logged,
    all cancelled on stop."""

    def __init__(self, log: logging.Logger, what: str):
        self._tasks: set[asyncio.Task] = set()
        self._log, self._what = log, what

    def start(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception():
            self._log.error("%s failed", self._what, exc_info=task.exception())

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class DeliveryError(Exception):
    """A push that did not reach the user."""


class Blocked(DeliveryError):
    """The user cannot be reached any more (blocked the bot, not a member): stop sending."""


class Transient(DeliveryError):
    """Worth retrying later."""

    def __init__(self, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Deferred(DeliveryError):
    """Cannot be delivered until the user writes again (outside the platform's reply window, or its quota)."""


class Channel(Protocol):
    name: str  # telegram, wecom, console: the `channel` of Incoming and of subscriptions

    def routes(self) -> list[web.RouteDef]:
        """HTTP endpoints this channel serves on the shared server (may be empty)."""

    async def start(self) -> None:
        """Called once the HTTP server listens (start polling, register commands …)."""

    async def stop(self) -> None:
        """Called on shutdown; must return promptly."""

    async def push(self, user_id: str, text: str, buttons: list[Button] | None = None) -> None:
        """Send one message outside a conversation turn; raises Blocked or Transient."""
