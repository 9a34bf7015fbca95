"""Security and durability (issue 11): claims of imported enterprises, migrations of older databases,
/forget leaving no trace, handled messages recorded with their replies."""
from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from stdnum.cn import uscc

from bot.importer import import_file
from bot.storage import SCHEMA_VERSION, Store, hash_key
from handlers.message import Incoming

DATA = Path(__file__).parent / "data"
TODAY = dt.date(2026, 11, 22)
LEADS = (30, 7, 1, 0)


def code(n: int) -> str:
    body = f"91371000{n:09d}"[:17]
    return body + uscc.calc_check_digit(body)


def say(dispatcher, user: str, *texts: str, channel: str = "console") -> str:
    out = ""
    for text in texts:
        out = "\n".join(r.text for r in dispatcher.handle(Incoming(channel, user, text)))
    return out


def imported(store, kb, tmp_path, n: int = 2, invite: bool = False):
    f = tmp_path / "awarded.csv"
    f.write_text(f"name,credit_code,city,awarded_on,channel,user_id\n局方名单乙公司,{code(n)},威海,2025-01-10,,\n",
                 encoding="utf-8")
    return import_file(f, store, kb, TODAY, LEADS, invite=invite)


# ---- 1. claims ------------------------------------------------------------------------------------------
def test_a_credit_code_alone_takes_over_nothing(dispatcher, store, kb, tmp_path):
    imported(store, kb, tmp_path)
    before = store.subscription_by_code(code(2))
    reply = say(dispatcher, "stranger", "提醒", "威海", "冒名公司", code(2))
    assert "绑定码" in reply and "局方名单乙公司" not in reply and "2025-01-10" not in reply
    for attempt in ("ABCDE-FGHJK", "确认", "2024-01-01"):
        reply = say(dispatcher, "stranger", attempt)
        assert "局方名单乙公司" not in reply
    after = store.subscription_by_code(code(2))
    assert (after["name"], after["awarded_on"], after["channel"], after["user_id"]) == \
        (before["name"], before["awarded_on"], None, None)
    say(dispatcher, "stranger", "/forget", "确认")
    assert store.subscription_by_code(code(2))["name"] == "局方名单乙公司"


def test_too_many_wrong_binding_codes_end_the_dialog(dispatcher, store, kb, tmp_path):
    imported(store, kb, tmp_path)
    say(dispatcher, "stranger", "提醒", "威海", "冒名公司", code(2))
    replies = [say(dispatcher, "stranger", f"AAAAA-AAAA{c}") for c in "BCDEF"]
    assert "多次不正确" in replies[-1]
    assert store.subscription_by_code(code(2))["user_id"] is None


def test_a_binding_code_binds_once_and_keeps_the_bureaus_name_and_date(dispatcher, store, kb, tmp_path):
    report = imported(store, kb, tmp_path, invite=True)
    assert [(c, n) for c, n, _ in report.codes] == [(code(2), "局方名单乙公司")]
    binding = report.codes[0][2]
    reply = say(dispatcher, "staff", "提醒", "威海", "乙公司（改名后）", code(2), binding.lower())
    assert "绑定成功" in reply and "局方名单乙公司" in reply
    sub = store.subscription_by_code(code(2))
    assert (sub["name"], sub["awarded_on"], sub["channel"], sub["user_id"]) == \
        ("局方名单乙公司", "2025-01-10", "console", "staff")
    # the code is used up: another account cannot reuse it
    reply = say(dispatcher, "other", "提醒", "威海", "乙公司", code(2), binding)
    assert "不正确" in reply and store.subscription_by_code(code(2))["user_id"] == "staff"
    # the claimant's /forget clears the contact, never the bureau's row
    say(dispatcher, "staff", "/forget", "确认")
    sub = store.subscription_by_code(code(2))
    assert sub["name"] == "局方名单乙公司" and sub["user_id"] is None


def test_a_new_code_replaces_an_unused_one(store, kb, tmp_path):
    imported(store, kb, tmp_path)
    first = store.issue_binding_code(code(2))
    second = store.issue_binding_code(code(2))
    assert not store.binding_code_valid(code(2), first) and store.binding_code_valid(code(2), second)
    assert store.redeem_binding_code(code(2), first, "console", "x") is None


def test_an_operator_approves_or_refuses_a_pending_claim(dispatcher, store, kb, tmp_path):
    imported(store, kb, tmp_path)
    reply = say(dispatcher, "staff", "提醒", "威海", "乙公司", code(2), "申请")
    assert "已提交" in reply
    say(dispatcher, "staff", "提醒", "威海", "乙公司", code(2), "申请")  # asked twice: one claim
    say(dispatcher, "stranger", "提醒", "威海", "乙公司", code(2), "申请")
    pending = store.pending_claims()
    assert [(c["user_id"], c["name"], c["claimed_name"]) for c in pending] == \
        [("staff", "局方名单乙公司", "乙公司"), ("stranger", "局方名单乙公司", "乙公司")]
    assert store.subscription_by_code(code(2))["user_id"] is None  # pending proves nothing
    assert store.decide_claim(pending[1]["id"], False, "op")["status"] == "refused"
    assert store.decide_claim(pending[0]["id"], True, "op")["status"] == "approved"
    assert store.decide_claim(pending[0]["id"], True, "op") is None  # decided already
    assert store.pending_claims() == []
    sub = store.subscription_by_code(code(2))
    assert (sub["channel"], sub["user_id"], sub["name"]) == ("console", "staff", "局方名单乙公司")
    assert "局方名单乙公司" in say(dispatcher, "staff", "/status")
    assert "局方名单乙公司" not in say(dispatcher, "stranger", "/status")


def test_another_accounts_chat_subscription_needs_proof_too(dispatcher, store):
    say(dispatcher, "first", "提醒", "威海", "甲公司", code(5), "2024年12月10日", "确认")
    assert store.subscription_by_code(code(5))["user_id"] == "first"
    reply = say(dispatcher, "second", "提醒", "威海", "甲公司", code(5))
    assert "绑定码" in reply and "2024-12-10" not in reply
    assert store.subscription_by_code(code(5))["user_id"] == "first"


def test_cli_invite_prints_a_code_and_refuses_an_unknown_enterprise(tmp_path, kb_file, store, kb, capsys,
                                                                   monkeypatch):
    from bot.cli import main
    imported(store, kb, tmp_path)
    monkeypatch.setenv("POLICYBOT_DB", str(tmp_path / "test.db"))
    monkeypatch.setenv("POLICYBOT_KB", str(kb_file))
    assert main(["reminders", "invite", code(2)]) == 0
    printed = capsys.readouterr().out.strip()
    assert len(printed) == 11 and store.binding_code_valid(code(2), printed)
    assert main(["reminders", "invite", code(3)]) == 2


# ---- 8. versioned migrations ---------------------------------------------------------------------------
def _old_database(path: Path, drop_replan: bool = False) -> Path:
    sql = (DATA / "schema_release1.sql").read_text(encoding="utf-8")
    if drop_replan:  # the release before replan_on was added
        sql = sql.replace('   "replan_on" TEXT,\n', "").replace("NULL,NULL,NULL,'2026", "NULL,NULL,'2026")
    con = sqlite3.connect(path)
    con.executescript(sql)
    con.close()
    return path


def test_a_database_of_the_previous_release_opens_and_is_migrated(tmp_path, dispatcher, kb):
    for drop in (False, True):
        path = _old_database(tmp_path / f"old{drop}.db", drop_replan=drop)
        store = Store(path)
        assert store.schema_version() == SCHEMA_VERSION
        assert [r["version"] for r in store.db.query("select version from schema_version")] == \
            list(range(1, SCHEMA_VERSION + 1))
        assert store.get_state("telegram", "424242") == {"city": "weihai"}
        assert not store.first_time("wecom", "msg:9100000000000000001")  # a message seen before stays seen
        sub = store.subscription_by_code("91371000000000001X")
        assert sub["name"] == "甲公司" and "replan_on" in sub
        assert store.to_replan("2100-01-01") == []
        assert store.issue_binding_code("91371000000000001X")
        assert store.add_claim("91371000000000001X", "console", "me") and store.pending_claims()
        store.db.conn.close()
        again = Store(path)  # opening again applies nothing
        assert again.schema_version() == SCHEMA_VERSION


def test_a_step_that_fails_leaves_the_database_at_the_version_before(tmp_path, monkeypatch):
    import bot.storage as storage
    path = _old_database(tmp_path / "old.db")
    steps = list(storage.MIGRATIONS) + [("broken", "alter table nowhere add column x TEXT")]
    monkeypatch.setattr(storage, "MIGRATIONS", steps)
    try:
        Store(path)
    except sqlite3.OperationalError:
        pass
    else:
        raise AssertionError("the broken step did not fail")
    monkeypatch.setattr(storage, "MIGRATIONS", steps[:-1])
    assert Store(path).schema_version() == len(steps) - 1


# ---- 2. no secret in a log line ------------------------------------------------------------------------
def test_the_log_formatter_masks_secrets_and_credentials_in_urls():
    import logging

    from bot.config import Settings
    from bot.logsafe import install
    logger = logging.getLogger("policybot-test-logsafe")
    logger.propagate = False
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger.addHandler(Keep())
    install(Settings(telegram_token="123456:TEST-token", wecom_secret="s3cr3t-app", wecom_aes_key="A" * 43,
                     telegram_webhook_secret="hook-secret"), logger)
    logger.warning("POST http://x/bot123456:TEST-token/sendMessage")
    logger.warning("send %s failed", "https://qyapi/cgi-bin/message/send?access_token=AT-42&debug=1")
    logger.warning("gettoken?corpid=ww1&corpsecret=s3cr3t-app; key %s; hook %s", "A" * 43, "hook-secret")
    try:
        raise ValueError("token 123456:TEST-token rejected")
    except ValueError:
        logger.exception("failed")
    text = "\n".join(records)
    for secret in ("TEST-token", "AT-42", "s3cr3t-app", "A" * 43, "hook-secret"):
        assert secret not in text
    assert text.count("***") >= 5


# ---- 5. timeouts and quiet logs --------------------------------------------------------------------------
def _serve_in_process(tmp_path, kb, body, **settings):
    import asyncio
    import socket

    from bot import serve
    from bot.config import Settings

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Settings(db=tmp_path / "serve.db", port=port, **settings)

    async def main():
        stop, ready = asyncio.Event(), asyncio.Event()
        server = asyncio.create_task(serve.run(cfg, kb, stop=stop, ready=ready))
        await asyncio.wait_for(ready.wait(), 10)
        try:
            return await body(port)
        finally:
            stop.set()
            await server
    return asyncio.run(main())


def test_idle_and_half_sent_connections_are_closed(tmp_path, kb):
    import asyncio

    async def body(port):
        async def connect(send: bytes):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if send:
                writer.write(send)
                await writer.drain()
            return reader, writer

        idle = [await connect(b"") for _ in range(10)]
        half = [await connect(b"POST /wecom/callback HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(10)]
        kept = [await connect(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(10)]
        for reader, _ in kept:  # a response, then the connection sits idle (keep-alive)
            await asyncio.wait_for(reader.readuntil(b'"ok": true'), 5)
        closed = 0
        for reader, writer in idle + half + kept:
            try:
                rest = await asyncio.wait_for(reader.read(), 3)  # EOF once the server closes it
                closed += rest is not None
            except asyncio.TimeoutError:
                pass
            writer.close()
        return closed

    assert _serve_in_process(tmp_path, kb, body, idle_timeout=0.5) == 30


def test_malformed_http_is_one_counted_line_without_a_traceback(tmp_path, kb, caplog):
    import asyncio
    import json as jsonmod
    import logging

    bad = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
           b"POST /wecom/callback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"]

    async def body(port):
        for payload in bad * 4:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(payload)
            await writer.drain()
            await asyncio.wait_for(reader.read(), 5)
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return jsonmod.loads(answer.split(b"\r\n\r\n", 1)[1])

    with caplog.at_level(logging.DEBUG):
        health = _serve_in_process(tmp_path, kb, body)
    assert health["refused"]["http"] >= 20
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len([r for r in caplog.records if r.levelno >= logging.INFO and "refused" in r.getMessage()]) <= 1


# ---- 7. /forget leaves no trace ---------------------------------------------------------------------------
def test_forget_leaves_no_user_id_in_the_database_file_or_its_wal(tmp_path, kb):
    from bot.config import Settings
    from bot.runtime import Dispatcher
    store = Store(tmp_path / "forget.db")
    dispatcher = Dispatcher(Settings(db=tmp_path / "forget.db"), store, kb, today=lambda: TODAY)
    user, company = "zq9-secret-user", "遗忘测试科技有限公司"
    turns = ["/start", "威海复核多久一次", "自测", "威海", "/cancel", "提醒", "威海", company, code(9), "2024年12月10日",
             "确认", "我们更名了，11月2日办完手续"]
    for i, text in enumerate(turns):
        dispatcher.handle(Incoming("wecom", user, text, message_id=str(i)), key=f"evt:{user}:{1700000000 + i}:x")
    imported(store, kb, tmp_path)
    say(dispatcher, user, "提醒", "威海", "乙公司", code(2), "申请", channel="wecom")
    assert store.pending_claims()
    db_file, wal = tmp_path / "forget.db", tmp_path / "forget.db-wal"
    assert user.encode() in db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    dispatcher.handle(Incoming("wecom", user, "/forget"), key="forget-1")
    dispatcher.handle(Incoming("wecom", user, "确认"), key=f"evt:{user}:1800000000:x")
    raw = db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for trace in (user, company, code(9)):
        assert trace.encode() not in raw, trace
    store.db.conn.close()
    raw = db_file.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert user.encode() not in raw and "局方名单乙公司".encode() in raw


def test_an_approved_claim_gets_the_reminders_back_at_the_next_sweep(store, kb, tmp_path):
    import asyncio

    from bot.channels.console import ConsoleLog
    from bot.config import Settings
    from bot.reminders import ReminderLoop
    from bot.clock import SHANGHAI
    imported(store, kb, tmp_path)
    sub = store.subscription_by_code(code(2))
    store.deactivate(sub["id"], "blocked")  # its former contact blocked the bot: every reminder cancelled
    assert store.upcoming("2030-01-01") == []
    claim = store.add_claim(code(2), "console", "staff")
    store.decide_claim(claim, True, "op")  # only the Store call, as the console's page makes it
    clock = lambda: dt.datetime(2026, 11, 22, 10, tzinfo=SHANGHAI)  # noqa: E731
    asyncio.run(ReminderLoop(Settings(send_hours=(0, 24)), store, kb, {"console": ConsoleLog()}, clock=clock).sweep())
    assert [r for r in store.upcoming("2030-01-01") if r["user_id"] == "staff"] or \
        store.db["deliveries"].count > 0


def test_an_import_names_chat_contacts_it_did_not_confirm(dispatcher, store, kb, tmp_path):
    say(dispatcher, "early", "提醒", "威海", "抢先公司", code(2), "2024年12月10日", "确认")  # before the bureau's list
    report = imported(store, kb, tmp_path)
    assert report.unconfirmed == [(code(2), "局方名单乙公司", "console:early")]
    sub = store.subscription_by_code(code(2))
    assert (sub["name"], sub["awarded_on"], sub["source"]) == ("局方名单乙公司", "2025-01-10", "import")
    say(dispatcher, "early", "/forget", "确认")  # now the bureau's record: /forget keeps it
    assert store.subscription_by_code(code(2))["user_id"] is None
