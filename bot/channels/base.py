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

from typing import Protocol

from aiohttp import web

from handlers.message import Button


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
