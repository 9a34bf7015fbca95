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
from handlers.message import Button, Incoming, Reply
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

    def binding_code_valid(self, credit_code: str, code: str) -> bool:
        return self.store.binding_code_valid(credit_code, code)

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

    def handle(self, msg: Incoming, key: str | None = None) -> list[Reply]:
        return self.handle_once(msg, key)[0]

    def handle_once(self, msg: Incoming, key: str | None = None) -> tuple[list[Reply], str | None]:
        """The replies to a message, and None when they are new, else the delivery status recorded when
        this platform message (`key`: a WeCom MsgId, a Telegram update_id) was handled before: its stored
        replies come back instead of handling it again.

        What the message changes (state, logs, subscriptions) and the record that it was handled, with its
        replies, are one transaction: a crash leaves either nothing (the retry is handled afresh) or all
        of it (the retry gets the same replies)."""
        with self._lock:
            try:
                with self.store.transaction():
                    if key is not None:
                        before = self.store.handled(msg.channel, key)
                        if before is not None:
                            return [_reply(r) for r in before["reply"] or []], before["status"] or "sent"
                    state = self.store.get_state(msg.channel, msg.user_id, msg.chat_id)
                    ctx = Context(self.kb, self.today(), self.settings.is_admin(msg.channel, msg.user_id),
                                  StoreView(self.store, self.today), self.settings.reminder_leads,
                                  self.settings.send_hours, self.now(),
                                  push_window_hours=self.capabilities.get(msg.channel, {}).get("push_window_hours"))
                    result = handle(msg, state, ctx)
                    self._record(msg, result.events)
                    forgot = any(e.kind == "forget" for e in result.events)
                    if not forgot:
                        self.store.set_state(msg.channel, msg.user_id, result.state, msg.chat_id)
                    if key is not None:
                        self.store.mark_handled(msg.channel, key, None if forgot else msg.user_id,
                                                [_plain(r) for r in result.replies])
                return result.replies, None
            except Exception:  # noqa: BLE001 - the user must never see a traceback
                log.exception("handler failed on a %s message", msg.channel)
                return [Reply(SORRY)], None

    def delivered(self, channel: str, key: str, status: str = "sent") -> None:
        """The replies of a handled message went out (or: are to be pushed, `push`)."""
        with self._lock:
            self.store.set_handled_status(channel, key, status)

    def _record(self, msg: Incoming, events) -> None:
        for e in events:
            if e.kind == "question":
                d = e.data
                self.store.log_question(msg.channel, msg.user_id, d["question"], d.get("city"), d["abstained"],
                                        d.get("reason"), d.get("citation"), trace=d.get("trace"), turn=d.get("turn"))
            elif e.kind == "feedback":
                self.store.record_feedback(msg.channel, msg.user_id, e.data.get("turn"), e.data.get("vote"),
                                           e.data.get("reason"))
            elif e.kind == "check":
                self.store.log_check(msg.channel, msg.user_id, e.data["stage"], e.data.get("city"),
                                     e.data.get("verdict"))
            elif e.kind in ("subscribe", "change", "unsubscribe"):
                self._reminders(e)
            elif e.kind == "claim":
                self._claim(msg, e.data)
            elif e.kind == "rename":  # the enterprise's current name, shown by /status and in reminders
                self.store.set_subscription(e.data["subscription_id"], name=e.data["name"])
            elif e.kind == "forget":
                self.store.forget(msg.channel, msg.user_id)

    def _reminders(self, e) -> None:
        """Store a subscription, a reported change or an unsubscription, and plan its reminders."""
        from bot.reminders import schedule
        d = e.data
        if e.kind == "subscribe":
            existing = self.store.subscription_by_code(d["credit_code"])
            if existing and (existing["channel"], existing["user_id"]) != (d["channel"], d["user_id"]):
                log.warning("a chat subscription to a record bound elsewhere was refused (a claim is needed)")
                return
            if existing and existing.get("source") == "import":  # the bureau's name and date stay
                self.store.set_subscription(existing["id"], active=1, inactive_reason=None)
                schedule(self.store, self.kb, existing["id"], self.today(), self.settings.reminder_leads)
                return
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

    def _claim(self, msg: Incoming, d: dict) -> None:
        """A claim of an existing record: with a binding code it binds at once, else it waits for an operator."""
        from bot.reminders import schedule
        if d.get("code"):
            sub = self.store.redeem_binding_code(d["credit_code"], d["code"], msg.channel, msg.user_id,
                                                 msg.chat_id, d.get("claimed_name"))
            if sub:
                schedule(self.store, self.kb, sub["id"], self.today(), self.settings.reminder_leads)
        else:
            self.store.add_claim(d["credit_code"], msg.channel, msg.user_id, msg.chat_id, d.get("claimed_name"))


def _plain(reply: Reply) -> dict:
    return {"text": reply.text, "buttons": [[b.label, b.data] for b in reply.buttons]}


def _reply(data: dict) -> Reply:
    return Reply(str(data.get("text") or ""), [Button(str(label), str(value)) for label, value in data.get("buttons") or []])
