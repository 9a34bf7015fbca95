"""Direct answers from the enterprise's own facts: what follows for it, before the article.

A question carrying figures or dates the rules know (服务收入占比12%，能报吗; 11月2日办完更名，什么时候之前要备案)
is answered first with the computed outcome: which condition is met or not and by how much, what could still
qualify it (the any-of branches), the deadline or review date. Facts are found by rules/facts.py, outcomes
computed by rules/engine.py and rules/deadlines.py; this module only composes the reply.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from knowledge.kb import KnowledgeBase
from knowledge.qa import cities_in, resolve_city
from rules import engine
from rules import facts as factmod
from rules.deadlines import DeadlineError, filing_deadline, filing_text, measure_rules, review_schedule, review_text

PLACE_SUFFIX_RE = re.compile(r"(省|市|区|县|旗|盟|州|镇|乡|开发区|高新区|园区|新区)$")


def looks_like_place(kb: KnowledgeBase, text: str) -> bool:
    return bool(PLACE_SUFFIX_RE.search(text)) or any(p in text for p in kb.other_places)


def place_of(kb: KnowledgeBase, as_of: dt.date | None = None):
    """text → a measure id, 'other' (a real place no measure covers) or None (not a place, or not one place:
    不在威海 says where it is not, 山东省 holds a covered city and others)."""
    from knowledge.kb import provinces
    covering = provinces(kb.measures)

    def where(text: str) -> str | None:
        text = text.strip()
        if re.match(r"^(不在|不是|非|除了)", text) or text in covering:
            return None
        city = resolve_city(kb, text, as_of)
        if city:
            return city
        return "other" if looks_like_place(kb, text) else None
    return where


# ---- the direct answer -----------------------------------------------------------------------------------
CONDITION_FACTS = ("service_revenue_share", "revenue_growth", "profit_growth", "service_projects_3y", "established_on")
DATE_FACTS = ("changed_on", "awarded_on")


@dataclass
class Direct:
    text: str
    facts: dict  # fact → value, for the self-check's prefill
    cities: list[str]
    citations: list[tuple[str, int]] = field(default_factory=list)
    found: factmod.Found | None = None  # every fact read from the question


def _scope(kb: KnowledgeBase, question: str, city: str | None) -> list[str]:
    named = [c for c in cities_in(kb, question) if c in kb.measures]
    if named:
        return named
    if city in kb.measures:
        return [city]
    return list(kb.measures)


def direct_answer(kb: KnowledgeBase, question: str, today: dt.date, city: str | None = None) -> Direct | None:
    """What the facts a question carries mean for the enterprise, or None when it carries none."""
    scope = _scope(kb, question, city)
    rulesets = [engine.load(c) for c in scope if c in engine.available()]
    found = factmod.facts_in(question, today, engine.thresholds(rulesets or [engine.load(c) for c in engine.available()]))
    if not found:
        return None
    defs = factmod.load_facts()
    lines: list[str] = []
    citations: list[tuple[str, int]] = []
    given = {k: r.value for k, r in found.facts.items()}
    said = "，".join(_said(defs[k], found.facts[k]) for k in given if k in CONDITION_FACTS)
    for key, problem in found.problems.items():
        lines.append(f"⚠️ {defs[key].name}：{problem}")
    conditions = {k: v for k, v in given.items() if k in CONDITION_FACTS}
    estimated = {k for k, r in found.facts.items() if r.inexact and defs[k].type == "date"}
    if conditions:
        lines.append(f"按您说的（{said}）：")
        per_city = []
        for rs in rulesets:
            cited: list[tuple[str, int]] = []
            per_city.append((_condition_lines(kb, rs, conditions, today, len(rulesets) > 1, cited, estimated), cited, rs))
        per_city.sort(key=lambda x: engine.outcomes(x[2], conditions, today, lambda _t: None) == [])  # bearing first
        for city_lines, cited, _ in per_city:
            lines.extend(city_lines)
            citations.extend(c for c in cited if c not in citations)
    if "revoked_on" in given:
        lines.extend(_ban_lines(kb, rulesets, question, given["revoked_on"], today, len(rulesets) > 1, citations))
    if "changed_on" in given:
        lines.extend(_filing_lines(kb, scope, given["changed_on"], found.facts["changed_on"].note, citations, today))
    if "awarded_on" in given:
        lines.extend(_review_lines(kb, scope, given["awarded_on"], today, citations))
    if not lines:
        return None
    prefill = {k: v for k, v in conditions.items() if k not in estimated}  # an estimated date is asked in the self-check
    return Direct("\n".join(lines), prefill, scope, citations, found)


def _said(fact: factmod.Fact, r: factmod.Reading) -> str:
    if r.inexact and fact.type == "date":
        return f"{fact.name}{r.note}"
    return f"{fact.name}{factmod.show(fact, r.value)}" + (f"（{r.note}）" if r.note else "")


def _condition_lines(kb, rs: engine.Ruleset, facts: dict, today: dt.date, labelled: bool, citations,
                     estimated: set[str] = frozenset()) -> list[str]:
    head = f"【{rs.city}】" if labelled else ""
    outs = engine.outcomes(rs, facts, today, lambda text: resolve_city(kb, text))
    if not outs:
        names = "、".join(rs.facts[k].name for k in facts)
        first = rs.conditions[0].article if rs.conditions else None
        where = f"（申报条件见{rs.cite(first)}）" if first else ""
        if first:
            citations.append((rs.measure, first))
        return [f"{head}{rs.city}的办法对{names}没有要求{where}。"]
    lines = []
    for o in outs:
        c, r = o.result.condition, o.result
        if (rs.measure, c.article) not in citations:
            citations.append((rs.measure, c.article))
        where = f"（{rs.cite(c.article)}{c.where().split('条', 1)[1]}）"
        if not o.branches:
            reason = r.reason
            if estimated & set(engine.facts_of(c.test)):  # no day to the date of an estimate
                reason = re.sub(r"（\d{4}-\d{2}-\d{2}满\d+年）", "", reason)
            gap = next(iter(o.gaps.values()), None)
            if gap is not None:
                unit = "个" if rs.facts[c.test["fact"]].type == "int" else "个百分点"
                reason += f"，差{gap:g}{unit}"
            lines.append(f"{head}{engine.STATUS_MARK[r.status]}“{c.label}”：{reason}{where}")
            continue
        met = [b for b in o.branches if b[1] == engine.PASS]
        if met:
            lines.append(f"{head}✅ 符合“{c.label}”：{met[0][3]}，满足其一即可{where}")
            continue
        said = []
        for t, status, answer, reason in o.branches:
            if status == engine.FAIL:
                gap = o.gaps.get(t.get("fact"))
                said.append(reason + (f"（差{gap:g}个百分点）" if gap is not None else ""))
        others = [_branch_text(rs, t) for t, status, _, _ in o.branches if status == engine.UNKNOWN]
        if others:
            lines.append(f"{head}❌ 这一项不够：{'；'.join(said)}。但这一条满足其一即可，还可以凭："
                         f"{'，或'.join(others)}{where}")
        else:
            lines.append(f"{head}❌ 不符合“{c.label}”：{'；'.join(said)}{where}")
    return lines


def _branch_text(rs: engine.Ruleset, test: dict) -> str:
    fact = rs.facts[test["fact"]]
    unit = "个" if fact.type == "int" else "%"
    if "at_least" in test:
        return f"{fact.name}达到{test['at_least']:g}{unit}（含）以上"
    if "above" in test:
        return f"{fact.name}超过{test['above']:g}{unit}"
    return fact.name


def _ban_lines(kb, rulesets, question: str, revoked_on: str, today: dt.date, labelled: bool, citations) -> list[str]:
    """A title revoked on a date: whether the years of a ban have passed, and for which reasons it applies."""
    reason_fact = factmod.load_facts()["revoked_reason"]
    try:
        reason = factmod.parse_choice(question, reason_fact) if re.search(r"撤|摘牌", question) else None
    except factmod.AnswerError:
        reason = None
    lines = []
    for rs in rulesets:
        ban = next((c for c in rs.conditions if "ban" in (c.test or {})), None)
        head = f"【{rs.city}】" if labelled else ""
        if ban is None:
            continue
        facts = {"ever_revoked": True, "revoked_on": revoked_on, "revoked_reason": reason}
        v = engine.evaluate(rs, facts, today, lambda _t: None, interview=True)
        r = next(x for x in v.results if x.condition is ban)
        citations.append((rs.measure, ban.article))
        rule = ban.test["ban"]
        if r.status == engine.UNKNOWN and reason is None:
            labels = "、".join(reason_fact.choices[k] for k in rule["reasons"])
            until = factmod.date_range(revoked_on)[1]
            from rules.dates import anniversary
            text = (f"撤销（{revoked_on}）不满{rule['years']}年：如果是因{labels}被撤销，{anniversary(until, rule['years'])}"
                    f"前不得重新申请；其他原因（如复核不合格、自行申请）不受此限")
        else:
            text = r.reason
        lines.append(f"{head}{engine.STATUS_MARK[r.status]}“{ban.label}”：{text}（{rs.cite(ban.article)}）")
    return lines


def _filing_lines(kb, scope: list[str], changed_on: str, note: str, citations, today: dt.date) -> list[str]:
    """The filing deadline under the measures in scope: one answer per distinct period, each citing only its
    own cities' articles."""
    if len(changed_on) != 10:
        return [f"⚠️ 要算备案截止日，请告诉我手续办完的具体日期（例如：{changed_on[:4]}年11月2日）。"]
    groups: dict = {}
    for mid in scope:
        rule = measure_rules(kb.measures[mid]).get("filing")
        if rule:
            groups.setdefault((rule["days"], rule["unit"]), []).append(kb.measures[mid])
    if not groups:
        return ["⚠️ 该办法没有规定更名、重组后的备案期限，请向主管部门咨询。"]
    lines = []
    for measures in groups.values():
        try:
            result = filing_deadline(dt.date.fromisoformat(changed_on), measures=measures)
        except (DeadlineError, ValueError) as exc:
            lines.append(f"⚠️ 无法计算备案截止日：{exc}")
            continue
        citations.extend((a["measure"], a["article"]) for a in result.articles)
        label = f"【{'、'.join(m.city_short for m in measures)}】" if len(groups) > 1 else ""
        head = f"{label}手续办完日 {changed_on}" + (f"（{note}）" if note else "") + "："
        text = head + filing_text(result, kb.measures)
        if result.deadline < today:
            text += f"\n注意：截止日{result.deadline.isoformat()}已过，请尽快联系所在地工信部门补办备案。"
        lines.append(text)
    return lines


def _review_lines(kb, scope: list[str], awarded_on: str, today: dt.date, citations) -> list[str]:
    """The re-review schedule from the award date; a month is enough to name the month of the next review,
    and a measure without periodic reviews needs no date at all."""
    lines = []
    for mid in scope:
        measure = kb.measures[mid]
        periodic = (measure_rules(measure).get("review") or {}).get("interval_years")
        if periodic and len(awarded_on) == 4:
            lines.append(f"⚠️ {measure.city_short}：要推算复核日期，请告诉我授牌的月份或具体日期（例如：{awarded_on}年6月1日）。")
            continue
        first = factmod.date_range(awarded_on)[0]
        try:
            s = review_schedule(measure, first, today)
        except DeadlineError as exc:
            lines.append(f"⚠️ {measure.city_short}：{exc}")
            continue
        citations.extend((a["measure"], a["article"]) for a in s.articles)
        if len(awarded_on) == 10 or not periodic:
            lines.append(f"授牌日期 {awarded_on}，" + review_text(s, measure))
            continue
        # a month only: the month of each review (the anniversaries of any day of that month fall in it)
        month = lambda d: f"{d.year}年{d.month}月"  # noqa: E731
        nxt = next((d for d in s.reviews if (d.year, d.month) >= (today.year, today.month)), None)
        past = [month(d) for d in s.reviews if (d.year, d.month) < (today.year, today.month)]
        head = f"授牌于{month(first)}，{measure.city_short}：" + (f"下次复核预计在{month(nxt)}" if nxt else "") + \
            (f"（此前应已进行的复核：{'、'.join(past)}）" if past else "") + "，按授牌月份推算，具体日期以授牌文件和主管部门通知为准。"
        notes = [re.sub(r"(\d{4})-(\d{2})-01", lambda m: f"{m.group(1)}年{int(m.group(2))}月", n) for n in s.notes]
        lines.append("\n".join([head, *notes]))
    return lines
