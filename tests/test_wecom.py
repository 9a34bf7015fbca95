"""The WeCom channel end to end over real HTTP on loopback: encrypted callbacks built with wechatpy's crypto,
our aiohttp app (bot.serve.build_app), a real dispatcher on a temporary SQLite, a stand-in WeCom API."""
import asyncio
import datetime as dt
import base64
import time

import pytest
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from bot.channels.base import Blocked, Transient
from bot.channels.wecom import ButtonMemory, render, signature
from bot.channels.wecom_api import RateWindow, split_text
from handlers.message import Button, Reply
from wecom_harness import AES_KEY, CORP_ID, TOKEN, Bench, run
from wecom_harness import TODAY


# ---- URL verification ----------------------------------------------------------------------------------
def test_url_verification_returns_the_decrypted_echostr(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            echo = ""
            while "+" not in echo or "/" not in echo:  # base64's + and / must survive the query string
                echo = PrpCrypto(b.crypto.key).encrypt("1616140317555161061", CORP_ID).decode()
            ts, nonce = str(int(time.time())), "1597212914"
            good = {"msg_signature": signature(TOKEN, ts, nonce, echo), "timestamp": ts, "nonce": nonce, "echostr": echo}
            async with b.http.get(b.url, params=good) as r:
                assert (r.status, await r.text(), r.content_type) == (200, "1616140317555161061", "text/plain")
            async with b.http.get(b.url, params={**good, "msg_signature": "0" * 40}) as r:
                assert r.status == 403
            old = str(int(time.time()) - 3600)
            stale = {**good, "timestamp": old, "msg_signature": signature(TOKEN, old, nonce, echo)}
            async with b.http.get(b.url, params=stale) as r:
                assert r.status == 403
            garbage = "bm90IGEgY2lwaGVydGV4dA=="
            bad = {**good, "echostr": garbage, "msg_signature": signature(TOKEN, ts, nonce, garbage)}
            async with b.http.get(b.url, params=bad) as r:
                assert 400 <= r.status < 500
            async with b.http.get(b.url) as r:
                assert 400 <= r.status < 500
    run(main())


# ---- conversations ----------------------------------------------------------------------------------
def test_a_question_is_answered_with_its_citation(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            answer = await b.text("zhangsan", "威海复核多久一次")
            assert "第十八条" in answer
            assert "回复编号选择" in answer  # the follow-up buttons, as numbered lines
            assert b.fake.sends == []  # a passive reply, no active push
    run(main())


def test_a_full_self_check_through_typed_answers(kb, tmp_path):
    steps = [("自测", ["开始申报条件自测", "第1题", "1. 跳过"]), ("荣成市", ["第2题", "制造业企业", "1. 是", "2. 否"]),
             ("是", ["第3题"]), ("1", ["第4题", "成立"]), ("2020年3月15日", ["第5题", "事故"]), ("否", ["第6题"]),
             ("没有", ["第7题", "服务性部门"]), ("有", ["第8题"]), ("两个", ["第9题"]), ("百分之十二", ["第10题"]),
             ("增长了15%", ["第12题"]), ("２", ["第15题", "亩产效益"]),  # a full-width 2 presses 否
             ("B", ["请核对", "1. 注册地：荣成市"]), ("确认", ["威海：✅ 符合申报的基本条件", "第十二条", "申报材料清单"]),
             ("1", ["申报材料清单", "第十四条"])]

    async def main():
        async with Bench(kb, tmp_path) as b:
            for typed, expected in steps:
                answer = await b.text("lisi", typed)
                for text in expected:
                    assert text in answer, f"{typed!r}: {text!r} not in\n{answer}"
            assert b.counts()["checks"] >= 2  # started and finished, recorded by the dispatcher
    run(main())


def test_enter_agent_is_greeted(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            params, body = b.envelope(b.event_xml("wangwu"))
            status, answer = await b.post(params, body)
            assert status == 200 and "您好" in b.open_reply(answer) and "自测" in b.open_reply(answer)
            # another event (a menu click we do not use) is acknowledged and nothing more
            params, body = b.envelope(b.event_xml("wangwu", event="click"))
            assert await b.post(params, body) == (200, "success")
    run(main())


def test_a_kf_event_is_acknowledged_and_handed_to_the_kf_channel(kb, tmp_path):
    class Kf:
        def __init__(self):
            self.events = []

        def notify(self, token, open_kfid):
            self.events.append((token, open_kfid))

    async def main():
        async with Bench(kb, tmp_path) as b:
            params, body = b.envelope(b.kf_event_xml("ENCAtoken1", "wkAccount1"), agent=None)
            assert await b.post(params, body) == (200, "success")  # no 微信客服 channel: acknowledged only
            b.channel.kf = Kf()
            params, body = b.envelope(b.kf_event_xml("ENCAtoken2", "wkAccount1"), agent=None)
            assert await b.post(params, body) == (200, "success")
            assert b.channel.kf.events == [("ENCAtoken2", "wkAccount1")] and b.counts()["seen_messages"] == 0
    run(main())


def test_a_retried_message_is_answered_once(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            msg_id = b.next_msg_id()
            first = await b.text("zhaoliu", "威海复核多久一次", msg_id)
            second = await b.text("zhaoliu", "威海复核多久一次", msg_id)  # WeCom's retry: same MsgId
            assert "第十八条" in first and second == first  # the same reply again, not a second answer
            assert b.counts()["questions"] == 1
            # an event retried (same sender and CreateTime) is greeted once too
            created = int(time.time())
            params, body = b.envelope(b.event_xml("zhaoliu", create_time=created))
            greeting = b.open_reply((await b.post(params, body))[1])
            params, body = b.envelope(b.event_xml("zhaoliu", create_time=created), nonce="other")
            status, again = await b.post(params, body)
            assert status == 200 and b.open_reply(again) == greeting and "您好" in greeting
    run(main())


def test_a_retry_after_a_crash_gets_the_answer_recorded_before_it(kb, tmp_path):
    from handlers.message import Incoming

    async def main():
        async with Bench(kb, tmp_path) as b:
            msg_id = b.next_msg_id()
            # the previous process handled the message and committed, then died before answering WeCom
            b.dispatcher.handle_once(Incoming("wecom", "zhaoliu", "威海复核多久一次", message_id=msg_id),
                                     f"msg:{msg_id}")
            assert b.counts()["questions"] == 1
            retry = await b.text("zhaoliu", "威海复核多久一次", msg_id)
            assert "第十八条" in retry and b.counts()["questions"] == 1
    run(main())


def test_an_answer_marked_for_push_by_a_dead_process_is_pushed_on_start(kb, tmp_path):
    from handlers.message import Incoming

    async def main():
        async with Bench(kb, tmp_path) as b:
            key = f"msg:{b.next_msg_id()}"
            b.dispatcher.handle_once(Incoming("wecom", "zhaoliu", "威海复核多久一次"), key)
            b.dispatcher.delivered("wecom", key, "push")  # late answer: the process died before message/send
            await b.channel._resume_pushes()  # what start() runs
            assert [s["body"]["touser"] for s in b.fake.sends] == ["zhaoliu"] and "第十八条" in b.fake.texts()[0]
            await b.channel._resume_pushes()  # pushed once
            assert len(b.fake.sends) == 1
    run(main())


# ---- refused requests -----------------------------------------------------------------------------------
def _bad_requests(b: Bench) -> dict[str, tuple[dict, bytes | str]]:
    now = int(time.time())
    inner = b.text_xml("mallory", "威海复核多久一次", b.next_msg_id())
    good_params, good_body = b.envelope(inner)
    cases = {"forged signature": ({**good_params, "msg_signature": "f" * 40}, good_body),
             "no signature": ({k: v for k, v in good_params.items() if k != "msg_signature"}, good_body)}
    other_corp = WeChatCrypto(TOKEN, AES_KEY, "wwsomeothercorp00")
    cases["wrong receiveid"] = b.envelope(b.text_xml("mallory", "hi", b.next_msg_id()), crypto=other_corp)
    cases["wrong ToUserName"] = b.envelope(b.text_xml("mallory", "hi", b.next_msg_id(), to="wwsomeothercorp00"))
    cases["wrong AgentID"] = b.envelope(b.text_xml("mallory", "hi", b.next_msg_id(), agent="1000099"))
    cases["stale timestamp"] = b.envelope(inner, timestamp=now - 330)
    cases["future timestamp"] = b.envelope(inner, timestamp=now + 330)
    params, body = b.envelope(inner)
    cases["body over the cap"] = (params, body.replace("</xml>", "<Pad>" + "x" * 20000 + "</Pad></xml>"))
    cases["body over the server's limit"] = (params, body.replace("</xml>", "<Pad>" + "x" * 100000 + "</Pad></xml>"))
    laughs = ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>')
    cases["DOCTYPE outside"] = (params, laughs + body)
    cases["ENTITY inside"] = b.envelope(laughs + inner.replace("威海复核多久一次", "&b;"))
    cases["not XML"] = (params, b"\x00\xffnot xml at all")
    cases["no Encrypt"] = (params, "<xml><ToUserName>x</ToUserName></xml>")
    for name, cipher in {"garbage ciphertext": "!!!not*base64***", "short ciphertext": "QUJD",
                         "wrong-length ciphertext": base64.b64encode(b"x" * 33).decode(),
                         "random ciphertext": base64.b64encode(bytes(range(64))).decode()}.items():
        sig = signature(TOKEN, str(now), "n0nce", cipher)
        cases[name] = ({"msg_signature": sig, "timestamp": str(now), "nonce": "n0nce"},
                       f"<xml><Encrypt><![CDATA[{cipher}]]></Encrypt></xml>")
    for name, text in {"inner not XML": "just text", "inner without MsgType": f"<xml><ToUserName>{CORP_ID}</ToUserName></xml>",
                       "inner with nested Content": f"<xml><ToUserName><a>{CORP_ID}</a></ToUserName></xml>"}.items():
        cases[name] = b.envelope(text)
    cases["bad timestamp"] = ({**good_params, "timestamp": "yesterday"}, good_body)
    cases["微信客服 event for another corp"] = b.envelope(b.kf_event_xml("TOKEN", to="wwsomeothercorp00"), agent=None)
    params, body = b.envelope(b.kf_event_xml("TOKEN"), agent=None)
    cases["forged 微信客服 event"] = ({**params, "msg_signature": "e" * 40}, body)
    return cases


def test_forged_and_malformed_requests_are_refused_with_nothing_stored_or_sent(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            await b.text("alice", "你好")  # some state to compare against
            before = b.counts()
            for name, (params, body) in _bad_requests(b).items():
                status, text = await b.post(params, body)
                assert 400 <= status < 500, f"{name}: {status} {text}"
                assert b.counts() == before, name
            async with b.http.get(b.url, params={"timestamp": "x"}) as r:
                assert r.status == 400
            await asyncio.sleep(0.1)
            assert b.fake.sends == [] and b.fake.tokens_issued == 0
    run(main())


def test_a_user_typing_markup_or_control_characters_is_answered(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            assert "第十八条" in await b.text("alice", "威海复核多久一次<!--认真问-->")
            assert "第十八条" in await b.text("alice", "<!DOCTYPE 威海复核多久一次")
            assert "第十八条" in await b.text("alice", "\x01威海复核\x07多久一次\x1f")
            stored = [r["question"] for r in b.store.db.query("select question from questions")]
            assert stored[-1] == "威海复核多久一次"
    run(main())


def test_refused_requests_are_counted_and_logged_once_a_minute_at_most(kb, tmp_path, caplog):
    import logging

    async def main():
        async with Bench(kb, tmp_path) as b:
            params, body = b.envelope(b.text_xml("mallory", "hi", b.next_msg_id()))
            with caplog.at_level(logging.INFO):
                for _ in range(50):
                    status, _ = await b.post({**params, "msg_signature": "0" * 40}, body)
                    assert status == 403
            assert b.channel.refusals.count == 50
            lines = [r for r in caplog.records if r.levelno >= logging.INFO and "refused" in r.getMessage()]
            assert len(lines) == 1 and not any(r.exc_info for r in caplog.records)
    run(main())


# ---- active push ------------------------------------------------------------------------------------
def test_push_refreshes_an_expired_token_exactly_once(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            await b.channel.push("u1", "提醒：威海复核", [Button("查看", "q:0")])
            assert b.fake.tokens_issued == 1 and b.fake.texts() == ["提醒：威海复核\n\n回复编号选择：\n1. 查看"]
            assert b.fake.sends[0]["body"]["agentid"] == 1000002 and b.fake.sends[0]["body"]["touser"] == "u1"
            b.fake.script = [{"errcode": 42001, "errmsg": "access_token expired"}]
            await b.channel.push("u1", "第二条")
            assert b.fake.tokens_issued == 2 and len(b.fake.sends) == 3  # refused, new token, sent again
            # a token refused twice in a row: one refresh, one retry, then Transient (no loop)
            b.fake.script = [{"errcode": 42001}, {"errcode": 42001}, {"errcode": 42001}]
            with pytest.raises(Transient):
                await b.channel.push("u1", "第三条")
            assert b.fake.tokens_issued == 3 and len(b.fake.sends) == 5
    run(main())


def test_push_rate_limit_is_transient_with_a_back_off(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            b.fake.script = [{"errcode": 45009, "errmsg": "api freq out of limit"}]
            with pytest.raises(Transient) as exc:
                await b.channel.push("u1", "提醒")
            assert exc.value.retry_after and exc.value.retry_after > 0
            with pytest.raises(Transient):  # backing off: not even tried
                await b.channel.push("u2", "提醒")
            assert len(b.fake.sends) == 1
    run(main())


def test_push_to_an_unknown_member_is_blocked(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            b.fake.script = [{"errcode": 81013, "errmsg": "user & party & tag all invalid", "invaliduser": "gone"}]
            with pytest.raises(Blocked):
                await b.channel.push("gone", "提醒")
            b.fake.script = [{"errcode": 0, "invaliduser": "left"}]
            with pytest.raises(Blocked):
                await b.channel.push("left", "提醒")
            await b.channel.push("still-here", "提醒")
    run(main())


def test_the_per_member_window_queues_below_the_limit(kb, tmp_path):
    async def main():
        async with Bench(kb, tmp_path) as b:
            b.channel.api.window = RateWindow(limit=3, window=0.6)
            for i in range(3):
                await b.channel.push("u1", f"第{i}条")
            with pytest.raises(Transient) as exc:
                await b.channel.push("u1", "太快了", max_wait=0)
            assert 0 < exc.value.retry_after <= 0.6
            await b.channel.push("u2", "别人不受影响", max_wait=0)
            started = time.monotonic()
            await b.channel.push("u1", "等一等再发")  # waits for a free slot
            assert time.monotonic() - started > 0.3
            assert len(b.fake.sends) == 5
    run(main())


def test_the_default_window_stays_below_thirty_a_minute():
    now = [0.0]
    w = RateWindow(clock=lambda: now[0])
    sent = 0
    while w.wait_time("u") == 0:
        w.record("u")
        sent += 1
    assert sent < 30 and 0 < w.wait_time("u") <= 60
    now[0] = 60.0
    assert w.wait_time("u") == 0


# ---- slow answers ------------------------------------------------------------------------------------
def test_a_slow_answer_is_acknowledged_and_pushed_later(kb, tmp_path, monkeypatch):
    async def main():
        async with Bench(kb, tmp_path, deadline=0.3) as b:
            real = b.dispatcher.handle_once

            def slow(msg, key=None):
                time.sleep(0.5)  # blocks the loop past the deadline
                return real(msg, key)

            monkeypatch.setattr(b.dispatcher, "handle_once", slow)
            msg_id = b.next_msg_id()
            assert await b.text("slowpoke", "威海复核多久一次", msg_id) == ""  # an empty success
            await b.wait_sends(1)
            assert "第十八条" in b.fake.texts()[0]
            monkeypatch.setattr(b.dispatcher, "handle_once", real)
            assert await b.text("slowpoke", "威海复核多久一次", msg_id) == ""  # its retry: pushed already
            assert len(b.fake.sends) == 1

            real_dispatch = b.channel._dispatch

            async def waiting(msg, key):  # slow without blocking the loop: the acknowledgement comes at the deadline
                await asyncio.sleep(1.0)
                return await real_dispatch(msg, key)

            monkeypatch.setattr(b.channel, "_dispatch", waiting)
            started = time.monotonic()
            assert await b.text("slowpoke", "威海复核多久一次") == ""
            assert time.monotonic() - started < 0.8
            assert len(b.fake.sends) == 1
            await b.wait_sends(2)
            assert "第十八条" in b.fake.texts()[1]
    run(main())


def test_a_long_answer_is_split_and_the_rest_pushed(kb, tmp_path, monkeypatch):
    async def main():
        async with Bench(kb, tmp_path) as b:
            long = "\n".join(f"第{i}行：" + "长" * 100 for i in range(20))
            monkeypatch.setattr(b.dispatcher, "handle_once", lambda msg, key=None: ([Reply(long)], None))
            first = await b.text("u9", "给我一个长回答")
            assert len(first.encode()) <= 2048 and first.startswith("第0行")
            await b.wait_sends(1)
            await asyncio.sleep(0.2)
            pushed = b.fake.texts()
            assert all(len(t.encode()) <= 2048 for t in pushed)
            assert "\n".join([first, *pushed]) == long
    run(main())


# ---- helpers -----------------------------------------------------------------------------------------
def test_numbers_press_the_last_buttons_of_that_user_only():
    memory = ButtonMemory(max_users=2)
    text, shown = render([Reply("第2题：是制造业企业吗？", [Button("是", "ck:a:x:yes"), Button("否", "ck:a:x:no")])])
    assert text.endswith("回复编号选择：\n1. 是\n2. 否")
    memory.remember("a", shown)
    assert memory.press("a", " 2 ") == "ck:a:x:no" and memory.press("a", "２") == "ck:a:x:no"
    assert memory.press("a", "3") is None and memory.press("b", "1") is None and memory.press("a", "是") is None
    memory.remember("b", shown)
    memory.remember("c", shown)
    assert memory.press("a", "1") is None  # the oldest user is forgotten
    memory.remember("b", [])
    assert memory.press("b", "1") is None  # an answer without buttons clears them


def test_split_text_keeps_lines_and_the_byte_limit():
    assert split_text("短") == ["短"]
    pieces = split_text("一" * 1000)
    assert all(len(p.encode()) <= 2048 for p in pieces) and "".join(pieces) == "一" * 1000


def test_serve_builds_the_wecom_channel_from_the_settings(kb, tmp_path):
    from bot.serve import build_channels
    from bot.storage import Store
    from wecom_harness import AGENT_ID, SECRET
    from bot.config import Settings
    settings = Settings(db=tmp_path / "s.db", wecom_corp_id=CORP_ID, wecom_agent_id=AGENT_ID, wecom_secret=SECRET,
                        wecom_token=TOKEN, wecom_aes_key=AES_KEY)
    assert settings.problems() == []
    store = Store(settings.db)
    channels = build_channels(settings, None, store)
    assert [c.name for c in channels] == ["wecom", "wechat_kf", "console"]
    assert {(r.method, r.path) for r in channels[0].routes()} == {("GET", "/wecom/callback"), ("POST", "/wecom/callback")}


def test_feedback_is_a_numbered_option(kb, tmp_path):
    """👍/👎 are the last numbered options under an answer; typing the number of 👎 asks for a reason."""
    async def main():
        async with Bench(kb, tmp_path) as b:
            answer = await b.text("zhaoliu", "威海复核多久一次")
            lines = answer.splitlines()
            down = next(line for line in lines if line.endswith("👎 没帮助"))
            asked = await b.text("zhaoliu", down.split(".")[0])
            assert "哪里不对" in asked and "1. 跳过" in asked
            assert "感谢" in await b.text("zhaoliu", "1")
            rows = list(b.store.db.query("select feedback, feedback_reason from questions"))
            assert rows == [{"feedback": -1, "feedback_reason": None}]
    run(main())


def test_a_reminder_resent_after_a_crash_is_dropped_by_wecoms_duplicate_check(kb, tmp_path):
    from bot.config import Settings as S
    from bot.reminders import ReminderLoop, schedule

    async def main():
        async with Bench(kb, tmp_path) as b:
            sub_id, _ = b.store.upsert_subscription({"credit_code": "91371000000000099X", "name": "甲公司",
                                                     "city": "weihai", "awarded_on": "2024-12-10", "channel": "wecom",
                                                     "user_id": "zhangsan", "source": "import"})
            schedule(b.store, kb, sub_id, TODAY, (30, 7, 1, 0))
            clock = lambda: dt.datetime(2026, 11, 22, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # noqa: E731
            loop = ReminderLoop(S(send_hours=(0, 24)), b.store, kb, {"wecom": b.channel}, clock=clock)
            assert await loop.sweep() >= 1
            sent = len(b.fake.sends)
            # a kill -9 after WeCom accepted and before our commit: the rows are pending again
            b.store.db.execute("delete from deliveries")
            b.store.db.execute("update reminders set status = 'pending' where status = 'sent'")
            b.store.db.conn.commit()
            assert await loop.sweep() == sent
            assert len(b.fake.sends) == 2 * sent and len(b.fake.delivered) == sent  # members saw each once
            assert all(s["body"].get("enable_duplicate_check") == 1 for s in b.fake.sends)
            await b.text("zhangsan", "威海复核多久一次")  # chat answers are not deduplicated by WeCom
            await b.text("zhangsan", "威海复核多久一次")
            assert not any(s["body"].get("enable_duplicate_check") for s in b.fake.sends[2 * sent:])
    run(main())


def test_a_body_trickled_in_too_slowly_is_cut_off(kb, tmp_path, monkeypatch):
    import bot.channels.wecom as wecom_mod
    monkeypatch.setattr(wecom_mod, "BODY_SECONDS", 0.3)

    async def main():
        async with Bench(kb, tmp_path) as b:
            params, body = b.envelope(b.text_xml("slowloris", "hi", b.next_msg_id()))
            port = int(b.url.split(":")[2].split("/")[0])
            query = "&".join(f"{k}={v}" for k, v in params.items())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"POST /wecom/callback?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                         .encode() + body.encode()[:20])
            await writer.drain()
            head = await asyncio.wait_for(reader.readline(), 3)
            writer.close()
            assert b" 408 " in head and b.counts()["questions"] == 0
    run(main())
