"""What a handler may know about the world: passed in, never fetched."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from knowledge.kb import KnowledgeBase


class DataView(Protocol):
    """Read-only views of the stored data a handler may show (writes go back as events)."""

    def subscriptions(self, channel: str, user_id: str) -> list[dict]: ...

    def subscription_by_code(self, credit_code: str) -> dict | None: ...

    def binding_code_valid(self, credit_code: str, code: str) -> bool: ...

    def upcoming(self, channel: str | None, user_id: str | None, days: int) -> list[dict]: ...

    def stats(self, days: int) -> dict: ...

    def unanswered(self, limit: int) -> list[dict]: ...


@dataclass(frozen=True)
class Context:
    kb: KnowledgeBase
    today: dt.date  # in Asia/Shanghai
    is_admin: bool = False
    data: DataView | None = None
    leads: tuple[int, ...] = (30, 7, 1, 0)
    send_hours: tuple[int, int] = (9, 18)
    now: dt.datetime | None = None  # in Asia/Shanghai: when this message came (a dialog idle > 1 day ends)
    # the channel can reach the user only this many hours after their own last message (None: any time)
    push_window_hours: int | None = None
