"""Facts of a self-check: their definitions (rules/facts.yaml) and how answers are read.

One reader serves the chat (what people type: 没有, 百分之十五, 0.15, 一千二百万, 2019年5月) and the
answers file of `policybot check` (YAML values: true, 15, 2019-05-10, or the same strings). Pure
functions: today's date is passed in where it matters.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.numerals import NUMERAL_CHARS, cn_to_int

RULES_DIR = Path(__file__).parent
TYPES = {"bool", "int", "percent", "share", "amount", "date", "place", "choice"}


class AnswerError(ValueError):
    """An answer that cannot be read as the fact's type; the message says how to write it (Chinese)."""


@dataclass(frozen=True)
class Fact:
    key: str
    type: str
    name: str
    ask: str
    example: str
    explain: str
    choices: dict[str, str] = field(default_factory=dict)
    words: dict[str, list[str]] = field(default_factory=dict)


@lru_cache(maxsize=4)
def load_facts(path: Path = RULES_DIR / "facts.yaml") -> dict[str, Fact]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    facts = {}
    for key, d in data.items():
        if d.get("type") not in TYPES:
            raise ValueError(f"{path.name}: fact {key} has unknown type {d.get('type')!r}")
        facts[key] = Fact(key, d["type"], d["name"], d["ask"], str(d.get("example", "")), d.get("explain", ""),
                          {str(k): str(v) for k, v in (d.get("choices") or {}).items()},
                          {str(k): list(v) for k, v in (d.get("words") or {}).items()})
    return facts


# ---- reading typed answers -------------------------------------------------------------------------
NO_WORDS = ("没有", "没", "无", "否", "不是", "不", "未", "非", "从未", "从来没", "no", "n", "false", "0", "✗", "×")
YES_WORDS = ("是", "有", "对", "是的", "有的", "对的", "嗯", "好", "具有", "具备", "发生过", "yes", "y", "true", "1", "✓", "√")
UNKNOWN_WORDS = ("不知道", "不清楚", "不确定", "说不好", "不晓得", "不了解", "未知", "跳过", "unknown", "skip")


def clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return re.sub(r"[\s。.!！~～,，;；]+$", "", text).strip()


def is_unknown(text: str) -> bool:
    return clean(text) in UNKNOWN_WORDS


def parse_bool(text: str) -> bool:
    t = clean(text)
    if t in NO_WORDS or t in YES_WORDS:
        return t in YES_WORDS
    if re.match(r"^(没|无|未|不|否|非|从未|从来没|并没|一直没)", t):
        return False
    if re.match(r"^(是|有|对|嗯|具有|具备|发生过|设有|设立了|成立了|已)", t):
        return True
    raise AnswerError("请回答“是”或“否”（也可以说“有”“没有”）。")


_NUM = rf"(?:\d+(?:\.\d+)?|[{NUMERAL_CHARS}]+(?:点[{NUMERAL_CHARS}]+)?)"
_AMOUNT_RE = re.compile(rf"({_NUM})\s*(亿|万|千)?\s*(元|块)?")
_NEGATIVE_RE = re.compile(r"(下降|减少|降低|下滑|负|亏损了|减|降了|跌)|^-")


def _number(token: str) -> float | None:
    token = token.strip()
    try:
        return float(token)
    except ValueError:
        pass
    whole, _, frac = token.partition("点")
    value = cn_to_int(whole) if whole else 0
    if value is None:
        return None
    if frac:
        digits = "".join(str(cn_to_int(ch)) for ch in frac if cn_to_int(ch) is not None)
        return float(f"{value}.{digits}") if digits else float(value)
    return float(value)


def _numbers(text: str) -> list[tuple[float, str]]:
    """Numbers in the text with their unit (亿/万/千/% or ''), Chinese numerals included."""
    t = clean(text).replace("％", "%").replace(",", "").replace("，", "")
    out = []
    for m in re.finditer(rf"百分之({_NUM})|({_NUM})\s*(%|亿|万|千)?", t):
        if m.group(1):
            value = _number(m.group(1))
            unit = "%"
        else:
            token, unit = m.group(2), m.group(3) or ""
            if not unit and token[-1] in "万亿" and len(token) > 1:  # 三百万 is 300 万, not 3,000,000 without a unit
                token, unit = token[:-1], token[-1]
            value = _number(token)
        if value is not None:
            out.append((value, unit))
    return out


def parse_percent(text: str) -> float:
    nums = [(v, u) for v, u in _numbers(text) if u in ("%", "")]
    if len(nums) != 1:
        raise AnswerError("请写一个百分数，例如：12%、百分之十、下降3%。")
    value = nums[0][0]
    if _NEGATIVE_RE.search(clean(text)):
        value = -abs(value)
    return value


def parse_amount(text: str) -> float:
    """An amount in 万元 (1200万 → 1200, 一千二百万 → 1200, 1.2亿 → 12000, 500000元 → 50)."""
    nums = _numbers(text)
    if len(nums) != 1 or nums[0][1] == "%":
        raise AnswerError("请写一个金额，例如：1200万元、一千二百万、1.2亿。")
    return _in_wan(*nums[0])


def _in_wan(value: float, unit: str) -> float:
    return {"亿": value * 10_000, "万": value, "千": value / 10, "": value / 10_000}.get(unit, value)


def parse_share(text: str) -> float:
    """A share in percent: 18%, 百分之十五, 0.15 (→ 15), or two amounts (服务收入300万，主营2000万 → 15)."""
    nums = _numbers(text)
    amounts = [(v, u) for v, u in nums if u in ("亿", "万", "千")]
    if len(amounts) == 2 and len(nums) == 2:
        part, whole = (_in_wan(*a) for a in amounts)
        if whole <= 0:
            raise AnswerError("主营业务收入不能为0。")
        return round(part / whole * 100, 2)
    if len(nums) != 1 or nums[0][1] not in ("%", ""):
        raise AnswerError("请写一个百分比，例如：18%、百分之十五、0.15，或“服务收入300万，主营2000万”。")
    value, unit = nums[0]
    if unit == "" and 0 < value < 1:  # 0.15 asked as a share means 15 %
        value *= 100
    if not 0 <= value <= 100:
        raise AnswerError("占比应在0%到100%之间，例如：18%。")
    return value


def parse_int(text: str) -> int:
    t = clean(text)
    if re.fullmatch(r"(没有|无|零|没|一个也没有|0)(个|项)?", t):
        return 0
    nums = _numbers(t)
    if len(nums) != 1 or nums[0][1] or nums[0][0] != int(nums[0][0]) or nums[0][0] < 0:
        raise AnswerError("请写一个整数，例如：3个、两个、0。")
    return int(nums[0][0])


_DATE_RE = re.compile(rf"^({_NUM})\s*(?:年|-|/|\.)\s*(?:({_NUM})\s*(?:月|-|/|\.)?\s*(?:({_NUM})\s*(?:日|号)?)?)?$")


def parse_date(text: str, today: dt.date | None = None) -> str:
    """A date as ISO text; a month or a year alone gives 'YYYY-MM' or 'YYYY' (a range, see date_range)."""
    if isinstance(text, dt.datetime):
        text = text.date()
    if isinstance(text, dt.date):
        value = text.isoformat()
    else:
        t = clean(text).replace("年份", "年").replace("份", "")
        t = re.sub(r"^(于|在|是)", "", t)
        t = re.sub(r"(成立|注册|注册成立|撤销|被撤销|的)+$", "", t)
        if re.fullmatch(r"\d{4}", t):
            t += "年"
        m = _DATE_RE.match(t)
        if not m:
            raise AnswerError("请写日期，例如：2019年5月10日、2019-05-10（记不清日子可写2019年5月）。")
        parts = [_number(g) if g else None for g in m.groups()]
        if any(p is not None and p != int(p) for p in parts):
            raise AnswerError("请写日期，例如：2019年5月10日、2019-05-10。")
        year, month, day = (int(p) if p is not None else None for p in parts)
        if year is not None and year < 100:
            year += 2000
        if not year or not 1900 <= year <= 2100:
            raise AnswerError("年份看起来不对，请写四位年份，例如：2019年5月10日。")
        try:
            if day is not None:
                value = dt.date(year, month, day).isoformat()
            elif month is not None:
                if not 1 <= month <= 12:
                    raise ValueError
                value = f"{year:04d}-{month:02d}"
            else:
                value = f"{year:04d}"
        except (ValueError, TypeError):
            raise AnswerError("这个日期不存在，请检查后重新输入，例如：2019年5月10日。") from None
    if today is not None and date_range(value)[0] > today:
        raise AnswerError("这个日期还没到，请检查后重新输入。")
    return value


def date_range(value: str) -> tuple[dt.date, dt.date]:
    """The first and last day a (possibly partial) ISO date can mean."""
    parts = [int(p) for p in str(value).split("-")]
    if len(parts) == 3:
        d = dt.date(*parts)
        return d, d
    if len(parts) == 2:
        y, m = parts
        return dt.date(y, m, 1), dt.date(y, m, calendar.monthrange(y, m)[1])
    return dt.date(parts[0], 1, 1), dt.date(parts[0], 12, 31)


def parse_choice(text: str, fact: Fact) -> str:
    t = clean(text)
    for key, label in fact.choices.items():
        if t in (key.lower(), label.lower(), label.lower().removesuffix("类")):
            return key
    for key, words in fact.words.items():
        if any(w in t for w in words):
            return key
    if len(t) <= 3:
        letters = [k for k in fact.choices if len(k) == 1 and k.lower() in t]
        if len(letters) == 1:
            return letters[0]
    raise AnswerError("请从这些选项中选一个：" + "、".join(fact.choices.values()) + "。")


def read(fact: Fact, value, today: dt.date | None = None):
    """A value of the fact's type from an answer (typed text or a YAML value); None stays None.

    Place names are returned as written; which city they belong to is the engine's question.
    """
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str) and is_unknown(value):
        return None
    t = fact.type
    if t == "bool":
        return value if isinstance(value, bool) else parse_bool(str(value))
    if t in ("percent", "share", "amount", "int") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if t == "int":
            if value != int(value) or value < 0:
                raise AnswerError("请写一个整数，例如：3。")
            return int(value)
        return float(value)
    if t == "int":
        return parse_int(str(value))
    if t == "percent":
        return parse_percent(str(value))
    if t == "share":
        return parse_share(str(value))
    if t == "amount":
        return parse_amount(str(value))
    if t == "date":
        return parse_date(value, today)
    if t == "choice":
        return parse_choice(str(value), fact)
    text = unicodedata.normalize("NFKC", str(value)).strip()
    if not text or len(text) > 50:
        raise AnswerError("请写注册地所在的城市或区县名称。")
    return text


def show(fact: Fact, value) -> str:
    """A value as the verdict card shows it."""
    if value is None:
        return "未回答"
    t = fact.type
    if t == "bool":
        return "是" if value else "否"
    if t in ("percent", "share"):
        return f"{value:g}%"
    if t == "amount":
        return f"{value:g}万元"
    if t == "int":
        return f"{value}个"
    if t == "choice":
        return fact.choices.get(value, str(value))
    return str(value)
