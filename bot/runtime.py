"""Runs the dialog core for every channel: state in, handler, state and events out, all in SQLite.

This is the only path from a channel to the handlers, so whatever a handler does wrong, the user gets
a short apology in Chinese and the process goes on.
"""
from __future__ import annotations

import logging
import threading

from bot.clock import today_shanghai
from bot.config import Settings
from bot.storage import Store
from handlers.context import Context
from handlers.core import handle
from handlers.message import Incoming, Reply
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)
SORRY = "抱歉，处理您的消息时出了点问题，请稍后再试，或换个说法。"


class Dispatcher:
    def __init__(self, settings: Settings, store: Store, kb: KnowledgeBase, today=today_shanghai):
        self.settings = settings
        self.store = store
        self.kb = kb
        self.today = today
        self._lock = threading.Lock()  # one SQLite connection: serialise the read-modify-write of state

    def handle(self, msg: Incoming) -> list[Reply]:
        with self._lock:
            try:
                state = self.store.get_state(msg.channel, msg.user_id)
                ctx = Context(self.kb, self.today(), self.settings.is_admin(msg.channel, msg.user_id))
                result = handle(msg, state, ctx)
                self._record(msg, result.events)
                if not any(e.kind == "forget" for e in result.events):
                    self.store.set_state(msg.channel, msg.user_id, result.state)
                return result.replies
            except Exception:  # noqa: BLE001 - the user must never see a traceback
                log.exception("handler failed on %s message from %s", msg.channel, msg.user_id)
                return [Reply(SORRY)]

    def _record(self, msg: Incoming, events) -> None:
        for e in events:
            if e.kind == "question":
                d = e.data
                self.store.log_question(msg.channel, msg.user_id, d["question"], d.get("city"), d["abstained"],
                                        d.get("reason"), d.get("citation"))
            elif e.kind == "check":
                self.store.log_check(msg.channel, msg.user_id, e.data["stage"], e.data.get("city"),
                                     e.data.get("verdict"))
            elif e.kind == "forget":
                self.store.forget(msg.channel, msg.user_id)
