"""SQLite, the record: dialog state per user and the log of questions (declined ones included).

A small interface over sqlite-utils; every other module goes through it. WAL mode, so the serve
process and an operator's CLI can use the database at the same time.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from bot.clock import now_shanghai


class _Connection(sqlite3.Connection):
    """A connection whose commits can be held back, so that several Store calls (and sqlite-utils' own
    `with conn:` blocks) make one transaction: `Store.transaction()`."""

    hold = False

    def commit(self) -> None:
        if not self.hold:
            super().commit()

    def __exit__(self, exc_type, exc, tb):
        if self.hold:
            return False  # the outer transaction commits or rolls back
        return super().__exit__(exc_type, exc, tb)


class Store:
    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(sqlite3.connect(str(path), factory=_Connection))
        if str(path) != ":memory:":
            self.db.enable_wal()
            self.db.execute("pragma synchronous = normal")  # WAL + NORMAL: a kill -9 loses no committed row
        self._migrate()

    def _migrate(self) -> None:
        db = self.db
        if "dialog_state" not in db.table_names():
            db["dialog_state"].create({"channel": str, "user_id": str, "state": str, "updated_at": str},
                                      pk=("channel", "user_id"))
        if "questions" not in db.table_names():
            db["questions"].create({"id": int, "asked_at": str, "channel": str, "user_id": str, "question": str,
                                    "city": str, "abstained": int, "reason": str, "citation": str}, pk="id")
            db["questions"].create_index(["abstained", "asked_at"])
            db["questions"].create_index(["channel", "user_id"])

        if "sessions" not in db.table_names():  # `policybot ask --session ID`: a conversation kept across calls
            db["sessions"].create({"id": str, "state": str, "updated_at": str}, pk="id")

        # feedback on an answer (👍 +1 / 👎 -1, an optional reason) and what an operator did with the question in
        # the console (linked to an article, or marked out of scope); `turn` numbers a user's questions, so that a
        # feedback button of an older answer lands on that answer. Added to an existing table column by column.
        question_columns = {"turn": int, "feedback": int, "feedback_reason": str, "feedback_at": str,
                            "resolution": str, "resolved_ref": str, "resolved_by": str, "resolved_at": str}
        have = set(db["questions"].columns_dict)
        for column, kind in question_columns.items():
            if column not in have:
                db["questions"].add_column(column, kind)
        if not any(ix.name == "idx_questions_feedback" for ix in db["questions"].indexes):
            db["questions"].create_index(["feedback"], index_name="idx_questions_feedback")

        # the operator console: accounts (argon2 hashes), sessions (the token's SHA-256 only), what operators taught
        if "operators" not in db.table_names():
            db["operators"].create({"name": str, "password_hash": str, "created_at": str, "last_login_at": str},
                                   pk="name")
        if "console_sessions" not in db.table_names():
            db["console_sessions"].create({"token_hash": str, "operator": str, "csrf": str, "created_at": str,
                                           "seen_at": str, "expires_at": str}, pk="token_hash")
            db["console_sessions"].create_index(["operator"])
        if "teach_log" not in db.table_names():
            db["teach_log"].create({"id": int, "at": str, "by": str, "kind": str, "question": str, "measure": str,
                                    "article": int, "status": str, "outcome": str, "done_at": str}, pk="id")

        if "checks" not in db.table_names():
            db["checks"].create({"id": int, "at": str, "channel": str, "user_id": str, "stage": str, "city": str,
                                 "verdict": str}, pk="id")
            db["checks"].create_index(["channel", "user_id"])

        if "seen_messages" not in db.table_names():
            db["seen_messages"].create({"channel": str, "key": str, "at": str}, pk=("channel", "key"))
            db["seen_messages"].create_index(["at"])

        if "subscriptions" not in db.table_names():
            db["subscriptions"].create({"id": int, "credit_code": str, "name": str, "city": str, "awarded_on": str,
                                        "channel": str, "user_id": str, "active": int, "inactive_reason": str,
                                        "source": str, "changed_on": str, "change_kind": str, "replan_on": str,
                                        "created_at": str, "updated_at": str}, pk="id")
            db["subscriptions"].create_index(["credit_code"], unique=True)
            db["subscriptions"].create_index(["channel", "user_id"])
        if "reminders" not in db.table_names():
            db["reminders"].create({"id": int, "subscription_id": int, "kind": str, "due_on": str, "lead_days": int,
                                    "send_on": str, "status": str, "attempts": int, "next_try_at": str,
                                    "last_error": str, "created_at": str}, pk="id",
                                   foreign_keys=[("subscription_id", "subscriptions", "id")])
            db["reminders"].create_index(["subscription_id", "kind", "due_on", "lead_days"], unique=True)
            db["reminders"].create_index(["status", "send_on"])
        if "deliveries" not in db.table_names():
            db["deliveries"].create({"id": int, "reminder_id": int, "channel": str, "user_id": str, "text": str,
                                     "late": int, "sent_at": str}, pk="id")
            db["deliveries"].create_index(["reminder_id"], unique=True)  # the log holds each reminder once
        self._migrate_kf()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together, or not at all (nested calls join the outer one)."""
        conn = self.db.conn
        if conn.hold:
            yield
            return
        if not conn.in_transaction:
            conn.execute("begin immediate")
        conn.hold = True
        try:
            yield
        except BaseException:
            conn.hold = False
            conn.rollback()
            raise
        conn.hold = False
        conn.commit()

    # ---- platform message ids (a retried or repeated delivery is handled once) -------------------
    def first_time(self, channel: str, key: str, keep_days: int = 3) -> bool:
        """Record a platform message id; False when it was seen before (WeCom retries, Telegram update_id)."""
        now = now_shanghai()
        cur = self.db.execute("insert or ignore into seen_messages (channel, key, at) values (?, ?, ?)",
                              [channel, str(key), now.isoformat()])
        self.db.conn.commit()
        self._seen_inserts = getattr(self, "_seen_inserts", 0) + 1
        if self._seen_inserts % 1000 == 0:  # now and then, forget ids older than keep_days
            cutoff = (now - dt.timedelta(days=keep_days)).isoformat()
            self.db.execute("delete from seen_messages where at < ?", [cutoff])
            self.db.conn.commit()
        return bool(cur.rowcount)

    # ---- dialog state -----------------------------------------------------------------------------
    def get_state(self, channel: str, user_id: str) -> dict:
        rows = list(self.db.query("select state from dialog_state where channel = ? and user_id = ?",
                                  [channel, user_id]))
        if not rows:
            return {}
        try:
            state = json.loads(rows[0]["state"])
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}

    def set_state(self, channel: str, user_id: str, state: dict) -> None:
        if not state:
            self.db.execute("delete from dialog_state where channel = ? and user_id = ?", [channel, user_id])
            self.db.conn.commit()
            return
        self.db["dialog_state"].upsert({"channel": channel, "user_id": user_id,
                                        "state": json.dumps(state, ensure_ascii=False),
                                        "updated_at": now_shanghai().isoformat()}, pk=("channel", "user_id"))

    # ---- conversations of `ask --session` ------------------------------------------------------------
    def get_session(self, session_id: str) -> dict:
        rows = list(self.db.query("select state from sessions where id = ?", [session_id]))
        if not rows:
            return {}
        try:
            state = json.loads(rows[0]["state"])
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}

    def set_session(self, session_id: str, state: dict) -> None:
        self.db["sessions"].upsert({"id": session_id, "state": json.dumps(state, ensure_ascii=False),
                                    "updated_at": now_shanghai().isoformat()}, pk="id")

    # ---- questions --------------------------------------------------------------------------------
    def log_question(self, channel: str, user_id: str | None, question: str, city: str | None, abstained: bool,
                     reason: str | None, citation: str | None, at: dt.datetime | None = None,
                     turn: int | None = None) -> None:
        self.db["questions"].insert({"asked_at": (at or now_shanghai()).isoformat(), "channel": channel,
                                     "user_id": user_id, "question": question[:2000], "city": city,
                                     "abstained": int(abstained), "reason": reason, "citation": citation,
                                     "turn": turn})

    def record_feedback(self, channel: str, user_id: str, turn: int | None, vote: int | None = None,
                        reason: str | None = None) -> bool:
        """👍 (+1) or 👎 (-1) on the answer of a user's question `turn` (their latest when None), or the reason
        of a 👎 (vote None); False when there is no such question."""
        where, args = "channel = ? and user_id = ?", [channel, user_id]
        if turn is not None:
            where += " and turn = ?"
            args.append(turn)
        rows = list(self.db.query(f"select id from questions where {where} order by id desc limit 1", args))
        if not rows:
            return False
        fields = {"feedback_at": now_shanghai().isoformat()}
        if vote is not None:
            fields.update(feedback=vote, feedback_reason=None)
        if reason is not None:
            fields["feedback_reason"] = reason[:500]
        self.db["questions"].update(rows[0]["id"], fields)
        return True

    def review_queue(self, limit: int = 100) -> list[dict]:
        """Declined and 👎 questions no operator has handled yet, newest first (the console's /admin/unanswered);
        the same question asked again is one row, with how many times."""
        return list(self.db.query(
            "select max(id) as id, question, count(*) as times, max(asked_at) as last_asked, "
            "max(abstained) as abstained, min(coalesce(feedback, 0)) as feedback, "
            "(select reason from questions q2 where q2.question = q.question order by id desc limit 1) as reason, "
            "(select citation from questions q2 where q2.question = q.question order by id desc limit 1) as citation, "
            "group_concat(feedback_reason, '；') as feedback_reasons, "
            "(select city from questions q2 where q2.question = q.question order by id desc limit 1) as city "
            "from questions q where (abstained = 1 or feedback = -1) and resolution is null "
            "and reason is not 'empty' and reason is not 'too_long' and reason is not 'not_chinese' "
            "group by question order by last_asked desc, id desc limit ?", [limit]))

    def question(self, question_id: int) -> dict | None:
        rows = list(self.db.query("select * from questions where id = ?", [question_id]))
        return rows[0] if rows else None

    def resolve_question(self, text: str, resolution: str, ref: str | None, by: str) -> int:
        """Every unhandled row of this question is marked handled (linked / out_of_scope)."""
        with self.db.conn:
            cur = self.db.execute("update questions set resolution = ?, resolved_ref = ?, resolved_by = ?, "
                                  "resolved_at = ? where question = ? and resolution is null",
                                  [resolution, ref, by, now_shanghai().isoformat(), text])
        return cur.rowcount

    def questions_between(self, since: str, until: str | None = None) -> list[dict]:
        sql, args = "select * from questions where asked_at >= ?", [since]
        if until:
            sql += " and asked_at < ?"
            args.append(until)
        return list(self.db.query(sql + " order by id", args))

    # ---- the operator console ------------------------------------------------------------------------
    def add_operator(self, name: str, password_hash: str) -> bool:
        """A new account, or a new password for an existing one; True when it is new."""
        new = not self.operator(name)
        now = now_shanghai().isoformat()
        if new:
            self.db["operators"].insert({"name": name, "password_hash": password_hash, "created_at": now})
        else:
            self.db["operators"].update(name, {"password_hash": password_hash})
            self.db.execute("delete from console_sessions where operator = ?", [name])  # a new password logs out
            self.db.conn.commit()
        return new

    def operator(self, name: str) -> dict | None:
        rows = list(self.db.query("select * from operators where name = ?", [name]))
        return rows[0] if rows else None

    def operators(self) -> list[dict]:
        return list(self.db.query("select name, created_at, last_login_at from operators order by name"))

    def remove_operator(self, name: str) -> bool:
        with self.db.conn:
            self.db.execute("delete from console_sessions where operator = ?", [name])
            cur = self.db.execute("delete from operators where name = ?", [name])
        return bool(cur.rowcount)

    def set_operator(self, name: str, **fields) -> None:
        self.db["operators"].update(name, fields)

    def add_session(self, token_hash: str, operator: str, csrf: str, expires_at: str) -> None:
        now = now_shanghai().isoformat()
        with self.db.conn:
            self.db.execute("delete from console_sessions where expires_at < ?", [now])
            self.db.execute("insert into console_sessions (token_hash, operator, csrf, created_at, seen_at, expires_at) "
                            "values (?, ?, ?, ?, ?, ?)", [token_hash, operator, csrf, now, now, expires_at])

    def session(self, token_hash: str) -> dict | None:
        rows = list(self.db.query("select s.* from console_sessions s join operators o on o.name = s.operator "
                                  "where s.token_hash = ?", [token_hash]))
        return rows[0] if rows else None

    def touch_session(self, token_hash: str, seen_at: str) -> None:
        self.db.execute("update console_sessions set seen_at = ? where token_hash = ?", [seen_at, token_hash])
        self.db.conn.commit()

    def drop_session(self, token_hash: str) -> None:
        self.db.execute("delete from console_sessions where token_hash = ?", [token_hash])
        self.db.conn.commit()

    def log_teach(self, by: str, kind: str, question: str, measure: str | None, article: int | None) -> int:
        return self.db["teach_log"].insert({"at": now_shanghai().isoformat(), "by": by, "kind": kind,
                                            "question": question, "measure": measure, "article": article,
                                            "status": "pending"}).last_pk

    def teach_done(self, teach_id: int, status: str, outcome: str) -> None:
        self.db["teach_log"].update(teach_id, {"status": status, "outcome": outcome,
                                               "done_at": now_shanghai().isoformat()})

    def teach_log(self, limit: int = 20, status: str | None = None) -> list[dict]:
        sql, args = "select * from teach_log", []
        if status:
            sql += " where status = ?"
            args.append(status)
        return list(self.db.query(sql + " order by id desc limit ?", [*args, limit]))

    def unanswered(self, limit: int = 20) -> list[dict]:
        """Declined questions, most frequent first (what users ask that the base does not answer)."""
        return list(self.db.query(
            "select question, count(*) as times, max(asked_at) as last_asked from questions "
            "where abstained = 1 and reason in ('out_of_scope', 'uncovered_city', 'no_article') "
            "group by question order by times desc, last_asked desc limit ?", [limit]))

    # ---- self-checks ------------------------------------------------------------------------------
    def log_check(self, channel: str, user_id: str | None, stage: str, city: str | None, verdict: str | None,
                  at: dt.datetime | None = None) -> None:
        """A self-check started or ended with a verdict (counted by /stats; no answers are kept here)."""
        self.db["checks"].insert({"at": (at or now_shanghai()).isoformat(), "channel": channel, "user_id": user_id,
                                  "stage": stage, "city": city, "verdict": verdict})

    # ---- subscriptions and reminders ------------------------------------------------------------------
    def upsert_subscription(self, row: dict) -> tuple[int, str]:
        """Insert or update by credit code; returns (id, 'new' | 'updated' | 'unchanged').

        Contact fields (channel, user_id) are only overwritten by a non-empty value, so re-importing a list
        without contacts keeps what a chat subscription recorded.
        """
        now = now_shanghai().isoformat()
        existing = list(self.db.query("select * from subscriptions where credit_code = ?", [row["credit_code"]]))
        if not existing:
            full = {"active": 1, "inactive_reason": None, "changed_on": None, "change_kind": None, **row,
                    "created_at": now, "updated_at": now}
            return self.db["subscriptions"].insert(full).last_pk, "new"
        old = existing[0]
        update = {k: v for k, v in row.items() if v not in (None, "") or k not in ("channel", "user_id")}
        if row.get("active") is None:
            update.pop("active", None)
        update.pop("source", None)  # where the subscription first came from (chat or import) stays
        changed = {k: v for k, v in update.items() if old.get(k) != v}
        if not changed:
            return old["id"], "unchanged"
        self.db["subscriptions"].update(old["id"], {**changed, "updated_at": now})
        return old["id"], "updated"

    def subscription(self, sub_id: int) -> dict | None:
        rows = list(self.db.query("select * from subscriptions where id = ?", [sub_id]))
        return rows[0] if rows else None

    def subscription_by_code(self, credit_code: str) -> dict | None:
        rows = list(self.db.query("select * from subscriptions where credit_code = ?", [credit_code]))
        return rows[0] if rows else None

    def subscriptions_of(self, channel: str, user_id: str, active_only: bool = True) -> list[dict]:
        sql = "select * from subscriptions where channel = ? and user_id = ?" + (" and active = 1" if active_only else "")
        return list(self.db.query(sql + " order by id", [channel, user_id]))

    def to_replan(self, today: str) -> list[int]:
        """Active subscriptions whose plan runs out by `today` (their next review has passed)."""
        return [r["id"] for r in self.db.query(
            "select id from subscriptions where active = 1 and replan_on is not null and replan_on <= ?", [today])]

    def all_subscriptions(self, active_only: bool = True) -> list[dict]:
        return list(self.db.query("select * from subscriptions" + (" where active = 1" if active_only else "")
                                  + " order by id"))

    def set_subscription(self, sub_id: int, **fields) -> None:
        self.db["subscriptions"].update(sub_id, {**fields, "updated_at": now_shanghai().isoformat()})

    def deactivate(self, sub_id: int, reason: str) -> None:
        """No more reminders for this subscription (unsubscribed, blocked the bot)."""
        with self.db.conn:
            self.db.execute("update subscriptions set active = 0, inactive_reason = ?, updated_at = ? where id = ?",
                            [reason, now_shanghai().isoformat(), sub_id])
            self.db.execute("update reminders set status = 'cancelled' where subscription_id = ? "
                            "and status in ('pending', 'waiting')",
                            [sub_id])

    def add_reminders(self, sub_id: int, plan: list[dict]) -> int:
        """Insert planned reminders; one already there (same kind, due date and lead) is left alone, unless it
        was cancelled (an unsubscription, a corrected date): then it is pending again."""
        now = now_shanghai().isoformat()
        added = 0
        with self.db.conn:
            for r in plan:
                cur = self.db.execute(
                    "insert into reminders (subscription_id, kind, due_on, lead_days, send_on, status, attempts, "
                    "created_at) values (?, ?, ?, ?, ?, 'pending', 0, ?) "
                    "on conflict (subscription_id, kind, due_on, lead_days) do update set status = 'pending', "
                    "attempts = 0, next_try_at = null, last_error = null where status = 'cancelled'",
                    [sub_id, r["kind"], r["due_on"], r["lead_days"], r["send_on"], now])
                added += cur.rowcount
        return added

    def cancel_reminders(self, sub_id: int, kind: str, keep_due_on: str | None = None) -> int:
        """Cancel pending reminders of a kind (a changed award date or change date replaces its plan)."""
        with self.db.conn:
            cur = self.db.execute("update reminders set status = 'cancelled' where subscription_id = ? and kind = ? "
                                  "and status in ('pending', 'waiting') and due_on != ?", [sub_id, kind, keep_due_on or ""])
        return cur.rowcount

    def due_reminders(self, today: str, now: str, channels: list[str] | None = None, limit: int = 200) -> list[dict]:
        """Pending reminders to send now: send_on reached, retry time reached, subscriber active and reachable
        through one of `channels` (the ones this process runs)."""
        only = ""
        if channels is not None:
            only = " and s.channel in (" + ",".join("?" * len(channels)) + ")" if channels else " and 0"
        return list(self.db.query(
            "select r.*, s.name, s.city, s.channel, s.user_id, s.credit_code, s.awarded_on, s.changed_on, s.change_kind "
            "from reminders r join subscriptions s on s.id = r.subscription_id "
            "where r.status = 'pending' and r.send_on <= ? and (r.next_try_at is null or r.next_try_at <= ?) "
            "and s.active = 1 and s.channel is not null and s.user_id is not null" + only +
            " order by r.send_on, r.id limit ?", [today, now, *(channels or []), limit]))

    def upcoming(self, until: str, channel: str | None = None, user_id: str | None = None) -> list[dict]:
        """Pending reminders with send_on up to `until` (operators' view; or one user's); `status` 'waiting' marks
        one its channel could not deliver yet (微信客服 outside its 48-hour window)."""
        where, args = "r.status in ('pending', 'waiting') and r.send_on <= ? and s.active = 1", [until]
        if channel:
            where += " and s.channel = ? and s.user_id = ?"
            args += [channel, user_id]
        return list(self.db.query(
            "select r.*, s.name, s.city, s.channel, s.user_id, s.credit_code from reminders r "
            f"join subscriptions s on s.id = r.subscription_id where {where} order by r.send_on, r.id", args))

    def record_delivery(self, reminder: dict, text: str, late: bool) -> bool:
        """The delivery and the reminder's status in one transaction; False if it was already delivered."""
        with self.db.conn:
            cur = self.db.execute(
                "insert or ignore into deliveries (reminder_id, channel, user_id, text, late, sent_at) "
                "values (?, ?, ?, ?, ?, ?)", [reminder["id"], reminder["channel"], reminder["user_id"], text, int(late),
                                              now_shanghai().isoformat()])
            self.db.execute("update reminders set status = 'sent', last_error = null where id = ?", [reminder["id"]])
        return bool(cur.rowcount)

    def reminder_failed(self, reminder_id: int, error: str, next_try_at: str | None) -> None:
        """A transient failure: try again at next_try_at, or give up ('failed') when it is None."""
        with self.db.conn:
            self.db.execute("update reminders set attempts = attempts + 1, last_error = ?, next_try_at = ?, "
                            "status = case when ? is null then 'failed' else status end where id = ?",
                            [error[:500], next_try_at, next_try_at, reminder_id])

    def reminder_waiting(self, reminder_id: int) -> None:
        """The channel cannot deliver it now (微信客服: the user has not written within 48 hours): it waits for
        the user's next message instead of being retried by the loop."""
        with self.transaction():
            self.db.execute("update reminders set status = 'waiting', next_try_at = null where id = ? "
                            "and status = 'pending'", [reminder_id])

    def waiting_reminders(self, channel: str, user_id: str) -> list[dict]:
        """The reminders waiting for this user's next message, oldest first (as due_reminders' rows)."""
        return list(self.db.query(
            "select r.*, s.name, s.city, s.channel, s.user_id, s.credit_code, s.awarded_on, s.changed_on, "
            "s.change_kind from reminders r join subscriptions s on s.id = r.subscription_id "
            "where r.status = 'waiting' and s.active = 1 and s.channel = ? and s.user_id = ? "
            "order by r.send_on, r.id", [channel, user_id]))

    # ---- operators' figures ----------------------------------------------------------------------------
    def stats(self, since: str) -> dict:
        one = lambda sql, args=(): next(iter(self.db.execute(sql, list(args)).fetchone()), 0)  # noqa: E731
        return {
            "questions": one("select count(*) from questions where asked_at >= ?", [since]),
            "declined": one("select count(*) from questions where asked_at >= ? and abstained = 1", [since]),
            "checks_started": one("select count(*) from checks where at >= ? and stage = 'start'", [since]),
            "checks_finished": one("select count(*) from checks where at >= ? and stage = 'verdict'", [since]),
            "subscribers": one("select count(*) from subscriptions where active = 1"),
            "subscribers_reachable": one("select count(*) from subscriptions where active = 1 and user_id is not null"),
            "reminders_sent": one("select count(*) from deliveries where sent_at >= ?", [since]),
            "reminders_pending": one("select count(*) from reminders where status in ('pending', 'waiting')"),
        }

    def daily_questions(self, since: str) -> list[dict]:
        """Per day (Asia/Shanghai, as stored): questions, answered, declined, 👍, 👎."""
        return list(self.db.query(
            "select substr(asked_at, 1, 10) as day, count(*) as asked, sum(abstained = 0) as answered, "
            "sum(abstained = 1) as declined, sum(coalesce(feedback, 0) = 1) as up, "
            "sum(coalesce(feedback, 0) = -1) as down from questions where asked_at >= ? group by day order by day",
            [since]))

    def top_citations(self, since: str, limit: int = 10) -> list[dict]:
        return list(self.db.query(
            "select citation, count(*) as times from questions where asked_at >= ? and abstained = 0 "
            "and citation is not null group by citation order by times desc, citation limit ?", [since, limit]))

    def decline_reasons(self, since: str) -> list[dict]:
        return list(self.db.query(
            "select coalesce(reason, '') as reason, count(*) as times from questions where asked_at >= ? "
            "and abstained = 1 group by reason order by times desc", [since]))

    def daily_deliveries(self, since: str) -> list[dict]:
        return list(self.db.query(
            "select substr(sent_at, 1, 10) as day, count(*) as sent, sum(late) as late from deliveries "
            "where sent_at >= ? group by day order by day", [since]))

    def reminder_counts(self) -> dict:
        counts = {r["status"]: r["n"] for r in self.db.query("select status, count(*) as n from reminders group by status")}
        return {k: counts.get(k, 0) for k in ("pending", "sent", "failed", "cancelled")}

    def failed_reminders(self, limit: int = 50) -> list[dict]:
        return list(self.db.query(
            "select r.*, s.name, s.credit_code, s.channel, s.user_id from reminders r "
            "join subscriptions s on s.id = r.subscription_id where r.status = 'failed' order by r.id desc limit ?",
            [limit]))

    def recent_deliveries(self, limit: int = 50) -> list[dict]:
        return list(self.db.query(
            "select d.*, r.kind, r.due_on, s.name, s.credit_code from deliveries d join reminders r on r.id = d.reminder_id "
            "join subscriptions s on s.id = r.subscription_id order by d.id desc limit ?", [limit]))

    def all_questions(self):
        """The whole question log, oldest first (an iterator: the CSV export streams it)."""
        return self.db.query("select * from questions order by id")

    # ---- a user's data ----------------------------------------------------------------------------
    def forget(self, channel: str, user_id: str) -> int:
        """Delete everything stored about one user; returns how many rows went."""
        removed = 0
        with self.db.conn:
            subs = [r["id"] for r in self.db.query("select id from subscriptions where channel = ? and user_id = ?",
                                                   [channel, user_id])]
            for sub_id in subs:
                reminder_ids = "select id from reminders where subscription_id = ?"
                removed += self.db.execute(f"delete from deliveries where reminder_id in ({reminder_ids})",
                                           [sub_id]).rowcount
                removed += self.db.execute("delete from reminders where subscription_id = ?", [sub_id]).rowcount
            removed += self.db.execute("delete from deliveries where channel = ? and user_id = ?",
                                       [channel, user_id]).rowcount
            for table in ("dialog_state", "questions", "checks", "subscriptions"):
                removed += self.db.execute(f"delete from {table} where channel = ? and user_id = ?",
                                           [channel, user_id]).rowcount
            if channel == "wechat_kf":
                for table in ("kf_customers", "kf_outbox"):
                    removed += self.db.execute(f"delete from {table} where external_userid = ?", [user_id]).rowcount
        return removed

    # ---- 微信客服 (bot/channels/wechat_kf.py) --------------------------------------------------------------
    def _migrate_kf(self) -> None:
        db = self.db
        if "kf_cursors" not in db.table_names():  # sync_msg's cursor per customer-service account
            db["kf_cursors"].create({"open_kfid": str, "cursor": str, "updated_at": str}, pk="open_kfid")
        if "kf_messages" not in db.table_names():  # msgids handled (WeCom keeps messages 3 days)
            db["kf_messages"].create({"msgid": str, "at": float}, pk="msgid")
            db["kf_messages"].create_index(["at"])
        if "kf_customers" not in db.table_names():  # the last message of each customer opens a 48-hour window
            db["kf_customers"].create({"external_userid": str, "open_kfid": str, "last_msg_at": float}, pk="external_userid")
        if "kf_outbox" not in db.table_names():  # what is sent (or waits to be) to customers: the quota's count
            db["kf_outbox"].create({"id": int, "external_userid": str, "open_kfid": str, "source": str, "body": str,
                                    "reminder_ids": str, "status": str, "attempts": int, "created_at": float,
                                    "sent_at": float, "error": str}, pk="id")
            db["kf_outbox"].create_index(["external_userid", "status", "sent_at"])

    def kf_cursor(self, open_kfid: str) -> str:
        row = self.db.execute("select cursor from kf_cursors where open_kfid = ?", [open_kfid]).fetchone()
        return row[0] if row and row[0] else ""

    def kf_accounts(self) -> list[str]:
        return [r[0] for r in self.db.execute("select open_kfid from kf_cursors order by open_kfid").fetchall()]

    def kf_set_cursor(self, open_kfid: str, cursor: str) -> None:
        with self.transaction():
            self.db.execute("insert or replace into kf_cursors (open_kfid, cursor, updated_at) values (?, ?, ?)",
                            [open_kfid, cursor, now_shanghai().isoformat()])

    def kf_first_time(self, msgid: str, keep_days: int = 7) -> bool:
        """Record a handled msgid (inside the caller's transaction); False when it was handled before."""
        now = time.time()
        cur = self.db.execute("insert or ignore into kf_messages (msgid, at) values (?, ?)", [msgid, now])
        self._kf_inserts = getattr(self, "_kf_inserts", 0) + 1
        if self._kf_inserts % 1000 == 0:
            self.db.execute("delete from kf_messages where at < ?", [now - keep_days * 86400])
        return bool(cur.rowcount)

    def kf_customer(self, external_userid: str) -> dict | None:
        rows = list(self.db.query("select * from kf_customers where external_userid = ?", [external_userid]))
        return rows[0] if rows else None

    def kf_customer_wrote(self, external_userid: str, open_kfid: str, at: float) -> None:
        self.db.execute("insert into kf_customers (external_userid, open_kfid, last_msg_at) values (?, ?, ?) "
                        "on conflict (external_userid) do update set open_kfid = excluded.open_kfid, "
                        "last_msg_at = max(last_msg_at, excluded.last_msg_at)", [external_userid, open_kfid, at])

    def kf_sent_since(self, external_userid: str, since: float) -> int:
        return self.db.execute("select count(*) from kf_outbox where external_userid = ? and status = 'sent' "
                               "and sent_at >= ?", [external_userid, since]).fetchone()[0]

    def kf_queue(self, external_userid: str, open_kfid: str, source: str, bodies: list[tuple[dict, list[int]]],
                 status: str = "pending", sent_at: float | None = None) -> None:
        now = time.time()
        for body, reminder_ids in bodies:
            self.db.execute("insert into kf_outbox (external_userid, open_kfid, source, body, reminder_ids, status, "
                            "attempts, created_at, sent_at) values (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                            [external_userid, open_kfid, source, json.dumps(body, ensure_ascii=False),
                             json.dumps(reminder_ids), status, now, sent_at])
        self._kf_queued = getattr(self, "_kf_queued", 0) + len(bodies)
        if self._kf_queued >= 1000:  # now and then, forget what was sent or dropped more than a week ago
            self._kf_queued = 0
            self.db.execute("delete from kf_outbox where status != 'pending' and created_at < ?", [now - 7 * 86400])

    def kf_pending(self, external_userid: str | None = None) -> list[dict]:
        sql = "select * from kf_outbox where status = 'pending'"
        args = []
        if external_userid is not None:
            sql += " and external_userid = ?"
            args.append(external_userid)
        return list(self.db.query(sql + " order by id", args))

    def kf_mark(self, outbox_id: int, status: str, error: str | None = None, sent_at: float | None = None) -> None:
        with self.transaction():
            self.db.execute("update kf_outbox set status = ?, error = ?, sent_at = coalesce(?, sent_at), "
                            "attempts = attempts + 1 where id = ?", [status, (error or "")[:300] or None, sent_at,
                                                                     outbox_id])
