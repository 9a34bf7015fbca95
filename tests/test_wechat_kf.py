"""微信客服 end to end: a real `policybot serve` process, encrypted `kf_msg_or_event` callbacks built with
wechatpy's crypto, and a stand-in WeCom API (tests/wecom_harness.py) that keeps the messages, the cursor, the
welcome codes and the 5-in-48-hours quota as WeCom's documents describe them."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto
from wecom_harness import AES_KEY, AGENT_ID, CORP_ID, OPEN_KFID, SECRET, TOKEN, Bench, FakeWecomApi

from bot.channels.wechat_kf import fit, menu_message, render, text_message
from handlers.message import Button, Reply
from helpers import free_port as _free_port, credit_code as _code

ROOT = Path(__file__).resolve().parent.parent


class Env:
    """The stand-in API on loopback, and `policybot serve` started and stopped against it."""

    def __init__(self, tmp_path: Path, kb_file: Path):
        self.tmp_path, self.kb_file = tmp_path, kb_file
        self.fake = FakeWecomApi()
        self.crypto = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
        self.port = _free_port()
        self.proc = None
        self.stderr = b""

    async def __aenter__(self) -> "Env":
        self.runner = web.AppRunner(self.fake.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        api_port = self.runner.addresses[0][1]
        self.env = dict(os.environ, POLICYBOT_DB=str(self.tmp_path / "kf.db"), POLICYBOT_KB=str(self.kb_file),
                        POLICYBOT_PORT=str(self.port), POLICYBOT_SEND_HOURS="0-24", POLICYBOT_SWEEP_SECONDS="0.2",
                        WECOM_CORP_ID=CORP_ID, WECOM_AGENT_ID=AGENT_ID, WECOM_SECRET=SECRET, WECOM_TOKEN=TOKEN,
                        WECOM_AES_KEY=AES_KEY, WECOM_API_BASE_URL=f"http://127.0.0.1:{api_port}/cgi-bin/")
        for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_URL"):
            self.env.pop(name, None)
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        if self.proc and self.proc.returncode is None:
            await self.stop()
        await self.http.close()
        await self.runner.cleanup()

    async def cli(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", *args, env=self.env, cwd=self.tmp_path,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=self.env,
                                                         cwd=ROOT, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                async with self.http.get(f"http://127.0.0.1:{self.port}/healthz") as resp:
                    health = await resp.json()
                    break
            except aiohttp.ClientError:
                assert time.monotonic() < deadline, "serve did not come up"
                await asyncio.sleep(0.1)
        assert "wechat_kf" in health["channels"]

    async def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 15)
        self.stderr += err
        assert self.proc.returncode == 0, err.decode()[-2000:]
        assert b"Traceback" not in err

    async def callback(self, token: str, signature: str | None = None) -> tuple[int, str]:
        params, body = Bench.envelope(self, Bench.kf_event_xml(token), agent=None)
        if signature:
            params["msg_signature"] = signature
        async with self.http.post(f"http://127.0.0.1:{self.port}/wecom/callback", params=params, data=body) as resp:
            return resp.status, await resp.text()

    async def until(self, condition, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.05)


def test_questions_menus_welcome_and_a_restart_through_serve(tmp_path, kb_file):
    async def main():
        async with Env(tmp_path, kb_file) as e:
            fake = e.fake
            await e.start()

            # a forged callback: refused, and nothing is read
            token = fake.customer_writes("wmMallory", "威海复核多久一次")
            assert (await e.callback(token, signature="0" * 40))[0] == 403
            await asyncio.sleep(0.3)
            assert fake.kf_syncs == [] and fake.kf_sends == []
            fake.kf_messages.clear()

            # a welcome: the link's scene_param preselects the city, the welcome goes with the welcome_code
            assert await e.callback(fake.customer_enters("wmZhang", scene_param="weihai", welcome_code="WC1")) == \
                (200, "success")
            await e.until(lambda: fake.kf_welcomes)
            welcome = fake.kf_welcomes[0]
            assert welcome["code"] == "WC1"
            shown = welcome.get("text", {}).get("content") or welcome["msgmenu"]["head_content"]
            assert "您好" in shown and "按威海的办法回答" in shown
            assert fake.kf_sends == []  # a welcome is not a send_msg: no quota used, none available

            # a question without a city: answered for the link's city, with its article
            await e.callback(fake.customer_writes("wmZhang", "复核多久一次"))
            await e.until(lambda: fake.kf_texts("wmZhang"))
            answer = "\n".join(fake.kf_texts("wmZhang"))
            assert "第十八条" in answer, answer
            menus = [s["body"] for s in fake.kf_sends if s["body"]["msgtype"] == "msgmenu"]
            assert menus and menus[-1]["msgmenu"]["list"], "the follow-up buttons come as a menu"
            assert all(len(t.encode()) <= 2048 for t in fake.kf_texts())

            # a menu click: a text carrying the item's id, answered as the button it stands for
            item = menus[-1]["msgmenu"]["list"][0]["click"]
            before = len(fake.kf_sends)
            await e.callback(fake.customer_writes("wmZhang", item["content"], menu_id=item["id"]))
            await e.until(lambda: len(fake.kf_sends) > before)
            clicked = "\n".join(fake.kf_texts("wmZhang")[before:])
            assert "已过期" not in clicked and "第" in clicked and "条" in clicked, clicked

            # a restart, and WeCom hands out every message again from the start: none is answered twice
            await e.stop()
            answered = len(fake.kf_sends)
            fake.kf_ignore_cursor = True
            await e.start()
            await e.callback(fake.customer_writes("wmZhang", "包头更名后多久备案"))
            await e.until(lambda: any("第十三条" in t for t in fake.kf_texts("wmZhang")))
            await asyncio.sleep(0.5)
            assert len(fake.kf_welcomes) == 1
            assert sum("第十八条" in t for t in fake.kf_texts("wmZhang")) == 1
            new = fake.kf_sends[answered:]
            assert new and all("第十八条" not in json.dumps(s["body"], ensure_ascii=False) for s in new)
            assert all(s["errcode"] == 0 for s in fake.kf_sends)
            await e.stop()
    asyncio.run(main())


def test_quota_reminders_and_refusals_through_serve(tmp_path, kb_file):
    async def main():
        async with Env(tmp_path, kb_file) as e:
            fake = e.fake
            csv = tmp_path / "awarded.csv"
            csv.write_text("name,credit_code,city,awarded_on,channel,user_id\n" + "".join(
                f"企业{i},{_code(i)},威海,2024-12-10,wechat_kf,wmQian\n" for i in range(1, 7)), encoding="utf-8")
            code, out, err = await e.cli("reminders", "import", str(csv))
            assert code == 0, err
            await e.start()

            # the measure's expiry notices are due, but 钱 has not written within 48 hours: they wait
            deadline = time.monotonic() + 10
            while True:
                code, out, err = await e.cli("reminders", "due", "--days", "0")
                if out.count("no channel: phone them") == 6 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert out.count("no channel: phone them") == 6, (out, err, e.stderr)
            assert fake.kf_sends == []

            # 钱 writes: the answer, then the six reminders merged (one message each would make 7), within the
            # 5 messages the stand-in accepts (it refuses the 6th with 95001, and none was refused)
            await e.callback(fake.customer_writes("wmQian", "威海复核多久一次"))
            await e.until(lambda: any("待查看的提醒" in t for t in fake.kf_texts("wmQian")))
            await asyncio.sleep(0.5)
            texts = fake.kf_texts("wmQian")
            assert "第十八条" in texts[0]
            assert any("您有6条待查看的提醒" in t for t in texts)
            assert sum(t.count("【办法到期提醒】") for t in texts) == 6
            assert len(texts) <= 5 and all(s["errcode"] == 0 for s in fake.kf_sends)
            code, out, err = await e.cli("reminders", "due", "--days", "0")
            assert "phone them" not in out

            # WeCom refuses (a person took the session over): dropped with a log line, never retried
            before = len(fake.kf_sends)
            fake.kf_script = [{"errcode": 95018, "errmsg": "send msg session status invalid"}]
            await e.callback(fake.customer_writes("wmQian", "包头申报需要什么条件"))
            await e.until(lambda: len(fake.kf_sends) > before)
            await asyncio.sleep(1.0)  # sweeps and nothing else arrives
            assert len(fake.kf_sends) == before + 1

            # a picture: one short note
            before = len(fake.kf_sends)
            await e.callback(fake.customer_writes("wmQian", "", msgtype="image"))
            await e.until(lambda: len(fake.kf_sends) > before)
            assert "文字消息" in fake.kf_texts("wmQian")[-1]

            # the next message is answered again
            await e.callback(fake.customer_writes("wmQian", "包头更名后多久备案"))
            await e.until(lambda: any("第十三条" in t for t in fake.kf_texts("wmQian")))
            await asyncio.sleep(0.3)
            room = fake.kf_room("wmQian")  # 5 less the answer's messages
            assert 0 < room < 5
            before = len(fake.kf_sends)

            # the quota: six more enterprises of 钱 are imported while serving, each with a notice due now;
            # the loop pushes what the 5 messages still allow, and the rest waits
            csv.write_text("name,credit_code,city,awarded_on,channel,user_id\n" + "".join(
                f"企业{i},{_code(i)},威海,2024-12-10,wechat_kf,wmQian\n" for i in range(11, 17)), encoding="utf-8")
            code, out, err = await e.cli("reminders", "import", str(csv))
            assert code == 0, err
            await e.until(lambda: fake.kf_room("wmQian") == 0)
            deadline = time.monotonic() + 10
            while True:
                code, out, err = await e.cli("reminders", "due", "--days", "0")
                if out.count("no channel: phone them") == 6 - room or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert out.count("no channel: phone them") == 6 - room, out
            await asyncio.sleep(0.5)
            pushed = fake.kf_sends[before:]
            assert len(pushed) == room and all(s["errcode"] == 0 for s in pushed)  # the stand-in refused none
            assert all("【办法到期提醒】" in s["body"]["text"]["content"] for s in pushed)
            assert fake.kf_room("wmQian") == 0
            await e.stop()
            assert e.stderr.count(b"95018") == 1
    asyncio.run(main())


def test_kf_link_writes_a_qr_code_for_a_city(tmp_path, kb_file):
    async def main():
        async with Env(tmp_path, kb_file) as e:
            code, out, err = await e.cli("kf", "link", "--city", "荣成市")
            assert code == 0, err
            assert out.strip().startswith("https://work.weixin.qq.com/kf/") and "ENCweihai" in out
            assert e.fake.kf_contact_ways == [{"open_kfid": OPEN_KFID, "scene": "weihai"}]
            png = tmp_path / "kf-link-weihai.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            code, out, err = await e.cli("kf", "link", "--city", "火星")
            assert code == 2 and "unknown city" in err and "Traceback" not in err
            code, out, err = await e.cli("kf", "link", "--account", "wkNoSuchAccount")
            assert code == 2 and "no 微信客服 account" in err
            e.env["WECOM_SECRET"] = "wrong-secret"  # gettoken refused: one line, exit 2
            code, out, err = await e.cli("kf", "link")
            assert code == 2 and err.splitlines()[-1].startswith("policybot: kf link: WeCom refused")
            assert "Traceback" not in err and "wrong-secret" not in err
            del e.env["WECOM_SECRET"]
            code, out, err = await e.cli("kf", "link")
            assert code == 2 and "WECOM_SECRET" in err and "Traceback" not in err
    asyncio.run(main())


# ---- the pieces, in process ----------------------------------------------------------------------------
def test_render_keeps_wecom_limits_and_fit_merges_before_dropping():
    buttons = [Button(f"选项{i}", f"q:{i}") for i in range(12)]
    short = render([Reply("答：两年一次。", buttons)])
    assert [m["msgtype"] for m in short] == ["msgmenu"]
    assert short[0]["msgmenu"]["head_content"] == "答：两年一次。" and len(short[0]["msgmenu"]["list"]) == 10
    long = render([Reply("\n".join("长" * 300 for _ in range(8)), buttons[:2])])
    assert all(len(m["text"]["content"].encode()) <= 2048 for m in long if m["msgtype"] == "text")
    assert long[-1]["msgtype"] == "msgmenu" and len(long[-1]["msgmenu"]["head_content"].encode()) <= 1024
    assert [m["msgtype"] for m in render([Reply("", [Button("是", "ck:yes")])])] == ["msgmenu"]
    # over the room: the menu's text stays, its items go; short texts merge; then the rest is left off
    kept, left = fit([text_message("甲"), menu_message("乙", buttons[:2])], 1)
    assert kept == [text_message("甲\n\n乙")] and left == 0
    kept, left = fit([text_message("长" * 600), text_message("长" * 600), text_message("短")], 2)
    assert kept[-1] == text_message("长" * 600 + "\n\n短") and left == 0  # merged, nothing lost
    kept, left = fit([text_message("长" * 600)] * 3, 2)
    assert len(kept) == 2 and left == 1
    assert fit([text_message("甲")], 0) == ([], 1)


def test_subscribing_on_a_channel_with_a_window_says_so(kb, tmp_path):
    from bot.config import Settings
    from bot.runtime import Dispatcher
    from bot.storage import Store
    from handlers.message import Incoming
    store = Store(tmp_path / "w.db")
    d = Dispatcher(Settings(db=tmp_path / "w.db"), store, kb)
    d.capabilities["wechat_kf"] = {"push_window_hours": 48}
    said = []
    for channel in ("wechat_kf", "console"):
        for text in ("提醒", "威海", "甲公司", _code(9), "2024年12月10日"):
            replies = d.handle(Incoming(channel, "u1", text))
        said.append("\n".join(r.text for r in replies))
    assert "48小时" in said[0] and "下次发消息" in said[0]
    assert "48小时" not in said[1]


def test_push_waits_outside_the_window_and_within_the_quota(kb, tmp_path):
    from bot.channels.base import Deferred
    from bot.channels.wechat_kf import WechatKfChannel

    async def main():
        async with Bench(kb, tmp_path) as b:
            kf = WechatKfChannel(b.settings, b.dispatcher, b.store, b.channel.api)
            with pytest.raises(Deferred):
                await kf.push("wmNew", "提醒")  # never wrote
            b.fake.customer_writes("wmOld", "你好", send_time=int(time.time()) - 49 * 3600)
            b.fake.customer_writes("wmLi", "你好")
            assert await kf.sync(OPEN_KFID) == 2
            with pytest.raises(Deferred):
                await kf.push("wmOld", "提醒")  # wrote 49 hours ago: skipped, no reply, no push
            sent_for_hello = len(b.fake.kf_sends)
            assert [s["body"]["touser"] for s in b.fake.kf_sends] == ["wmLi"] * sent_for_hello
            for i in range(5 - sent_for_hello):
                await kf.push("wmLi", f"提醒{i}")
            with pytest.raises(Deferred):
                await kf.push("wmLi", "第六条")
            assert len(b.fake.kf_sends) == 5 and all(s["errcode"] == 0 for s in b.fake.kf_sends)
            assert await kf.sync(OPEN_KFID) == 0  # nothing new, nothing handled twice
            await kf.stop()
    asyncio.run(main())


def test_a_waiting_reminder_goes_out_with_the_next_reply(kb, tmp_path):
    import datetime as dt

    from bot.channels.wechat_kf import WechatKfChannel
    from bot.clock import today_shanghai

    async def main():
        async with Bench(kb, tmp_path) as b:
            kf = WechatKfChannel(b.settings, b.dispatcher, b.store, b.channel.api)
            sub_id, _ = b.store.upsert_subscription({"credit_code": _code(5), "name": "孙公司", "city": "weihai",
                                                     "awarded_on": "2024-12-10", "channel": "wechat_kf",
                                                     "user_id": "wmSun", "source": "chat", "active": 1})
            yesterday = (today_shanghai() - dt.timedelta(days=1)).isoformat()
            b.store.add_reminders(sub_id, [{"kind": "review", "due_on": "2026-12-10", "lead_days": 7,
                                            "send_on": yesterday}])
            rid = b.store.db.execute("select id from reminders").fetchone()[0]
            b.store.reminder_waiting(rid)
            assert [r["id"] for r in b.store.waiting_reminders("wechat_kf", "wmSun")] == [rid]
            b.fake.customer_writes("wmSun", "/status")
            await kf.sync(OPEN_KFID)
            texts = b.fake.kf_texts("wmSun")
            assert texts[0].startswith("您的提醒") and "另有1条提醒到期时未能送达" in texts[0]
            assert texts[-1].startswith("您有1条待查看的提醒") and "【复核提醒】孙公司" in texts[-1]
            assert "系统暂停" not in texts[-1]
            assert b.store.waiting_reminders("wechat_kf", "wmSun") == []
            row = b.store.db.execute("select late from deliveries where reminder_id = ?", [rid]).fetchone()
            assert row == (1,)
            b.fake.customer_writes("wmSun", "谢谢")
            await kf.sync(OPEN_KFID)
            assert sum("待查看的提醒" in t for t in b.fake.kf_texts("wmSun")) == 1  # once
            await kf.stop()
    asyncio.run(main())


def test_a_reply_queued_when_wecom_failed_goes_out_after_a_restart_once(kb, tmp_path):
    from bot.channels.wechat_kf import WechatKfChannel

    async def main():
        async with Bench(kb, tmp_path) as b:
            kf = WechatKfChannel(b.settings, b.dispatcher, b.store, b.channel.api)
            b.fake.kf_script = [{"errcode": -1, "errmsg": "system busy"}]
            b.fake.customer_writes("wmZhou", "威海复核多久一次")
            assert await kf.sync(OPEN_KFID) == 1
            assert [s["errcode"] for s in b.fake.kf_sends] == [-1]  # tried once, kept
            assert len(b.store.kf_pending("wmZhou")) >= 1
            await kf.stop()
            again = WechatKfChannel(b.settings, b.dispatcher, b.store, b.channel.api)  # as after a restart
            await again._resume()
            texts = b.fake.kf_texts("wmZhou")
            assert sum("第十八条" in t for t in texts) == 1 and b.store.kf_pending("wmZhou") == []
            assert b.counts()["questions"] == 1  # handled once: the dialog core saw it once
            await again._resume()
            assert b.fake.kf_texts("wmZhou") == texts
            await again.stop()
    asyncio.run(main())


def test_feedback_is_a_menu_item(tmp_path, kb_file):
    """👍/👎 under an answer are items of its menu; clicking 👎 asks for a reason; the vote is stored."""
    async def main():
        async with Env(tmp_path, kb_file) as e:
            fake = e.fake
            await e.start()
            await e.callback(fake.customer_writes("wmLi", "威海复核多久一次"))
            await e.until(lambda: any(s["body"]["msgtype"] == "msgmenu" for s in fake.kf_sends))
            menu = [s["body"] for s in fake.kf_sends if s["body"]["msgtype"] == "msgmenu"][-1]
            items = {i["click"]["content"]: i["click"]["id"] for i in menu["msgmenu"]["list"]}
            assert {"👍 有帮助", "👎 没帮助"} <= set(items)
            before = len(fake.kf_sends)
            await e.callback(fake.customer_writes("wmLi", "👎 没帮助", menu_id=items["👎 没帮助"]))
            await e.until(lambda: len(fake.kf_sends) > before)
            assert "哪里不对" in "\n".join(fake.kf_texts("wmLi")[before:])
            await e.stop()
    asyncio.run(main())
    from bot.storage import Store
    assert list(Store(tmp_path / "kf.db").db.query("select feedback from questions")) == [{"feedback": -1}]
