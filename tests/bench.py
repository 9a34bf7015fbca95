"""`make bench`: the performance figures of issue 2, with their targets.

Real base: top-1 and decline rate on each question set of tests/data that has not become example
questions (qa_eval.yaml, the issue's set, and the later unseen sets), warm latency per question (p50, p99),
cold start of one `policybot ask` (a new process), peak memory. Synthetic base of 500 measures
(~12,000 articles, generated from the real ones): build time, warm latency, peak memory.
Soak (issue 11, tests/soak.py): two rounds of 4 × 2,500 = 10,000 requests against a real `policybot serve`
(POLICYBOT_SOAK_N to change N): 5xx, tracebacks, unanswered, duplicates, secrets in the log, RSS growth over
round 2, once round 1's Telegram backlog has drained (why: tests/soak.py's docstring).
"""
from __future__ import annotations

import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from qa_harness import AS_OF, DATA, evaluate, load_cases  # noqa: E402

from bot.config import Settings  # noqa: E402
from knowledge import kb as kbmod  # noqa: E402
from knowledge.qa import answer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def latency(kb, questions: list[str], rounds: int = 3) -> tuple[float, float]:
    for q in questions:  # warm-up: caches filled, as in a running bot
        answer(kb, q, AS_OF)
    times = []
    for _ in range(rounds):
        for q in questions:
            t = time.perf_counter()
            answer(kb, q, AS_OF)
            times.append((time.perf_counter() - t) * 1000)
    return pct(times, 50), pct(times, 99)


def line(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
    mark = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {name:<38} {value:>14}   {target}{mark}")


# Runs `policybot ask` in-process and reports the process's own high-water mark (VmHWM). getrusage's
# RUSAGE_CHILDREN would count this benchmark's size too: a child's pre-exec image is charged to its maxrss.
_PEAK = """import sys
from bot.cli import main
sys.argv = ["policybot", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
finally:
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
    sys.stderr.write("VMHWM_KB " + hwm.split()[1] + "\\n")
"""


def cold_start(env: dict) -> tuple[float, float]:
    question = "威海示范企业多久复核一次"
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([str(ROOT / ".venv/bin/policybot"), "ask", question], env=env, capture_output=True, check=True)
        runs.append(time.perf_counter() - t)
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", _PEAK, "ask", question], env=env,
                         capture_output=True, text=True, check=True)
    peak = int(re.search(r"VMHWM_KB (\d+)", out.stderr).group(1)) / 1024
    return statistics.median(runs), peak


def synthetic_source(dest: Path, n: int = 500, seed: int = 7) -> None:
    """n measures made from the real ones: another city's name, other numbers, 4 extra articles each."""
    rng = random.Random(seed)
    src = kbmod.SOURCE_DIR
    (dest / "measures").mkdir(parents=True)
    for name in ("lexicon.yaml", "gazetteer.yaml"):
        shutil.copy(src / name, dest / name)
    real = [(p.stem, p.read_text(encoding="utf-8"), yaml.safe_load(p.with_suffix(".yaml").read_text(encoding="utf-8")))
            for p in sorted((src / "measures").glob("*.txt"))]
    for i in range(n):
        mid, text, meta = real[i % len(real)]
        city = f"合成{i:03d}"
        short = (meta["city"]["short"])
        body = text.replace(short, city)
        body = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(0, 9)), body)
        lines = body.splitlines()
        articles = [ln for ln in lines if re.match(r"^第[一二三四五六七八九十百]+条", ln)]
        count = len(articles)
        extra = []
        for k in range(4):
            sample = rng.choice(articles).split(" ", 1)[-1]
            parts = re.split(r"(?<=[，。；])", sample)
            rng.shuffle(parts)
            extra.append(f"第{kbmod.to_cn_number(count + k + 1)}条 {''.join(parts)}")
        new_id = f"syn{i:03d}"
        (dest / "measures" / f"{new_id}.txt").write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
        m = dict(meta, id=new_id, title=meta["title"].replace(short, city))
        m["city"] = {"name": city + "市", "short": city, "aliases": [city + "市", city], "districts": []}
        (dest / "measures" / f"{new_id}.yaml").write_text(yaml.safe_dump(m, allow_unicode=True), encoding="utf-8")


def reminders_bench(kb, n_subs: int = 100_000) -> None:
    """A sweep over 100,000 subscriptions (four reminders each, 1% due today): finding and sending."""
    import asyncio
    import datetime as dt

    from bot.channels.console import ConsoleLog
    from bot.reminders import ReminderLoop
    from bot.storage import Store
    today = dt.date(2026, 11, 22)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "sweep.db")
        rng = random.Random(3)
        subs, rems = [], []
        for i in range(1, n_subs + 1):
            due = today + dt.timedelta(days=0 if i % 100 == 0 else rng.randint(1, 700))
            subs.append((i, f"C{i:017d}", f"企业{i}", "weihai", "2024-12-10", "console" if i % 3 else None,
                         f"u{i}" if i % 3 else None, 1, "import"))
            for lead in (30, 7, 1, 0):
                send = due - dt.timedelta(days=lead)
                status = "pending" if send >= today else "sent"
                rems.append((i, "review", due.isoformat(), lead, send.isoformat(), status, 0))
        with store.db.conn:
            store.db.conn.executemany("insert into subscriptions (id, credit_code, name, city, awarded_on, channel, "
                                      "user_id, active, source) values (?,?,?,?,?,?,?,?,?)", subs)
            store.db.conn.executemany("insert into reminders (subscription_id, kind, due_on, lead_days, send_on, "
                                      "status, attempts) values (?,?,?,?,?,?,?)", rems)
        now = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        t = time.perf_counter()
        found = store.due_reminders(today.isoformat(), now.isoformat(), ["console", "telegram", "wecom"], limit=10**9)
        find_s = time.perf_counter() - t
        line(f"find due reminders ({n_subs:,} subscriptions)", f"{find_s * 1000:.0f} ms ({len(found)} due)",
             "target ≤ 1 s", find_s <= 1)
        loop = ReminderLoop(Settings(), store, kb, {"console": _Quiet()}, clock=lambda: now)
        loop._planned_on = today  # planning is measured by the tests, not here
        t = time.perf_counter()
        sent = asyncio.run(loop.sweep())
        sweep_s = time.perf_counter() - t
        line("sweep: send and log each due reminder", f"{sent} in {sweep_s:.2f} s ({sent / sweep_s:.0f}/s)")
        del ConsoleLog


class _Quiet:
    name = "console"

    async def push(self, user_id, text, buttons=None):
        pass


def _example_questions() -> set[str]:
    out: set[str] = set()
    for path in kbmod.SOURCE_DIR.glob("measures/*.questions.yaml"):
        for questions in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).values():
            out.update(questions or [])
    near = kbmod.SOURCE_DIR / "near_misses.yaml"
    if near.exists():
        out.update(item["q"] if isinstance(item, dict) else item for item in yaml.safe_load(near.read_text(encoding="utf-8")) or [])
    return out


def leave_one_out(kb) -> None:
    """Each measure scored as if never seen (knowledge.evaluate, `policybot eval --leave-out`): shipped ones
    without their example questions, dev ones (tests/data/dev/) as they are."""
    from knowledge.evaluate import EvalError, default_files, run
    print("Leave-one-out: each measure as if never seen (no example questions of its own)")
    files = default_files()
    # the dev measures (tuning), huzhou (closed until session 3), changzhou and yichang (first looked at in
    # session 4, tuning since), zhuzhou (session 4's closed measure) and anshan (session 5's, opened once on
    # 8c5bcd3): tests/data/*/README.md say which. The reference measures are trained on: not scored here.
    folders = [DATA / "dev", DATA / "closed", DATA / "fresh"]
    own = {p.stem: [p.with_name(f"qa_{p.stem}.yaml")] for f in folders for p in sorted(f.glob("*.txt"))
           if p.with_name(f"qa_{p.stem}.yaml").exists()}
    for mid in list(kb.measures) + [d for d in own if d not in kb.measures]:
        try:
            r = run(own.get(mid) or files, leave_out=mid)
        except EvalError as exc:
            line(f"{mid}: not scored", str(exc)[:60])
            continue
        t = r.overall
        line(f"{mid}: top-1 (unseen)", f"{r.top1_rate:.1%} ({t.top1}/{t.answerable})", "target ≥ 90%",
             r.top1_rate >= 0.90)
        line(f"{mid}: top-1, declining off / top-3",
             f"{t.ranked_first / max(t.answerable, 1):.1%} / {t.top3 / max(t.answerable, 1):.1%}")
        line(f"{mid}: declined (unseen)", f"{r.decline_rate:.1%} ({t.declined}/{t.declinable})", "target ≥ 90%",
             r.decline_rate >= 0.90)


def main() -> int:
    settings = Settings.load()
    kb = kbmod.load(settings.kb_path)
    questions = [c["q"] for path in sorted(DATA.glob("qa_*.yaml")) for c in load_cases(path.name)]

    print("Real knowledge base (2 measures)")
    t = time.perf_counter()
    built = kbmod.build(kbmod.SOURCE_DIR)
    build_s = time.perf_counter() - t
    examples = _example_questions()
    for path in sorted(DATA.glob("qa_*.yaml")):
        cases = load_cases(path.name)
        if sum(c["q"] in examples for c in cases) > len(cases) // 2:
            print(f"  ({path.name}: example questions of the knowledge base, not a test)")
            continue
        score = evaluate(kb, cases)
        line(f"top-1 accuracy ({path.name})", f"{score.top1_rate:.1%} ({score.top1}/{score.answerable})",
             "target ≥ 95%", score.top1_rate >= 0.95)
        line(f"decline rate ({path.name})", f"{score.decline_rate:.1%} ({score.declined}/{score.declinable})",
             "target ≥ 90%", score.decline_rate >= 0.90)
    p50, p99 = latency(kb, questions)
    line("warm latency p50", f"{p50:.2f} ms")
    line("warm latency p99", f"{p99:.2f} ms", "target ≤ 10 ms", p99 <= 10)
    env = dict(os.environ, POLICYBOT_DB=str(Path(tempfile.mkdtemp()) / "bench.db"), POLICYBOT_KB=str(settings.kb_path))
    cold, cold_peak = cold_start(env)
    line("cold start of `policybot ask`", f"{cold:.2f} s", "target ≤ 1.5 s", cold <= 1.5)
    line("peak memory of `policybot ask`", f"{cold_peak:.0f} MiB", "target ≤ 200 MiB", cold_peak <= 200)
    line("knowledge-base build", f"{build_s:.1f} s")
    del built

    leave_one_out(kb)

    print("Synthetic knowledge base (500 measures)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "knowledge"
        synthetic_source(source)
        t = time.perf_counter()
        big = kbmod.build(source, Path(tmp) / "kb.pickle")
        build_s = time.perf_counter() - t
        line("measures / articles / passages", f"{big.stats['measures']} / {big.stats['articles']} / {big.stats['units']}")
        line("knowledge-base build", f"{build_s:.1f} s", "target ≤ 60 s", build_s <= 60)
        t = time.perf_counter()
        kbmod.read(Path(tmp) / "kb.pickle")
        line("load time", f"{time.perf_counter() - t:.2f} s")
        scoped = [f"合成{i % 500:03d}{q}" for i, q in enumerate(questions)]
        p50, p99 = latency(big, questions, rounds=1)
        line("warm latency p50 (no city: all 500)", f"{p50:.2f} ms")
        line("warm latency p99 (no city: all 500)", f"{p99:.2f} ms", "target ≤ 50 ms", p99 <= 50)
        p50, p99 = latency(big, scoped, rounds=1)
        line("warm latency p50 (one city named)", f"{p50:.2f} ms")
        line("warm latency p99 (one city named)", f"{p99:.2f} ms", "target ≤ 50 ms", p99 <= 50)
    print("Reminders")
    reminders_bench(kb)
    print("Channels (loopback HTTP, one process)")
    import bench_telegram
    import bench_wecom
    line("WeCom callbacks (verify, decrypt, answer, encrypt)", f"{bench_wecom.bench(500):.0f} /s")
    line("Telegram updates (webhook)", f"{bench_telegram.bench(500):.0f} /s")
    line("Telegram updates (long polling)", f"{bench_telegram.bench(500, mode='polling'):.0f} /s")
    line("peak memory of this benchmark", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    soak_n = int(os.environ.get("POLICYBOT_SOAK_N", "2500"))
    print(f"Soak: a real `policybot serve` on loopback, {soak_n} valid + {soak_n} malformed WeCom callbacks and "
          f"Telegram webhook updates (10% of the valid ones retried), twice (RSS growth: round 2's), at most 300 s")
    import asyncio

    import soak
    report = asyncio.run(soak.soak(soak_n, kb_file=settings.kb_path, max_seconds=300))
    for name, value, target, ok in report.lines():
        line(name, value, target, ok)
    if report.stopped_early:
        print(f"  (stopped at the 300 s bound after {report.requests} requests: the run is incomplete)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
