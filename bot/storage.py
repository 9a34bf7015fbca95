"""SQLite, the record: dialog state per chat and user, the log of questions (declined ones included),
subscriptions and their reminders, claims of imported enterprises, handled platform messages.

A small interface over sqlite-utils; every other module goes through it. WAL mode, so the serve
process and an operator's CLI can use the database at the same time. `PRAGMA secure_delete` is on:
a deleted row's bytes are overwritten, not left in free pages (/forget).

The schema is versioned: `MIGRATIONS` is an ordered list of steps, each a CREATE or an ALTER (or a
small function); `schema_version` records the steps applied. Opening a database applies the missing
steps in order, each in its own transaction, so a database made by any earlier release opens. To add a
column: append a step (`_add_column("table", "column", "TEXT")`); never edit a step that has shipped.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
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


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f'pragma table_info("{table}")')}


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}


def _add_column(table: str, column: str, kind: str) -> Callable[[sqlite3.Connection], None]:
    """A step adding a column; a no-op where it exists (a database made before versioning may have it)."""
    def step(conn: sqlite3.Connection) -> None:
        if column not in _columns(conn, table):
            conn.execute(f'alter table "{table}" add column "{column}" {kind}')
    step.__doc__ = f"{table}.{column}"
    return step


def hash_key(channel: str, key: str) -> str:
    """How a platform message id is stored: hashed, so that no user id (WeCom event keys hold one) stays."""
    return hashlib.sha256(f"{channel}\0{key}".encode()).hexdigest()[:40]


def _baseline(conn: sqlite3.Connection) -> None:
    """Release 1's tables, created where missing (a database made before versioning keeps its own)."""
    have = _tables(conn)
    ddl = {
        "dialog_state": ['create table dialog_state (channel TEXT, user_id TEXT, state TEXT, updated_at TEXT, '
                         'primary key (channel, user_id))'],
        "questions": ['create table questions (id INTEGER PRIMARY KEY, asked_at TEXT, channel TEXT, user_id TEXT, '
                      'question TEXT, city TEXT, abstained INTEGER, reason TEXT, citation TEXT)',
                      'create index idx_questions_abstained_asked_at on questions (abstained, asked_at)',
                      'create index idx_questions_channel_user_id on questions (channel, user_id)'],
        "checks": ['create table checks (id INTEGER PRIMARY KEY, at TEXT, channel TEXT, user_id TEXT, stage TEXT, '
                   'city TEXT, verdict TEXT)',
                   'create index idx_checks_channel_user_id on checks (channel, user_id)'],
        "seen_messages": ['create table seen_messages (channel TEXT, key TEXT, at TEXT, primary key (channel, key))',
                          'create index idx_seen_messages_at on seen_messages (at)'],
        "subscriptions": ['create table subscriptions (id INTEGER PRIMARY KEY, credit_code TEXT, name TEXT, city TEXT, '
                          'awarded_on TEXT, channel TEXT, user_id TEXT, active INTEGER, inactive_reason TEXT, '
                          'source TEXT, changed_on TEXT, change_kind TEXT, created_at TEXT, updated_at TEXT)',
                          'create unique index idx_subscriptions_credit_code on subscriptions (credit_code)',
                          'create index idx_subscriptions_channel_user_id on subscriptions (channel, user_id)'],
        "reminders": ['create table reminders (id INTEGER PRIMARY KEY, subscription_id INTEGER REFERENCES '
                      'subscriptions(id), kind TEXT, due_on TEXT, lead_days INTEGER, send_on TEXT, status TEXT, '
                      'attempts INTEGER, next_try_at TEXT, last_error TEXT, created_at TEXT)',
                      'create unique index idx_reminders_subscription_id_kind_due_on_lead_days '
                      'on reminders (subscription_id, kind, due_on, lead_days)',
                      'create index idx_reminders_status_send_on on reminders (status, send_on)'],
        "deliveries": ['create table deliveries (id INTEGER PRIMARY KEY, reminder_id INTEGER, channel TEXT, '
                       'user_id TEXT, text TEXT, late INTEGER, sent_at TEXT)',
                       'create unique index idx_deliveries_reminder_id on deliveries (reminder_id)'],
    }
    for table, statements in ddl.items():
        if table not in have:
            for sql in statements:
                conn.execute(sql)


def _hashed_seen_messages(conn: sqlite3.Connection) -> None:
    """Handled messages keep their reply (a retry after a crash gets it), its delivery status and the
    user (deleted by /forget); their keys are stored hashed."""
    for column, kind in (("reply", "TEXT"), ("status", "TEXT"), ("user_id", "TEXT")):
        _add_column("seen_messages", column, kind)(conn)
    rows = conn.execute("select rowid, channel, key from seen_messages").fetchall()
    for rowid, channel, key in rows:
        if len(key) != 40 or not all(c in "0123456789abcdef" for c in key):
            conn.execute("update or ignore seen_messages set key = ? where rowid = ?", [hash_key(channel, key), rowid])
    conn.execute("delete from seen_messages where length(key) != 40")
    conn.execute("create index if not exists idx_seen_messages_user on seen_messages (channel, user_id)")


def _dialog_state_by_chat(conn: sqlite3.Connection) -> None:
    """Dialog state keyed by (channel, chat, user): a user's dialog in a group is not theirs in another
    chat. Rows of private chats (all rows until now) get chat_id = user_id."""
    conn.execute("create table dialog_state_new (channel TEXT NOT NULL, chat_id TEXT NOT NULL, user_id TEXT NOT NULL, "
                 "state TEXT, updated_at TEXT, primary key (channel, chat_id, user_id))")
    conn.execute("insert into dialog_state_new (channel, chat_id, user_id, state, updated_at) "
                 "select channel, user_id, user_id, state, updated_at from dialog_state")
    conn.execute("drop table dialog_state")
    conn.execute("alter table dialog_state_new rename to dialog_state")
    conn.execute("create index idx_dialog_state_user on dialog_state (channel, user_id)")


def _kf_tables(conn: sqlite3.Connection) -> None:
    """微信客服 (bot/channels/wechat_kf.py): sync_msg's cursor per account, msgids handled, the 48-hour window
    of each customer, and the outbox (what is sent, or waits to be: the quota's count)."""
    for sql in (
            "create table if not exists kf_cursors (open_kfid TEXT PRIMARY KEY, cursor TEXT, updated_at TEXT)",
            "create table if not exists kf_messages (msgid TEXT PRIMARY KEY, at FLOAT)",
            "create index if not exists idx_kf_messages_at on kf_messages (at)",
            "create table if not exists kf_customers (external_userid TEXT PRIMARY KEY, open_kfid TEXT, "
            "last_msg_at FLOAT)",
            "create table if not exists kf_outbox (id INTEGER PRIMARY KEY, external_userid TEXT, open_kfid TEXT, "
            "source TEXT, body TEXT, reminder_ids TEXT, status TEXT, attempts INTEGER, created_at FLOAT, "
            "sent_at FLOAT, error TEXT)",
            "create index if not exists idx_kf_outbox_external_userid_status_sent_at "
            "on kf_outbox (external_userid, status, sent_at)"):
        conn.execute(sql)


def _question_review(conn: sqlite3.Connection) -> None:
    """Feedback on an answer (+1 / -1 and an optional reason) and what an operator did with the question in the
    console (linked to an article, or marked out of scope); `turn` numbers a user's questions, so that a feedback
    button under an older answer lands on that answer."""
    for column, kind in (("turn", "INTEGER"), ("feedback", "INTEGER"), ("feedback_reason", "TEXT"),
                         ("feedback_at", "TEXT"), ("resolution", "TEXT"), ("resolved_ref", "TEXT"),
                         ("resolved_by", "TEXT"), ("resolved_at", "TEXT")):
        _add_column("questions", column, kind)(conn)
    conn.execute("create index if not exists idx_questions_feedback on questions (feedback)")


def _console_tables(conn: sqlite3.Connection) -> None:
    """The operator console: accounts (argon2 hashes), sessions (a SHA-256 of the cookie's token only), and what
    operators taught the knowledge base (the teach log, with the outcome once rebuilt)."""
    conn.execute("create table if not exists operators (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, "
                 "created_at TEXT, last_login_at TEXT)")
    conn.execute("create table if not exists console_sessions (token_hash TEXT PRIMARY KEY, operator TEXT NOT NULL, "
                 "csrf TEXT NOT NULL, created_at TEXT, seen_at TEXT, expires_at TEXT)")
    conn.execute("create index if not exists idx_console_sessions_operator on console_sessions (operator)")
    conn.execute("create table if not exists teach_log (id INTEGER PRIMARY KEY, at TEXT, by TEXT, kind TEXT, "
                 "question TEXT, measure TEXT, article INTEGER, status TEXT, outcome TEXT, done_at TEXT)")


MIGRATIONS: list[tuple[str, str | Callable[[sqlite3.Connection], None]]] = [
    ("release 1 tables", _baseline),
    ("subscriptions.replan_on", _add_column("subscriptions", "replan_on", "TEXT")),
    ("handled messages: reply, status, user; keys hashed", _hashed_seen_messages),
    ("dialog state keyed by chat and user", _dialog_state_by_chat),
    ("claims of imported enterprises",
     "create table claims (id INTEGER PRIMARY KEY, subscription_id INTEGER NOT NULL REFERENCES subscriptions(id), "
     "channel TEXT NOT NULL, user_id TEXT NOT NULL, chat_id TEXT, claimed_name TEXT, status TEXT NOT NULL, "
     "proof TEXT, created_at TEXT, decided_at TEXT, decided_by TEXT)"),
    ("claims index", "create index idx_claims_status on claims (status, subscription_id)"),
    ("one-time binding codes",
     "create table binding_codes (id INTEGER PRIMARY KEY, credit_code TEXT NOT NULL, code_hash TEXT NOT NULL UNIQUE, "
     "created_at TEXT, expires_at TEXT, used_at TEXT)"),
    ("subscriptions to plan, found by index (the reminder loop asks every sweep)",
     "create index idx_subscriptions_replan_on on subscriptions (replan_on) where replan_on is not null"),
    ("sessions of `policybot ask --session`",
     "create table if not exists sessions (id TEXT PRIMARY KEY, state TEXT, updated_at TEXT)"),
    ("微信客服 tables", _kf_tables),
    ("questions.trace: what decided an answer or a decline (issue 9)", _add_column("questions", "trace", "TEXT")),
    ("questions: feedback (👍/👎, a reason), the user's question number, an operator's handling", _question_review),
    ("operator console: accounts, sessions (token hashes), what operators taught", _console_tables),
]
SCHEMA_VERSION = len(MIGRATIONS)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: read aloud or typed without doubt
CODE_LENGTH = 10  # 32^10 = 2^50 codes; a dialog allows a few tries
CODE_DAYS = 30


def normalize_code(text: str) -> str:
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def _code_hash(credit_code: str, code: str) -> str:
    return hashlib.sha256(f"{credit_code}:{normalize_code(code)}".encode()).hexdigest()


def _state_of(rows) -> dict:
    """The JSON state of the first row, {} when there is none or it is not a mapping."""
    row = next(iter(rows), None)
    if row is None:
        return {}
    try:
        state = json.loads(row["state"])
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


class Store:
    def __init__(self, path: Path | str):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), factory=_Connection)
        conn.execute("pragma secure_delete = on")  # deleted rows are overwritten, not left in free pages
        self.db = sqlite_utils.Database(conn)
        if str(path) != ":memory:":
            self.db.enable_wal()
            self.db.execute("pragma synchronous = normal")  # WAL + NORMAL: a kill -9 loses no committed row
        self._checkpoint_due = False
        self._migrate()

    # ---- schema -----------------------------------------------------------------------------------
    def schema_version(self) -> int:
        conn = self.db.conn
        if "schema_version" not in _tables(conn):
            return 0
        return conn.execute("select coalesce(max(version), 0) from schema_version").fetchone()[0]

    def _migrate(self) -> None:
        conn = self.db.conn
        conn.execute("create table if not exists schema_version (version INTEGER PRIMARY KEY, step TEXT, "
                     "applied_at TEXT)")
        conn.commit()
        for version, (name, step) in enumerate(MIGRATIONS, start=1):
            if self.schema_version() >= version:
                continue
            with self.transaction():  # BEGIN IMMEDIATE: another process migrating waits, then sees it done
                if self.schema_version() >= version:
                    continue
                if isinstance(step, str):
                    conn.execute(step)
                else:
                    step(conn)
                conn.execute("insert into schema_version (version, step, applied_at) values (?, ?, ?)",
                             [version, name, now_shanghai().isoformat()])

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
        if self._checkpoint_due:  # after /forget: the WAL's copies of the deleted rows go too
            self._checkpoint_due = False
            self.db.execute("pragma wal_checkpoint(truncate)")

    # ---- platform message ids (a retried or repeated delivery is handled once) -------------------
    def first_time(self, channel: str, key: str, keep_days: int = 3) -> bool:
        """Record a platform message id; False when it was seen before (WeCom retries, Telegram update_id)."""
        with self.transaction():
            cur = self.db.execute("insert or ignore into seen_messages (channel, key, at) values (?, ?, ?)",
                                  [channel, hash_key(channel, str(key)), now_shanghai().isoformat()])
        self._prune_seen(keep_days)
        return bool(cur.rowcount)

    def _prune_seen(self, keep_days: int = 3) -> None:
        self._seen_inserts = getattr(self, "_seen_inserts", 0) + 1
        if self._seen_inserts % 1000 == 0:  # now and then, forget ids older than keep_days
            cutoff = (now_shanghai() - dt.timedelta(days=keep_days)).isoformat()
            with self.transaction():
                self.db.execute("delete from seen_messages where at < ?", [cutoff])

    def handled(self, channel: str, key: str) -> dict | None:
        """A message handled before: {"reply": [...] or None, "status": new|sent|push|pushed|None}."""
        row = self.db.execute("select reply, status from seen_messages where channel = ? and key = ?",
                              [channel, hash_key(channel, str(key))]).fetchone()
        if row is None:
            return None
        try:
            reply = json.loads(row[0]) if row[0] else None
        except ValueError:
            reply = None
        return {"reply": reply, "status": row[1]}

    def mark_handled(self, channel: str, key: str, user_id: str | None, reply: list[dict], status: str = "new") -> None:
        """Record a message as handled together with its reply (call inside the transaction that recorded
        what the message changed)."""
        self.db.execute("insert or replace into seen_messages (channel, key, at, reply, status, user_id) "
                        "values (?, ?, ?, ?, ?, ?)",
                        [channel, hash_key(channel, str(key)), now_shanghai().isoformat(),
                         json.dumps(reply, ensure_ascii=False), status, user_id])
        self.db.conn.commit()
        self._prune_seen()

    def set_handled_status(self, channel: str, key: str, status: str) -> None:
        with self.transaction():
            self.db.execute("update seen_messages set status = ? where channel = ? and key = ?",
                            [status, channel, hash_key(channel, str(key))])

    def handled_to_push(self, channel: str, since: str) -> list[dict]:
        """Replies recorded as to be pushed actively and not pushed yet (a crash came between)."""
        rows = self.db.execute("select key, user_id, reply from seen_messages where channel = ? and status = 'push' "
                               "and at >= ? and user_id is not null", [channel, since]).fetchall()
        out = []
        for key, user_id, reply in rows:
            try:
                out.append({"hashed_key": key, "user_id": user_id, "reply": json.loads(reply or "[]")})
            except ValueError:
                continue
        return out

    def set_hashed_status(self, channel: str, hashed_key: str, status: str) -> None:
        with self.transaction():
            self.db.execute("update seen_messages set status = ? where channel = ? and key = ?",
                            [status, channel, hashed_key])

    # ---- dialog state (per chat and user; a private chat's id is the user's) ------------------------------
    def get_state(self, channel: str, user_id: str, chat_id: str | None = None) -> dict:
        return _state_of(self.db.query("select state from dialog_state where channel = ? and chat_id = ? and user_id = ?",
                                       [channel, chat_id or user_id, user_id]))

    def set_state(self, channel: str, user_id: str, state: dict, chat_id: str | None = None) -> None:
        with self.transaction():
            if not state:
                self.db.execute("delete from dialog_state where channel = ? and chat_id = ? and user_id = ?",
                                [channel, chat_id or user_id, user_id])
                return
            self.db.execute("insert or replace into dialog_state (channel, chat_id, user_id, state, updated_at) "
                            "values (?, ?, ?, ?, ?)",
                            [channel, chat_id or user_id, user_id, json.dumps(state, ensure_ascii=False),
                             now_shanghai().isoformat()])

    # ---- conversations of `ask --session` ------------------------------------------------------------
    def get_session(self, session_id: str) -> dict:
        return _state_of(self.db.query("select state from sessions where id = ?", [session_id]))

    def set_session(self, session_id: str, state: dict) -> None:
        self.db["sessions"].upsert({"id": session_id, "state": json.dumps(state, ensure_ascii=False),
                                    "updated_at": now_shanghai().isoformat()}, pk="id")

    # ---- questions --------------------------------------------------------------------------------
    def log_question(self, channel: str, user_id: str | None, question: str, city: str | None, abstained: bool,
                     reason: str | None, citation: str | None, at: dt.datetime | None = None,
                     trace: str | None = None, turn: int | None = None) -> None:
        self.db["questions"].insert({"asked_at": (at or now_shanghai()).isoformat(), "channel": channel,
                                     "user_id": user_id, "question": question[:2000], "city": city,
                                     "abstained": int(abstained), "reason": reason, "citation": citation,
                                     "trace": (trace or "")[:500] or None, "turn": turn})

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
        """Declined questions, most frequent first (what users ask that the base does not answer), with what
        decided the last decline (reason, trace); not the empty, too long or non-Chinese messages."""
        return list(self.db.query(
            "select question, count(*) as times, max(asked_at) as last_asked, "
            "(select q2.reason from questions q2 where q2.question = q.question and q2.abstained = 1 "
            " order by q2.asked_at desc, q2.id desc limit 1) as reason, "
            "(select q2.trace from questions q2 where q2.question = q.question and q2.abstained = 1 "
            " order by q2.asked_at desc, q2.id desc limit 1) as trace "
            "from questions q where abstained = 1 and coalesce(reason, '') not in ('empty', 'too_long', 'not_chinese') "
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
        without contacts keeps what a chat subscription recorded. This is the operators' path (import); a chat
        user reaches an existing record only through a claim (`redeem_binding_code`, `decide_claim`).
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
        if update.get("source") != "import":
            update.pop("source", None)  # a chat row the bureau then imports becomes the bureau's record
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

    # ---- claims of existing records: a one-time binding code, or an operator's approval ----------------
    def issue_binding_code(self, credit_code: str, days: int = CODE_DAYS) -> str:
        """A one-time code with which the enterprise's staff bind its record to their chat account. Earlier
        unused codes of the enterprise stop working. KeyError when no record has this credit code."""
        if not self.subscription_by_code(credit_code):
            raise KeyError(credit_code)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        now = now_shanghai()
        with self.transaction():
            self.db.execute("delete from binding_codes where credit_code = ? and used_at is null", [credit_code])
            self.db.execute("insert into binding_codes (credit_code, code_hash, created_at, expires_at) "
                            "values (?, ?, ?, ?)", [credit_code, _code_hash(credit_code, code), now.isoformat(),
                                                    (now + dt.timedelta(days=days)).isoformat()])
        return f"{code[:5]}-{code[5:]}"

    def binding_code_valid(self, credit_code: str, code: str) -> bool:
        row = self.db.execute("select 1 from binding_codes where code_hash = ? and credit_code = ? "
                              "and used_at is null and expires_at > ?",
                              [_code_hash(credit_code, code), credit_code, now_shanghai().isoformat()]).fetchone()
        return row is not None

    def redeem_binding_code(self, credit_code: str, code: str, channel: str, user_id: str,
                            chat_id: str | None = None, claimed_name: str | None = None) -> dict | None:
        """Use a code: the record's contact becomes this user (its name and dates stay). None if the code
        is wrong, used or expired."""
        now = now_shanghai().isoformat()
        with self.transaction():
            cur = self.db.execute("update binding_codes set used_at = ? where code_hash = ? and credit_code = ? "
                                  "and used_at is null and expires_at > ?",
                                  [now, _code_hash(credit_code, code), credit_code, now])
            sub = self.subscription_by_code(credit_code)
            if not cur.rowcount or not sub:
                return None
            self.db.execute("insert into claims (subscription_id, channel, user_id, chat_id, claimed_name, status, "
                            "proof, created_at, decided_at, decided_by) values (?, ?, ?, ?, ?, 'approved', 'code', "
                            "?, ?, 'binding code')", [sub["id"], channel, user_id, chat_id, claimed_name, now, now])
            self._bind(sub["id"], channel, user_id)
        return self.subscription(sub["id"])

    def add_claim(self, credit_code: str, channel: str, user_id: str, chat_id: str | None = None,
                  claimed_name: str | None = None) -> int | None:
        """A claim waiting for an operator (the same user's pending claim is not repeated)."""
        sub = self.subscription_by_code(credit_code)
        if not sub:
            return None
        with self.transaction():
            row = self.db.execute("select id from claims where subscription_id = ? and channel = ? and user_id = ? "
                                  "and status = 'pending'", [sub["id"], channel, user_id]).fetchone()
            if row:
                return row[0]
            cur = self.db.execute("insert into claims (subscription_id, channel, user_id, chat_id, claimed_name, "
                                  "status, created_at) values (?, ?, ?, ?, ?, 'pending', ?)",
                                  [sub["id"], channel, user_id, chat_id, claimed_name, now_shanghai().isoformat()])
        return cur.lastrowid

    def pending_claims(self) -> list[dict]:
        """Claims waiting for an operator, oldest first, with the record they claim (the bureau's name,
        city, award date, and whether it already has a contact)."""
        return list(self.db.query(
            "select c.id, c.subscription_id, c.channel, c.user_id, c.chat_id, c.claimed_name, c.created_at, "
            "s.credit_code, s.name, s.city, s.awarded_on, s.source, "
            "(s.user_id is not null) as has_contact from claims c join subscriptions s on s.id = c.subscription_id "
            "where c.status = 'pending' order by c.id"))

    def decide_claim(self, claim_id: int, approve: bool, by: str) -> dict | None:
        """An operator approves (the claimant becomes the record's contact) or refuses a pending claim.
        Returns the claim as decided, or None when there is no pending claim with this id."""
        now = now_shanghai().isoformat()
        with self.transaction():
            row = self.db.execute("select id, subscription_id, channel, user_id from claims where id = ? "
                                  "and status = 'pending'", [claim_id]).fetchone()
            if not row:
                return None
            self.db.execute("update claims set status = ?, proof = ?, decided_at = ?, decided_by = ? where id = ?",
                            ["approved" if approve else "refused", "operator" if approve else None, now, by,
                             claim_id])
            if approve:
                self._bind(row[1], row[2], row[3])
        return next(iter(self.db.query("select * from claims where id = ?", [claim_id])), None)

    def _bind(self, sub_id: int, channel: str, user_id: str) -> None:
        """The claimant becomes the contact; an early replan_on makes the reminder loop plan the record again
        at its next sweep (reminders cancelled while it was inactive come back)."""
        self.db.execute("update subscriptions set channel = ?, user_id = ?, active = 1, inactive_reason = null, "
                        "replan_on = '0001-01-01', updated_at = ? where id = ?",
                        [channel, user_id, now_shanghai().isoformat(), sub_id])

    # ---- a user's data ----------------------------------------------------------------------------
    def forget(self, channel: str, user_id: str) -> int:
        """Delete everything stored about one user; returns how many rows went.

        A record the bureau imported stays (only its contact is cleared): a claimant's /forget never
        deletes the bureau's row. Handled-message rows of the user go too (their keys are hashed anyway),
        and the WAL is checkpointed and truncated after the commit (secure_delete overwrites the rows)."""
        removed = 0
        with self.transaction():
            subs = list(self.db.query("select id, source from subscriptions where channel = ? and user_id = ?",
                                      [channel, user_id]))
            for sub in subs:
                reminder_ids = "select id from reminders where subscription_id = ?"
                removed += self.db.execute(f"delete from deliveries where reminder_id in ({reminder_ids})",
                                           [sub["id"]]).rowcount
                if sub["source"] == "import":
                    self.db.execute("update reminders set last_error = null where subscription_id = ?", [sub["id"]])
                    self.db.execute("update subscriptions set channel = null, user_id = null, updated_at = ? "
                                    "where id = ?", [now_shanghai().isoformat(), sub["id"]])
                    removed += 1
                else:
                    removed += self.db.execute("delete from reminders where subscription_id = ?", [sub["id"]]).rowcount
                    removed += self.db.execute("delete from subscriptions where id = ?", [sub["id"]]).rowcount
            removed += self.db.execute("delete from deliveries where channel = ? and user_id = ?",
                                       [channel, user_id]).rowcount
            for table in ("dialog_state", "questions", "checks", "claims", "seen_messages"):
                removed += self.db.execute(f"delete from {table} where channel = ? and user_id = ?",
                                           [channel, user_id]).rowcount
            removed += self.db.execute("delete from dialog_state where channel = ? and chat_id = ?",
                                       [channel, user_id]).rowcount
            if channel == "wechat_kf":
                for table in ("kf_customers", "kf_outbox"):
                    removed += self.db.execute(f"delete from {table} where external_userid = ?", [user_id]).rowcount
            self._checkpoint_due = True
        return removed

    # ---- 微信客服 (bot/channels/wechat_kf.py) --------------------------------------------------------------
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
