"""Runs the dialog core for every channel: state in, handler, state and events out, all in SQLite.

This is the only path from a channel to the handlers, so whatever a handler does wrong, the user gets
a short apology in Chinese and the process goes on.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

from bot.clock import now_shanghai, today_shanghai
from bot.config import Settings
from bot.storage import Store
from handlers.context import Context
from handlers.core import handle
from handlers.message import Incoming, Reply
from knowledge.kb import KnowledgeBase

log = logging.getLogger(__name__)
SORRY = "抱歉，处理您的消息时出了点问题，请稍后再试，或换个说法。"


class StoreView:
    """The read-only DataView handlers get (handlers.context.DataView), over the Store."""

    def __init__(self, store: Store, today):
        self.store = store
        self.today = today

    def subscriptions(self, channel: str, user_id: str) -> list[dict]:
        return self.store.subscriptions_of(channel, user_id)

    def subscription_by_code(self, credit_code: str) -> dict | None:
        return self.store.subscription_by_code(credit_code)

    def upcoming(self, channel, user_id, days: int) -> list[dict]:
        until = (self.today() + dt.timedelta(days=days)).isoformat()
        return self.store.upcoming(until, channel, user_id)

    def stats(self, days: int) -> dict:
        since = (now_shanghai() - dt.timedelta(days=days)).isoformat()
        return self.store.stats(since)

    def unanswered(self, limit: int) -> list[dict]:
        return self.store.unanswered(limit)


class Dispatcher:
    def __init__(self, settings: Settings, store: Store, kb: KnowledgeBase, today=today_shanghai, now=now_shanghai):
        self.settings = settings
        self.now = now
        self.store = store
        self.kb = kb
        self.today = today
        self._lock = threading.Lock()  # one SQLite connection: serialise the read-modify-write of state
        # what a channel can and cannot do, told to the dialogs through the Context (a channel registers it):
        # push_window_hours: pushes reach the user only this long after their last message (微信客服: 48)
        self.capabilities: dict[str, dict] = {}

    def handle(self, msg: Incoming) -> list[Reply]:
        with self._lock:
            try:
                state = self.store.get_state(msg.channel, msg.user_id)
                ctx = Context(self.kb, self.today(), self.settings.is_admin(msg.channel, msg.user_id),
                              StoreView(self.store, self.today), self.settings.reminder_leads, self.settings.send_hours,
                              self.now(),
                              push_window_hours=self.capabilities.get(msg.channel, {}).get("push_window_hours"))
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
                                        d.get("reason"), d.get("citation"), turn=d.get("turn"))
            elif e.kind == "feedback":
                self.store.record_feedback(msg.channel, msg.user_id, e.data.get("turn"), e.data.get("vote"),
                                           e.data.get("reason"))
            elif e.kind == "check":
                self.store.log_check(msg.channel, msg.user_id, e.data["stage"], e.data.get("city"),
                                     e.data.get("verdict"))
            elif e.kind in ("subscribe", "change", "unsubscribe"):
                self._reminders(e)
            elif e.kind == "rename":  # the enterprise's current name, shown by /status and in reminders
                self.store.set_subscription(e.data["subscription_id"], name=e.data["name"])
            elif e.kind == "forget":
                self.store.forget(msg.channel, msg.user_id)

    def _reminders(self, e) -> None:
        """Store a subscription, a reported change or an unsubscription, and plan its reminders."""
        from bot.reminders import schedule
        d = e.data
        if e.kind == "subscribe":
            sub_id, _ = self.store.upsert_subscription({
                "credit_code": d["credit_code"], "name": d["name"], "city": d["city"], "awarded_on": d["awarded_on"],
                "channel": d["channel"], "user_id": d["user_id"], "source": "chat", "active": 1,
                "inactive_reason": None})
        elif e.kind == "change":
            sub_id = d["subscription_id"]
            self.store.set_subscription(sub_id, changed_on=d["changed_on"], change_kind=d["kind"])
        else:
            self.store.deactivate(d["subscription_id"], "unsubscribed")
            return
        schedule(self.store, self.kb, sub_id, self.today(), self.settings.reminder_leads)
