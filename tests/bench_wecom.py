"""WeCom callbacks per second on loopback, one process: signature check, decryption, parsing, the answer,
the encrypted passive reply (our aiohttp app, real dispatcher on a temporary SQLite, the built knowledge
base). The requests are encrypted before the clock starts; decrypting the replies is timed (it is cheap).

    .venv/bin/python tests/bench_wecom.py [N]
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from wecom_harness import Bench  # noqa: E402

from bot.config import Settings  # noqa: E402
from knowledge import kb as kbmod  # noqa: E402

QUESTIONS = ["威海复核多久一次", "包头申报需要什么条件？", "示范企业更名后多久内要备案？", "威海申报要提交哪些材料",
             "包头认定后有奖励吗", "威海办法第十八条", "你好", "威海哪些情况会被撤销示范企业称号？",
             "服务型制造收入占比要多少", "专精特新怎么申报"]


def bench(n: int = 500, concurrency: int = 4) -> float:
    """Callbacks per second through the WeCom path (n text messages from 50 users, `concurrency` in flight)."""
    kb = kbmod.load(Settings.load().kb_path)
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_run(kb, Path(tmp), n, concurrency))


async def _run(kb, tmp: Path, n: int, concurrency: int) -> float:
    async with Bench(kb, tmp) as b:
        requests = [b.envelope(b.text_xml(f"user{i % 50}", QUESTIONS[i % len(QUESTIONS)], b.next_msg_id()),
                               nonce=f"nonce{i}") for i in range(n)]
        await b.text("warmup", QUESTIONS[0])
        queue = iter(requests)

        async def worker() -> None:
            for params, body in queue:
                status, answer = await b.post(params, body)
                assert status == 200 and b.open_reply(answer), (status, answer)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        assert not b.fake.sends, "every answer should have been a passive reply"
        return n / elapsed


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    print(f"WeCom callbacks: {bench(count):.0f}/s ({count} on loopback, one process)")
