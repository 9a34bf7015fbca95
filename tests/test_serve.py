"""`policybot serve` as a real process: both channels against stand-in platform servers, reminders pushed
through each, a question on each, and a clean stop on SIGTERM.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import aiohttp
from aiohttp import web
from telegram_standin import TOKEN, StandInBotAPI, text_update
from wechatpy.enterprise.crypto import WeChatCrypto
from wecom_harness import AES_KEY, AGENT_ID, CORP_ID, SECRET, FakeWecomApi
from wecom_harness import TOKEN as WECOM_TOKEN
from wecom_harness import Bench as WecomBench
from helpers import free_port as _free_port, credit_code as _code

ROOT = Path(__file__).resolve().parent.parent
TG_USER = 424242


async def _scenario(tmp_path: Path, kb_file: Path) -> None:
    tg = await StandInBotAPI(poll_wait=0.3).start()
    wecom = FakeWecomApi()
    runner = web.AppRunner(wecom.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    wecom_port = runner.addresses[0][1]
    port = _free_port()
    env = dict(os.environ, POLICYBOT_DB=str(tmp_path / "serve.db"), POLICYBOT_KB=str(kb_file),
               POLICYBOT_PORT=str(port), POLICYBOT_SEND_HOURS="0-24", POLICYBOT_SWEEP_SECONDS="0.2",
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=tg.base_url,
               WECOM_CORP_ID=CORP_ID, WECOM_AGENT_ID=AGENT_ID, WECOM_SECRET=SECRET, WECOM_TOKEN=WECOM_TOKEN,
               WECOM_AES_KEY=AES_KEY, WECOM_API_BASE_URL=f"http://127.0.0.1:{wecom_port}/cgi-bin/",
               POLICYBOT_LOG_LEVEL="DEBUG")
    env.pop("TELEGRAM_WEBHOOK_URL", None)
    csv = tmp_path / "awarded.csv"
    csv.write_text("name,credit_code,city,awarded_on,channel,user_id\n"
                   f"甲公司,{_code(1)},荣成市,2024-12-10,wecom,zhangsan\n"
                   f"乙公司,{_code(2)},威海,2025-01-10,telegram,{TG_USER}\n", encoding="utf-8")
    imp = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "reminders", "import", str(csv),
                                               env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                               stderr=asyncio.subprocess.PIPE)
    out, err = await imp.communicate()
    assert imp.returncode == 0, err.decode()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 20
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        health = await resp.json()
                        break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline, "serve did not come up"
                    await asyncio.sleep(0.1)
            assert set(health["channels"]) >= {"telegram", "wecom", "console"}

            # reminders: the measure's expiry notice reaches each subscriber through its own channel, once
            sent = await tg.wait_sent(1, TG_USER, timeout=10)
            assert "办法到期提醒" in sent[0]["text"]
            deadline = time.monotonic() + 10
            while not wecom.sends and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert wecom.sends and wecom.sends[0]["body"]["touser"] == "zhangsan"
            assert "办法到期提醒" in wecom.texts()[0]

            # a question on each channel
            tg.queue(text_update(tg.next_update_id(), TG_USER, "威海复核多久一次"))
            answers = await tg.wait_sent(2, TG_USER, timeout=10)
            assert "第十八条" in answers[-1]["text"]
            crypto = WeChatCrypto(WECOM_TOKEN, AES_KEY, CORP_ID)
            params, body = WecomBench.envelope(_Envelope(crypto),
                                               WecomBench.text_xml("lisi", "包头更名后多久备案", "9100000000000000001"))
            async with http.post(f"http://127.0.0.1:{port}/wecom/callback", params=params, data=body) as resp:
                assert resp.status == 200
                reply = await resp.text()
            root = ET.fromstring(reply)
            inner = crypto.decrypt_message(reply, root.findtext("MsgSignature"), root.findtext("TimeStamp"),
                                           root.findtext("Nonce"))
            assert "第十三条" in ET.fromstring(inner).findtext("Content")
            # a forged callback is refused
            async with http.post(f"http://127.0.0.1:{port}/wecom/callback",
                                 params={**params, "msg_signature": "0" * 40}, data=body) as resp:
                assert resp.status == 403
        await asyncio.sleep(0.6)  # a second sweep sends nothing twice
        assert len([m for m in tg.sent_to(TG_USER) if "办法到期提醒" in m["text"]]) == 1
        assert len([t for t in wecom.texts() if "办法到期提醒" in t]) == 1
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        await tg.close()
        await runner.cleanup()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"Traceback" not in err
    log = err.decode()
    assert "getUpdates" in log or "sendMessage" in log  # the Bot API calls were logged (DEBUG) …
    access_tokens = [f"TOKEN{n}" for n in range(1, wecom.tokens_issued + 1)]
    assert wecom.tokens_issued >= 1
    for secret in [TOKEN, TOKEN.split(":")[1], SECRET, WECOM_TOKEN, AES_KEY, *access_tokens]:
        assert secret not in log, f"a secret is in the log: {secret[:3]}…"  # … and never a secret


class _Envelope:
    """Just enough of wecom_harness.Bench for its `envelope` helper."""

    def __init__(self, crypto):
        self.crypto = crypto


def test_serve_runs_both_channels_and_pushes_reminders_through_them(tmp_path, kb_file):
    asyncio.run(_scenario(tmp_path, kb_file))


def test_a_short_soak_has_no_5xx_no_traceback_no_secret_and_answers_each_message_once(tmp_path, kb_file):
    """tests/soak.py with a small N (the full run, 10,000 requests, is in `make bench`)."""
    from soak import soak
    report = asyncio.run(soak(30, kb_file=kb_file, workdir=tmp_path, max_seconds=120, log_level="DEBUG"))
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "setWebhook" in log  # at DEBUG the Bot API calls are logged, the webhook secret among their parameters
    figures = {name: value for name, value, _, _ in report.lines()}
    assert report.requests >= 120 and not report.stopped_early, figures
    # two rounds, the RSS growth measured over the second (tests/soak.py's docstring says why)
    assert len(report.backlog_peaks) == 2 and 120 <= report.measured_requests < report.requests, figures
    assert 0 < report.rss_first_kb and 0 < report.rss_start_kb and 0 < report.rss_end_kb, figures
    assert report.statuses.get(200, 0) >= 60, report.statuses
    assert report.server_errors == 0 and report.tracebacks == 0 and report.errors == 0, figures
    assert report.unanswered == 0 and report.duplicates == 0, figures
    assert report.secrets_in_log == 0, figures
