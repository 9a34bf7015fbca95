"""The eligibility engine: a city's rules (rules/<measure>.yaml) and a facts mapping → a verdict.

Pure and three-valued. Every condition is true, false or unknown at `as_of` (passed in, never read
from the clock); the verdict is `eligible` (every condition holds), `ineligible` (one fails) or
`incomplete` (none fails, some wait for facts). Conditions only the bureau's experts decide are shown
as 由评审认定 and never silently passed: where a fact exists they are evaluated on the enterprise's own
answer; where none does they are listed for review and do not decide the verdict.

Thresholds read the way the law reads them: 以上 / 以下 / 以内 and （含） include the number itself
(民法典 第一千二百五十九条). A period of N years ends on the anniversary, and on the last day of the
month where the anniversary does not exist (民法典 第二百零三条): 2019-02-29 + 2 years = 2021-02-28.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import yaml

from rules import facts as factmod
from rules.dates import anniversary
from rules.facts import AnswerError, Fact

RULES_DIR = Path(__file__).parent
MEASURES_DIR = RULES_DIR.parent / "knowledge" / "measures"
PASS, FAIL, UNKNOWN, REVIEW = "pass", "fail", "unknown", "review"
STATUS_MARK = {PASS: "✅ 符合", FAIL: "❌ 不符合", UNKNOWN: "❔ 待确认", REVIEW: "📝 由评审认定"}


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the place."""


@dataclass(frozen=True)
class Condition:
    id: str
    label: str
    article: int
    item: str | None
    test: dict | None
    judged_by: str  # self or review
    change: str
    evidence: str
    presumed: str | None

    def where(self) -> str:
        from knowledge.kb import to_cn_number
        item = f"第{self.item}项" if self.item and self.item[0].isdigit() else (self.item or "")
        return f"第{to_cn_number(self.article)}条{item}"


@dataclass(frozen=True)
class Ruleset:
    measure: str
    title: str
    city: str  # short name, 威海
    questions: list[str]
    conditions: list[Condition]
    notes: list[dict]
    evidence: list[dict]
    derived: dict
    in_force_from: dt.date | None
    in_force_until: dt.date | None
    status_note: str
    facts: dict[str, Fact]

    def cite(self, article: int) -> str:
        from knowledge.kb import to_cn_number
        return f"《{self.title}》第{to_cn_number(article)}条"

    def status(self, as_of: dt.date) -> str:
        from knowledge.kb import measure_status
        return measure_status(self.in_force_from, self.in_force_until, as_of)

    @property
    def note_facts(self) -> list[str]:
        """Facts that only add a note (威海 第十三条's 亩产效益): asked last, never needed for the verdict."""
        keys = [n["when"]["fact"] for n in self.notes if (n.get("when") or {}).get("fact")]
        return [k for k in self.questions if k in keys]

    def fact_articles(self, key: str) -> list[Condition]:
        if key in self.note_facts:
            return [Condition(key, "", n["article"], None, None, "note", "", "", None)
                    for n in self.notes if (n.get("when") or {}).get("fact") == key][:1]
        return [c for c in self.conditions if key in _test_facts(c.test)]


@dataclass
class ConditionResult:
    condition: Condition
    status: str
    answer: str
    reason: str
    needs: list[str] = field(default_factory=list)  # facts that would decide it (unknown only)
    change: str = ""

    def as_dict(self, measure: str) -> dict:
        c = self.condition
        return {"id": c.id, "condition": c.label, "status": self.status, "answer": self.answer,
                "reason": self.reason, "judged_by": c.judged_by,
                "article": {"measure": measure, "article": c.article, **({"item": c.item} if c.item else {})}}


@dataclass
class Verdict:
    ruleset: Ruleset
    as_of: dt.date
    verdict: str
    results: list[ConditionResult]
    missing: list[str]
    next_fact: str | None
    notes: list[str]
    measure_status: str
    facts: dict

    @property
    def failed(self) -> list[ConditionResult]:
        return [r for r in self.results if r.status == FAIL]

    def as_dict(self) -> dict:
        m = self.ruleset.measure
        return {"city": m, "as_of": self.as_of.isoformat(), "verdict": self.verdict,
                "failed": [{"condition": r.condition.label, "reason": r.reason,
                            "article": {"measure": m, "article": r.condition.article}} for r in self.failed],
                "missing": self.missing, "notes": self.notes, "measure_status": self.measure_status,
                "next_question": self.next_fact,
                "conditions": [r.as_dict(m) for r in self.results]}


# ---- loading ---------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def available(rules_dir: Path = RULES_DIR) -> tuple[str, ...]:
    """The measures that have eligibility rules (rules/<measure>.yaml), read once per process. A draft
    (`policybot rules draft`: review: true on the file or on any condition) is not used until reviewed."""
    return tuple(sorted(p.stem for p in rules_dir.glob("*.yaml")
                        if p.stem not in ("facts", "deadlines") and not is_draft(p)))


def is_draft(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return True  # unreadable: not used
    if not isinstance(data, dict):
        return True
    return bool(data.get("review")) or any(isinstance(c, dict) and c.get("review") for c in data.get("conditions") or [])


@lru_cache(maxsize=16)
def load(measure: str, rules_dir: Path = RULES_DIR, measures_dir: Path = MEASURES_DIR) -> Ruleset:
    path = rules_dir / f"{measure}.yaml"
    if not path.is_file():
        raise RulesError(f"no rules for {measure!r} (rules/{measure}.yaml)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta_path = measures_dir / f"{measure}.yaml"
    meta = yaml.safe_load(meta_path.read_text(encoding="utf-8")) if meta_path.is_file() else {}
    facts = factmod.load_facts(rules_dir / "facts.yaml")
    conditions = []
    for i, c in enumerate(data.get("conditions") or []):
        where = f"{path.name} condition {i + 1}"
        if not c.get("id") or not c.get("label") or not isinstance(c.get("article"), int):
            raise RulesError(f"{where}: needs id, label and an integer article")
        if not c.get("test") and c.get("judged_by") != "review":
            raise RulesError(f"{where} ({c['id']}): a condition without a test must be judged_by: review")
        for key in _test_facts(c.get("test")):
            if key not in facts:
                raise RulesError(f"{where} ({c['id']}): unknown fact {key!r}")
        conditions.append(Condition(c["id"], c["label"], c["article"], str(c["item"]) if c.get("item") else None,
                                    c.get("test"), c.get("judged_by", "self"), c.get("change", ""),
                                    c.get("evidence", ""), c.get("presumed")))
    questions = list(data.get("questions") or [])
    for key in questions:
        if key not in facts:
            raise RulesError(f"{path.name}: unknown fact {key!r} in questions")
    used = {k for c in conditions for k in _test_facts(c.test)}
    missing_q = sorted(used - set(questions) - set(data.get("derived") or {}))
    if missing_q:
        raise RulesError(f"{path.name}: facts used by conditions but never asked: {missing_q}")
    city = (meta.get("city") or {})
    return Ruleset(measure, meta.get("title") or measure, city.get("short") or measure, questions, conditions,
                   list(data.get("notes") or []), list(data.get("evidence") or []), dict(data.get("derived") or {}),
                   meta.get("in_force_from"), meta.get("in_force_until"),
                   meta.get("validity_note") or meta.get("status_note") or "", facts)


def _test_facts(test: dict | None) -> list[str]:
    if not test:
        return []
    if "any_of" in test:
        return [k for t in test["any_of"] for k in _test_facts(t)]
    if "ban" in test:
        return ["ever_revoked", "revoked_on", "revoked_reason"]
    return [test["fact"]]


# ---- reading facts ---------------------------------------------------------------------------------
def read_facts(rs: Ruleset, raw: dict, as_of: dt.date) -> tuple[dict, list[str]]:
    """Typed facts from an answers mapping; unknown keys are reported in the second value.

    Raises AnswerError naming the fact when a value cannot be read (a malformed date, 'abc' for a number).
    """
    out, ignored, unreadable = read_all_facts(rs, raw, as_of)
    if unreadable:
        raise AnswerError(f"{unreadable[0]['fact']}: {unreadable[0]['reason']}")
    return out, ignored


def read_all_facts(rs: Ruleset, raw: dict, as_of: dt.date) -> tuple[dict, list[str], list[dict]]:
    """Like read_facts, but a value that cannot be read is reported (fact, text, reason) and left unknown,
    never replaced by a guess; the others are read."""
    out, ignored, unreadable = {}, [], []
    for key, value in (raw or {}).items():
        fact = rs.facts.get(str(key))
        if fact is None:
            ignored.append(str(key))
            continue
        try:
            out[fact.key] = factmod.read(fact, value, as_of)
        except AnswerError as exc:
            unreadable.append({"fact": fact.key, "text": str(value), "reason": str(exc)})
    return out, ignored, unreadable


def _derive(rs: Ruleset, facts: dict) -> dict:
    facts = dict(facts)
    for key, rule in rs.derived.items():
        if facts.get(key) is None and "ratio" in rule:
            part, whole = (facts.get(k) for k in rule["ratio"])
            if part is not None and whole:
                facts[key] = round(part / whole * 100, 2)
    return facts


# ---- evaluating ------------------------------------------------------------------------------------
Leaf = tuple[str, str, str, list[str], dt.date | None]  # status, answer, reason, needs, date it changes


def _leaf(rs: Ruleset, test: dict, facts: dict, as_of: dt.date, city_of: Callable[[str], str | None],
          interview: bool) -> Leaf:
    if "any_of" in test:
        parts = [_leaf(rs, t, facts, as_of, city_of, interview) for t in test["any_of"]]
        answers = "；".join(p[1] for p in parts if p[1])
        passing = [p for p in parts if p[0] == PASS]
        if passing:
            return PASS, answers, passing[0][2], [], None
        if all(p[0] == FAIL for p in parts):
            return FAIL, answers, "；".join(p[2] for p in parts), [], None
        return UNKNOWN, answers, "其余各项都不满足时，还需要：" + "、".join(
            rs.facts[n].name for p in parts for n in p[3]), [n for p in parts for n in p[3]], None
    if "ban" in test:
        return _ban(rs, test["ban"], facts, as_of, interview)
    key = test["fact"]
    fact = rs.facts[key]
    value = facts.get(key)
    if value is None:
        return UNKNOWN, "", f"缺少“{fact.name}”", [key], None
    shown = factmod.show(fact, value)
    if "is" in test:
        ok = value is test["is"]
        return (PASS if ok else FAIL), shown, f"{fact.name}：{shown}", [], None
    if "at_least" in test:
        limit = test["at_least"]
        unit = "个" if fact.type == "int" else "%"
        if value == "<0":  # 负增长 without a figure: below any threshold of 0 or more
            if limit >= 0:
                return FAIL, shown, f"{fact.name}为负增长，未达到{limit:g}{unit}", [], None
            return UNKNOWN, shown, f"{fact.name}为负增长，请写具体降幅", [key], None
        if value >= limit:
            return PASS, shown, f"{fact.name}{shown}，达到{limit:g}{unit}", [], None
        return FAIL, shown, f"{fact.name}{shown}，未达到{limit:g}{unit}", [], None
    if "above" in test:  # 超过 N without （含）: more than N
        limit = test["above"]
        unit = "个" if fact.type == "int" else "%"
        if value == "<0":  # 负增长 without a figure
            if limit >= 0:
                return FAIL, shown, f"{fact.name}为负增长，未超过{limit:g}{unit}", [], None
            return UNKNOWN, shown, f"{fact.name}为负增长，请写具体降幅", [key], None
        if value > limit:
            return PASS, shown, f"{fact.name}{shown}，超过{limit:g}{unit}", [], None
        return FAIL, shown, f"{fact.name}{shown}，未超过{limit:g}{unit}", [], None
    if "in_city" in test:
        city = city_of(str(value))
        if city == rs.measure:
            return PASS, shown, f"注册地{shown}属于{rs.city}", [], None
        return FAIL, shown, f"注册地{shown}不在{rs.city}", [], None
    if "years_before" in test:
        n = test["years_before"]
        earliest, latest = factmod.date_range(value)
        if as_of >= anniversary(latest, n):
            return PASS, shown, f"到{as_of.isoformat()}已满{n}年", [], None
        due = anniversary(earliest, n)
        if as_of < due:
            return FAIL, shown, f"到{as_of.isoformat()}未满{n}年（{anniversary(latest, n).isoformat()}满{n}年）", \
                [], anniversary(latest, n)
        return UNKNOWN, shown, f"是否已满{n}年取决于具体日期，请写到日", [key], None
    raise RulesError(f"unknown test {test}")


def _ban(rs: Ruleset, ban: dict, facts: dict, as_of: dt.date, interview: bool) -> Leaf:
    ever, on, reason = facts.get("ever_revoked"), facts.get("revoked_on"), facts.get("revoked_reason")
    if ever is False or (on is None and reason is None and ever is None and not interview):
        return PASS, "否" if ever is False else "", "未曾被撤销称号", [], None
    if on is None:
        if ever is None:
            return UNKNOWN, "", f"缺少“{rs.facts['ever_revoked'].name}”", ["ever_revoked"], None
        return UNKNOWN, "曾被撤销", f"缺少“{rs.facts['revoked_on'].name}”", ["revoked_on"], None
    fact = rs.facts["revoked_reason"]
    shown = f"{on}撤销" + (f"（{factmod.show(fact, reason)}）" if reason else "")
    years = ban["years"]
    earliest, latest = factmod.date_range(on)
    if as_of > anniversary(latest, years):
        return PASS, shown, f"撤销已超过{years}年", [], None
    if reason is None:
        return UNKNOWN, shown, f"撤销不满{years}年，要看撤销原因", ["revoked_reason"], None
    if reason not in ban["reasons"]:
        return PASS, shown, f"撤销原因（{factmod.show(fact, reason)}）不在限制重新申请之列", [], None
    if as_of <= anniversary(earliest, years):
        until = anniversary(latest, years)
        return FAIL, shown, f"因{factmod.show(fact, reason)}被撤销，{years}年内（至{until.isoformat()}）不得重新申请", [], \
            until + dt.timedelta(days=1)
    return UNKNOWN, shown, f"是否已满{years}年取决于具体的撤销日期，请写到日", ["revoked_on"], None


def evaluate(rs: Ruleset, facts: dict, as_of: dt.date, city_of: Callable[[str], str | None],
             interview: bool = False, skipped: tuple[str, ...] | list[str] = ()) -> Verdict:
    """The verdict of `facts` (typed, see read_facts) under the city's rules at `as_of`.

    interview=True is the chat: an unanswered question that a file would leave out on purpose (was a
    title ever revoked?) is asked rather than presumed. `skipped` facts are not offered as the next question.
    """
    facts = _derive(rs, facts)
    results = []
    for c in rs.conditions:
        if not c.test:
            results.append(ConditionResult(c, REVIEW, "", "由专家评审认定", [], c.change))
            continue
        status, answer, reason, needs, when = _leaf(rs, c.test, facts, as_of, city_of, interview)
        if status == PASS and c.presumed and not answer:
            reason = c.presumed
        change = c.change.replace("{when}", f"（{when.isoformat()}起）" if when else "")
        results.append(ConditionResult(c, status, answer, reason, needs, change))
    decisive = [r for r in results if r.status != REVIEW]
    if any(r.status == FAIL for r in decisive):
        verdict = "ineligible"
    elif any(r.status == UNKNOWN for r in decisive):
        verdict = "incomplete"
    else:
        verdict = "eligible"
    order = {k: i for i, k in enumerate(rs.questions)}
    missing = []
    for r in results:
        for k in r.needs:
            if k not in missing:
                missing.append(k)
    missing.sort(key=lambda k: order.get(k, len(order)))
    asks = [k for k in missing if k not in skipped and k in order]
    next_fact = asks[0] if verdict == "incomplete" and asks else None
    status = rs.status(as_of)
    notes = _notes(rs, facts, as_of, status, results)
    return Verdict(rs, as_of, verdict, results, missing, next_fact, notes, status, facts)


def open_facts(v: Verdict, skipped=()) -> list[str]:
    """Every fact that would still settle an undecided condition, whatever the verdict (the “继续” mode)."""
    return [k for k in v.missing if k not in skipped and k in v.ruleset.questions]


def _notes(rs: Ruleset, facts: dict, as_of: dt.date, status: str, results: list[ConditionResult]) -> list[str]:
    notes = []
    if status == "expired":
        notes.append(f"注意：该办法有效期至{rs.in_force_until.isoformat()}，在{as_of.isoformat()}已过期；"
                     f"此结论按原办法预判，新一轮申报请以主管部门最新通知为准。")
    elif status == "unknown" and rs.status_note:
        notes.append(f"注意：{rs.status_note}")
    for n in rs.notes:
        when = n.get("when") or {}
        value = facts.get(when.get("fact"))
        if value is not None and value in when.get("in", []):
            notes.append(f"{n['text']}（{rs.cite(n['article'])}）")
    review = [r.condition.label for r in results if r.condition.judged_by == "review"]
    if review:
        notes.append("以下由专家评审认定，自测只作参考：" + "；".join(review) + "。")
    notes.append("本结果是根据您的回答作出的预判，不是认定结果；以主管部门评审认定为准。")
    return notes


# ---- what given facts decide (direct answers) ------------------------------------------------------------
@dataclass
class Outcome:
    """A condition that uses some of the given facts: its status, and for an any-of, each branch."""
    result: ConditionResult
    branches: list[tuple[dict, str, str, str]]  # (test, status, answer, reason) per any-of branch
    gaps: dict[str, float] = field(default_factory=dict)  # fact → how far below its threshold


def outcomes(rs: Ruleset, facts: dict, as_of: dt.date, city_of: Callable[[str], str | None]) -> list[Outcome]:
    """The conditions of `rs` that the given facts bear on, evaluated on those facts alone."""
    given = {k for k, v in facts.items() if v is not None}
    v = evaluate(rs, facts, as_of, city_of)
    out = []
    for r in v.results:
        keys = set(_test_facts(r.condition.test))
        if not keys & given or "ban" in (r.condition.test or {}):
            continue
        tests = (r.condition.test or {}).get("any_of") or [r.condition.test]
        branches, gaps = [], {}
        for t in tests:
            status, answer, reason, _, _ = _leaf(rs, t, v.facts, as_of, city_of, False)
            branches.append((t, status, answer, reason))
            value = v.facts.get(t.get("fact"))
            bar = t.get("at_least", t.get("above"))
            if status == FAIL and bar is not None and isinstance(value, (int, float)):
                gaps[t["fact"]] = round(bar - value, 2)
        out.append(Outcome(r, branches if len(tests) > 1 else [], gaps))
    return out


def check_test(rs: Ruleset, test: dict, facts: dict, as_of: dt.date) -> tuple[str, str, str]:
    """One test (an any-of branch) on the facts: status, the answer as shown, the reason."""
    status, answer, reason, _, _ = _leaf(rs, test, _derive(rs, facts), as_of, lambda _t: None, False)
    return status, answer, reason


def facts_of(test: dict | None) -> list[str]:
    """The facts a test reads."""
    return _test_facts(test)


def thresholds(rs_list) -> dict[float, set[str]]:
    """The percentages the rules compare with, and the facts compared (15 → {service_revenue_share})."""
    out: dict[float, set[str]] = {}

    def walk(test):
        if not test:
            return
        for t in test.get("any_of") or []:
            walk(t)
        bar = test.get("at_least", test.get("above"))
        if bar is not None and test["fact"] in rs.facts and rs.facts[test["fact"]].type in ("share", "percent"):
            out.setdefault(float(bar), set()).add(test["fact"])
    for rs in rs_list:
        for c in rs.conditions:
            walk(c.test)
    return out
