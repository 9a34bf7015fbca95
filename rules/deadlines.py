"""Deadlines of the measures: the record-filing deadline after a change, the re-review schedule.

The rules are data (rules/deadlines.yaml); working days come from rules/calendar.py. Pure: dates are
passed in (`as_of` included), nothing here reads the clock. Results are plain dataclasses whose
`as_dict()` is CONTRACT.md's JSON shape (plus a few extra fields).

Decisions:
- Filing: the day the procedures are completed is not counted (民法典第二百零一条); the deadline is the
  30th working day after it. `estimated` is true when any counted day (the day after the change up to the
  deadline) lies in a year without an official schedule (a data file or chinesecalendar).
- Review: reviews fall on the anniversaries of the award every `interval_years` (29 Feb → 28 Feb).
  `reviews` lists the past ones and the first one on or after `as_of`, which is `next_review` (a review
  due on `as_of` itself is still to come). A measure that sets no periodic re-review gets none: no dates,
  a note citing what it does say.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

from rules.calendar import WorkCalendar
from rules.dates import anniversary

RULES_FILE = Path(__file__).resolve().parent / "deadlines.yaml"


class DeadlineError(ValueError):
    """Input a deadline cannot be computed for (an award after as_of …); the message is for the user."""


@lru_cache(maxsize=4)
def load_rules(path: Path = RULES_FILE) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    filing = data.get("filing") or {}
    if not isinstance(filing.get("working_days"), int) or not filing.get("articles"):
        raise ValueError(f"{Path(path).name}: filing needs working_days and articles")
    for mid, rule in (data.get("review") or {}).items():
        years = (rule or {}).get("interval_years")
        if years is not None and (not isinstance(years, int) or years < 1):
            raise ValueError(f"{Path(path).name}: review.{mid}.interval_years must be a positive integer or null")
    return data


def _cn_date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _cite(measures: Mapping, mid: str, article: int) -> str:
    m = measures.get(mid) if measures else None
    if m is not None:
        return m.cite(article)
    from knowledge.kb import to_cn_number
    return f"{mid} 第{to_cn_number(article)}条"


# ---- filing -----------------------------------------------------------------------------------------
@dataclass
class FilingDeadline:
    changed_on: dt.date
    deadline: dt.date
    working_days: int
    estimated: bool
    articles: list[dict]
    estimated_years: list[int] = field(default_factory=list)
    estimated_holidays: dict[dt.date, str] = field(default_factory=dict)
    rule: str = ""

    def as_dict(self) -> dict:
        return {"changed_on": self.changed_on.isoformat(), "deadline": self.deadline.isoformat(),
                "working_days": self.working_days, "estimated": self.estimated,
                "articles": [dict(a) for a in self.articles],
                "estimated_years": self.estimated_years,
                "estimated_days": [{"date": d.isoformat(), "holiday": n} for d, n in self.estimated_holidays.items()],
                "rule": self.rule}


def filing_deadline(changed_on: dt.date, calendar: WorkCalendar | None = None,
                    rules: dict | None = None) -> FilingDeadline:
    """The last day to file after a name change or restructuring completed on `changed_on`."""
    rule = (rules or load_rules())["filing"]
    span = (calendar or WorkCalendar()).add_working_days(changed_on, rule["working_days"])
    return FilingDeadline(changed_on, span.end, rule["working_days"], span.estimated,
                          [{"measure": a["measure"], "article": a["article"]} for a in rule["articles"]],
                          span.estimated_years, span.estimated_holidays, rule.get("text", ""))


def filing_text(result: FilingDeadline, measures: Mapping | None = None, rules: dict | None = None) -> str:
    rule = (rules or load_rules())["filing"]
    cites = "、".join(_cite(measures, a["measure"], a["article"]) for a in result.articles)
    lines = [f"备案截止日：{result.deadline.isoformat()}（{_cn_date(result.deadline)}）。",
             f"依据{cites}：{rule.get('text', '')}。",
             f"办理相关手续之日（{result.changed_on.isoformat()}）不计入，自次日起算第{result.working_days}个工作日"
             f"（{rule['counting']['title']}），节假日和调休按国务院公布的安排计算。"]
    if result.estimated:
        years = "、".join(f"{y}年" for y in result.estimated_years)
        lines.append(f"注意：{years}的节假日安排尚未公布，此日期按周末和《全国年节及纪念日放假办法》规定的法定节假日估算"
                     f"（未计补休和调休），实际以国务院办公厅通知为准，建议提前办理。")
    return "\n".join(lines)


# ---- review -----------------------------------------------------------------------------------------
@dataclass
class ReviewSchedule:
    city: str
    awarded_on: dt.date
    as_of: dt.date
    next_review: dt.date | None
    reviews: list[dt.date]
    measure_status: str
    notes: list[str]
    interval_years: int | None = None
    articles: list[dict] = field(default_factory=list)
    in_force_until: dt.date | None = None

    def as_dict(self) -> dict:
        return {"city": self.city, "awarded_on": self.awarded_on.isoformat(), "as_of": self.as_of.isoformat(),
                "next_review": self.next_review.isoformat() if self.next_review else None,
                "reviews": [d.isoformat() for d in self.reviews], "measure_status": self.measure_status,
                "notes": list(self.notes), "interval_years": self.interval_years,
                "articles": [dict(a) for a in self.articles],
                "in_force_until": self.in_force_until.isoformat() if self.in_force_until else None}


def review_schedule(measure, awarded_on: dt.date, as_of: dt.date, rules: dict | None = None) -> ReviewSchedule:
    """The re-review schedule of an enterprise awarded on `awarded_on` under `measure` (a kb Measure)."""
    if awarded_on > as_of:
        raise DeadlineError(f"授牌日期 {awarded_on.isoformat()} 晚于查询日期 {as_of.isoformat()}")
    meta = measure.meta or {}
    start, until = meta.get("in_force_from"), meta.get("in_force_until")
    if start and awarded_on < start:
        raise DeadlineError(f"授牌日期 {awarded_on.isoformat()} 早于{measure.citation_title}施行日期 {start.isoformat()}")
    status = measure.status(as_of)
    rule = ((rules or load_rules()).get("review") or {}).get(measure.id)
    result = ReviewSchedule(measure.id, awarded_on, as_of, None, [], status, [],
                            in_force_until=until)
    notes = result.notes

    if rule is None:
        notes.append(f"规则库尚未收录{measure.citation_title}的复核规定，无法推算复核日期，请向{authority(measure)}咨询。")
    elif rule.get("interval_years") is None:
        from knowledge.kb import to_cn_number
        says = "；".join(f"第{to_cn_number(s['article'])}条：{s['text']}" for s in rule.get("says") or [])
        notes.append(f"{measure.citation_title}未规定定期复核，因此没有复核日期。" + (f"该办法规定：{says}。" if says else ""))
        result.articles = [{"measure": measure.id, "article": s["article"]} for s in rule.get("says") or []]
    elif until and awarded_on > until:
        notes.append(f"授牌日期晚于{measure.citation_title}的有效期（至{_cn_date(until)}），"
                     f"复核安排以授牌时适用的办法为准，请向{authority(measure)}确认。")
    else:
        years = rule["interval_years"]
        result.interval_years = years
        result.articles = [{"measure": measure.id, "article": rule["article"]}]
        k = 1
        while True:
            d = anniversary(awarded_on, years * k)
            result.reviews.append(d)
            if d >= as_of:
                result.next_review = d
                break
            k += 1
        notes.append(f"依据{measure.cite(rule['article'])}：{rule.get('text') or '定期复核'}。"
                     f"复核日期按授牌日起每满{_cn_count(years)}年推算，具体时间以{authority(measure)}通知为准。")
        consequence = rule.get("consequence")
        if consequence:
            notes.append(f"{measure.cite(consequence['article'])}：{consequence['text']}。")
        later = [d for d in result.reviews if until and d > until]
        if status == "expired":
            notes.append(f"{measure.citation_title}已于{_cn_date(until)}有效期届满，截至{as_of.isoformat()}已失效；"
                         f"此后的复核（{'、'.join(d.isoformat() for d in later)}）取决于后续新办法或"
                         f"{authority(measure)}的通知。")
        elif later:
            notes.append(f"{measure.citation_title}有效期至{_cn_date(until)}，"
                         f"{'、'.join(d.isoformat() for d in later)}的复核届时取决于后续新办法或{authority(measure)}的通知。")
    if status == "expired" and meta.get("successor_hint"):
        notes.append(str(meta["successor_hint"]))
    if status == "unknown":
        note = meta.get("status_note") or meta.get("validity_note")
        notes.append(f"{measure.citation_title}{note}" if note else f"{measure.citation_title}的有效期不详。")
    return result


def authority(measure) -> str:
    """Who administers the measure (its city's 工业和信息化局), for “以…通知为准”."""
    return (measure.meta.get("city") or {}).get("authority") or measure.meta.get("issuer") or "主管部门"


def _cn_count(n: int) -> str:
    return {1: "一", 2: "两", 3: "三", 4: "四", 5: "五"}.get(n, str(n))


def review_text(result: ReviewSchedule, measure) -> str:
    city = measure.city_short
    if result.next_review is None:
        head = f"{city}：没有可推算的复核日期。"
    else:
        past = [d for d in result.reviews if d < result.as_of]
        head = f"{city}：下次复核预计在 {result.next_review.isoformat()}（{_cn_date(result.next_review)}）。"
        if past:
            head += f"此前应已进行的复核：{'、'.join(d.isoformat() for d in past)}。"
    status = {"in_force": "有效", "expired": "已失效", "unknown": "有效期不详"}[result.measure_status]
    lines = [head, *result.notes, f"办法状态（截至{result.as_of.isoformat()}）：{status}。"]
    return "\n".join(lines)


def for_measure(result: FilingDeadline, measure: str) -> FilingDeadline:
    """The same deadline citing only that measure's own article (a 包头 enterprise is not sent to 威海's)."""
    from dataclasses import replace
    own = [a for a in result.articles if a["measure"] == measure]
    return replace(result, articles=own or result.articles)
