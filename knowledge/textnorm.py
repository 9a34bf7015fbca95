"""Text normalisation shared by the index and the questions, so both are read the same way."""
from __future__ import annotations

import re
import unicodedata

from knowledge.numerals import arabize

CJK_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
CJK_RUN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
WORD_RE = re.compile(r"[a-z]+|\d+(?:\.\d+)?%?")
_CONTROL_RE = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")
_SPACE_RE = re.compile(r"\s+")


def strip_controls(text: str) -> str:
    """Remove control and invisible formatting characters, fold runs of white space."""
    return _SPACE_RE.sub(" ", _CONTROL_RE.sub("", text)).strip()


def to_simplified(text: str, t2s: dict[str, str]) -> str:
    """Character-level traditional → simplified, with a map made at build time from zhconv."""
    if not t2s:
        return text
    return "".join(t2s.get(ch, ch) for ch in text)


def normalize(text: str, t2s: dict[str, str] | None = None) -> str:
    """NFKC (full-width → half-width), no controls, simplified, lower case, counted numerals as digits."""
    text = unicodedata.normalize("NFKC", text)
    text = strip_controls(text)
    text = to_simplified(text, t2s or {})
    return arabize(text.lower())


def has_cjk(text: str) -> bool:
    return bool(CJK_RE.search(text))


def char_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams inside each run of Chinese characters (single chars for runs of one)."""
    grams: list[str] = []
    for run in CJK_RUN_RE.findall(text):
        if len(run) == 1:
            continue
        grams.extend(run[i:i + 2] for i in range(len(run) - 1))
    return grams
