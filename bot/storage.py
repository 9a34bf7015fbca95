"""SQLite, the record: dialog state per user and the log of questions (declined ones included).

A small interface over sqlite-utils; every other module goes through it. WAL mode, so the serve
process and an operator's CLI can use the database at the same time.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import sqlite_utils

from bot.clock import now_shanghai


class Store:
    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(path)
        if str(path) != ":memory:":
            self.db.enable_wal()
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

        if "checks" not in db.table_names():
            db["checks"].create({"id": int, "at": str, "channel": str, "user_id": str, "stage": str, "city": str,
                                 "verdict": str}, pk="id")
            db["checks"].create_index(["channel", "user_id"])

        if "seen_messages" not in db.table_names():
            db["seen_messages"].create({"channel": str, "key": str, "at": str}, pk=("channel", "key"))
            db["seen_messages"].create_index(["at"])

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

    # ---- questions --------------------------------------------------------------------------------
    def log_question(self, channel: str, user_id: str | None, question: str, city: str | None, abstained: bool,
                     reason: str | None, citation: str | None, at: dt.datetime | None = None) -> None:
        self.db["questions"].insert({"asked_at": (at or now_shanghai()).isoformat(), "channel": channel,
                                     "user_id": user_id, "question": question[:2000], "city": city,
                                     "abstained": int(abstained), "reason": reason, "citation": citation})

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

    # ---- a user's data ----------------------------------------------------------------------------
    def forget(self, channel: str, user_id: str) -> int:
        """Delete everything stored about one user; returns how many rows went."""
        removed = 0
        for table in ("dialog_state", "questions", "checks"):
            cur = self.db.execute(f"delete from {table} where channel = ? and user_id = ?", [channel, user_id])
            removed += cur.rowcount
        self.db.conn.commit()
        return removed
