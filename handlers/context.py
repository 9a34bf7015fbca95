"""What a handler may know about the world: passed in, never fetched."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from knowledge.kb import KnowledgeBase


@dataclass(frozen=True)
class Context:
    kb: KnowledgeBase
    today: dt.date  # in Asia/Shanghai
    is_admin: bool = False
