"""Segments a measure's cleaned text into chapters, articles (第N条) and items.

Items are the numbered paragraphs inside an article: （一） and 1. at level 1, （1） at level 2.
Unnumbered paragraphs inside an article are kept as paragraphs without a label.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.numerals import NUMERAL_CHARS, cn_to_int

CHAPTER_RE = re.compile(rf"^第([{NUMERAL_CHARS}\d]+)章\s*(.*)$")
SECTION_RE = re.compile(rf"^第([{NUMERAL_CHARS}\d]+)节\s*(.*)$")  # 第一节 示范企业, inside a chapter
ARTICLE_RE = re.compile(rf"^第([{NUMERAL_CHARS}\d]+)条\s*(.*)$")
ITEM_RES = (
    (1, re.compile(rf"^[（(]([{NUMERAL_CHARS}]+)[）)]\s*(.*)$")),  # （一）
    (1, re.compile(r"^(\d+)[.．、](?!\d)\s*(.*)$")),  # 1.
    (2, re.compile(r"^[（(](\d+)[）)]\s*(.*)$")),  # （1）
)


@dataclass
class Paragraph:
    text: str
    label: str | None = None  # as written: （一）, 1., （1）
    level: int = 0  # 0 = plain paragraph, 1 = item, 2 = sub-item


@dataclass
class Article:
    number: int
    chapter_number: int | None
    chapter_title: str
    paragraphs: list[Paragraph] = field(default_factory=list)
    section_title: str = ""  # 第N节's title, where a chapter has sections

    @property
    def text(self) -> str:
        return "\n".join(p.text if p.label is None else f"{p.label}{p.text}" for p in self.paragraphs)


@dataclass
class ParsedMeasure:
    title: str
    articles: list[Article]


class ParseError(ValueError):
    pass


def _item(line: str) -> tuple[int, str, str] | None:
    for level, pattern in ITEM_RES:
        m = pattern.match(line)
        if m:
            label = line[: m.start(2)].strip()
            return level, label, m.group(2).strip()
    return None


def parse_measure(text: str) -> ParsedMeasure:
    """Parse cleaned text: first non-empty line is the title, then chapters and articles."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ParseError("empty text")
    title = lines[0]
    articles: list[Article] = []
    chapter_number: int | None = None
    chapter_title = ""
    section_title = ""
    for line in lines[1:]:
        m = CHAPTER_RE.match(line)
        if m:
            chapter_number = cn_to_int(m.group(1))
            chapter_title = re.sub(r"\s+", "", m.group(2))
            section_title = ""
            continue
        m = SECTION_RE.match(line)
        if m and len(line) <= 30:
            section_title = re.sub(r"\s+", "", m.group(2))
            continue
        m = ARTICLE_RE.match(line)
        if m:
            number = cn_to_int(m.group(1))
            if number is None:
                raise ParseError(f"unreadable article number: {line[:20]}")
            if articles and number != articles[-1].number + 1:
                raise ParseError(f"article {number} follows article {articles[-1].number}")
            articles.append(Article(number, chapter_number, chapter_title, [Paragraph(m.group(2).strip())],
                                    section_title))
            continue
        if not articles:
            continue  # preamble between title and the first article
        item = _item(line)
        if item:
            level, label, body = item
            articles[-1].paragraphs.append(Paragraph(body, label, level))
        else:
            articles[-1].paragraphs.append(Paragraph(line))
    if not articles:
        raise ParseError("no article (第N条) found")
    return ParsedMeasure(title, articles)
