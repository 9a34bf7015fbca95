"""The neutral message model every channel translates to and from."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Incoming:
    """One thing a user did: typed text, or pressed a button (then `callback` holds its data)."""
    channel: str  # console, telegram, wecom
    user_id: str
    text: str = ""
    callback: str | None = None
    chat_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # at most 64 bytes (Telegram's limit for callback data)


@dataclass
class Reply:
    text: str
    buttons: list[Button] = field(default_factory=list)


@dataclass
class Event:
    """Something the runtime records (in SQLite), returned by a handler instead of written by it."""
    kind: str  # question, check, forget
    data: dict = field(default_factory=dict)


@dataclass
class Result:
    replies: list[Reply]
    state: dict
    events: list[Event] = field(default_factory=list)
