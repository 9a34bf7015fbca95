"""Turns text into search terms, the same way for the measures and for the questions.

Terms are jieba words (`w:` prefix, search mode, so 服务型制造示范企业 also yields 示范企业) and
character bigrams (`b:`), which the literature finds about equal for Chinese retrieval and best
combined. At query time jieba runs on a trimmed dictionary made at build time (the corpus vocabulary,
the lexicon and jieba's most frequent words), which loads in milliseconds instead of jieba's ~1 s.

Questions additionally get: traditional → simplified, colloquial synonyms from knowledge/lexicon.yaml,
and typo repair: a window of the question that the corpus does not contain but that sounds like a
domain term (pinyin, for the homophone slips of pinyin input: 被案 → 备案) or is one character away
from a long one (rapidfuzz) is replaced by the term.
"""
from __future__ import annotations

import functools
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import sys

# jieba imports pkg_resources (~0.3 s) only to find its bundled files, and falls back to a plain path
# when it cannot; we never read its dictionary at question time, so spare `policybot ask` that import.
_had = sys.modules.get("pkg_resources")
if _had is None:
    sys.modules["pkg_resources"] = None  # type: ignore[assignment]
try:
    import jieba
finally:
    if _had is None:
        del sys.modules["pkg_resources"]
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from knowledge import yamlio
from knowledge.textnorm import CJK_RUN_RE, WORD_RE, char_bigrams, normalize

jieba.setLogLevel(60)

_TUNED = yamlio.pipeline()["analysis"]  # with how each was chosen
BIGRAM_WEIGHT = float(_TUNED["bigram_weight"])
EVERYDAY_INFORMATION = float(_TUNED["everyday_information"])
MIN_INFORMATION = float(_TUNED["min_information"])
UNKNOWN_INFORMATION = float(_TUNED["unknown_information"])
MAX_READINGS = int(_TUNED["max_readings"])


@dataclass
class QueryTerms:
    text: str  # normalised question after synonyms and typo repair
    terms: dict[str, float]  # search term -> query weight
    content_words: list[tuple[str, tuple[str, ...]]]  # meaningful words with their synonyms, for coverage
    corrections: list[tuple[str, str]] = field(default_factory=list)
    expanded: str = ""  # the text with the measures' terms added after colloquial ones


def prefix_dict(dict_words: list[tuple[str, int]]) -> tuple[dict[str, int], int]:
    """jieba's prefix dictionary (every word and each of its prefixes) and total count, for our word list."""
    data = "\n".join(f"{w} {f}" for w, f in dict_words).encode("utf-8")
    return jieba.Tokenizer().gen_pfdict(io.BytesIO(data))


def make_tokenizer(prefixes: tuple[dict[str, int], int]) -> jieba.Tokenizer:
    """A jieba Tokenizer over a ready prefix dictionary: no dictionary file, no cache, no rebuilding."""
    tok = jieba.Tokenizer()
    tok.FREQ, tok.total = prefixes
    tok.initialized = True
    return tok


@functools.lru_cache(maxsize=4096)
def _fuzzy(syllable: str) -> str:
    """A pinyin syllable with the distinctions pinyin input blurs merged (zh→z, ing→in, l→n …)."""
    for a, b in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syllable.startswith(a):
            syllable = b + syllable[2:]
    if syllable.startswith("l"):
        syllable = "n" + syllable[1:]
    if syllable.endswith("ng") and not syllable.endswith("ong"):
        syllable = syllable[:-1]
    return syllable


class Analyzer:
    def __init__(self, prefixes: tuple[dict[str, int], int], lexicon: dict, t2s: dict[str, str],
                 pinyin: dict[str, tuple[str, ...]], general: dict[str, int] | None = None,
                 tags: dict[str, str] | None = None):
        self.tokenizer = make_tokenizer(prefixes)
        self.general = general or {}  # general-language frequency where the dictionary's differs
        self.tags = tags or {}  # jieba's part of speech; a word without one (ours, 复核) counts as a noun
        self.t2s = t2s
        self.pinyin = pinyin
        self.stopwords = set(lexicon.get("stopwords", []))
        # keys and values read the way questions are normalised (多久一次 → 多久1次)
        synonyms = {normalize(str(k)): normalize(str(v)) for k, v in (lexicon.get("synonyms") or {}).items()}
        longest_first = sorted(synonyms, key=len, reverse=True)
        self._synonym_re = re.compile("|".join(re.escape(k) for k in longest_first)) if synonyms else None
        self._synonym_map = synonyms
        self.domain_terms = sorted({t for t in lexicon.get("domain_terms", []) if len(t) >= 2}, key=lambda t: (-len(t), t))
        self._rewrites = {normalize(str(k)): str(v) for k, v in (lexicon.get("rewrite") or {}).items()}
        self._rewrite_re = re.compile("|".join(re.escape(k) for k in sorted(self._rewrites, key=len, reverse=True)))
        self._sound_index: dict[tuple[str, ...], str] = {}
        self._fuzzy_index: dict[tuple[str, ...], str] = {}
        self.add_sound_targets(self.domain_terms)
        self._question_words = list(lexicon.get("question_words") or [])
        self.add_sound_targets(self._question_words)
        self._long_terms: dict[int, list[str]] = {}
        for term in self.domain_terms:
            if len(term) >= 4:
                self._long_terms.setdefault(len(term), []).append(term)
        self.vocabulary: set[str] = set()  # index terms: set_vocabulary() after the index is built or read
        self.places: set[str] = set()  # place names, not content (they choose the city); set likewise

    # ---- tokens -------------------------------------------------------------------------------
    def bounds(self, text: str) -> frozenset[int]:
        """The offsets where jieba cuts `text` (its start and end included): a name or a wording matches only
        from one to another, so 高企 is not found in 提高企业, nor 元 in 多元化 (cached)."""
        cache = self.__dict__.setdefault("_bounds_cache", {})
        found = cache.get(text)
        if found is None:
            if len(cache) > 4096:
                cache.clear()
            at, cuts = 0, {0}
            for w in self.tokenizer.lcut(text, HMM=False):
                at += len(w)
                cuts.add(at)
            found = cache[text] = frozenset(cuts)
        return found

    def occurs(self, text: str, word: str) -> bool:
        """Does `word` stand in `text` as whole tokens (see bounds)?"""
        start = text.find(word)
        if start < 0:
            return False
        cuts = self.bounds(text)
        while start >= 0:
            if start in cuts and start + len(word) in cuts:
                return True
            start = text.find(word, start + 1)
        return False

    def begins(self, text: str, word: str) -> bool:
        """Does `word` stand in `text` where a token starts (a whole word, or the head of a compound: 示范 in
        示范企业)?"""
        start = text.find(word)
        if start < 0:
            return False
        cuts = self.bounds(text)
        while start >= 0:
            if start in cuts:
                return True
            start = text.find(word, start + 1)
        return False

    def words(self, text: str) -> list[str]:
        return [w for w in self.tokenizer.cut_for_search(text, HMM=False) if w.strip()]

    def index_terms(self, text: str) -> list[str]:
        """Terms of a passage of a measure (normalised first)."""
        text = normalize(text, self.t2s)
        terms = [f"w:{w}" for w in self.words(text) if self._is_content(w)]
        terms += [f"w:{w}" for w in WORD_RE.findall(text)]
        terms += [f"b:{g}" for g in char_bigrams(text) if g not in self.stopwords]
        return terms

    def information(self, word: str) -> float:
        """How much a word says, from its frequency in general Chinese (jieba's counts): 企业 little, 奖金 much.

        Only what exceeds an everyday word's information counts (去年, 知道 say next to nothing about the
        topic); a word the dictionary lacks (a run of lone characters) is capped, as it may be a mis-cut."""
        freq = self.general[word] if word in self.general else (self.tokenizer.FREQ.get(word) or 0)
        info = math.log(self.tokenizer.total / freq) if freq else UNKNOWN_INFORMATION
        return max(MIN_INFORMATION, info - EVERYDAY_INFORMATION)

    @staticmethod
    def contains(terms: set[str], phrase: str) -> bool:
        """Does a passage (its term set) contain a phrase: as a word, or every bigram of its Chinese runs?"""
        if f"w:{phrase}" in terms:
            return True
        parts = CJK_RUN_RE.findall(phrase)
        numbers = WORD_RE.findall(phrase)
        if not parts and not numbers:
            return False
        for run in parts:
            if len(run) == 1:
                continue
            if not all(f"b:{run[i:i + 2]}" in terms for i in range(len(run) - 1)):
                return False
        return all(f"w:{n}" in terms for n in numbers)

    def unknown_words(self, q: "QueryTerms") -> list[str]:
        """Things a question is about that the whole corpus lacks (nouns; synonyms included): 奖金, 所得税.
        Verbs are left out: 出过, 查出 frame a question the measures can still answer."""
        return [w for w, alts in q.content_words
                if CJK_RUN_RE.search(w) and self.is_noun(w) and not any(self.contains(self.vocabulary, a) for a in alts)]

    def is_noun(self, word: str, verbal: bool = False) -> bool:
        """A noun (n…), or with `verbal` also a verbal noun (vn: 复核, 评审): what a question is about."""
        tag = self.tags.get(word, "n")
        return tag.startswith("n") or (verbal and tag == "vn")

    def _is_content(self, word: str) -> bool:
        return len(word) >= 2 and word not in self.stopwords and bool(CJK_RUN_RE.fullmatch(word))

    # ---- questions ----------------------------------------------------------------------------
    def query(self, question: str) -> QueryTerms:
        text = self.rewrite(normalize(question, self.t2s))
        text, spelled = self.from_pinyin(text)
        text, corrections = self.repair_typos(text)
        corrections = spelled + corrections
        # place names choose the city (knowledge/qa.py); as search terms they would only favour the
        # articles that happen to spell the city out (威海市服务型制造示范企业……)
        expanded = self.expand_synonyms(self.strip_places(text))
        terms: dict[str, float] = {}
        for w in self.words(expanded):
            if self._is_content(w):
                terms[f"w:{w}"] = 1.0
        content: list[tuple[str, tuple[str, ...]]] = []
        present = [(key, canon) for key, canon in self._synonym_map.items() if key in text]
        for w in dict.fromkeys(self.tokenizer.lcut(text, HMM=False)):
            if self._is_content(w) and w not in self.places:
                alts = [w]
                for key, canon in present:
                    if key in w or (len(w) >= 2 and w in key):
                        alts.extend(canon.split())
                content.append((w, tuple(dict.fromkeys(alts))))
        for w in WORD_RE.findall(expanded):
            terms[f"w:{w}"] = 1.0
        for w in dict.fromkeys(WORD_RE.findall(text)):
            if w in self._synonym_map and w not in self.stopwords:  # review, criteria: English words people mix in
                content.append((w, tuple(self._synonym_map[w].split())))
            elif w.isalpha() and len(w) >= 2 and w not in self.stopwords and f"w:{w}" not in self.vocabulary:
                content.append((w, (w,)))  # a foreign word the measures never use (chatgpt): left uncovered
        for g in char_bigrams(expanded):
            if g not in self.stopwords:
                terms.setdefault(f"b:{g}", BIGRAM_WEIGHT)
        return QueryTerms(text, terms, content, corrections, expanded)

    def rewrite(self, text: str) -> str:
        """Dialect and slang question words in standard form (啥 → 什么)."""
        return self._rewrite_re.sub(lambda m: self._rewrites[m.group(0)], text) if self._rewrites else text

    def strip_places(self, text: str) -> str:
        if not self.places:
            return text
        if getattr(self, "_places_key", None) is not self.places:
            names = sorted(self.places, key=lambda n: (-len(n), n))
            self._places_re = re.compile("|".join(re.escape(n) for n in names))
            self._places_key = self.places
        return self._places_re.sub(" ", text)

    def expand_synonyms(self, text: str) -> str:
        """Append the measures' term after each colloquial one (改名 → 改名 更名)."""
        if not self._synonym_re:
            return text
        return self._synonym_re.sub(lambda m: f"{m.group(0)} {self._synonym_map[m.group(0)]} ", text)

    # ---- pinyin -------------------------------------------------------------------------------
    def from_pinyin(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """A word typed in toneless pinyin (fuhe, zige tiaojian) read as the term of the lexicon it spells:
        a domain term, a colloquial word the lexicon knows, a question word; English words of the lexicon
        (review, apply) and single syllables (he, an) are left as they are."""
        if not WORD_RE.search(text):
            return text, []
        index = self.__dict__.get("_spelled")
        if index is None:
            index = self.__dict__["_spelled"] = {}
            # the lexicon's terms first, then the measures' own words (项目, 企业: a new measure's too), shortest
            # first among those so that a syllable pair reads as the common word, not a rarer compound
            own = sorted((t[2:] for t in self.vocabulary if t.startswith("w:") and 2 <= len(t) - 2 <= 4),
                         key=lambda w: (len(w), w))
            for word in list(self.domain_terms) + list(self._synonym_map) + list(self._question_words) + own:
                if CJK_RUN_RE.fullmatch(word) and len(word) >= 2:
                    key = self._sound_key(word)
                    if key:
                        index.setdefault("".join(key), word)
            self.__dict__["_syllables"] = {r for readings in self.pinyin.values() for r in readings}
        out: list[tuple[str, str]] = []

        def spell(m: re.Match) -> str:
            w = m.group(0)
            if w in self._synonym_map or w in self.stopwords or len(w) < 4 or not self._is_pinyin(w):
                return w
            term = index.get(w)
            if term:
                out.append((w, term))
                return term
            return w
        return re.sub(r"[a-z]+", spell, text), out

    def _is_pinyin(self, word: str) -> bool:
        """Can the word be cut into two or more pinyin syllables?"""
        syllables = self.__dict__["_syllables"]
        ok = [True] + [False] * len(word)
        count = [0] * (len(word) + 1)
        for i in range(len(word)):
            if not ok[i]:
                continue
            for j in range(i + 1, min(len(word), i + 6) + 1):
                if word[i:j] in syllables:
                    ok[j], count[j] = True, max(count[j], count[i] + 1)
        return ok[-1] and count[-1] >= 2

    # ---- typo repair --------------------------------------------------------------------------
    def _sound_key(self, text: str, fuzzy: bool = False) -> tuple[str, ...] | None:
        """The pinyin of a text, each character in its usual reading: what one types to write it (a typo
        typed from the right pinyin picks a wrong character of that sound: 被案 for 备案). `fuzzy` also
        merges the sounds pinyin input methods let one confuse (zh/z, ch/c, sh/s, -ng/-n, l/n)."""
        readings = [self.pinyin.get(ch) for ch in text]
        if any(not r for r in readings):
            return None
        return tuple(_fuzzy(r[0]) if fuzzy else r[0] for r in readings)

    def _sound_keys(self, text: str) -> list[tuple[str, ...]]:
        """Every way to type a window's pinyin exactly: a typo may have been picked under any reading of its
        character (调件 typed as tiaojian for 条件), its usual reading first."""
        readings = [self.pinyin.get(ch) for ch in text]
        if any(not r for r in readings):
            return []
        prefixes = self.__dict__.get("_sound_prefixes")
        if prefixes is None:  # every start of a target's sound: a key no target begins with is dropped early
            prefixes = self.__dict__["_sound_prefixes"] = {k[:i] for k in self._sound_index for i in range(1, len(k) + 1)}
        keys: list[tuple[str, ...]] = [()]
        for r in readings:
            keys = [k + (s,) for k in keys for s in r[:MAX_READINGS] if k + (s,) in prefixes]
            if not keys:
                return []
        return keys

    def add_sound_targets(self, words) -> None:
        """More words a typo may stand for (the covered cities' names, question words), after the domain terms."""
        for word in words:
            for fuzzy in (False, True):
                key = self._sound_key(word, fuzzy)
                if key and len(word) >= 2:
                    (self._fuzzy_index if fuzzy else self._sound_index).setdefault(key, word)
        self.__dict__.pop("_sound_prefixes", None)

    def set_vocabulary(self, terms: set[str]) -> None:
        """The index's terms (a window the corpus contains is never taken for a typo)."""
        self.vocabulary = terms

    def _known(self, window: str) -> bool:
        """Does the corpus contain this window: as a word, or (three characters or more) all its bigrams?
        Two characters must be a word of it: 出审 stands in 提出审核 but is no word there."""
        if f"w:{window}" in self.vocabulary:
            return True
        return len(window) > 2 and all(f"b:{window[i:i + 2]}" in self.vocabulary for i in range(len(window) - 1))

    def repair_typos(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        if not self.domain_terms or not self.vocabulary:
            return text, []
        corrections: list[tuple[str, str]] = []
        max_len = len(self.domain_terms[0])
        for run in CJK_RUN_RE.findall(text):
            # a window starts and ends where jieba cuts: 设备按 must not yield 备按 → 备案
            bounds, at = {0}, 0
            for w in self.tokenizer.lcut(run, HMM=False):
                at += len(w)
                bounds.add(at)
            fixed, i = run, 0
            while i < len(fixed):
                replaced = False
                for size in range(min(max_len, len(fixed) - i), 1, -1):
                    window = fixed[i:i + size]
                    if i not in bounds or i + size not in bounds:
                        continue
                    if (window in self.stopwords or all(ch in self.stopwords for ch in window)
                            or window in self._synonym_map or self._known(window)):
                        continue
                    term = self._by_sound(window) or self._by_spelling(window)
                    if term and term != window:
                        corrections.append((window, term))
                        fixed = fixed[:i] + term + fixed[i + size:]
                        i += size
                        replaced = True
                        break
                if not replaced:
                    i += 1
            if fixed != run:
                text = text.replace(run, fixed, 1)
        return text, corrections

    def _by_sound(self, window: str) -> str | None:
        """A domain term (lexicon) that sounds like the window (its characters read in their usual way: 覆盖 is
        not 复核), or, where the window is no word at all (才料), one that sounds close (材料)."""
        keys = self._sound_keys(window)
        if not keys:
            return None
        term = next((self._sound_index[k] for k in keys if k in self._sound_index), None)
        if term:
            return term
        if self.tokenizer.FREQ.get(window) is not None:
            # a real word, or the start of one (工信 of 工信局), is only taken for a domain term of exactly
            # its sound (复合 → 复核, 财物 → 财务), never for one merely close (工信 is no 共性)
            return None
        fuzzy = self._sound_key(window, fuzzy=True)  # merged sounds: the usual reading only (1次示 is no 知识)
        # only into a term of the domain (lexicon), never into any word the measures happen to use: 才料 → 材料
        # (a domain term), but 才够 (two real words) is no 采购
        return self._fuzzy_index.get(fuzzy)  # 营业执造 → 营业执照

    def _by_spelling(self, window: str) -> str | None:
        candidates = self._long_terms.get(len(window))
        if not candidates:
            return None
        best = process.extractOne(window, candidates, scorer=Levenshtein.distance, score_cutoff=1)
        return best[0] if best else None
