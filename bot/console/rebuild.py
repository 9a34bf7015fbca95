"""The knowledge base rebuilt in the background after an operator taught it, and swapped in without a restart.

The build runs in a worker thread (it takes seconds); the Store is only touched on the event loop's thread.
Requests that arrive during a build are coalesced into one more build. After each build every pending
teach_log entry is asked again, and the outcome (now answered by which article, or still declined) is
recorded: the console shows it.
"""
from __future__ import annotations

import asyncio
import logging

from bot import teach
from knowledge.qa import answer

log = logging.getLogger(__name__)


class Rebuilder:
    def __init__(self, settings, store, set_kb, today):
        self.settings = settings
        self.store = store
        self.set_kb = set_kb
        self.today = today
        self._task: asyncio.Task | None = None
        self._again = False
        self.builds = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def request(self) -> None:
        if self.running:
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kb-rebuild")

    async def wait(self) -> None:
        """Until no build is running or queued (tests, shutdown)."""
        while self.running:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._again = False
            pending = self.store.teach_log(limit=10_000, status="pending")
            try:
                kb = await loop.run_in_executor(None, teach.build, self.settings.db, self.settings.kb_path)
            except Exception as exc:  # noqa: BLE001 - a failed build leaves the running knowledge base in place
                log.exception("knowledge base rebuild failed")
                for row in pending:
                    self.store.teach_done(row["id"], "failed", f"知识库重建失败，仍使用原知识库：{exc}"[:300])
            else:
                self.set_kb(kb)
                self.builds += 1
                for row in pending:
                    status, outcome = outcome_of(kb, row, self.today())
                    self.store.teach_done(row["id"], status, outcome)
                log.warning("knowledge base rebuilt with %d operator change(s) and swapped in", len(pending))
            if not self._again:
                return


def outcome_of(kb, row: dict, today) -> tuple[str, str]:
    """The question asked again of the new knowledge base: ('done' | 'partial', what it does now, in Chinese)."""
    a = answer(kb, row["question"], today)
    if row["kind"] == "example":
        m = kb.measures.get(row["measure"])
        target = m.cite(row["article"]) if m else f"{row['measure']} 第{row['article']}条"
        if not a.abstained and a.citations and a.citations[0].measure == row["measure"] \
                and a.citations[0].article == row["article"]:
            return "done", f"已生效：现在回答{target}。"
        scoped = answer(kb, row["question"], today, row["measure"])
        if not scoped.abstained and scoped.citations and scoped.citations[0].article == row["article"]:
            return "done", f"已生效：在{m.city_short if m else row['measure']}的对话中回答{target}。"
        now = f"现在回答{a.citations[0].title}" if not a.abstained and a.citations else f"仍未能回答（{a.reason}）"
        return "partial", f"已加入示例问题，但{now}，不是{target}；可再补充几种问法。"
    if a.abstained:
        return "done", "已生效：此类问题现在会说明超出办法范围。"
    return "partial", f"已加入拒答示例，但现在仍回答{a.citations[0].title if a.citations else ''}。"
