"""Is a measure in force: 还有效吗, 有效期到什么时候, 试行多久, 2027年还能用吗, for any measure.

The answer comes from the measure's validity article, found by its content (本办法自…起施行/实施, 有效期至…,
试行N年), and from its metadata (measures/<id>.yaml `in_force_from`, `in_force_until`, `issued_on`,
`trial_years`, `validity_note`, `successor_hint`); what the metadata leaves out is read from the article. A date in
the question is the date asked about, else `as_of`. An end date nobody knows is said to be unknown, never guessed.
Pure: no clock, no database.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

from knowledge import dialogue
from knowledge.kb import KnowledgeBase, Measure, successor
from knowledge.numerals import cn_to_int
from knowledge.qa import Answer, Citation

_VALIDITY_ARTICLE = re.compile(r"本(办法|规定|细则|制度|通知).{0,40}(施行|实施|试行|有效期|执行)")
_START = re.compile(r"自(\d{4})年(\d{1,2})月(\d{1,2})日起?(施行|实施|执行|生效)")
_FROM_PUBLICATION = re.compile(r"自(发布|印发|公布|颁布|下发)之日起(?:(\d+)日后)?(施行|实施|执行|生效|试行)")
_END = re.compile(r"有效期至(\d{4})年(\d{1,2})月(\d{1,2})日")
_TRIAL = re.compile(r"试行([0-9一二两三四五六七八九十]+)年")
_TERM = re.compile(r"有效期([0-9一二两三四五六七八九十]+)年")

_DATE_PATTERNS = [  # most precise first
    (re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?"), "day"),
    (re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?"), "month"),
    (re.compile(r"(\d{4})\s*年"), "year"),
]
_RELATIVE_YEARS = {"今年": 0, "明年": 1, "后年": 2, "去年": -1}
_CN_YEARS = "零一二三四五六七八九十"


@dataclass
class Span:
    """The time asked about: one day, or a whole month or year."""
    first: dt.date
    last: dt.date
    said: str  # as the answer says it: 2026年10月

    @property
    def one_day(self) -> bool:
        return self.first == self.last


@dataclass
class Validity:
    article: int | None
    text: str
    start: dt.date | None
    end: dt.date | None
    from_publication: bool
    trial_years: int | None
    term_years: int | None
    start_said: str = ""  # how the article says it starts when it gives no date (自印发之日起30日后施行)
    trial_open: bool = False  # 试行 with no length given
    verb: str = "施行"  # as the article says it: 施行, 实施, 试行
    published: str = "印发"  # 发布, 印发, 公布: as the article names the day it counts from


def is_validity_question(kb: KnowledgeBase, text: str) -> bool:
    """Does normalised `text` ask whether (or since or until when) a measure is in force?"""
    w = dialogue.words().get("validity") or {}
    if any(n in text for n in w.get("not_about") or []):
        return False
    if any(a in text for a in w.get("asks") or []):
        return True
    if "还" in text and any(d in text for d in w.get("dated") or []) and asked_span(text, dt.date(2000, 1, 1)) is not None:
        return True  # 2027年还按这个办法认定吗
    if any(m in text for m in w.get("measure_words") or []):
        if any(s in text for s in w.get("starts") or []) and any(t in text for t in w.get("time_words") or []):
            return True  # 办法哪天起施行
    if any(m in text for m in w.get("document_words") or []):
        return any(e in text for e in (w.get("kinds") or {}).get("end") or [])  # 这个办法到什么时候截止
    return False


def _kind(text: str) -> str:
    kinds = (dialogue.words().get("validity") or {}).get("kinds") or {}
    for kind in ("status", "end", "duration", "start"):
        if any(p in text for p in kinds.get(kind) or []):
            return kind
    return "end"


def asked_span(text: str, as_of: dt.date) -> Span | None:
    """The date or period a question asks about (2026年10月, 2027年, 2026-10-01, 明年), or None."""
    for pattern, grain in _DATE_PATTERNS:
        for m in pattern.finditer(text):
            try:
                year = int(m.group(1))
                if grain == "day":
                    d = dt.date(year, int(m.group(2)), int(m.group(3)))
                    return Span(d, d, f"{d.year}年{d.month}月{d.day}日")
                if grain == "month":
                    month = int(m.group(2))
                    first = dt.date(year, month, 1)
                    return Span(first, dt.date(year, month, calendar.monthrange(year, month)[1]), f"{year}年{month}月")
                return Span(dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year}年")
            except ValueError:
                continue
    for word, offset in _RELATIVE_YEARS.items():
        if word in text:
            year = as_of.year + offset
            return Span(dt.date(year, 1, 1), dt.date(year, 12, 31), f"{word}（{year}年）")
    return None


def _years(text: str) -> int | None:
    return int(text) if text.isdigit() else cn_to_int(text)


def _add_years(d: dt.date, years: int) -> dt.date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def validity_of(m: Measure) -> Validity:
    """What the measure's metadata and its validity article say about when it is in force."""
    number, text = None, ""
    # the validity article closes a measure: the last that states a start or a term (本办法自2025年7月15日起施行，
    # 有效期至…); else the last that reads like one. An article repealing an earlier measure 自本办法施行之日起
    # names the day without stating it.
    specific = (_START, _FROM_PUBLICATION, _END, _TRIAL, _TERM)
    for wanted in (lambda flat: any(p.search(flat) for p in specific), _VALIDITY_ARTICLE.search):
        for n in sorted(m.articles, reverse=True):
            flat = re.sub(r"\s+", "", m.articles[n].text)
            if _VALIDITY_ARTICLE.search(flat) and wanted(flat):
                number, text = n, m.articles[n].text
                break
        if number is not None:
            break
    flat = re.sub(r"\s+", "", text)
    start = m.meta.get("in_force_from")
    end = m.meta.get("in_force_until")
    verb = "施行"
    if (s := _START.search(flat)):
        verb = s.group(4)
        if not isinstance(start, dt.date):
            start = _date(s.group(1), s.group(2), s.group(3))
    pub = _FROM_PUBLICATION.search(flat)
    if pub:
        verb = pub.group(3)
    if not isinstance(start, dt.date) and pub and isinstance(m.meta.get("issued_on"), dt.date):
        start = m.meta["issued_on"] + dt.timedelta(days=int(pub.group(2) or 0))
    if not isinstance(end, dt.date) and (e := _END.search(flat)):
        end = _date(e.group(1), e.group(2), e.group(3))
    trial = m.meta.get("trial_years")
    if trial is None and (t := _TRIAL.search(flat)):
        trial = _years(t.group(1))
    trial_open = trial is None and bool(pub and pub.group(3) == "试行")  # 自印发之日起试行: a trial of no set length
    term = _years(t.group(1)) if (t := _TERM.search(flat)) else None
    years = trial or term
    if not isinstance(end, dt.date) and isinstance(start, dt.date) and years:
        end = _add_years(start, years) - dt.timedelta(days=1)
    return Validity(number, text, start if isinstance(start, dt.date) else None,
                    end if isinstance(end, dt.date) else None, bool(pub), trial, term, pub.group(0) if pub else "",
                    trial_open, verb, pub.group(1) if pub else "印发")


def _date(y: str, mo: str, d: str) -> dt.date | None:
    try:
        return dt.date(int(y), int(mo), int(d))
    except ValueError:
        return None


def _cn(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _span_years(start: dt.date, end: dt.date) -> int | None:
    """Whole years from start to end inclusive (2021-09-01 … 2026-08-31 → 5), or None if not whole."""
    nxt = end + dt.timedelta(days=1)
    years = nxt.year - start.year
    return years if years > 0 and _add_years(start, years) == nxt else None


def _cn_count(n: int) -> str:
    return "两" if n == 2 else (_CN_YEARS[n] if 0 < n <= 10 else str(n))


def _lead(m: Measure, v: Validity, kind: str, span: Span | None, as_of: dt.date) -> str:
    """The direct answer, first: in force or not at the date asked, or since/until when, or for how long."""
    name = m.meta.get("short_name") or m.citation_title
    when = span or Span(as_of, as_of, f"截至{_cn(as_of)}")
    period = (f"自{_cn(v.start)}起{v.verb}" if v.start else v.start_said)
    until = f"有效期至{_cn(v.end)}" if v.end else ""
    known = "，".join(p for p in (period, until) if p)
    if kind == "start":
        if v.start:
            return f"{name}{known}。"
        if v.from_publication:
            return f"{name}{v.start_said}，但{v.published}日期不详，具体起始日无法确定。"
        return f"{name}没有写明施行日期。"
    if kind == "duration":
        if v.trial_years:
            tail = f"，即至{_cn(v.end)}" if v.end else f"；{v.published}日期不详，到期日无法确定"
            return f"{name}试行{_cn_count(v.trial_years)}年（{period or '施行日期不详'}{tail}）。"
        years = v.term_years or (_span_years(v.start, v.end) if v.start and v.end else None)
        if years:
            return f"{name}不是试行办法，有效期{_cn_count(years)}年：{known}。"
        if v.end:
            return f"{name}{known}。"
        if v.trial_open:
            return f"{name}{v.start_said}，没有写明试行期限，到期日无法确定。"
        return f"{name}没有写明有效期限，到期日无法确定。"
    if kind == "end" and not span:
        if v.end:
            status = "已到期" if as_of > v.end else "仍在有效期内"
            return f"{name}{known}；截至{_cn(as_of)}{status}。"
        if (v.trial_years or v.term_years) and not v.start:
            years = f"试行{_cn_count(v.trial_years)}年" if v.trial_years else f"有效期{_cn_count(v.term_years)}年"
            return f"{name}的到期日无法确定：{known}，{years}，但{v.published}日期不详。"
        return f"{name}没有写明到期日，到期日无法确定。"
    # status: in force at the date asked (or today)
    if v.start and when.last < v.start:
        return f"{when.said}{name}还未施行：{known}。"
    if v.end:
        if when.first > v.end:
            return f"不再有效。{name}{known}，{when.said}已经到期。"
        if when.last <= v.end and (v.start and when.first >= v.start):
            return f"有效。{name}{known}，{when.said}仍在有效期内。"
        if when.last > v.end:  # the period asked about straddles the end
            return f"{when.said}只有部分时间有效：{name}{known}，{_cn(v.end)}之后即到期。"
        return f"{name}{known}。"
    authority = (m.meta.get("city") or {}).get("authority") or "主管部门"
    if v.start and when.first >= v.start and not m.meta.get("validity_note"):
        return (f"已施行，没有写明到期日。{name}{period}，未规定有效期，"
                f"{when.said if span else '目前'}是否已被废止或修订请向{authority}确认。")
    head = f"无法确定{when.said}是否有效。" if span else "无法确定是否仍然有效。"
    if m.meta.get("validity_note"):
        return head + m.meta["validity_note"]
    reason = f"{v.published}日期不详" if v.from_publication and not v.start else "没有写明到期日"
    trial = f"试行{_cn_count(v.trial_years)}年" if v.trial_years else ""
    return (head + name + "，".join(p for p in (period, trial) if p) + f"，但{reason}，请向{authority}确认。")


def answer(kb: KnowledgeBase, question: str, text: str, scope: list[str], as_of: dt.date) -> Answer:
    """The validity of each measure in `scope`, labelled when there are several; `text` is the question
    normalised."""
    kind = _kind(text)
    span = asked_span(text, as_of)
    if span and kind in ("end", "start", "duration"):
        kind = "status"  # a date asked about: is it in force then
    parts, citations = [], []
    labelled = len(scope) > 1
    for mid in scope:
        m = kb.measures[mid]
        v = validity_of(m)
        lines = [("【" + m.city_short + "】" if labelled else "") + _lead(m, v, kind, span, as_of)]
        if v.text:
            lines.append(f"原文：“{v.text}”")
        if v.article is not None:
            lines.append(f"——{m.cite(v.article)}")
            citations.append(Citation(mid, v.article, m.cite(v.article)))
        extra = []
        if v.end is None and kind != "status" and m.meta.get("validity_note"):
            extra.append(m.meta["validity_note"])
        when = span.first if span else as_of
        new = successor(kb.measures, mid)
        if new is not None and (not new.meta.get("in_force_from") or new.meta["in_force_from"] <= when):
            since = new.meta.get("in_force_from")
            extra.append(f"该办法已被{new.citation_title}取代" + (f"（自{since.year}年{since.month}月{since.day}日起施行）" if since else "")
                         + "。")
        elif v.end and when > v.end and m.meta.get("successor_hint"):
            extra.append(m.meta["successor_hint"])
        if extra:
            lines.append("注：" + "".join(extra))
        parts.append("\n".join(lines))
    city = scope[0] if len(scope) == 1 else None
    a = Answer(question=question, city=city, abstained=False, answer="\n\n".join(parts), citations=citations,
               followups=[], reason="validity")
    return dialogue.traced(a, "validity", f"validity {kind}" + (f" at {span.first}..{span.last}" if span else "")
                           + ": " + ", ".join(f"{c.measure}:{c.article}" for c in citations))
