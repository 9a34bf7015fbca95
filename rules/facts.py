"""Facts of a self-check: their definitions (rules/facts.yaml) and how answers are read.

One reader serves the chat (what people type: 没有, 百分之十五, 0.15, 一千二百万, 2019年5月) and the
answers file of `policybot check` (YAML values: true, 15, 2019-05-10, or the same strings). Pure
functions: today's date is passed in where it matters.
"""
from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.numerals import cn_to_int

RULES_DIR = Path(__file__).parent
TYPES = {"bool", "int", "percent", "share", "amount", "date", "place", "choice"}


class AnswerError(ValueError):
    """An answer that cannot be read as the fact's type; the message says how to write it (Chinese)."""


class Impossible(AnswerError):
    """A value that was read but cannot be true (a share over 100 %, a date still to come, 2月30日)."""


class TextDateLoader(yaml.SafeLoader):
    """YAML where dates stay text, so that 2019-13-01 is reported by the fact reader, not by YAML."""
    yaml_implicit_resolvers = {k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
                               for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


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
    recent: bool = False  # a date of a recent event: 11月2日 is the last 2 November


@lru_cache(maxsize=4)
def load_facts(path: Path = RULES_DIR / "facts.yaml") -> dict[str, Fact]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    facts = {}
    for key, d in data.items():
        if d.get("type") not in TYPES:
            raise ValueError(f"{path.name}: fact {key} has unknown type {d.get('type')!r}")
        facts[key] = Fact(key, d["type"], d["name"], d["ask"], str(d.get("example", "")), d.get("explain", ""),
                          {str(k): str(v) for k, v in (d.get("choices") or {}).items()},
                          {str(k): list(v) for k, v in (d.get("words") or {}).items()}, bool(d.get("recent")))
    return facts


# ---- reading typed answers -------------------------------------------------------------------------
# How the reader works (the same for a chat answer, a value in the answers file, a CSV cell and a question):
#   1. the text is normalised (NFKC, lower case, 3,000 → 3000, Chinese numerals before 年/月/日 → digits);
#   2. dates are found first (absolute, two-digit years, relative to `today`), and their spans masked;
#   3. the rest is cut into number tokens, each with its unit (%, an amount in 万元, a count, a span of
#      time) and its kind: exact, a range (三四个, 3-4个), a lower bound (5个以上, 二十多个), an upper bound
#      (不到15%), an estimate (大概), or vague (几个, 好几个);
#   4. each fact reads the tokens it needs: a share from one percentage or from two amounts whose roles
#      come from their labels (主营/营收 → the whole, 服务… → the part), a growth from a percentage, a
#      phrase (翻了一番, 持平, 负增长) or two amounts of two years; a count from one count.
# What is impossible (a share over 100 %, service revenue above the total, a future date for a past
# event) or ambiguous (two counts, a range of percentages that straddles nothing, 几个) raises
# AnswerError, whose message says how to write it: the caller asks again, never guesses.
NO_WORDS = ("没有", "没", "无", "否", "不是", "不", "未", "非", "从未", "从来没", "没发生过", "从来没有", "一次也没有",
            "no", "n", "false", "0", "✗", "×", "不存在", "没有过", "都没有", "均无", "暂无")
YES_WORDS = ("是", "有", "对", "是的", "有的", "对的", "嗯", "好", "具有", "具备", "发生过", "yes", "y", "true", "1", "✓",
             "√", "有过", "存在", "属于", "当然", "当然是", "肯定", "算是")
UNKNOWN_WORDS = ("不知道", "不清楚", "不确定", "说不好", "不晓得", "不了解", "未知", "跳过", "unknown", "skip", "不记得",
                 "记不清", "忘了", "说不清", "没参评", "未参评", "没有参评", "没评过", "没有评")
_SUBJECT_RE = re.compile(r"^(我们|我司|我们公司|我们企业|本公司|公司|企业|我们厂|咱们|咱|应该|好像|大概|目前|现在|之前|以前|的确|确实|我)+")


@dataclass(frozen=True)
class Reading:
    """A fact as read: its value, and what the reader says about it. `inexact`: not a figure the person gave
    exactly (the lower bound of a range, 三四个 → 3; an estimate, 两个左右 → 2); the note says which."""
    value: object
    note: str = ""
    inexact: bool = False


def clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", str(text)).strip().lower()
    return re.sub(r"[\s。.!！~～,，;；]+$", "", text).strip()


def is_unknown(text: str) -> bool:
    t = clean(text)
    return t in UNKNOWN_WORDS or bool(_SUBJECT_RE.sub("", t) in UNKNOWN_WORDS and t)


_NO_LEAD = re.compile(r"^(一[次个项起件回](都|也)(没|不|未)|从来没有|从来没|从未|并没有|并没|一直没有|一直没|一次也没有|一次也没|都没有|都没|还没有|还没|尚未|暂未|"
                      r"没有|没|无|未|不曾|不|否|非)")
_COPULA = re.compile(r"^(不是|不属于|是|属于)")  # 是X: an answer only when X is what was asked (是制造业, not 是做贸易的)
_YES_LEAD = re.compile(r"^(是的|对的|对|嗯|算是|应该是|当然|肯定|有的|有过|有|具有|具备|发生过|出过|出了|设有|设立了|成立了|建立了|"
                       r"已经|已|正在被|正在接受|正在|被|存在)")
_FILLER_RE = re.compile(r"[过了的啊呀吧呢嘛哦\s，,。!！、]|一次|一回|几次|发生|出现|被|有|是|没|这种情况|这个|情况|我们|公司|企业")
# a later clause that denies what the question hinges on: 有过一次小事故，不算重大 → 否
_DENIAL_RE = re.compile(r"^(但|但是|不过|可是|只是)?(不算|不是|不属于|算不上|谈不上|够不上|达不到)(.+)$")


def parse_bool(text: str, fact: "Fact | None" = None) -> bool:
    """是/否 and the ways people say them. A negation (没有…, 还没建立) is 否; 有…, 被… (被列入, 被通报过) are 是;
    是X / 不是X count only where X is what the question asks (是制造业; 我们是做贸易的 and 是分公司 are asked
    again, never guessed). With `fact`: its words (rules/facts.yaml) and its own question's words are used, and a
    later clause denying the question's point (有过一次小事故，不算重大) decides."""
    t = clean(text)
    if t in NO_WORDS or t in YES_WORDS:
        return t in YES_WORDS
    t = _SUBJECT_RE.sub("", t) or t
    t = re.sub(r"^(法人|法定代表人|法人代表|老板|我们法人|我们老板)", "", t) or t
    if t in NO_WORDS or t in YES_WORDS:
        return t in YES_WORDS
    clauses = [c for c in re.split(r"[，,；;。]", t) if c]
    value = _polarity(clauses[0] if clauses else t, fact)
    if value is True and fact is not None:
        for clause in clauses[1:]:
            m = _DENIAL_RE.match(clause)
            if m and _about(fact, m.group(3)):
                return False
    return value


def _polarity(t: str, fact: "Fact | None") -> bool:
    m = _COPULA.match(t)
    if m:
        rest = t[m.end():]
        negated = re.match(r"^(非|不是|不属于|没有|不)", rest)  # 是非制造业 = 不是制造业
        core = rest[negated.end():] if negated else rest
        if fact is None or not _FILLER_RE.sub("", core) or _about(fact, core):
            return m.group(1).startswith("不") == bool(negated)
        raise AnswerError("请回答“是”或“否”（也可以说“有”“没有”）。")
    if _NO_LEAD.match(t):
        return False
    if fact is not None:  # the fact's own words (赚钱, 失信), the negative ones first (不赚钱)
        for key in ("false", "true"):
            if any(w in t for w in fact.words.get(key) or []):
                return key == "true"
    if _YES_LEAD.match(t):
        return True
    if fact is not None and _about(fact, t):  # 盈利的: the question's own words, said back
        return True
    raise AnswerError("请回答“是”或“否”（也可以说“有”“没有”）。")


def _about(fact: "Fact", rest: str) -> bool:
    """The words say what the question asked about: one of its own words (two characters at a time) is in them,
    fillers aside (是制造业, 列入过); 做贸易的 or 分公司 say something else."""
    content = re.split(r"[，,。；;]", rest)[0]
    content = _FILLER_RE.sub("", content)
    if not content:
        return True
    asked = fact.ask + fact.name
    pairs = [content[i:i + 2] for i in range(len(content) - 1)] or [content]
    return any(p in asked for p in pairs)


# ---- normalising and number tokens -------------------------------------------------------------------
_CN_DIGITS = "〇零一二两三四五六七八九壹贰叁肆伍陆柒捌玖"
_CN_RUN = f"[{_CN_DIGITS}十百千万亿点几拾佰仟]+"
_VAGUE_WORDS = ("好几", "若干", "很多", "不少(?!于)", "好多", "许多", "一些", "多个", "几个", "几项", "挺多", "少量", "大量")


def normalise(text: str) -> str:
    """Text as the reader sees it (NFKC, lower case, 3,000 → 3000, date numerals as digits)."""
    return _normalise(text)


def _normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", str(text)).lower().replace("％", "%")
    t = re.sub(r"(?<=\d)[,，](?=\d{3}(?!\d))", "", t)  # 3,000 → 3000 (not 3，4个: a list)
    t = t.replace("块钱", "元").replace("块", "元").replace("个亿", "亿")
    t = re.sub(r"(?<=\d)\s*w(?![a-z])", "万", t)  # 400w: 400万, as people type it
    t = re.sub(r"(?<![\d一二三四五六七八九十])([一二两三四五六七八九\d])成([一二三四五六七八九\d])?(?![\d%])",
               lambda m: f"{(cn_to_int(m.group(1)) or 0) * 10 + (cn_to_int(m.group(2)) or 0) if m.group(2) else (cn_to_int(m.group(1)) or 0) * 10}%", t)
    t = re.sub(r"^(?:一半|一半左右)$", "50%", t)
    # colloquial magnitudes: 一亿二 = 1.2亿, 三万五 = 3.5万, 三千五 = 3500, 五百五 = 550
    digit = "一二两三四五六七八九"
    t = re.sub(rf"(?<![{digit}十百千万亿\d.])([{digit}]|\d+)(亿|万)([{digit}])(?![{digit}十百千万亿\d])",
               lambda m: f"{_digits(m.group(1))}.{_digits(m.group(3))}{m.group(2)}", t)
    t = re.sub(rf"(?<![{digit}十百千万亿\d.])([{digit}])千([{digit}])(?![{digit}十百千\d])",
               lambda m: str(_digits(m.group(1)) * 1000 + _digits(m.group(2)) * 100), t)
    t = re.sub(rf"(?<![{digit}十百千万亿\d.])([{digit}])百([{digit}])(?![{digit}十百千\d])",
               lambda m: str(_digits(m.group(1)) * 100 + _digits(m.group(2)) * 10), t)
    # Chinese numerals of a date: 二〇一九年 → 2019年, 五月十日 → 5月10日 (a year needs 2 or 4 digits)
    t = re.sub(f"([{_CN_DIGITS}]{{4}}|[{_CN_DIGITS}]{{2}})(?=年)",
               lambda m: "".join(str(cn_to_int(c)) for c in m.group(1)), t)
    t = re.sub(r"([一二三四五六七八九十]{1,3})(?=月)", lambda m: str(cn_to_int(m.group(1)) or m.group(1)), t)
    t = re.sub(r"(?<=月)([一二三四五六七八九十]{1,3})(?=[日号])", lambda m: str(cn_to_int(m.group(1)) or m.group(1)), t)
    t = re.sub(r"(?<=[周期拜])天", "日", t)
    return t


def _digits(x: str) -> int:
    return int(x) if x.isdigit() else (cn_to_int(x) or 0)


@dataclass
class Num:
    lo: float
    hi: float
    unit: str  # % | 万 (an amount, in 万元) | 个 | 年 | 月 | 日 | 倍 | 成 | '' (none)
    start: int
    end: int
    kind: str = "exact"  # exact | range | at_least | more | below | about | vague
    sign: int = 1

    @property
    def value(self) -> float:
        return self.lo


_UNIT_RE = re.compile(r"\s*(?P<mod>多|余|来|出头)?\s*(?P<unit>个百分点|百分点|个点|%|千万|百万|亿元|万元|亿|万|千|元|个月|个|项|家|次|"
                      r"年|月|日|号|天|周|倍|成|番)?\s*(?P<post>以上|及以上|或以上|以下|以内|左右|上下|不到|多一点|多点|出头|多)?")
_PRE_RE = {
    "at_least": re.compile(r"(不少于|不低于|至少|最少|起码|最低|达到|够了|满)\s*$"),
    "more": re.compile(r"(超过|多于|大于|高于|超出|过了)\s*$"),
    "below": re.compile(r"(不到|不足|少于|低于|小于|未达到|没达到|没到|达不到|不够|将近|接近|未满|不满|差一点|差点|快要|快到|快)\s*$"),
    "about": re.compile(r"(约|大约|大概|差不多|估计|预计|约为|大致|应该是|左右是)\s*$"),
}
_NUM_RE = re.compile(rf"(?P<sign>(?<![0-9a-z%])[-−])?(?P<pct>百分之)?(?P<a>\d+(?:\.\d+)?)|(?P<pct2>百分之)?(?P<c>{_CN_RUN})")


def _cn_number(run: str) -> tuple[float, float, str] | None:
    """A Chinese numeral run → (lo, hi, kind); None when it is not a number (一, 几 alone …)."""
    if "几" in run:
        m = re.fullmatch(r"([一二两三四五六七八九]?)十几", run)
        if m:
            base = (cn_to_int(m.group(1)) or 1) * 10
            return base + 1, base + 9, "range"
        return 0, 0, "vague"
    m = re.fullmatch(r"([一两二三四五六七八九])([两二三四五六七八九])([十百千]?)", run)
    if m:
        a, b = DIGITS_OF[m.group(1)], DIGITS_OF[m.group(2)]
        if b == a + 1:
            scale = {"": 1, "十": 10, "百": 100, "千": 1000}[m.group(3)]
            return a * scale, b * scale, "range"
    whole, _, frac = run.partition("点")
    w = cn_to_int(whole) if whole else 0
    if w is None:
        return None
    if frac:
        digits = "".join(str(DIGITS_OF[c]) for c in frac if c in DIGITS_OF)
        if len(digits) != len(frac):
            return None
        return float(f"{w}.{digits}"), float(f"{w}.{digits}"), "exact"
    return float(w), float(w), "exact"


DIGITS_OF = {c: cn_to_int(c) for c in _CN_DIGITS}


def tokens(text: str, masked: list[tuple[int, int]] = ()) -> list[Num]:
    """The number tokens of normalised `text`, outside the `masked` spans (dates)."""
    out: list[Num] = []
    for m in _NUM_RE.finditer(text):
        if any(s <= m.start() < e for s, e in masked) or (out and m.start() < out[-1].end):
            continue  # inside a date, or inside the unit of the number before (18个百分点)
        pct = bool(m.group("pct") or m.group("pct2"))
        if m.group("a") is not None:
            lo = hi = float(m.group("a"))
            kind = "exact"
            run = m.group("a")
        else:
            run = m.group("c")
            if re.search(r"[万亿]", run) and "点" not in run and "几" not in run and not re.fullmatch(r"[万亿]+", run):
                whole = cn_to_int(run)  # 两千四百万, 一亿二千万: the whole amount, in 元
                if whole is None:
                    continue
                tail = re.match(r"\s*元?", text[m.end():])
                out.append(Num(whole / 10_000, whole / 10_000, "万", m.start(), m.end() + tail.end()))
                continue
            big = re.search(r"(亿|万)$", run)
            core = run[: big.start()] if big and len(run) > 1 else run
            if core == run and big:  # 万 alone is not a number
                continue
            if core in ("点",) or core.strip("点") == "":
                continue
            parsed = _cn_number(core)
            if parsed is None:
                continue
            lo, hi, kind = parsed
            if core != run:  # 一点二亿: the magnitude is the unit
                unit_scale = {"亿": 10000, "万": 1}[run[len(core):]]
                tail = re.match(r"\s*元?", text[m.end():])
                out.append(Num(lo * unit_scale, hi * unit_scale, "万", m.start(), m.end() + tail.end(), kind))
                continue
            if len(core) == 1 and core in "一两" and not pct:  # 一家, 两年 … read only with a unit below
                pass
        after = _UNIT_RE.match(text, m.end())
        unit = after.group("unit") or ""
        mod, post = after.group("mod"), after.group("post")
        if m.group("c") is not None and not unit and not pct and not mod and not post \
                and re.match(r"[\u4e00-\u9fff]", text[m.end():m.end() + 1]) and len(m.group("c")) == 1 \
                and text[m.end()] not in "到至或和与跟、多来余左上以":
            continue  # 统一, 一站式, 零件, 三包: a numeral inside a word is no number
        end = after.end() if (unit or mod or post) else m.end()
        sign = -1 if m.group("sign") else 1
        scale = 1.0
        if pct or unit in ("%", "个百分点", "百分点", "个点"):
            unit = "%"
        elif unit in ("千万", "百万", "亿", "亿元", "万", "万元", "千", "元"):
            scale = {"千万": 1000, "百万": 100, "亿": 10000, "亿元": 10000, "万": 1, "万元": 1, "千": 0.1,
                     "元": 0.0001}[unit]
            unit = "万"
        elif unit in ("个", "项", "家", "次"):
            unit = "个"
        elif unit in ("号", "天"):
            unit = "日"
        elif unit == "个月":
            unit = "月"
        lo, hi = lo * scale, hi * scale
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi > 1e12:
            lo, hi, kind = 0, 0, "vague"  # no figure of an enterprise: asked again
        if mod in ("多", "余", "出头") or post in ("以上", "及以上", "或以上", "多", "多一点", "多点", "出头"):
            kind = "at_least" if kind == "exact" else kind
            if mod in ("多", "余", "出头") and unit in ("个", ""):
                lo = lo + 1 if lo == int(lo) and post != "以上" else lo
        elif mod == "来":
            kind = "at_least" if kind == "exact" else kind
        elif post in ("以下", "以内", "不到"):
            kind = "below"
        elif post in ("左右", "上下"):
            kind = "about" if kind == "exact" else kind
        before = text[max(0, m.start() - 5): m.start()]
        for k, rx in _PRE_RE.items():
            if kind == "exact" and rx.search(before):
                kind = k
        if kind == "more":
            kind, lo = "at_least", (lo + 1 if unit == "个" else lo)
        out.append(Num(lo, hi, unit, m.start(), end, kind, sign))
    return _join_ranges(text, out)


def _join_ranges(text: str, nums: list[Num]) -> list[Num]:
    """3-4个, 三到四个, 10%到12%, 3、4个: two numbers joined as a range, never as one number."""
    out: list[Num] = []
    for n in nums:
        if out:
            prev = out[-1]
            gap = text[prev.end:n.start]
            from_to = re.search(r"(从|由)\s*$", text[:prev.start])  # 从500万到600万: two figures, not a range
            if re.fullmatch(r"\s*(-|~|～|—|到|至|、|或|或者)\s*", gap) and (prev.unit == n.unit or "" in (prev.unit, n.unit)) \
                    and prev.kind == "exact" and n.lo >= prev.lo and not from_to:
                unit = n.unit or prev.unit
                out[-1] = Num(prev.lo, n.hi, unit, prev.start, n.end, "range", prev.sign)
                continue
        out.append(n)
    return out


# ---- dates ---------------------------------------------------------------------------------------------
_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0, "2": 1, "3": 2, "4": 3,
            "5": 4, "6": 5, "7": 6}
_REL_YEAR = {"今年": 0, "本年": 0, "去年": -1, "上年": -1, "前年": -2, "大前年": -3, "明年": 1, "后年": 2}
_REL_MONTH = {"这个月": 0, "本月": 0, "这月": 0, "上个月": -1, "上月": -1, "上上个月": -2, "上上月": -2, "下个月": 1,
              "下月": 1}
_REL_WEEK = {"这周": 0, "本周": 0, "这个星期": 0, "这星期": 0, "上周": -1, "上个星期": -1, "上星期": -1, "上礼拜": -1,
             "上个礼拜": -1, "下周": 1, "下个星期": 1, "下星期": 1}
_REL_DAY = {"今天": 0, "昨天": -1, "前天": -2, "大前天": -3, "明天": 1, "后天": 2}
_DATE_PATTERNS = [
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s*(?:年|-|/|\.)\s*(\d{1,2})\s*(?:月|-|/|\.)\s*(\d{1,2})\s*(?:日|号)?(?!\d)")),
    ("ymd8", re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)")),
    ("ymd2", re.compile(r"(?<![\d.])(\d{2})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*(?:日|号)?")),
    ("ym", re.compile(r"(?<!\d)(\d{4})\s*(?:年的?|-|/|\.)\s*(\d{1,2})\s*(?:月份|月)?(?![\d.])(?!\s*(?:个|%|万|年))")),
    ("ym2", re.compile(r"(?<![\d.])(\d{2})\s*年\s*(\d{1,2})\s*月(?!\d)")),
    ("y", re.compile(r"(?<!\d)(\d{4})\s*(?:年份|年度|年)?(?P<part>底|末|初|年底|年末|年初)?(?![\d%万个.])")),
    ("y2", re.compile(r"(?<![\d.])(\d{2})\s*年(?P<part>底|末|初)?(?=成立|注册|那|的时候|底|末|初|$)")),
    ("rel_y", re.compile(r"(大前年|今年|本年|去年|上年|前年|明年|后年)(?:的)?\s*(?:(\d{1,2})\s*月(?:份)?\s*(?:(\d{1,2})\s*(?:日|号))?"
                         r"|(?P<part>底|末|初|年底|年末|年初))?")),
    ("rel_m", re.compile(r"(上上个月|上上月|上个月|上月|这个月|本月|这月|下个月|下月)(?:的)?\s*(?:(\d{1,2})\s*(?:日|号))?"
                         r"(?P<part>初|底|末)?")),
    ("rel_w", re.compile(r"(上个星期|上个礼拜|上星期|上礼拜|上周|这个星期|这星期|这周|本周|下个星期|下星期|下周)"
                         r"\s*([一二三四五六日天1-7])?")),
    ("rel_d", re.compile(r"(大前天|前天|昨天|今天|明天|后天)")),
    ("ago", re.compile(r"(\d+|[一二两三四五六七八九十]+)\s*(天|周|个星期|个礼拜|个月)(?:以)?前")),
    ("md", re.compile(r"(?<![\d年.])(\d{1,2})\s*月\s*(\d{1,2})\s*(?:日|号)")),
    ("m", re.compile(r"(?<![\d年.])(\d{1,2})\s*月份?(?![\d日号个])")),
]


@dataclass
class DateFound:
    start: int
    end: int
    value: str | None  # ISO (YYYY-MM-DD, YYYY-MM or YYYY), or None when the date does not exist
    problem: str = ""
    assumed_year: bool = False


def _iso(year: int, month: int | None = None, day: int | None = None) -> str:
    if not 1900 <= year <= 2100:
        raise ValueError("year")
    if day is not None:
        return dt.date(year, month, day).isoformat()
    if month is not None:
        if not 1 <= month <= 12:
            raise ValueError("month")
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}"


def _part(value_year: int, part: str | None) -> tuple[int | None, str | None]:
    if not part:
        return None, None
    if part.endswith(("底", "末")):
        return 12, None
    return 1, None


def _two_digit_year(y: int, today: dt.date | None) -> int:
    now = (today or dt.date(2026, 1, 1)).year
    year = 2000 + y
    return year - 100 if year > now else year


def _month_back(today: dt.date, months: int) -> tuple[int, int]:
    n = today.year * 12 + today.month - 1 + months
    return n // 12, n % 12 + 1


def find_dates(text: str, today: dt.date | None = None) -> list[DateFound]:
    """Every date in normalised text, earliest pattern wins where two overlap."""
    found: list[DateFound] = []
    taken: list[tuple[int, int]] = []
    for kind, rx in _DATE_PATTERNS:
        for m in rx.finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            try:
                value, assumed = _date_of(kind, m, today)
            except (ValueError, TypeError, OverflowError):
                found.append(DateFound(m.start(), m.end(), None, "这个日期不存在，请检查后重新输入，例如：2019年5月10日。"))  # noqa: E501
                taken.append((m.start(), m.end()))
                continue
            if value is None:
                continue
            found.append(DateFound(m.start(), m.end(), value, "", assumed))
            taken.append((m.start(), m.end()))
    found.sort(key=lambda d: d.start)
    return found


def _date_of(kind: str, m: re.Match, today: dt.date | None) -> tuple[str | None, bool]:
    g = m.groups()
    if kind in ("ymd", "ymd8"):
        return _iso(int(g[0]), int(g[1]), int(g[2])), False
    if kind == "ymd2":
        return _iso(_two_digit_year(int(g[0]), today), int(g[1]), int(g[2])), False
    if kind == "ym":
        return _iso(int(g[0]), int(g[1])), False
    if kind == "ym2":
        return _iso(_two_digit_year(int(g[0]), today), int(g[1])), False
    if kind in ("y", "y2"):
        year = int(g[0]) if kind == "y" else _two_digit_year(int(g[0]), today)
        month, _ = _part(year, m.group("part"))
        return _iso(year, month), False
    if today is None:
        return None, False  # a relative date needs today's date
    if kind == "rel_y":
        year = today.year + _REL_YEAR[g[0]]
        if g[1]:
            return _iso(year, int(g[1]), int(g[2]) if g[2] else None), False
        month, _ = _part(year, m.group("part"))
        return _iso(year, month), False
    if kind == "rel_m":
        year, month = _month_back(today, _REL_MONTH[g[0]])
        if g[1]:
            return _iso(year, month, int(g[1])), False
        return _iso(year, month), False
    if kind == "rel_w":
        if not g[1]:
            return None, False  # a whole week is no date
        monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=_REL_WEEK[g[0]])
        return (monday + dt.timedelta(days=_WEEKDAY[g[1]])).isoformat(), False
    if kind == "rel_d":
        return (today + dt.timedelta(days=_REL_DAY[g[0]])).isoformat(), False
    if kind == "ago":
        n = int(g[0]) if g[0].isdigit() else (cn_to_int(g[0]) or 0)
        if g[1] in ("个星期", "个礼拜"):
            return (today - dt.timedelta(weeks=n)).isoformat(), False
        if g[1] == "天":
            return (today - dt.timedelta(days=n)).isoformat(), False
        if g[1] == "周":
            return (today - dt.timedelta(weeks=n)).isoformat(), False
        year, month = _month_back(today, -n)
        return _iso(year, month), False
    if kind == "md":  # no year: the last such day up to today (a past event)
        month, day = int(g[0]), int(g[1])
        dt.date(2000, month, day)  # exists at all (29 Feb in a leap year)
        year = today.year if (month, day) <= (today.month, today.day) else today.year - 1
        return _iso(year, month, day), True
    if kind == "m":
        month = int(g[0])
        if not 1 <= month <= 12:
            return None, False
        year = today.year if month <= today.month else today.year - 1
        return _iso(year, month), True
    return None, False


_DATE_WORDS_RE = re.compile(r"(于|在|是|为|大概|大约|约|应该是|我们|我司|公司|企业|成立|注册|注册成立|成立于|注册于|营业执照上|"
                            r"执照上|写的是|写的|写着|上面|显示|日期|时间|撤销|被撤销|撤的|撤了|更名|改名|重组|授牌|认定|获评|拿到|完成|办完|办好|手续|"
                            r"的|了|是在|那天|左右|前后|时候|月初|月底|月末|月中|上旬|中旬|下旬|初|底|末|上午|下午|晚上|早上|中午|左右|吧|呢|啊|哦|嗯|:|：|,|，|\s)+")


def parse_date(text, today: dt.date | None = None, past: bool = True, year_needed: bool = False) -> str:  # noqa: C901
    """A date as ISO text; a month or a year alone gives 'YYYY-MM' or 'YYYY' (a range, see date_range).

    `past`: the date of something that has happened; a date after `today` is refused. `year_needed`:
    a day without a year (3月15日) is refused rather than placed in the last twelve months.
    """
    if isinstance(text, dt.datetime):
        text = text.date()
    if isinstance(text, dt.date):
        value = text.isoformat()
        if not 1900 <= text.year <= 2100:
            raise AnswerError("年份看起来不对，请写四位年份，例如：2019年5月10日。")
    else:
        t = _normalise(text).strip()
        dates = find_dates(t, today)
        rest = t
        for d in reversed(dates):
            rest = rest[:d.start] + " " + rest[d.end:]
        if len(dates) != 1 or _DATE_WORDS_RE.sub("", rest).strip():
            if re.search(r"(\d+|[一二两三四五六七八九十半]+)\s*(年|个月)(多|半)?(前|了|以前)", t):
                raise AnswerError("请写具体日期，例如：2019年5月10日（记不清日子可写2019年5月）。")
            if len(dates) > 1:
                raise AnswerError("只写一个日期，例如：2019年5月10日。")
            raise AnswerError("请写日期，例如：2019年5月10日、2019-05-10（记不清日子可写2019年5月）。")
        d = dates[0]
        if d.value is None:
            raise Impossible(d.problem)
        if d.assumed_year and year_needed:
            raise AnswerError("请写上年份，例如：2019年5月10日。")
        value = d.value
    if past and today is not None and date_range(value)[0] > today:
        raise Impossible("这个日期还没到，请检查后重新输入。")
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


# ---- numbers of the facts ----------------------------------------------------------------------------
_TOTAL_WORDS = ("主营业务收入", "主营收入", "主营业务", "主营", "营业收入", "营收", "总收入", "销售收入", "销售额", "营业额",
                "收入总额", "总营收", "总共", "总额", "一共", "全部收入", "全年收入", "产值")
_PART_WORDS = ("服务", "其中")
_NEG_RE = re.compile(r"(下降|减少|降低|下滑|降了|减了|跌|回落|缩水|负增长|负|少了|掉了|减)")  # 亏 is a loss, not a fall
_GROWTH_WORD_RE = re.compile(r"(增长|增加|涨|提高|提升|上升|多了|增幅|同比|上涨|增)")


def _scan(text) -> tuple[str, list[Num]]:
    t = _normalise(text)
    masked = [(d.start, d.end) for d in find_dates(t) if d.value]  # absolute dates only (no today here)
    return t, tokens(t, masked)


def _role(label: str, nearest_end: bool = True) -> str | None:
    """The role the label's role word nearest to the number gives it (the last word of the label before
    a number, the first of the label after it): 服务… → the part, 主营/营收… → the whole, 其中 → the part."""
    hits = [(m.start(), m.end(), "other") for m in _SPENT_RE.finditer(label)]  # money spent is no revenue
    for word, role in [("服务", "part"), ("其中", "part")] + [(w, "whole") for w in _TOTAL_WORDS]:
        for m in re.finditer(word, label):
            hits.append((m.start(), m.end(), role))
    if not hits:
        return None
    return (max(hits, key=lambda h: h[1]) if nearest_end else min(hits, key=lambda h: h[0]))[2]


def _labels(text: str, nums: list[Num]) -> list[str | None]:
    """The role of each amount: from the words before it in its clause, else the words after it."""
    roles = []
    for i, n in enumerate(nums):
        lo = nums[i - 1].end if i else 0
        before = re.split(r"[，,；;。、\s]", text[lo:n.start])[-1]
        role = _role(before)
        if role is None:
            hi = nums[i + 1].start if i + 1 < len(nums) else len(text)
            after = re.split(r"[，,；;。\s]", text[n.end:hi])[0]
            role = _role(after, nearest_end=False)
        roles.append(role)
    return roles


def _amounts_of(nums: list[Num]) -> list[Num]:
    """Amounts: tokens in 万元, and bare numbers among them (营收3000万服务400: the unit is shared)."""
    if not any(n.unit == "万" for n in nums):
        return []
    return [n for n in nums if n.unit == "万" or (n.unit == "" and n.kind == "exact")]


def _exact(n: Num, what: str) -> float:
    if n.kind == "vague":
        raise AnswerError(f"请写一个具体的{what}。")
    if n.kind == "below":
        raise AnswerError(f"“不到”多少没法判断，请写具体的{what}。")
    return n.lo


def share_reading(text) -> Reading:
    """A share in percent: 18%, 百分之十五, 0.15 (→ 15), 3成, 400/3000, or two amounts in any order and wording
    (主营3000万，服务收入400万 → 13.33)."""
    t, nums = _scan(text)
    frac = re.search(r"([\d.]+|[一二三四五六七八九十]+)\s*分之\s*([\d.]+|[一二三四五六七八九十]+)", t)
    if frac:
        whole, part = (float(x) if x[0].isdigit() else cn_to_int(x) for x in frac.groups())
        if not whole or part is None or part > whole:
            raise Impossible("占比应在0%到100%之间，例如：18%。")
        return Reading(round(part / whole * 100, 2))
    amounts = _amounts_of(nums)
    if not amounts and len(nums) == 2 and all(n.unit == "" for n in nums) \
            and re.fullmatch(r"\s*/\s*", t[nums[0].end:nums[1].start]):
        amounts = nums  # 400/3000: the part over the whole
    if len(amounts) >= 2:
        if len(amounts) > 2:
            raise AnswerError("请只写两个金额：服务收入和主营业务收入，例如：“主营3000万，服务收入400万”。")
        roles = _labels(t, amounts)
        slash = re.fullmatch(r"\s*/\s*", t[amounts[0].end:amounts[1].start])
        if slash and roles == [None, None]:
            roles = ["part", "whole"]
        if roles.count("part") == 1 and roles.count(None) == 1:
            roles = ["whole" if r is None else r for r in roles]
        # an amount without a label is the whole beside a labelled part (3000万，其中服务400万), never the part
        # beside a labelled whole (营收1亿，我们9000万 says nothing of service revenue)
        if sorted(map(str, roles)) != ["part", "whole"]:
            raise AnswerError("请说明哪个是服务收入、哪个是主营业务收入，例如：“主营3000万，服务收入400万”。")
        part = amounts[roles.index("part")]
        whole = amounts[roles.index("whole")]
        if any(a.kind not in ("exact", "about") for a in amounts):
            raise AnswerError("请写具体金额，例如：“主营3000万，服务收入400万”。")
        p, w = _exact(part, "金额"), _exact(whole, "金额")
        if part.unit == "" and whole.unit == "万" or whole.unit == "" and part.unit == "万":
            pass  # 营收3000万服务400: the unit is shared
        if w <= 0:
            raise Impossible("主营业务收入不能为0。")
        if p > w:
            raise Impossible("服务收入不能超过主营业务收入，请核对这两个金额（例如：“主营3000万，服务收入400万”）。")
        return Reading(round(p / w * 100, 2))
    if len(amounts) == 1 and sum(1 for n in nums if n.unit == "%") == 1:
        nums = [n for n in nums if n.unit == "%"]  # 主营3000万，服务收入占13%: the share is said
        amounts = []
    if len(amounts) == 1:
        raise AnswerError("还需要另一个金额：请写服务收入和主营业务收入两个数，例如：“主营3000万，服务收入400万”，或直接写占比。")
    pcts = [n for n in nums if n.unit in ("%", "成", "")]
    pcts = [n for n in pcts if not (n.unit == "" and n.kind == "exact" and n.lo >= 1900)]
    if len(pcts) != 1 or len(nums) != 1:
        raise AnswerError("请写一个百分比，例如：18%、百分之十五、0.15，或“主营3000万，服务收入400万”。")
    n = pcts[0]
    value = _exact(n, "占比")
    if n.unit == "" and _role(t) is not None:  # 主营业务收入5: an amount without its unit, not a share
        raise AnswerError("请写占比（例如：18%），或服务收入和主营业务收入两个金额（例如：“主营3000万，服务收入400万”）。")
    if n.unit == "成":
        value *= 10
    elif n.unit == "" and 0 < value < 1:  # 0.15 asked as a share means 15 %
        value *= 100
    if n.sign < 0 or not 0 <= value <= 100 or n.hi > 100:
        raise Impossible("占比应在0%到100%之间，例如：18%。")
    if n.kind == "range":
        return Reading(value, f"按下限{value:g}%计算", True)
    if n.kind == "at_least":
        return Reading(value, f"按{value:g}%（下限）计算", True)
    return Reading(value, f"约数，按{value:g}%计算", True) if n.kind == "about" else Reading(value)


def parse_share(text: str) -> float:
    return share_reading(text).value


_FAN_RE = re.compile(r"翻了?\s*([一两二三四五\d])\s*番|翻(了)?番|翻(了)?一?倍")
_TIMES_RE = re.compile(r"(增长|增加|涨|提高)了?\s*([\d.]+|[一两二三四五六七八九十]+)\s*倍")
_MULT_RE = re.compile(r"是\s*(?:去年|上年|前年|上一年|之前|以前|原来)?的?\s*([\d.]+|[一两二三四五六七八九十]+(?:点[一二三四五六七八九])?)\s*倍")
_FLAT_RE = re.compile(r"持平|没变|没有变化|基本不变|零增长|没增长|没有增长|不增不减|没涨|没有涨|原地踏步|一样")
_YEAR_RANK = {"今年": 0, "本年": 0, "最近一年": 0, "当年": 0, "去年": -1, "上年": -1, "上一年": -1, "前年": -2,
              "大前年": -3}


def growth_reading(text) -> Reading:
    """Growth in percent: 12%, 增长百分之十, 下降3%, -2%, 持平 (0), 翻了一番 (100), 负增长 (“<0”), or two
    amounts of two years (从2000万增长到2300万; 去年2300万，前年2000万 → 15)."""
    t, nums = _scan(text)
    if isinstance(text, (int, float)):
        return Reading(float(text))
    m = _FAN_RE.search(t)
    if m:
        times = cn_to_int(m.group(1)) if m.group(1) else 1
        return Reading(float((2 ** times - 1) * 100))
    m = _TIMES_RE.search(t)
    if m:
        k = float(m.group(2)) if m.group(2)[0].isdigit() else cn_to_int(m.group(2))
        return Reading(float(k * 100))
    m = _MULT_RE.search(t)
    if m:
        raw = m.group(1)
        k = float(raw) if raw[0].isdigit() else (_cn_number(raw) or (None,))[0]
        if k is None:
            raise AnswerError("请写增长的百分比，例如：12%、下降3%。")
        return Reading(round((k - 1) * 100, 2))
    if re.search(r"减半|少了一半|降了一半|下降了?一半|减少了?一半", t):
        return Reading(-50.0)
    pcts = [n for n in nums if n.unit in ("%", "") and not (n.unit == "" and n.lo >= 1900)]
    amounts = _amounts_of(nums)
    if len(amounts) >= 2 and not any(n.unit == "%" for n in nums):
        return _growth_of_two(t, amounts)
    if sum(1 for n in nums if n.unit == "%") == 1 and len(amounts) <= 1:
        nums = pcts = [n for n in nums if n.unit == "%"]  # 去年营收2300万，增长了15%: the percentage is the growth
    if re.search(r"扭亏|亏损.*(盈利|赚)|由亏|从亏", t):
        raise AnswerError("由亏转盈算不出增长率，请写利润增长的百分比，或两年的利润金额。")
    if not nums:
        if _FLAT_RE.search(t) and re.search(r"略增|略有增|微增|略降|略有下降|微降|小幅", t):
            raise AnswerError("请写具体的增长百分比，例如：增长2%、下降1%。")
        if _FLAT_RE.search(t):
            return Reading(0.0)
        if _NEG_RE.search(t):
            return Reading("<0", "下降（未给出幅度）")
        raise AnswerError("请写一个百分数，例如：12%、增长百分之十、下降3%、持平。")
    if len(pcts) == 2 and len(nums) == 2:  # 去年增长20%，前年增长10%: the growth of the latest year is the one asked
        ranks = [_year_rank(t, pcts, i) for i in range(2)]
        if None not in ranks and ranks[0] != ranks[1]:
            latest = pcts[0] if ranks[0] > ranks[1] else pcts[1]
            lo = pcts[0].end if latest is pcts[1] else 0
            hi = pcts[1].start if latest is pcts[0] else len(t)
            r = growth_reading(t[lo:hi])
            return Reading(r.value, "取最近一年的增长率" + (f"，{r.note}" if r.note else ""), r.inexact)
    if len(pcts) != 1 or len(nums) != 1:
        raise AnswerError("请写一个百分数，例如：12%、增长百分之十、下降3%。")
    n = pcts[0]
    value = _exact(n, "百分数")
    if n.unit == "" and 0 < value < 1:
        raise AnswerError("请写成百分数，例如：12%（0.12 是 12% 还是 0.12%？）。")
    clause_start = max([t.rfind(c, 0, n.start) for c in "，,；;。"] + [-1]) + 1
    negative = n.sign < 0 or bool(_NEG_RE.search(t[clause_start:n.start])) or bool(_NEG_RE.search(t[n.end:n.end + 4]))
    if negative:
        value = -abs(value)
    if n.kind == "range":
        if negative:
            return Reading(-abs(n.hi), f"按降幅上限{abs(n.hi):g}%计算", True)
        return Reading(value, f"按下限{value:g}%计算", True)
    if n.kind == "at_least":
        if negative:
            raise AnswerError("请写具体的降幅，例如：下降3%。")
        return Reading(value, f"按{value:g}%（下限）计算", True)
    return Reading(value, f"约数，按{value:g}%计算", True) if n.kind == "about" else Reading(value)


def _year_rank(t: str, nums: list[Num], i: int) -> int | None:
    """Which year a figure is of, from the words of its clause before it (去年 -1, 前年 -2, 2023年 2023)."""
    lo = nums[i - 1].end if i else 0
    label = re.split(r"[，,；;。\s]", t[lo:nums[i].start])[-1]
    year = re.search(r"(\d{4})\s*年", label)
    if year:
        return int(year.group(1))
    return next((r for w, r in sorted(_YEAR_RANK.items(), key=lambda x: -len(x[0])) if w in label), None)


def _growth_of_two(t: str, amounts: list[Num]) -> Reading:
    if len(amounts) > 2:
        raise AnswerError("请写两年的金额，例如：“从2000万增长到2300万”。")
    a, b = amounts
    gap = t[a.end:b.start]
    if re.search(r"(增长|增加|涨|提高|上升|降|减少|减|跌|下滑|变成|变为|到|至)", gap) or re.search(r"(从|由)\s*$", t[:a.start]):
        prev, cur = a, b
    else:
        ranks = [_year_rank(t, amounts, i) for i in range(len(amounts))]
        if None in ranks or ranks[0] == ranks[1]:
            raise AnswerError("请说明哪一年是多少，例如：“去年2300万，前年2000万”或“从2000万增长到2300万”。")
        prev, cur = (a, b) if ranks[0] < ranks[1] else (b, a)
    p, c = _exact(prev, "金额"), _exact(cur, "金额")
    if p <= 0:
        raise Impossible("上一年的金额不能为0，无法计算增长率。")
    return Reading(round((c - p) / p * 100, 2))


def parse_percent(text: str) -> float:
    return growth_reading(text).value


def parse_amount(text: str) -> float:
    """An amount in 万元 (1200万 → 1200, 一千二百万 → 1200, 1.2亿 → 12000, 500000元 → 50)."""
    t, nums = _scan(text)
    if len(nums) != 1 or nums[0].unit not in ("万", ""):
        raise AnswerError("请写一个金额，例如：1200万元、一千二百万、1.2亿。")
    n = nums[0]
    value = _exact(n, "金额")
    if n.unit == "":
        value /= 10_000  # a bare number is in 元
    return value


_ZERO_RE = re.compile(r"^(没有|无|零|没|一个也没有|一个都没有|一项也没有|一项都没有|一个没有|还没有|暂无|都没有|0)(个|项)?(项目)?$"
                      r"|^一[个项]?(都|也)没")


def count_reading(text) -> Reading:
    """A count: 3个, 两个, 0, 没有; a range (三四个, 3-4个) or a lower bound (5个以上, 十来个) gives its
    lower bound and says so; 几个, 好几个 and 不到3个 are asked again."""
    t = _normalise(text).strip()
    t = re.sub(r"[\s。.!！~～,，;；]+$", "", t)
    bare_t = _SUBJECT_RE.sub("", t) or t
    if _ZERO_RE.match(bare_t) or (not re.search(rf"[\d{_CN_DIGITS}十]", bare_t)
                                   and re.match(r"^(暂时|目前|还|暂|都|一直|从来)?(没有|没做过|没做|没|无|未)", bare_t)):
        return Reading(0)
    if re.search(r"[个项]半", t):
        raise AnswerError("项目个数是整数，请写例如：2个、3个。")
    if any(re.search(rf"(?<![{_CN_DIGITS}十百\d]){w}", t) for w in _VAGUE_WORDS) and not re.search(r"不少于", t):
        raise AnswerError("请写具体的个数（整数），例如：3个、两个、0（记不清时写能确定的最少个数）。")
    _, nums = _scan(t)
    nums = [n for n in nums if n.unit in ("个", "")]
    if len(nums) != 1:
        raise AnswerError("请写一个整数，例如：3个、两个、0。")
    n = nums[0]
    if n.kind == "vague":
        raise AnswerError("请写具体的个数（整数），例如：3个、两个、0（记不清时写能确定的最少个数）。")
    if n.kind == "below":
        raise AnswerError("“不到”几个没法判断，请写具体的个数，例如：1个。")
    if n.sign < 0 or n.lo != int(n.lo):
        raise AnswerError("请写一个整数，例如：3个、两个、0。")
    value = int(n.lo)
    if n.kind == "range":
        return Reading(value, f"按下限{value}个计算", True)
    if n.kind == "at_least":
        return Reading(value, f"按至少{value}个计算", True)
    return Reading(value, f"约数，按{value}个计算", True) if n.kind == "about" else Reading(value)


def parse_int(text: str) -> int:
    return count_reading(text).value


def parse_choice(text: str, fact: Fact) -> str:
    t = clean(text)
    for key, label in fact.choices.items():
        if t in (key.lower(), label.lower(), label.lower().removesuffix("类")):
            return key
    for key, words in fact.words.items():
        if any(w in t for w in words):
            return key
    letters = [k for k in fact.choices if len(k) == 1
               and re.search(rf"(?<![a-z]){k.lower()}(?![a-z])(?=\s*(类|级|档|$|，|,|。))", t)]
    if len(letters) == 1:  # 亩产效益评价是A类, 评的B: one class letter standing alone
        return letters[0]
    raise AnswerError("请从这些选项中选一个：" + "、".join(fact.choices.values()) + "。")


def reading(fact: Fact, value, today: dt.date | None = None) -> Reading:
    """A value of the fact's type from an answer (typed text or a YAML value), with what the reader says
    about it; Reading(None) for an empty or 不知道 answer. Raises AnswerError for what cannot be read.

    Place names are returned as written; which city they belong to is the engine's question.
    """
    if value is None or (isinstance(value, str) and (not value.strip() or is_unknown(value))):
        return Reading(None)
    t = fact.type
    if t == "bool":
        if isinstance(value, bool):
            return Reading(value)
        return Reading(parse_bool(str(value), fact))
    if t in ("percent", "share", "amount", "int") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if t == "int":
            if value != int(value) or value < 0:
                raise AnswerError("请写一个整数，例如：3。")
            return Reading(int(value))
        if t == "share" and not 0 <= value <= 100:
            raise Impossible("占比应在0%到100%之间，例如：18%。")
        return Reading(float(value))
    if isinstance(value, (dict, list)):
        raise AnswerError("请写一个值，例如：" + (fact.example or "是"))
    if t == "int":
        return count_reading(str(value))
    if t == "percent":
        return growth_reading(str(value))
    if t == "share":
        return share_reading(str(value))
    if t == "amount":
        return Reading(parse_amount(str(value)))
    if t == "date":  # a day without a year (11月2日) only for a recent event, the last such day
        return Reading(parse_date(value, today, year_needed=not fact.recent))
    if t == "choice":
        return Reading(parse_choice(str(value), fact))
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = re.sub(r"^(我们|我司|公司|企业)?(注册)?(在|于|是)?", "", text)
    text = re.sub(r"(注册的?|的)$", "", text).strip()
    if not text or len(text) > 50 or re.search(r"\d", text):
        raise AnswerError("请写注册地所在的城市或区县名称。")
    return Reading(text)


def read(fact: Fact, value, today: dt.date | None = None):
    """The value alone (see `reading`)."""
    return reading(fact, value, today).value


def show(fact: Fact, value) -> str:
    """A value as the verdict card shows it."""
    if value is None:
        return "未回答"
    t = fact.type
    if t == "bool":
        return "是" if value else "否"
    if t in ("percent", "share"):
        if value == "<0":
            return "负增长"
        return f"{value:g}%"
    if t == "amount":
        return f"{value:g}万元"
    if t == "int":
        return f"{value}个"
    if t == "choice":
        return fact.choices.get(value, str(value))
    return str(value)


def read_text(key: str, text, today: dt.date | None = None, place_of=None) -> Reading:
    """One fact by its name from what a person typed (the phrasing tables, the answers file, chat).

    `place_of(text)` maps a place to a measure id, 'other' (a real place elsewhere) or None (no place);
    with it, registered_in reads as that id. Raises AnswerError for what must be asked again.
    """
    fact = load_facts()[key]
    r = reading(fact, text, today)
    if key == "registered_in" and place_of is not None and r.value is not None:
        where = place_of(r.value)
        if where is None:
            raise AnswerError("请写注册地所在的城市或区县名称。")
        return Reading(where, r.note, r.inexact)
    return r


# ---- facts in a question ------------------------------------------------------------------------------
# Which fact a clause speaks of, by its words (checked in this order: a clause about projects mentions
# 服务型制造 too, and one about profit may mention 收入).
_DATE_CUES = (("changed_on", re.compile(r"更名|改名|改了名|名称.*变更|变更.*名称|名称.*变了|重组|换了名|名字改|名字.*变")),
              ("revoked_on", re.compile(r"撤销|撤了|被撤|摘牌")),
              ("established_on", re.compile(r"成立|注册|开业|营业执照|创办|办厂|建厂")),
              ("awarded_on", re.compile(r"^(?=.*(示范|称号|牌))(?!.*(哪些|多少家|几家|名单)).*(?<![没未不])"
                                        r"(授牌|认定|获评|评上|评为|入选|获批|拿到|挂牌|获得)")))
_AGE_SUBJECT_RE = re.compile(r"我们|我司|我厂|公司|企业|厂|咱|一家|本单位")  # an age said of an enterprise, not of the rule
_PROJECT_RE = re.compile(r"项目")
_PROFIT_RE = re.compile(r"利润|净利|盈利")
_REVENUE_RE = re.compile(r"营收|收入|主营|销售|营业额|产值")
_GROWTH_RE = re.compile(r"增长|增加|涨|下降|减少|降|下滑|翻|持平|增幅|负增长|提高|提升|多了|少了")
_DONE_RE = re.compile(r"做|实施|完成|开展|搞|建成|承接|落地|有|上了|干了|推进")
_SPENT_RE = re.compile(r"投资|投入|投了|成本|费用|支出|资金|奖励|补贴|资产|贷款")
# a question about the rule itself (服务性收入占比15%是硬性要求吗): its figures are the rule's, not the enterprise's
_RULE_TALK_RE = re.compile(r"是含|含本数|含不含|包含本数|硬性|要求|门槛|这个条件|那个条件|那条|这条|是看|跟哪年比|和哪年比|"
                           r"以上就|就可以|就行|就够|对吧|是吧|对不对|是指|怎么算|怎么计算|是否包括|含两年|必须超过|整算不算")
_FIRST_PERSON_RE = re.compile(r"我们|我司|我厂|咱|本公司|我公司")
_YEAR_WORD_RE = re.compile(r"大前年|前年|去年|今年|上年|上一年|本年|\d{4}\s*年")
_SHARE_RE = re.compile(r"服务|占比|比重|占主营|占收入|占营收|占总")


@dataclass
class Found:
    """Facts a question carries: readings, and figures that were recognised but cannot be accepted."""
    facts: dict[str, Reading] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.facts or self.problems)


def facts_in(text: str, today: dt.date, thresholds: dict[float, set[str]] | None = None) -> Found:
    """The enterprise's own facts in a question (我们服务收入占比12%，能报吗 → service_revenue_share 12).

    `thresholds`: percentages the rules compare with, and the facts compared (15 → {service_revenue_share});
    a figure said as the bar (12%不到15%) is not the enterprise's own, and tells which fact the other is.
    """
    found = Found()
    t = re.sub(r"[“\"「『][^”\"」』]*[”\"」』]", "", _normalise(text))  # a quoted rule (“不少于2个”) is no fact of theirs
    t = re.sub(r"[〔\[(（【]\s*\d{4}\s*[〕\])）】]\s*\d*\s*号?", "", t)  # a document number (〔2019〕235号) is no date
    clauses = [(m.start(), m.group()) for m in re.finditer(r"[^，,。；;！!？?\n]+", t)]

    def put(key: str, fn, piece: str) -> None:
        if key in found.facts or key in found.problems:
            return
        try:
            r = fn(piece)
        except Impossible as exc:  # a figure that cannot be true is said so; a vague one (几个) is no fact
            found.problems[key] = str(exc)
            return
        except AnswerError:
            return
        if r.value is not None:
            found.facts[key] = r

    # dates, each by the words of its clause
    for d in find_dates(t, today):
        clause = next((c for s, c in clauses if s <= d.start < s + len(c)), t)
        key = next((k for k, rx in _DATE_CUES if rx.search(clause)), None)
        if key is None or (key == "established_on" and _AGE_RE.search(clause)):
            continue  # 到今年刚好注册满两年: 今年 is now, not the day of registration
        if d.value is None:
            found.problems.setdefault(key, d.problem)
        elif date_range(d.value)[0] > today:
            found.problems.setdefault(key, f"{d.value}还没到，请检查日期。")
        else:
            found.facts.setdefault(key, Reading(d.value, f"按{d.value[:4]}年理解" if d.assumed_year else ""))
    if "established_on" not in found.facts:
        age = _AGE_RE.search(t)
        reading_ = _age_reading(age, today) if age and _AGE_SUBJECT_RE.search(t) \
            and not (_RULE_TALK_RE.search(t) and not _FIRST_PERSON_RE.search(t)) else None
        if reading_ is not None:
            found.facts["established_on"] = reading_
    masked = [(d.start, d.end) for d in find_dates(t, today)]
    share_parts, year_amounts = [], []
    for start, clause in clauses:
        local_mask = [(s - start, e - start) for s, e in masked if start <= s < start + len(clause)]
        nums = tokens(clause, local_mask)
        figures = [n for n in nums if n.unit in ("%", "万", "个", "成", "")]
        figures = [n for n in figures if not (n.unit == "" and (n.lo >= 1900 or n.kind == "vague"))]
        said_growth = re.search(r"持平|负增长|翻了?.?番|翻倍", clause) or (
            (_FLAT_RE.search(clause) or _NEG_RE.search(clause)) and (_PROFIT_RE.search(clause) or _REVENUE_RE.search(clause)))
        if not figures and not said_growth:
            continue
        bare = _strip_dates(clause, local_mask)
        if _PROJECT_RE.search(clause) and any(n.unit in ("个", "") for n in figures) and _DONE_RE.search(clause):
            put("service_projects_3y", count_reading, re.sub(r"近?[\d一二两三四五六七八九十]+年(内|来|里)?", "", bare))
        elif _YEAR_WORD_RE.search(clause) and "服务" not in clause and any(n.unit == "万" for n in figures) \
                and not any(n.unit == "%" for n in figures):
            year_amounts.append((clause, bare))  # 去年营收1亿，前年8000万: two years, a growth
        elif _PROFIT_RE.search(clause):
            put("profit_growth", growth_reading, _figure_part(bare))
        elif _GROWTH_RE.search(clause) and "服务" not in clause and sum(1 for n in figures if n.unit == "万") == 2:
            key = "profit_growth" if _PROFIT_RE.search(t) and not _REVENUE_RE.search(t) else "revenue_growth"
            put(key, growth_reading, _figure_part(bare))  # 从2000万增长到2300万
        elif _REVENUE_RE.search(clause) and _GROWTH_RE.search(clause) and "服务" not in clause:
            put("revenue_growth", growth_reading, _figure_part(bare))
        elif _SPENT_RE.search(clause):
            continue  # 总投资520万元，其中服务型制造投入180万元: money spent is no revenue
        elif "服务" in clause and _GROWTH_RE.search(clause) and not re.search(r"占|比重|比例", clause):
            continue  # 服务收入增长15%: a growth of service revenue, no fact the rules use
        elif (_SHARE_RE.search(clause) and any(n.unit in ("%", "万", "成") for n in figures)) \
                or any(n.unit == "万" for n in figures):
            share_parts.append(bare)
        elif thresholds and len([n for n in figures if n.unit == "%"]) == 2:
            pcts = [n for n in figures if n.unit == "%"]
            bars = [n for n in pcts if n.lo in thresholds and n.kind != "exact"]
            own = [n for n in pcts if n not in bars]
            if len(bars) == 1 and len(own) == 1 and len(thresholds[bars[0].lo]) == 1:
                key = next(iter(thresholds[bars[0].lo]))
                value = own[0].lo
                found.facts.setdefault(key, Reading(value))
    if any(_PROFIT_RE.search(c) for c, _ in year_amounts) and not any(_REVENUE_RE.search(c) for c, _ in year_amounts):
        groups = (("profit_growth", year_amounts), ("revenue_growth", []))  # 去年利润600万，前年500万
    else:
        groups = (("profit_growth", [c for c in year_amounts if _PROFIT_RE.search(c[0])]),
                  ("revenue_growth", [c for c in year_amounts if not _PROFIT_RE.search(c[0])]))
    for key, group in groups:
        if len(group) == 2:
            put(key, growth_reading, "，".join(_figure_part(c) for c, _ in group))
        else:
            share_parts.extend(b for _, b in group)
    if thresholds and _RULE_TALK_RE.search(t) and not _FIRST_PERSON_RE.search(t):
        for key in [k for k, r in found.facts.items() if r.value in thresholds]:
            del found.facts[key]  # 利润增长10%是看审计报告还是…: the rule's own figure
        share_parts = [p for p in share_parts if not any(n.lo in thresholds for n in tokens(_normalise(p)) if n.unit == "%")]
    if share_parts:
        piece = "，".join(share_parts)
        pcts = [n for n in tokens(_normalise(piece)) if n.unit == "%"]
        if thresholds and len(pcts) == 2:  # 服务收入占比12%，不到15%: the bar is no figure of the enterprise
            bars = [n for n in pcts if n.lo in thresholds and n.kind != "exact"]
            if len(bars) == 1:
                piece = piece[:bars[0].start] + piece[bars[0].end:]
        put("service_revenue_share", share_reading, _figure_part(piece))
    return found


_AGE_RE = re.compile(r"(?:成立|注册|经营|开业|办厂|建厂)(?:了|才|刚)?\s*(?P<q>不到|不足|未满|没满|还不到|刚满|满了|满|超过|已经|已)?\s*"
                     r"(?P<n>\d+|[一二两三四五六七八九十]+)\s*(?P<u>年|个月)(?P<half>半)?(?P<more>多)?")


def _age_reading(m: re.Match, today: dt.date) -> Reading | None:
    """成立一年半 / 成立不到两年 / 成立3年多: the latest date of establishment the words allow, as an estimate
    (the engine then says whether the years are met; 不到N年 is one day short of N years)."""
    n = int(m.group("n")) if m.group("n").isdigit() else (cn_to_int(m.group("n")) or 0)
    months = n * 12 if m.group("u") == "年" else n
    if m.group("half"):
        months += 6
    if not 0 < months <= 100 * 12:
        return None
    year, month = _month_back(today, -months)
    day = min(today.day, calendar.monthrange(year, month)[1])
    when = dt.date(year, month, day)
    if m.group("q") in ("不到", "不足", "未满", "没满", "还不到"):
        when += dt.timedelta(days=1)
    said = m.group(0).lstrip("成立注册经营开业办厂建厂了才刚 ")
    return Reading(when.isoformat(), f"按“成立{said}”推算", True)


def _strip_dates(clause: str, spans) -> str:
    for s, e in sorted(spans, reverse=True):
        clause = clause[:s] + clause[e:]
    return clause


def _figure_part(clause: str) -> str:
    """A clause less its question words (能报吗, 是不是, 够不够), which hold no figure."""
    return re.sub(r"(能不能|能报吗|可以吗|够不够|是不是|有没有|行不行|吗|呢|啊|吧|么)", "", clause)
