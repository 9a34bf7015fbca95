"""Replays a question file (tests/data/qa_*.yaml) through knowledge.qa and scores it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.qa import answer

DATA = Path(__file__).parent / "data"
AS_OF = dt.date(2026, 11, 22)
KEYS = {"q", "expect", "expect_all", "city", "decline", "kind", "context"}


def load_cases(name: str) -> list[dict]:
    cases = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
    for case in cases:
        unknown = set(case) - KEYS
        if unknown:
            raise ValueError(f"{name}: unknown keys {sorted(unknown)} in {case}")
        if bool(case.get("decline")) == bool(case.get("expect") or case.get("expect_all")):
            raise ValueError(f"{name}: a case needs either expect or decline: {case}")
    return cases


@dataclass
class Score:
    answerable: int = 0
    top1: int = 0
    declinable: int = 0
    declined: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / self.answerable if self.answerable else 0.0

    @property
    def decline_rate(self) -> float:
        return self.declined / self.declinable if self.declinable else 0.0


def evaluate(kb, cases: list[dict]) -> Score:
    s = Score()
    for case in cases:
        a = answer(kb, case["q"], AS_OF, case.get("city"))
        got = None if a.abstained else f"{a.citations[0].measure}:{a.citations[0].article}"
        if case.get("decline"):
            s.declinable += 1
            if a.abstained:
                s.declined += 1
            else:
                s.misses.append(f"NOT DECLINED  {case['q']}  -> {got}")
        else:
            s.answerable += 1
            if got in (case.get("expect") or case["expect_all"]):
                s.top1 += 1
            else:
                s.misses.append(f"WRONG {case['q']}  expected {case.get('expect') or case['expect_all']} got {got or a.reason}")
    return s
