"""Replays a question file (tests/data/qa_*.yaml) through knowledge.qa and scores it: knowledge.evaluate
does the scoring (the same as `policybot eval`), this only adapts it to the tests."""
from __future__ import annotations

from knowledge.evaluate import AS_OF, KEYS, REPO_DATA, Report, load_cases as _load  # noqa: F401
from knowledge.evaluate import evaluate as _evaluate

DATA = REPO_DATA


def load_cases(name: str) -> list[dict]:
    return _load(DATA / name)


class Score:
    """The figures the tests assert, from a knowledge.evaluate.Report."""

    def __init__(self, report: Report):
        self.report = report
        t = report.overall
        self.answerable, self.top1, self.declinable, self.declined = t.answerable, t.top1, t.declinable, t.declined
        self.top3 = t.top3
        self.misses = [f"{'NOT DECLINED' if m['expected'] == 'decline' else 'WRONG'}  {m['q']}  expected "
                       f"{m['expected']} got {m['got'] or m['reason']}  [{m['reason']}: {m['trace']}]"
                       for m in report.misses]

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.answerable if self.answerable else 0.0

    @property
    def decline_rate(self) -> float:
        return self.declined / self.declinable if self.declinable else 0.0


def evaluate(kb, cases: list[dict], name: str = "") -> Score:
    return Score(_evaluate(kb, cases, name))
