"""Placeholder replaced in the next commit: the durable reminder loop (issue 4)."""
from __future__ import annotations

import asyncio


class ReminderLoop:
    def __init__(self, settings, store, kb, channels):
        self.channels = channels

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
