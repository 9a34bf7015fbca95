"""A soak of a real `policybot serve` on loopback (issue 11): N valid and N malformed WeCom callbacks and
Telegram webhook updates, some of the valid ones retried, against stand-in platform servers.

Bounded: counts are fixed (`--n`), concurrency is `--concurrency`, and the whole run stops after
`--max-seconds` (what was not sent by then is reported). Loopback only: every server listens on 127.0.0.1.

Reports: 5xx responses, tracebacks in the server's log, unanswered valid messages (no passive reply and
no push for WeCom, no sendMessage for Telegram), duplicates (a retried message answered twice, a
question logged twice), secrets found in the log, and the server's RSS growth in steady state. Targets:
0 5xx, 0 tracebacks, 0 unanswered, 0 duplicates, 0 secrets, RSS growth < 10 MB over 10,000 requests.

How RSS growth is measured, and why. The traffic is sent in two identical rounds of 4 × N requests (new
message ids, the same 400 users and chats). Round 1 is the warm-up; the growth is that of round 2, from
the end of round 1 to the end of round 2, each taken once every Telegram answer has been sent.
- The soak posts Telegram updates at ~90/s, three times what the Bot API lets a bot send (30 messages/s,
  `ChatRateLimiter`). Every accepted update becomes a PTB task (`Application.create_task`) that waits
  its turn, so a backlog of ~1,000-1,600 queued updates builds up in a round (printed as "peak Telegram
  backlog") and drains ~50 s after the last request, at 30/s. Each queued update costs ~7 KB.
- That memory is freed when the backlog drains, but glibc malloc and pymalloc keep the pages (a pymalloc
  arena is returned only when wholly empty): RSS stays at the backlog's high-water mark. Measured with
  N=2500 in one process (a SIGUSR1 probe: gc.get_objects() by type, asyncio.all_tasks(), smaps_rollup):
  RSS 159 MB (164,215 live objects) after a 200-request warm-up had drained; in round 1 RSS rose with the
  queued tasks (202 -> 1,646 tasks, 161 -> 171 MB, ~7 KB a task), and once drained it stayed at 171 MB
  with 4 tasks and 165,071 live objects (nothing retained); round 2 (peak 1,070 queued) took it from
  171 to 173 MB; `malloc_trim(0)` then gave back 6 of the 14 MB of anonymous memory gained. PTB's
  chat_data/user_data stayed empty, the per-chat limiters at 400 (one per chat).
- So a growth taken from a server that has not yet held such a backlog measures the allocator's high-
  water mark for queued sends, not a leak; comparing round 2 with round 1 compares like with like, and a
  real leak (anything retained per message, user or update) still shows as growth in round 2. Round 1's
  figures are printed too (growth incl. the backlog's high-water), so that cost stays visible.
  If round 2's backlog peaks higher than round 1's, its growth includes that new high-water: the
  figure errs on the side of growth. First run so measured: round 1 +21.2 MB (from an idle server, incl.
  its first answers), round 2 +4.3 MB over 10,545 requests (peak backlogs 1,474 and 1,712).

    .venv/bin/python tests/soak.py --n 2500        # 2 rounds × 4 × 2,500 = 20,000 requests (+ retries)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).parent))

from telegram_standin import TOKEN as TG_TOKEN  # noqa: E402
from telegram_standin import StandInBotAPI, text_update  # noqa: E402
from wechatpy.enterprise.crypto import WeChatCrypto  # noqa: E402
from wecom_harness import AES_KEY, AGENT_ID, CORP_ID, SECRET, FakeWecomApi  # noqa: E402
from wecom_harness import TOKEN as WECOM_TOKEN  # noqa: E402
from wecom_harness import Bench as WecomBench  # noqa: E402
from helpers import free_port as _free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "soak-webhook-secret_0123456789"
QUESTIONS = ["威海复核多久一次", "包头更名后多久备案", "威海申报需要什么条件", "包头申报要提交哪些材料", "示范企业有什么支持",
             "你好", "谢谢", "威海的办法什么时候到期", "包头的服务收入占比要求是多少", "今天天气怎么样"]
RETRY_SHARE = 0.1  # of the valid messages, this share is sent twice (a platform retry)


@dataclass
class Report:
    sent: dict[str, int] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection errors on our side
    unanswered: int = 0
    duplicates: int = 0
    tracebacks: int = 0
    secrets_in_log: int = 0
    measured_requests: int = 0  # those of round 2, over which the RSS growth is measured
    rss_first_kb: int = 0  # when the server is up, before round 1
    rss_start_kb: int = 0  # round 1 sent and its Telegram answers all sent
    rss_end_kb: int = 0  # the same after round 2
    rss_series_kb: list[int] = field(default_factory=list)  # after each batch of 250 × 4, and after each drain
    backlog_peaks: list[int] = field(default_factory=list)  # per round: most Telegram updates not yet answered
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    @property
    def requests(self) -> int:
        return sum(self.sent.values())

    @property
    def rss_growth_mb(self) -> float:
        return (self.rss_end_kb - self.rss_start_kb) / 1024

    @property
    def rss_target_mb(self) -> float:
        return 10 * max(1, self.measured_requests / 10000)

    def ok(self) -> bool:
        return not (self.server_errors or self.tracebacks or self.unanswered or self.duplicates or self.secrets_in_log
                    or self.errors or self.stopped_early) and self.rss_growth_mb < self.rss_target_mb

    def lines(self) -> list[tuple[str, str, str, bool | None]]:
        return [
            ("requests (valid + malformed, both channels)", f"{self.requests}", "2 rounds", None),
            ("duration", f"{self.seconds:.1f} s", "", None),
            ("5xx responses", f"{self.server_errors}", "target 0", self.server_errors == 0),
            ("tracebacks in the server log", f"{self.tracebacks}", "target 0", self.tracebacks == 0),
            ("valid messages unanswered", f"{self.unanswered}", "target 0", self.unanswered == 0),
            ("duplicates (retries answered twice)", f"{self.duplicates}", "target 0", self.duplicates == 0),
            ("secrets in the server log", f"{self.secrets_in_log}", "target 0", self.secrets_in_log == 0),
            ("peak Telegram backlog (round 1, round 2)", " / ".join(f"{b}" for b in self.backlog_peaks),
             "updates queued behind 30 sends/s", None),
            ("server RSS growth in round 1 (warm-up)", f"{(self.rss_start_kb - self.rss_first_kb) / 1024:.1f} MB",
             "incl. the backlog's high-water", None),
            ("server RSS growth in round 2 (steady state)", f"{self.rss_growth_mb:.1f} MB",
             f"over {self.measured_requests} requests, target < {self.rss_target_mb:.1f} MB",
             self.rss_growth_mb < self.rss_target_mb),
        ]


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class _Env:
    def __init__(self, crypto):
        self.crypto = crypto


async def soak(n: int, kb_file: Path | None = None, concurrency: int = 16, max_seconds: float = 300,
               workdir: Path | None = None, seed: int = 11, log_level: str = "INFO") -> Report:
    rng = random.Random(seed)
    report = Report()
    started = time.monotonic()
    tmp = Path(workdir or tempfile.mkdtemp(prefix="policybot-soak-"))
    tg = await StandInBotAPI(poll_wait=0.3).start()
    wecom = FakeWecomApi()
    runner = web.AppRunner(wecom.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, POLICYBOT_DB=str(tmp / "soak.db"), POLICYBOT_PORT=str(port), POLICYBOT_HOST="127.0.0.1",
               TELEGRAM_BOT_TOKEN=TG_TOKEN, TELEGRAM_API_BASE_URL=tg.base_url,
               TELEGRAM_WEBHOOK_URL=f"{base}/telegram/webhook", TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
               WECOM_CORP_ID=CORP_ID, WECOM_AGENT_ID=AGENT_ID, WECOM_SECRET=SECRET, WECOM_TOKEN=WECOM_TOKEN,
               WECOM_AES_KEY=AES_KEY, WECOM_API_BASE_URL=f"http://127.0.0.1:{runner.addresses[0][1]}/cgi-bin/",
               POLICYBOT_SEND_HOURS="9-18", POLICYBOT_LOG_LEVEL=log_level)
    if kb_file:
        env["POLICYBOT_KB"] = str(kb_file)
    log_path = tmp / "serve.log"
    log_file = open(log_path, "wb")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=log_file)
    crypto = WeChatCrypto(WECOM_TOKEN, AES_KEY, CORP_ID)
    builder = _Env(crypto)
    sem = asyncio.Semaphore(concurrency)
    wecom_answers: dict[str, list[str]] = {}  # msg id -> passive replies got
    tg_expected: dict[int, int] = {}  # chat -> distinct valid updates sent
    deadline = started + max_seconds

    async def post(http, kind: str, url: str, **kw) -> tuple[int, str]:
        async with sem:
            if time.monotonic() > deadline:
                report.stopped_early = True
                return 0, ""
            report.sent[kind] = report.sent.get(kind, 0) + 1
            try:
                async with http.post(url, **kw) as resp:
                    text = await resp.text()
                    report.statuses[resp.status] = report.statuses.get(resp.status, 0) + 1
                    return resp.status, text
            except (aiohttp.ClientError, asyncio.TimeoutError):
                report.errors += 1
                return 0, ""

    def wecom_valid(i: int) -> tuple[str, dict, str]:
        msg_id = str(8100000000000000000 + i)
        inner = WecomBench.text_xml(f"soak{i % 400}", rng.choice(QUESTIONS), msg_id)
        params, body = WecomBench.envelope(builder, inner, nonce=f"n{i}")
        return msg_id, params, body

    def wecom_malformed(i: int) -> tuple[dict, bytes | str]:
        _, params, body = wecom_valid(10**6 + i)
        kind = i % 6
        if kind == 0:
            return {**params, "msg_signature": "0" * 40}, body
        if kind == 1:
            return params, b"\x00\xff" * rng.randint(1, 300)
        if kind == 2:
            return params, '<!DOCTYPE x [<!ENTITY a "b">]>' + body
        if kind == 3:
            return {**params, "timestamp": str(int(time.time()) - 3600)}, body
        if kind == 4:
            return params, body.replace("</Encrypt>", "")
        return {}, body

    def tg_malformed(i: int) -> tuple[dict, bytes | str]:
        kind = i % 5
        good = json.dumps(text_update(10**7 + i, 5000 + i, "hi"))
        if kind == 0:
            return {}, good  # no secret
        if kind == 1:
            return {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, good
        if kind == 2:
            return {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}, b"{not json" * rng.randint(1, 50)
        if kind == 3:
            return {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}, json.dumps({"update_id": "x"})
        return {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}, json.dumps(
            {"update_id": 10**7 + i, "message": {"message_id": "nope", "chat": 5}})

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            up_by = time.monotonic() + 30
            while True:
                try:
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > up_by or proc.returncode is not None:
                    raise RuntimeError(f"serve did not come up: {log_path.read_text(errors='replace')[-2000:]}")
                await asyncio.sleep(0.1)

            async def one_wecom(i: int) -> None:
                msg_id, params, body = wecom_valid(i)
                times = 2 if rng.random() < RETRY_SHARE else 1
                for _ in range(times):
                    status, text = await post(http, "wecom valid", f"{base}/wecom/callback", params=params, data=body)
                    if status == 200 and text != "success":
                        root = ET.fromstring(text)
                        inner = crypto.decrypt_message(text, root.findtext("MsgSignature"), root.findtext("TimeStamp"),
                                                       root.findtext("Nonce"))
                        wecom_answers.setdefault(msg_id, []).append(ET.fromstring(inner).findtext("Content") or "")
                    elif status == 200:
                        wecom_answers.setdefault(msg_id, [])

            async def one_tg(i: int) -> None:
                chat = 700000 + i % 400
                update = text_update(900000 + i, chat, rng.choice(QUESTIONS), message_id=i + 1)
                tg_expected[chat] = tg_expected.get(chat, 0) + 1
                times = 2 if rng.random() < RETRY_SHARE else 1
                for _ in range(times):
                    await post(http, "telegram valid", f"{base}/telegram/webhook", data=json.dumps(update),
                               headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})

            async def bad_wecom(i: int) -> None:
                params, body = wecom_malformed(i)
                await post(http, "wecom malformed", f"{base}/wecom/callback", params=params, data=body)

            async def bad_tg(i: int) -> None:
                headers, body = tg_malformed(i)
                await post(http, "telegram malformed", f"{base}/telegram/webhook", data=body, headers=headers)

            def batch(lo: int, hi: int) -> list:
                jobs = []
                for i in range(lo, hi):
                    jobs += [one_wecom(i), one_tg(i), bad_wecom(i), bad_tg(i)]
                rng.shuffle(jobs)
                return jobs

            async def drain() -> None:
                """Wait for the Telegram answers still queued behind the 30 sends/s, while they keep coming."""
                last, still = -1, time.monotonic()
                while True:
                    got = sum(len(tg.sent_to(c)) for c in tg_expected)
                    if got >= sum(tg_expected.values()) or time.monotonic() - still > 10:
                        break
                    if got != last:
                        last, still = got, time.monotonic()
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.5)

            async def run_round(offset: int) -> None:
                peak, step = 0, 250
                for lo in range(0, n, step):
                    await asyncio.gather(*batch(offset + lo, offset + min(n, lo + step)))
                    report.rss_series_kb.append(_rss_kb(proc.pid))
                    peak = max(peak, sum(tg_expected.values()) - sum(len(tg.sent_to(c)) for c in tg_expected))
                    if time.monotonic() > deadline:
                        report.stopped_early = True
                        break
                report.backlog_peaks.append(peak)
                await drain()
                report.rss_series_kb.append(_rss_kb(proc.pid))

            # two identical rounds (new message ids, the same users and chats); the growth is round 2's: see above
            report.rss_first_kb = _rss_kb(proc.pid)
            await run_round(0)
            report.rss_start_kb = report.rss_series_kb[-1]
            before = report.requests
            if not report.stopped_early:
                await run_round(n)
            report.measured_requests = report.requests - before
            report.rss_end_kb = report.rss_series_kb[-1]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        log_file.close()
        await tg.close()
        await runner.cleanup()

    pushed_to = {s["body"]["touser"] for s in wecom.sends}
    for msg_id, replies in wecom_answers.items():
        i = int(msg_id) - 8100000000000000000
        if not any(replies) and f"soak{i % 400}" not in pushed_to:
            report.unanswered += 1
        if len(set(replies)) > 1:
            report.duplicates += 1  # a retry got a different (second) answer
    for chat, expected in tg_expected.items():
        got = len(tg.sent_to(chat))
        report.unanswered += max(0, expected - got)
        report.duplicates += max(0, got - expected)
    import sqlite3
    con = sqlite3.connect(tmp / "soak.db")
    questions = con.execute("select count(*) from questions").fetchone()[0]
    con.close()
    distinct_valid = len(wecom_answers) + sum(tg_expected.values())
    report.duplicates += max(0, questions - distinct_valid)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    report.tracebacks = log.count("Traceback")
    access_tokens = [f"TOKEN{k}" for k in range(1, wecom.tokens_issued + 1)]
    report.secrets_in_log = sum(log.count(s) for s in {TG_TOKEN, TG_TOKEN.split(":")[1], WEBHOOK_SECRET, SECRET,
                                                        WECOM_TOKEN, AES_KEY, *access_tokens})
    report.seconds = time.monotonic() - started
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2500, help="requests of each of the 4 kinds (default 2500)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--max-seconds", type=float, default=300)
    args = ap.parse_args()
    if not 1 <= args.n <= 100_000:
        print("soak: --n must be 1 to 100000", file=sys.stderr)
        return 2
    from bot.config import Settings
    kb_file = Settings.load().kb_path
    report = asyncio.run(soak(args.n, kb_file=kb_file if kb_file.exists() else None, concurrency=args.concurrency,
                              max_seconds=args.max_seconds))
    for name, value, target, ok in report.lines():
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {name:<44} {value:>12}   {target}{mark}")
    print("  server RSS after each 4 × 250 requests, and once the Telegram backlog drained, per round (MB): "
          + " ".join(f"{kb / 1024:.0f}" for kb in report.rss_series_kb))
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
