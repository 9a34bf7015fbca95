"""Reminders for awarded enterprises: what to remind of and when (a plan), and the loop that sends them.

Durable, at least once, and as close to exactly once as each platform allows. Reminders are rows in
SQLite, planned when an enterprise subscribes, is imported, or reports a change, and topped up once a day
(the next review after one has passed). The loop in `policybot serve` picks the pending rows whose day
has come, sends each through its subscriber's channel, and records the delivery together with the
reminder's new status in one transaction, right after the platform acknowledged the send (nothing is
awaited in between); the delivery log holds a reminder at most once (a unique key). A crash before that
commit leaves the row pending, so after a restart it is sent again: a reminder is never lost.
The window in which a crash makes a user see a reminder twice:
- WeCom: none within 4 hours. Reminders go with message/send's duplicate check on
  (`enable_duplicate_check`, interval 14 400 s, the platform's maximum), so WeCom itself drops the resend
  of the same text to the same member; the restart must come within 4 hours and the same day (the text
  counts the days left).
- Telegram: the Bot API has no idempotency key, so the window is one sendMessage round trip plus our
  commit (milliseconds): a kill -9 after Telegram accepted the message and before the commit resends it.
- local mode (console): the log is written first, so none.
Rows whose day passed while the process was down are sent late, once, and say so.

Planning is pure (dates passed in); the loop reads the clock through `clock` (Asia/Shanghai).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Callable

from bot.channels.base import Blocked, Deferred, Transient
from bot.clock import now_shanghai
from bot.config import Settings
from bot.storage import Store
from rules.deadlines import DeadlineError, authority, filing_deadline, measure_rules, period_text, review_schedule

log = logging.getLogger(__name__)
KINDS = {"review": "复核提醒", "filing": "备案提醒", "expiry": "办法到期提醒", "title": "称号到期提醒"}
MAX_ATTEMPTS = 8
CHANGE_KINDS = {"rename": "更名", "restructure": "重组"}


# ---- the plan -------------------------------------------------------------------------------------------
def plan(sub: dict, measure, today: dt.date, leads: tuple[int, ...]) -> list[dict]:
    """The reminders an enterprise should get from `today` on: review, filing, the measure's expiry."""
    out: list[dict] = []

    def add(kind: str, due: dt.date, only_future: bool = True) -> None:
        for lead in leads:
            send_on = due - dt.timedelta(days=lead)
            if send_on >= today or not only_future:
                out.append({"kind": kind, "due_on": due.isoformat(), "lead_days": lead, "send_on": send_on.isoformat()})

    if measure is None:
        return out
    awarded = _date(sub.get("awarded_on"))
    if awarded and awarded <= today:
        try:
            schedule = review_schedule(measure, awarded, today)
        except DeadlineError:
            schedule = None
        if schedule and schedule.next_review:
            add("review", schedule.next_review)
        if schedule and schedule.title_valid_until and schedule.title_valid_until >= today:
            add("title", schedule.title_valid_until)  # where the measure limits the title (称号有效期N年)
    changed = _date(sub.get("changed_on"))
    if changed and changed <= today:
        try:
            deadline = filing_deadline(changed, measures=[measure]).deadline
        except (DeadlineError, ValueError):
            deadline = None
        if deadline and deadline >= today:
            add("filing", deadline)
    until = measure.meta.get("in_force_until")
    if until:
        if until >= today:
            add("expiry", until)
        elif sub.get("source") != "chat":  # a chat subscriber is told when subscribing
            out.append({"kind": "expiry", "due_on": until.isoformat(), "lead_days": 0, "send_on": today.isoformat()})
    return out


def _date(value) -> dt.date | None:
    if not value:
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def schedule(store: Store, kb, sub_id: int, today: dt.date, leads: tuple[int, ...]) -> int:
    """Plan one subscription's reminders into the store (idempotent); returns how many were added."""
    sub = store.subscription(sub_id)
    if not sub or not sub["active"]:
        return 0
    steps = plan(sub, _measure(kb, sub["city"], today), today, leads)
    for kind in ("review", "filing"):  # a corrected award or change date replaces the earlier plan
        dues = {s["due_on"] for s in steps if s["kind"] == kind}
        if len(dues) == 1:
            store.cancel_reminders(sub_id, kind, keep_due_on=dues.pop())
    reviews = sorted(s["due_on"] for s in steps if s["kind"] == "review")
    replan = (dt.date.fromisoformat(reviews[-1]) + dt.timedelta(days=1)).isoformat() if reviews else None
    if sub.get("replan_on") != replan:
        store.set_subscription(sub_id, replan_on=replan)  # after this review, plan the next one
    return store.add_reminders(sub_id, steps)


def _measure(kb, mid: str | None, on: dt.date):
    """The measure of the subscriber's city that applies on the day (a successor once it is in force)."""
    if not mid or mid not in kb.measures:
        return None
    from knowledge.kb import in_force_on
    return kb.measures[in_force_on(kb.measures, mid, on)]


# ---- the text -------------------------------------------------------------------------------------------
def compose(r: dict, measure, today: dt.date) -> tuple[str, bool]:
    """The message for a due reminder row, and whether it is late."""
    due = dt.date.fromisoformat(r["due_on"])
    send_on = dt.date.fromisoformat(r["send_on"])
    late = today > send_on
    left = (due - today).days
    when = "就是今天" if left == 0 else (f"还有{left}天" if left > 0 else f"已过去{-left}天")
    name = r.get("name") or "贵企业"
    who = authority(measure) if measure else "主管部门"
    lines = []
    if late:
        lines.append(f"（补发：这条提醒原定于{send_on.isoformat()}发送，因系统暂停未能按时送达。）")
    if r["kind"] == "review":
        rule = (measure_rules(measure).get("review") if measure else None) or {}
        every = f"每{rule['interval_years']}年复核一次，" if rule.get("interval_years") else ""
        consequence = f"{rule['consequence']['text']}。" if rule.get("consequence") else ""
        lines.append(f"【复核提醒】{name}：按规定，示范企业{every}贵企业预计的复核日期是{due.isoformat()}（{when}）。"
                     f"{consequence}具体时间以{who}通知为准。")
        lines.append(_basis(measure, "review"))
        until = measure.meta.get("in_force_until") if measure else None
        if until and due > until:
            lines.append(f"注意：{measure.citation_title}有效期至{until.isoformat()}，这次复核以后续新办法或主管部门通知为准。")
    elif r["kind"] == "filing":
        kind = CHANGE_KINDS.get(r.get("change_kind") or "", "更名、重组")
        rule = (measure_rules(measure).get("filing") if measure else None) or {}
        period = f"须在{period_text(rule['days'], rule['unit'])}内" if rule else "须在规定期限内"
        lines.append(f"【备案提醒】{name}：{kind}手续办完后{period}备案，截止日是{due.isoformat()}（{when}）。"
                     f"请通过所在地工信部门报{who}备案。")
        lines.append(_basis(measure, "filing"))
    elif r["kind"] == "title":
        rule = (measure_rules(measure).get("title_validity") if measure else None) or {}
        years = f"示范称号有效期{rule['years']}年，" if rule.get("years") else ""
        lines.append(f"【称号到期提醒】{name}：{years}贵企业的称号预计于{due.isoformat()}届满（{when}）。"
                     f"期满后如需继续保持，请按规定重新申报，具体以{who}通知为准。")
        if rule.get("article"):
            lines.append(f"依据：{measure.cite(rule['article'])}。")
    else:
        until = due
        state = "今天到期" if left == 0 else (f"还有{left}天到期" if left > 0 else f"已于{until.isoformat()}到期")
        lines.append(f"【办法到期提醒】{measure.citation_title if measure else '办法'}有效期至{until.isoformat()}，{state}。"
                     "此后的申报、复核以新办法或主管部门通知为准。可以问我：“办法过期了还能申报吗？”")
    return "\n".join(x for x in lines if x), late


def _basis(measure, kind: str) -> str:
    """依据：the articles of this measure's deadline rules (rules/deadlines.yaml, or read from its articles)."""
    if measure is None:
        return ""
    from knowledge.kb import to_cn_number
    rules = measure_rules(measure)
    if kind == "filing":
        articles = [a for a in [(rules.get("filing") or {}).get("article")] if a]
    else:
        rule = rules.get("review") or {}
        articles = [a for a in (rule.get("article"), (rule.get("consequence") or {}).get("article")) if a]
    if not articles:
        return ""
    return "依据：" + measure.cite(articles[0]) + "".join(f"、第{to_cn_number(a)}条" for a in articles[1:]) + "。"




# ---- the loop -------------------------------------------------------------------------------------------
class ReminderLoop:
    def __init__(self, settings: Settings, store: Store, kb, channels: dict,
                 clock: Callable[[], dt.datetime] = now_shanghai):
        self.settings = settings
        self.store = store
        self.kb = kb
        self.channels = channels
        self.clock = clock
        self._planned_on: dt.date | None = None

    def in_hours(self, now: dt.datetime) -> bool:
        start, end = self.settings.send_hours
        return start <= now.hour < end

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep(stop)
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad row or outage
                log.exception("reminder sweep failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.sweep_seconds)
            except asyncio.TimeoutError:
                pass

    async def top_up(self, today: dt.date) -> int:
        """Plan the subscriptions whose plan ran out (the next review, once one has passed), and those an
        operator or a binding code just gave a contact."""
        added = 0
        for i, sub_id in enumerate(self.store.to_replan(today.isoformat())):
            added += schedule(self.store, self.kb, sub_id, today, self.settings.reminder_leads)
            if i % 500 == 499:
                await asyncio.sleep(0)  # let channels answer meanwhile
        self._planned_on = today
        return added

    async def sweep(self, stop: asyncio.Event | None = None) -> int:
        """Send every reminder that is due now; returns how many were delivered."""
        now = self.clock()
        if not self.in_hours(now):
            return 0
        today = now.date()
        await self.top_up(today)  # an index finds the few due for planning (a passed review, a new contact)
        sent = 0
        failed_now: set[int] = set()
        while not (stop and stop.is_set()):
            batch = [r for r in self.store.due_reminders(today.isoformat(), now.isoformat(), channels=list(self.channels))
                     if r["id"] not in failed_now]
            if not batch:
                break
            for r in batch:
                if stop and stop.is_set():
                    break
                outcome = await self._deliver(r, today)
                if outcome == "sent":
                    sent += 1
                elif outcome == "blocked":  # the rest of this batch for the user is cancelled already
                    break
                elif outcome == "waiting":
                    pass
                else:
                    failed_now.add(r["id"])
            await asyncio.sleep(0)
        return sent

    async def _deliver(self, r: dict, today: dt.date) -> str:
        """sent, blocked, waiting (for the user's next message: 微信客服) or failed (to be retried, or given up
        after MAX_ATTEMPTS)."""
        channel = self.channels[r["channel"]]
        measure = _measure(self.kb, r["city"], today)
        text, late = compose(r, measure, today)
        if getattr(channel, "name", "") == "console":  # local mode: the log is the delivery, written first
            if self.store.record_delivery(r, text, late):
                await channel.push(r["user_id"], text)
            return "sent"
        try:
            if getattr(channel, "platform_dedupe", False):  # WeCom drops a repeat within 4 h by itself
                await channel.push(r["user_id"], text, dedupe=True)
            else:
                await channel.push(r["user_id"], text)
        except Deferred as exc:
            log.info("reminder %s to %s waits for the user's next message: %s", r["id"], r["channel"], exc)
            self.store.reminder_waiting(r["id"])
            return "waiting"
        except Blocked as exc:
            log.warning("%s:%s cannot be reached (%s): subscription inactive", r["channel"], r["user_id"], exc)
            for sub in self.store.subscriptions_of(r["channel"], r["user_id"]):
                self.store.deactivate(sub["id"], "blocked")
            return "blocked"
        except Exception as exc:  # noqa: BLE001 - Transient, or anything the platform library raised
            attempts = (r.get("attempts") or 0) + 1
            retry_after = exc.retry_after if isinstance(exc, Transient) and exc.retry_after else None
            delay = min(retry_after or 60 * 2 ** attempts, 6 * 3600)
            next_try = None if attempts >= MAX_ATTEMPTS else (self.clock() + dt.timedelta(seconds=delay)).isoformat()
            log.warning("reminder %s to %s:%s failed (attempt %s): %s", r["id"], r["channel"], r["user_id"],
                        attempts, exc)
            self.store.reminder_failed(r["id"], f"{type(exc).__name__}: {exc}", next_try)
            return "failed"
        self.store.record_delivery(r, text, late)  # at once: nothing awaited between the ack and this commit
        return "sent"
