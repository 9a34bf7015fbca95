"""Deadlines of the measures: the record-filing deadline after a change, the re-review schedule.

The rules are data (rules/deadlines.yaml); working days come from rules/calendar.py. Pure: dates are
passed in (`as_of` included), nothing here reads the clock. Results are plain dataclasses whose
`as_dict()` is CONTRACT.md's JSON shape (plus a few extra fields).

Decisions:
- Filing: each measure's own period (rules/deadlines.yaml, or read from its articles: rules/extract.py), in
  working days or calendar days. The day the procedures are completed is not counted (民法典第二百零一条);
  the deadline is the Nth working day after it, or the Nth day, moved to the next working day when it falls
  on a rest day (民法典第二百零三条). `estimated` is true when any counted day (the day after the change up to
  the deadline) lies in a year without an official schedule (a data file or chinesecalendar).
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
    name = Path(path).name
    if not (data.get("counting") or {}).get("title"):
        raise ValueError(f"{name}: counting needs the title of the rule that says how a period is counted")
    for mid, entry in (data.get("measures") or {}).items():
        filing = (entry or {}).get("filing")
        if filing is not None and (not isinstance(filing.get("days"), int) or filing.get("unit") not in UNITS
                                   or not isinstance(filing.get("article"), int)):
            raise ValueError(f"{name}: measures.{mid}.filing needs days, unit ({' or '.join(UNITS)}) and article")
        years = ((entry or {}).get("review") or {}).get("interval_years")
        if years is not None and (not isinstance(years, int) or years < 1):
            raise ValueError(f"{name}: measures.{mid}.review.interval_years must be a positive integer or null")
    return data


UNITS = {"working_days": "个工作日", "days": "日"}


def measure_rules(measure, rules: dict | None = None) -> dict:
    """The deadline rules of a kb Measure: filing, review, title_validity, each citing its article.
    rules/deadlines.yaml's entry where it has one (reviewed), else read from the measure's own articles."""
    entry = ((rules or load_rules()).get("measures") or {}).get(measure.id)
    if entry is not None:
        return {"filing": entry.get("filing"), "review": entry.get("review"), "title_validity": entry.get("title_validity"),
                "source": "rules"}
    cached = _READ.get(id(measure))
    if cached is None or cached[0] is not measure:  # read once per measure object (a base lives for the process)
        from rules.extract import measure_articles, read_deadlines
        cached = (measure, dict(read_deadlines(measure_articles(measure)), source="articles"))
        _READ[id(measure)] = cached
    return cached[1]


_READ: dict[int, tuple] = {}  # id(measure) -> (measure, the rules read from its articles)


def period_text(days: int, unit: str) -> str:
    """30 working days → 30个工作日; 30 calendar days → 30日."""
    return f"{days}{UNITS.get(unit, '日')}"


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
    working_days: int | None  # None for a period in calendar days
    estimated: bool
    articles: list[dict]
    estimated_years: list[int] = field(default_factory=list)
    estimated_holidays: dict[dt.date, str] = field(default_factory=dict)
    rule: str = ""
    days: int = 0
    unit: str = "working_days"

    def as_dict(self) -> dict:
        return {"changed_on": self.changed_on.isoformat(), "deadline": self.deadline.isoformat(),
                "working_days": self.working_days, "estimated": self.estimated,
                "articles": [dict(a) for a in self.articles],
                "days": self.days, "unit": self.unit,
                "estimated_years": self.estimated_years,
                "estimated_days": [{"date": d.isoformat(), "holiday": n} for d, n in self.estimated_holidays.items()],
                "rule": self.rule}


def filing_rules(measures=None, rules: dict | None = None) -> dict[tuple[int, str], list[dict]]:
    """The filing periods of the given measures (kb Measures; None: every measure rules/deadlines.yaml lists),
    grouped: (days, unit) → [{measure, article, text}]. Measures that set no period are left out."""
    rules = rules or load_rules()
    if measures is None:
        found = [(mid, (entry or {}).get("filing")) for mid, entry in (rules.get("measures") or {}).items()]
    else:
        found = [(m.id, measure_rules(m, rules).get("filing")) for m in measures]
    groups: dict[tuple[int, str], list[dict]] = {}
    for mid, rule in found:
        if rule:
            groups.setdefault((rule["days"], rule["unit"]), []).append(
                {"measure": mid, "article": rule["article"], "text": rule.get("text", "")})
    return groups


def filing_deadline(changed_on: dt.date, calendar: WorkCalendar | None = None,
                    rules: dict | None = None, measures=None) -> FilingDeadline:
    """The last day to file after a name change or restructuring completed on `changed_on`, under the
    given measures (one city's, or several that set the same period)."""
    groups = filing_rules(measures, rules)
    if not groups:
        raise DeadlineError("该办法没有规定更名、重组后的备案期限，请向主管部门咨询")
    if len(groups) > 1:
        periods = "；".join(f"{'、'.join(a['measure'] for a in arts)} {period_text(*key)}" for key, arts in groups.items())
        raise DeadlineError(f"各市规定的备案期限不同（{periods}），请指定城市")
    (days, unit), arts = next(iter(groups.items()))
    if unit == "working_days":
        span = (calendar or WorkCalendar()).add_working_days(changed_on, days)
        end, estimated, years, holidays = span.end, span.estimated, span.estimated_years, span.estimated_holidays
    else:  # calendar days; a last day on a rest day moves to the next working day (民法典第二百零三条)
        cal = calendar or WorkCalendar()
        end = changed_on + dt.timedelta(days=days)
        while not cal.is_workday(end):
            end += dt.timedelta(days=1)
        years = sorted({y for y in range(changed_on.year, end.year + 1) if not cal.is_official(y)})
        estimated, holidays = bool(years), {}
    return FilingDeadline(changed_on, end, days if unit == "working_days" else None, estimated,
                          [{"measure": a["measure"], "article": a["article"]} for a in arts],
                          years, holidays,
                          arts[0]["text"] if len(arts) == 1 else  # several cities: each names its own bureau
                          f"示范企业发生更名、重组等重大调整的，应在办理相关手续后{period_text(days, unit)}内报市工业和信息化主管部门备案",
                          days, unit)


def filing_text(result: FilingDeadline, measures: Mapping | None = None, rules: dict | None = None) -> str:
    counting = (rules or load_rules())["counting"]
    cites = "、".join(_cite(measures, a["measure"], a["article"]) for a in result.articles)
    period = period_text(result.days, result.unit)
    lines = [f"备案截止日：{result.deadline.isoformat()}（{_cn_date(result.deadline)}）。",
             f"依据{cites}：{result.rule}。" if result.rule else f"依据{cites}：{period}内备案。"]
    if result.unit == "working_days":
        lines.append(f"办理相关手续之日（{result.changed_on.isoformat()}）不计入，自次日起算第{result.days}个工作日"
                     f"（{counting['title']}），节假日和调休按国务院公布的安排计算。")
    else:
        lines.append(f"变更之日（{result.changed_on.isoformat()}）不计入，自次日起算第{result.days}日"
                     f"（{counting['title']}），按自然日计算，节假日不顺延（最后一日是休息日或法定节假日的，顺延至其后第一个工作日，《中华人民共和国民法典》第二百零三条）。")
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
    title_valid_until: dt.date | None = None  # where the measure limits the title's validity (称号有效期N年)

    def as_dict(self) -> dict:
        return {"city": self.city, "awarded_on": self.awarded_on.isoformat(), "as_of": self.as_of.isoformat(),
                "next_review": self.next_review.isoformat() if self.next_review else None,
                "reviews": [d.isoformat() for d in self.reviews], "measure_status": self.measure_status,
                "notes": list(self.notes), "interval_years": self.interval_years,
                "articles": [dict(a) for a in self.articles],
                "in_force_until": self.in_force_until.isoformat() if self.in_force_until else None,
                "title_valid_until": self.title_valid_until.isoformat() if self.title_valid_until else None}


def review_schedule(measure, awarded_on: dt.date, as_of: dt.date, rules: dict | None = None) -> ReviewSchedule:
    """The re-review schedule of an enterprise awarded on `awarded_on` under `measure` (a kb Measure)."""
    if awarded_on > as_of:
        raise DeadlineError(f"授牌日期 {awarded_on.isoformat()} 晚于查询日期 {as_of.isoformat()}")
    meta = measure.meta or {}
    start, until = meta.get("in_force_from"), meta.get("in_force_until")
    carried = False  # awarded under the measure this one replaced: its re-reviews follow this one
    if start and awarded_on < start:
        if not meta.get("supersedes"):
            raise DeadlineError(f"授牌日期 {awarded_on.isoformat()} 早于{measure.citation_title}施行日期 {start.isoformat()}")
        carried = True
    status = measure.status(as_of)
    all_rules = measure_rules(measure, rules)
    rule = all_rules.get("review")
    result = ReviewSchedule(measure.id, awarded_on, as_of, None, [], status, [],
                            in_force_until=until)
    notes = result.notes
    if carried:
        notes.append(f"该企业在{_cn_date(start)}新办法施行前授牌；此后的复核按现行{measure.citation_title}推算，"
                     f"具体以{authority(measure)}通知为准。")

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
    validity = all_rules.get("title_validity")
    if validity and validity.get("years"):
        result.title_valid_until = anniversary(awarded_on, validity["years"]) - dt.timedelta(days=1)
        state = "已届满" if result.title_valid_until < as_of else "届满"
        notes.append(f"示范称号有效期{_cn_count(validity['years'])}年（{measure.cite(validity['article'])}：{validity['text']}），"
                     f"按授牌日推算至{_cn_date(result.title_valid_until)}{state}，具体以{authority(measure)}公布为准。")
        result.articles.append({"measure": measure.id, "article": validity["article"]})
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
