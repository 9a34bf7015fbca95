"""The knowledge base: measures (text + metadata YAML) parsed, indexed and saved as one file.

`build()` reads a source folder laid out like knowledge/ (measures/<id>.txt + measures/<id>.yaml,
lexicon.yaml, gazetteer.yaml) and writes a pickle; `load()` reads it back in milliseconds and rebuilds
it when it is missing or stale (its sources or this code changed). A third city is a new pair of files
in measures/ and `policybot kb build`: nothing here knows any city by name.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import pickle
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from knowledge import yamlio

from knowledge.analyzer import Analyzer, prefix_dict
from knowledge.index import BM25Index
from knowledge.numerals import NUMERAL_CHARS, cn_to_int
from knowledge.parser import Article, ParseError, parse_measure
from knowledge.textnorm import normalize

SOURCE_DIR = Path(__file__).resolve().parent
FORMAT_VERSION = 15
_CODE_FILES = ("kb.py", "yamlio.py", "qa.py", "ranker.py", "intents.py", "pipeline.yaml", "analyzer.py", "index.py", "parser.py", "textnorm.py", "numerals.py")
COMMON_WORDS = int(yamlio.pipeline()["analysis"]["common_words"])  # see pipeline.yaml
QUESTIONS_SUFFIX = ".questions.yaml"
LEXICON_SUFFIX = ".lexicon.yaml"  # wording only one measure uses, kept with it
# measures of other cities kept only for what their example questions teach (knowledge/reference/README.md):
# indexed and learned from like the others, never answered from, never named to a user
REFERENCE_DIR = "reference"
QUESTION_PARTICLES = set("吗呢吧啊啥咋么")  # a colloquial phrase with one of these is no word (能报吗)
PLACE_SUFFIXES = ("市", "省", "地区", "州", "盟", "县", "区")


class KnowledgeBaseError(RuntimeError):
    """The knowledge base cannot be built or read; the message says why, in plain words."""


@dataclass
class Measure:
    id: str
    title: str
    meta: dict
    articles: dict[int, Article]

    @property
    def city_short(self) -> str:
        city = self.meta.get("city") or {}
        return city.get("short") or city.get("name") or self.id

    @property
    def citation_title(self) -> str:
        return f"《{self.title}》"

    def cite(self, article: int) -> str:
        return f"《{self.title}》第{to_cn_number(article)}条"

    def status(self, as_of: dt.date) -> str:
        return measure_status(self.meta.get("in_force_from"), self.meta.get("in_force_until"), as_of)


def measure_status(start: dt.date | None, end: dt.date | None, as_of: dt.date) -> str:
    """in_force, expired or unknown at a date (CONTRACT.md's measure_status)."""
    if end and as_of > end:
        return "expired"
    if start and end and start <= as_of <= end:
        return "in_force"
    return "unknown"


# ---- several measures per city (successors) ------------------------------------------------------------
def city_key(m: Measure) -> str:
    """What groups a city's measures: its name (威海市), else the measure's id."""
    return str((m.meta.get("city") or {}).get("name") or m.id)


def _start(m: Measure) -> dt.date:
    return m.meta.get("in_force_from") or m.meta.get("issued_on") or dt.date.min


_CITY_GROUPS: dict[int, tuple[dict, dict[str, list[str]]]] = {}


def _city_groups(measures: dict[str, Measure]) -> dict[str, list[str]]:
    """Each measure id → the ids of its city's measures, oldest first; computed once per base (a base's
    measures do not change after it is built), so a question over hundreds of measures stays linear."""
    hit = _CITY_GROUPS.get(id(measures))
    if hit is not None and hit[0] is measures and len(hit[1]) == len(measures):
        return hit[1]
    by_city: dict[object, list[str]] = {}
    for i, m in measures.items():
        by_city.setdefault(city_key(m), []).append(i)

    def depth(i: str, seen=()) -> int:
        old = measures[i].meta.get("supersedes")
        return 1 + depth(old, seen + (i,)) if old in measures and old not in seen else 0
    groups: dict[str, list[str]] = {}
    for ids in by_city.values():
        ordered = sorted(ids, key=lambda i: (_start(measures[i]), depth(i)))
        for i in ids:
            groups[i] = ordered
    if len(_CITY_GROUPS) > 8:  # bases built and dropped in one process (tests, the console's rebuilds)
        _CITY_GROUPS.clear()
    _CITY_GROUPS[id(measures)] = (measures, groups)
    return groups


def city_measures(measures: dict[str, Measure], mid: str) -> list[str]:
    """The ids of the measures of `mid`'s city, oldest first (by start date; a measure that `supersedes`
    another comes after it)."""
    return list(_city_groups(measures)[mid])


def successor(measures: dict[str, Measure], mid: str) -> Measure | None:
    """The measure that replaced `mid` (the next one of its city), or None."""
    ids = city_measures(measures, mid)
    pos = ids.index(mid)
    return measures[ids[pos + 1]] if pos + 1 < len(ids) else None


def in_force_on(measures: dict[str, Measure], mid: str, as_of: dt.date | None) -> str:
    """The measure of `mid`'s city that applies on `as_of`: the newest one that has started by then (or
    whose start is unknown); the oldest when none has. Without a date, the newest."""
    ids = city_measures(measures, mid)
    if len(ids) == 1:
        return ids[0]
    if as_of is None:
        return ids[-1]
    started = [i for i in ids if not measures[i].meta.get("in_force_from") or measures[i].meta["in_force_from"] <= as_of]
    return started[-1] if started else ids[0]


def current_ids(measures: dict[str, Measure], ids, as_of: dt.date | None) -> list[str]:
    """`ids` with each city's measures reduced to the one that applies on `as_of`, order kept."""
    out: list[str] = []
    for mid in ids:
        cur = in_force_on(measures, mid, as_of)
        if cur not in out:
            out.append(cur)
    return out


def place_examples(measures: dict[str, Measure]) -> list[tuple[str, str | None]]:
    """(city short name, one of its districts) for each city the base holds, in the base's order: the names
    help texts and hints give as examples, so that none is written into the code."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()
    for mid in measures:
        key = city_key(measures[mid])
        if key in seen:
            continue
        seen.add(key)
        m = measures[city_measures(measures, mid)[-1]]
        city = m.meta.get("city") or {}
        district = next((str(d) for d in city.get("districts") or []
                         if str(d).endswith(("区", "县", "市", "旗")) and len(str(d)) <= 5 and str(d) != city.get("name")), None)
        out.append((m.city_short, district))
    return out


@dataclass
class Unit:
    """A searchable passage: a whole article (para is None) or one of its items."""
    measure: str
    article: int
    para: int | None


@dataclass
class Examples:
    """Example questions: what users ask that an article answers (measures/<id>.questions.yaml) and what
    they ask that measures of this kind do not answer (near_misses.yaml), in one BM25 index."""
    index: BM25Index
    labels: list[tuple[str, int] | None]  # (measure, article), or None for a question to decline
    measure_pos: np.ndarray  # the measure's position per example, -1 for one to decline
    # a question to decline only for some measures (包头的示范企业要定期复核吗: 包头's is silent, 威海's
    # is not): its position -> those measures; the others are declined whatever the city
    decline_only_for: dict[int, frozenset[str]] = field(default_factory=dict)
    # a question to decline only when the question names the same other level or province (省级…申报条件,
    # 内蒙古自治区级…): its position -> those names; without one it would decline the city's own 申报条件
    decline_only_naming: dict[int, frozenset[str]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # the example questions, as written

    def scores(self, terms: dict[str, float]) -> np.ndarray:
        return self.index.scores(terms)


@dataclass
class KnowledgeBase:
    measures: dict[str, Measure]
    units: list[Unit]
    unit_measure: np.ndarray  # measure position of each unit, for city scoping
    measure_ids: list[str]
    index: BM25Index
    analyzer: Analyzer
    places: dict[str, list[str]]  # a covered city's name, district or zone -> measure ids
    other_places: list[str]  # places of cities the base does not cover
    lexicon: dict
    fingerprint: str
    stats: dict = field(default_factory=dict)
    examples: "Examples | None" = None  # questions articles answer, and questions to decline
    model: object = None  # the ranker and the answer decision learned from the examples (knowledge/ranker.py)
    cache: dict = field(default_factory=dict, repr=False)  # derived once per process (terms of articles …)
    source: str = ""  # the folder it was built from, against which staleness is checked
    # measures of other cities held only for what their example questions teach (REFERENCE_DIR): their
    # articles are indexed (units, measure_ids) and learned from, but they are not in `measures`, so no
    # scope, city, answer, help text or rule ever reaches them
    references: dict[str, Measure] = field(default_factory=dict)

    def measure(self, mid: str) -> Measure:
        """A measure by id, reference measures included (for what is computed over indexed articles)."""
        m = self.measures.get(mid)
        return m if m is not None else self.references[mid]

    def measure_mask(self, measure_ids: list[str]) -> np.ndarray:
        positions = [self.measure_ids.index(m) for m in measure_ids]
        return np.isin(self.unit_measure, positions)

    def article_terms(self, measure: str, number: int) -> set[str]:
        """The search terms of a whole article (cached: computed on first use)."""
        cache = self.cache.setdefault("_terms_cache", {})
        key = (measure, number)
        if key not in cache:
            cache[key] = set(self.analyzer.index_terms(_with_chapter(self.measure(measure).articles[number])))
        return cache[key]

    def article_lead_terms(self, measure: str, number: int) -> set[str]:
        """The search terms of what says what an article is about: its chapter's (and section's) title and its
        lead sentence (up to the first 。；： or the end of its first paragraph), cached."""
        cache = self.cache.setdefault("_lead_cache", {})
        key = (measure, number)
        if key not in cache:
            art = self.measure(measure).articles[number]
            first = art.text.split("\n", 1)[0]
            lead = re.split(r"[。；：;:]", first, maxsplit=1)[0]
            head = " ".join(t for t in (art.chapter_title, getattr(art, "section_title", "")) if t)
            cache[key] = set(self.analyzer.index_terms(f"{head}\n{lead}" if head else lead))
        return cache[key]

    def article_normalized(self, measure: str, number: int) -> str:
        """An article's text normalised like a question (cached)."""
        cache = self.cache.setdefault("_norm_cache", {})
        key = (measure, number)
        if key not in cache:
            cache[key] = normalize(self.measure(measure).articles[number].text, self.analyzer.t2s)
        return cache[key]

    def article(self, measure: str, number: int) -> Article | None:
        m = self.measures.get(measure) or self.references.get(measure)
        return m.articles.get(number) if m else None


def _with_chapter(art: Article) -> str:
    """An article's text as indexed: with its chapter's title (认定程序, 申报条件), which says what it is about."""
    return f"{art.chapter_title}\n{art.text}" if art.chapter_title else art.text


# ---- numbers --------------------------------------------------------------------------------------
_CN = "零一二三四五六七八九"


def to_cn_number(n: int) -> str:
    """12 → 十二, 20 → 二十, 105 → 一百零五 (article numbers as the measures write them)."""
    if n < 10:
        return _CN[n]
    if n < 20:
        return "十" + (_CN[n % 10] if n % 10 else "")
    if n < 100:
        return _CN[n // 10] + "十" + (_CN[n % 10] if n % 10 else "")
    rest = n % 100
    return _CN[n // 100] + "百" + ("" if rest == 0 else ("零" + _CN[rest] if rest < 10 else
                                                       (_CN[1] if rest < 20 else "") + to_cn_number(rest)))


ARTICLE_REF_RE = re.compile(rf"第\s*([{NUMERAL_CHARS}0-9]+)\s*条")


def article_refs(text: str) -> list[int]:
    return [n for n in (cn_to_int(m.group(1)) for m in ARTICLE_REF_RE.finditer(text)) if n]


# ---- sources --------------------------------------------------------------------------------------
def _source_files(source: Path) -> list[Path]:
    files = [path for folder in ("measures", REFERENCE_DIR) for ext in ("*.txt", "*.yaml")
             for path in sorted((source / folder).glob(ext))]
    files += [source / name for name in ("lexicon.yaml", "gazetteer.yaml", "near_misses.yaml") if (source / name).exists()]
    return files


def fingerprint(source: Path) -> str:
    h = hashlib.sha256(f"format {FORMAT_VERSION}".encode())
    for path in _source_files(source) + [SOURCE_DIR / name for name in _CODE_FILES]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _read_yaml(path: Path) -> dict:
    try:
        data = yamlio.loads(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeBaseError(f"{path.name}: {exc}") from exc
    if not isinstance(data, dict):
        raise KnowledgeBaseError(f"{path.name}: expected a mapping at the top")
    return data


def _read_measures(source: Path, folder: str = "measures") -> dict[str, Measure]:
    measures: dict[str, Measure] = {}
    for meta_path in sorted((source / folder).glob("*.yaml")):
        if meta_path.name.endswith((QUESTIONS_SUFFIX, LEXICON_SUFFIX)) or meta_path.name == "near_misses.yaml":
            continue  # the questions an article answers, read by _examples()
        meta = _read_yaml(meta_path)
        mid = str(meta.get("id") or meta_path.stem)
        if mid != meta_path.stem:
            raise KnowledgeBaseError(f"{meta_path.name}: id {mid!r} does not match the file name")
        text_path = meta_path.with_suffix(".txt")
        if not text_path.exists():
            raise KnowledgeBaseError(f"{meta_path.name}: no text file {text_path.name} beside it")
        for key in ("in_force_from", "in_force_until", "issued_on"):
            if meta.get(key) is not None and not isinstance(meta[key], dt.date):
                raise KnowledgeBaseError(f"{meta_path.name}: {key} must be a date (YYYY-MM-DD) or null")
        try:
            parsed = parse_measure(text_path.read_text(encoding="utf-8"))
        except ParseError as exc:
            raise KnowledgeBaseError(f"{text_path.name}: {exc}") from exc
        title = meta.get("title") or parsed.title
        measures[mid] = Measure(mid, title, meta, {a.number: a for a in parsed.articles})
    if not measures and folder == "measures":
        raise KnowledgeBaseError(f"no measure found in {source / 'measures'}")
    return measures


def find_names(names, text: str) -> list[str]:
    """Names found in text, trying `names` in order (longest first), each span used once."""
    found, taken = [], [False] * len(text)
    for name in names:
        start = text.find(name)
        while start >= 0:
            span = range(start, start + len(name))
            if not any(taken[i] for i in span):
                for i in span:
                    taken[i] = True
                found.append(name)
            start = text.find(name, start + 1)
    return found


def _covered_names(measures: dict[str, Measure]) -> list[str]:
    """The covered cities' names and districts, so that a typo in one (包投, 达贸旗) is still read as the place."""
    return [str(n) for m in measures.values() for key in ("aliases", "districts")
            for n in (m.meta.get("city") or {}).get(key) or []]


def provinces(measures: dict[str, Measure]) -> set[str]:
    names = set()
    for m in measures.values():
        province = str((m.meta.get("city") or {}).get("province") or "")
        if province:
            names.add(province)
            for suffix in ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市"):
                if province.endswith(suffix):
                    names.add(province.removesuffix(suffix))
                    break
    return names


def levels_named(lexicon: dict, measures: dict[str, Measure], text: str) -> frozenset[str]:
    """The other levels (省级, 国家级 …: lexicon.yaml `other_programmes.levels`) and the covered cities'
    provinces (内蒙古 and 内蒙古自治区 read as one) a normalised text names."""
    levels = sorted({str(w) for w in (lexicon.get("other_programmes") or {}).get("levels") or []},
                    key=lambda n: (-len(n), n))
    found = set(find_names(levels, text))
    for m in measures.values():
        province = str((m.meta.get("city") or {}).get("province") or "")
        if province and any(name in text for name in provinces({m.id: m})):
            found.add(province)
    return frozenset(found)


def _places(measures: dict[str, Measure], gazetteer: dict) -> tuple[dict[str, list[str]], list[str]]:
    places: dict[str, list[str]] = {}
    for m in measures.values():
        city = m.meta.get("city") or {}
        names = [m.id, city.get("name"), city.get("short"), *(city.get("aliases") or []), *(city.get("districts") or [])]
        for name in filter(None, names):
            ids = places.setdefault(str(name), [])
            if m.id not in ids:
                ids.append(m.id)
    # the provinces of covered cities are neutral: 内蒙古 may be asked about in a 包头 question
    covered = set(places) | provinces(measures)
    needs_suffix = set(gazetteer.get("needs_suffix") or [])
    others: set[str] = set()
    for key in ("provinces", "cities", "county_cities"):
        for name in gazetteer.get(key) or []:
            name = str(name)
            if name in covered:
                continue
            if name in needs_suffix:
                others.update(name + s for s in PLACE_SUFFIXES[:4])
            else:
                others.add(name)
    return places, sorted(others, key=lambda n: (-len(n), n))


def _char_tables() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Traditional→simplified character map (zhconv) and toneless pinyin readings (pypinyin)."""
    import zhconv.zhconv as zc
    from pypinyin import Style, pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    t2s = {k: v for k, v in zc.getdict("zh-cn").items() if len(k) == 1 and len(v) == 1}
    readings: dict[str, tuple[str, ...]] = {}
    for code in pinyin_dict:
        ch = chr(code)
        if "\u4e00" <= ch <= "\u9fff":
            readings[ch] = tuple(dict.fromkeys(pinyin(ch, style=Style.NORMAL, heteronym=True)[0]))
    return t2s, readings


def _dictionary(texts: list[str], lexicon: dict, places: list[str]) -> tuple[list[tuple[str, int]], dict[str, int], dict[str, str]]:
    """The trimmed jieba dictionary (corpus vocabulary, lexicon and place words, common words), and the
    general-language frequency of the words whose dictionary frequency we raised or invented, so that
    the information of a word (knowledge/analyzer.py) stays that of everyday Chinese."""
    import jieba

    jieba.setLogLevel(60)
    full = jieba.Tokenizer()
    full.initialize()
    general = dict(full.FREQ)  # before our words are added
    domain = list(lexicon.get("domain_terms") or [])
    for term in domain:
        full.add_word(term, max(full.FREQ.get(term) or 0, 20000))
    vocab: dict[str, int] = {}
    for text in texts:
        for w in full.cut_for_search(text, HMM=False):
            if len(w) >= 2 and w.strip():
                vocab[w] = full.FREQ.get(w) or 1
    stopwords = list(lexicon.get("stopwords") or [])
    extra = domain + stopwords + places
    for key, value in (lexicon.get("synonyms") or {}).items():
        # a colloquial key is a word of its own (改名字), unless it is a phrase with a question word in it
        # (哪些材料): then it would hide its parts from the coverage check
        if not any(len(sw) >= 2 and sw in key for sw in stopwords) and not any(ch in QUESTION_PARTICLES for ch in key):
            extra.append(key)
        # a canonical term is a word only where the measures use it as one (not 主营业务收入增长)
        extra.extend(v for v in str(value).split() if any(v in t for t in texts))
    for w in extra:
        vocab[w] = max(vocab.get(w) or 0, full.FREQ.get(w) or 0, 20000 if w in domain else 500)
    common = sorted(((w, f) for w, f in general.items() if f > 0 and len(w) >= 2), key=lambda wf: -wf[1])
    for w, f in common[:COMMON_WORDS]:
        vocab.setdefault(w, f)
    # every single character too: jieba only falls back to a lone character where no word starts, so
    # without them 说服务型制造 could only be cut as 说服|务|型|制造
    for w, f in general.items():
        if len(w) == 1 and f > 0:
            vocab.setdefault(w, f)
    changed = {w: general.get(w) or 0 for w, f in vocab.items() if f != (general.get(w) or 0)}
    return sorted(vocab.items()), changed, _tags(vocab)


def _tags(vocab: dict[str, int]) -> dict[str, str]:
    """jieba's part-of-speech tag of each dictionary word (n noun, vn verbal noun, v verb …)."""
    import jieba

    out = {}
    with jieba.get_dict_file() as fh:
        for line in fh:
            parts = line.decode("utf-8").split()
            if len(parts) >= 3 and len(parts[0]) >= 2 and parts[0] in vocab:
                out[parts[0]] = parts[2]
    return out


MEASURE_LEXICON_KEYS = ("synonyms", "domain_terms")


def _with_measure_lexicons(lexicon: dict, source: Path, measures: dict[str, "Measure"]) -> dict:
    """The shared lexicon plus each measure's own wording (measures/<id>.lexicon.yaml: synonyms and domain
    terms only that measure uses). A synonym given both in the shared lexicon and a measure's is refused;
    two measures may map the same colloquial word, each to its own term (both are kept)."""
    merged = dict(lexicon)
    synonyms = dict(lexicon.get("synonyms") or {})
    terms = list(lexicon.get("domain_terms") or [])
    own: dict[str, str] = {}
    for mid in measures:
        path = source / "measures" / f"{mid}{LEXICON_SUFFIX}"
        if not path.exists():
            continue
        data = _read_yaml(path)
        unknown = set(data) - set(MEASURE_LEXICON_KEYS)
        if unknown:
            raise KnowledgeBaseError(f"{path.name}: only {', '.join(MEASURE_LEXICON_KEYS)} belong here, not {sorted(unknown)}")
        for key, value in (data.get("synonyms") or {}).items():
            if key in (lexicon.get("synonyms") or {}):
                raise KnowledgeBaseError(f"{path.name}: {key!r} is already in lexicon.yaml")
            if key in own:
                synonyms[key] = " ".join(dict.fromkeys(f"{synonyms[key]} {value}".split()))
            else:
                synonyms[key] = str(value)
            own[key] = mid
        terms.extend(t for t in data.get("domain_terms") or [] if t not in terms)
    if own:
        merged["synonyms"], merged["domain_terms"] = synonyms, terms
    return merged


def build(source: Path = SOURCE_DIR, out: Path | None = None, learn: bool = True) -> KnowledgeBase:
    """Parse and index every measure in `source`, and learn the ranker and the answer decision from its
    example questions (`learn`; without, or without examples, the shipped base's model is used); save to
    `out` when given."""
    t0 = time.perf_counter()
    source = Path(source)
    measures = _read_measures(source)
    references = _read_measures(source, REFERENCE_DIR)
    clash = sorted(set(measures) & set(references))
    if clash:
        raise KnowledgeBaseError(f"{REFERENCE_DIR}/: {', '.join(clash)} is also a measure of measures/")
    lexicon = _read_yaml(source / "lexicon.yaml") if (source / "lexicon.yaml").exists() else {}
    lexicon = _with_measure_lexicons(lexicon, source, measures)
    gazetteer = _read_yaml(source / "gazetteer.yaml") if (source / "gazetteer.yaml").exists() else {}
    places, others = _places(measures, gazetteer)
    units: list[Unit] = []
    texts: list[str] = []
    indexed = {**measures, **references}
    measure_ids = list(indexed)
    unit_measure: list[int] = []
    for pos, m in enumerate(indexed.values()):
        for art in m.articles.values():
            units.append(Unit(m.id, art.number, None))
            texts.append(_with_chapter(art))
            unit_measure.append(pos)
            # an item is indexed with its article's lead (and a sub-item with its item too), so that
            # 撤销 in 第十二条's lead counts for its item （四） and a question about conditions does not land there
            lead = art.paragraphs[0].text
            parent = ""
            for i, p in enumerate(art.paragraphs):
                if p.label is None:
                    continue
                if p.level == 1:
                    parent = p.text
                units.append(Unit(m.id, art.number, i))
                texts.append(f"{lead}\n{p.text}" if p.level == 1 else f"{lead}\n{parent}\n{p.text}")
                unit_measure.append(pos)
    t2s, readings = _char_tables()
    dict_words, general, tags = _dictionary(texts, lexicon, list(places) + others)
    prefixes = prefix_dict(dict_words)
    analyzer = Analyzer(prefixes, lexicon, t2s, readings, general, tags)
    index = BM25Index.build([analyzer.index_terms(t) for t in texts])
    analyzer.set_vocabulary(set(index.postings))
    analyzer.places = set(places) | set(others) | provinces(measures)
    analyzer.add_sound_targets(_covered_names(measures))
    kb = KnowledgeBase(measures, units, np.asarray(unit_measure, dtype=np.int32), measure_ids, index, analyzer,
                       places, others, lexicon, fingerprint(source), references=references)
    kb.examples = _examples(source, indexed, measure_ids, analyzer, places, others, lexicon, set(references))
    from knowledge import qa, ranker
    t1 = time.perf_counter()
    kb.model = ranker.train(kb, qa.P) if learn else None
    kb.cache.clear()  # what training cached for its left-out examples is no cache for questions
    kb.cache.update(_derived(kb))
    kb.source = str(source.resolve())
    kb.stats = {"measures": len(measures), "articles": sum(len(m.articles) for m in measures.values()),
                "reference_measures": len(references),
                "units": len(units), "terms": len(index.postings), "build_seconds": time.perf_counter() - t0,
                "training_seconds": time.perf_counter() - t1}
    if out is not None:
        save(kb, prefixes, general, tags, Path(out))
    return kb


DERIVED = ("_analogs", "_example_topics")  # knowledge/qa.py caches worth computing once, at build


def _derived(kb: "KnowledgeBase") -> dict:
    from knowledge import qa
    qa._analogs(kb)
    if kb.examples is not None:
        qa._example_topics(kb)
    return {k: kb.cache[k] for k in DERIVED if k in kb.cache}


def _examples(source: Path, measures: dict[str, Measure], measure_ids: list[str], analyzer: Analyzer,
              places: dict[str, list[str]], others: list[str], lexicon: dict,
              references: set[str] = frozenset()) -> Examples | None:
    texts: list[str] = []
    labels: list[tuple[str, int] | None] = []
    only_for: dict[int, frozenset[str]] = {}
    only_naming: dict[int, frozenset[str]] = {}
    for mid, m in measures.items():
        path = source / (REFERENCE_DIR if mid in references else "measures") / f"{mid}{QUESTIONS_SUFFIX}"
        if not path.exists():
            continue
        for number, questions in _read_yaml(path).items():
            if not isinstance(number, int) or number not in m.articles:
                raise KnowledgeBaseError(f"{path.name}: {number!r} is no article of {mid}")
            for q in questions or []:
                texts.append(str(q))
                labels.append((mid, number))
    # questions to decline: near_misses.yaml, and the reference measures' own (reference/near_misses.yaml,
    # each tied to its measure by `city:`)
    for near in (source / "near_misses.yaml", source / REFERENCE_DIR / "near_misses.yaml"):
        if not near.exists():
            continue
        try:
            items = yamlio.loads(near.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise KnowledgeBaseError(f"{near.parent.name}/{near.name}: {exc}") from exc
        if not isinstance(items, list):
            raise KnowledgeBaseError(f"{near.parent.name}/{near.name}: expected a list of questions")
        covered = sorted(places, key=len, reverse=True)
        for item in items:
            q, city = (item.get("q"), item.get("city")) if isinstance(item, dict) else (item, None)
            if not q:
                raise KnowledgeBaseError(f"{near.name}: an entry is a question or {{q: …, city: …}}: {item!r}")
            text = normalize(str(q), analyzer.t2s)
            named = {mid for name in find_names(covered, text) for mid in places[name]}
            if city is not None:
                if city not in measures:
                    continue  # declined for a measure this base does not hold
                named = {str(city)}
            elif not named and find_names(others, text):
                continue  # declined for a city the base does not cover: the place decides, not the words
            if named:
                only_for[len(texts)] = frozenset(named)
            levels = levels_named(lexicon, {k: m for k, m in measures.items() if k not in references}, text)
            if levels:
                only_naming[len(texts)] = levels
            texts.append(str(q))
            labels.append(None)
    if not texts:
        return None
    # analysed the way questions are, so that a question meets its look-alikes in the same words
    docs = [list(analyzer.query(t).terms) for t in texts]
    pos = np.asarray([measure_ids.index(lab[0]) if lab else -1 for lab in labels], dtype=np.int32)
    return Examples(BM25Index.build(docs), labels, pos, only_for, only_naming, texts)


def save(kb: KnowledgeBase, prefixes: tuple[dict[str, int], int], general: dict[str, int], tags: dict[str, str],
         out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    analyzer = kb.analyzer
    payload = {
        "format": FORMAT_VERSION, "fingerprint": kb.fingerprint, "stats": kb.stats, "source": kb.source,
        "measures": kb.measures, "references": kb.references, "units": kb.units, "unit_measure": kb.unit_measure, "measure_ids": kb.measure_ids,
        "index": (kb.index.n_docs, kb.index.postings, kb.index.idf), "places": kb.places, "others": kb.other_places,
        "examples": kb.examples, "model": kb.model.as_dict() if kb.model else None,
        "derived": {k: kb.cache[k] for k in DERIVED if k in kb.cache}, "lexicon": kb.lexicon, "prefixes": prefixes, "general": general, "tags": tags, "t2s": analyzer.t2s, "pinyin": analyzer.pinyin,
    }
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".kb-", suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out)  # atomic: a reader never sees half a file


def read(path: Path) -> KnowledgeBase:
    try:
        with open(path, "rb") as fh:
            p = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise KnowledgeBaseError(f"cannot read {path}: {exc}") from exc
    if not isinstance(p, dict) or p.get("format") != FORMAT_VERSION:
        raise KnowledgeBaseError(f"{path} was built by another version; run `policybot kb build`")
    analyzer = Analyzer(p["prefixes"], p["lexicon"], p["t2s"], p["pinyin"], p["general"], p["tags"])
    index = BM25Index(*p["index"])
    analyzer.set_vocabulary(set(index.postings))
    analyzer.places = set(p["places"]) | set(p["others"]) | provinces(p["measures"])
    analyzer.add_sound_targets(_covered_names(p["measures"]))
    from knowledge.ranker import Model
    try:
        model = Model.from_dict(p["model"]) if p.get("model") else None
    except (KeyError, ValueError) as exc:
        raise KnowledgeBaseError(f"{path}: {exc}; run `policybot kb build`") from exc
    kb = KnowledgeBase(p["measures"], p["units"], p["unit_measure"], p["measure_ids"], index, analyzer,
                       p["places"], p["others"], p["lexicon"], p["fingerprint"], p["stats"], p["examples"], model,
                       source=p.get("source") or "", references=p.get("references") or {})
    kb.cache.update(p.get("derived") or {})
    return kb


def built_from(path: Path) -> Path | None:
    """The source folder the base at `path` was built from (`kb build --source DIR --out FILE`), when it
    still exists; None for a missing or unreadable base."""
    try:
        with open(path, "rb") as fh:
            p = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    source = p.get("source") if isinstance(p, dict) else None
    return Path(source) if source and (Path(source) / "measures").is_dir() else None


def is_stale(path: Path, source: Path | None = None) -> bool:
    """Missing, unreadable, or built from sources that changed since. `source`: the folder to compare with;
    default: the one the base was built from (else the package's knowledge/)."""
    path = Path(path)
    if not path.exists():
        return True
    try:
        kb = read(path)
    except KnowledgeBaseError:
        return True
    src = Path(source) if source else _recorded_source(kb)
    return src is not None and kb.fingerprint != fingerprint(src)


def _recorded_source(kb: KnowledgeBase) -> Path | None:
    """The folder the base was built from; None when that folder is gone (nothing to compare with: the base
    is kept as it is rather than silently rebuilt from other sources)."""
    if not kb.source:
        return SOURCE_DIR
    source = Path(kb.source)
    return source if (source / "measures").is_dir() else None


def load(path: Path, source: Path | None = None, rebuild: bool = True) -> KnowledgeBase:
    """The knowledge base at `path`, (re)built when missing or stale. Staleness is checked against `source`,
    by default the folder the base was built from (`kb build --source DIR --out FILE` then POLICYBOT_KB=FILE
    keeps DIR's measures), else the package's knowledge/."""
    path = Path(path)
    if path.exists():
        try:
            kb = read(path)
            src = Path(source) if source else _recorded_source(kb)
            if not rebuild or src is None or kb.fingerprint == fingerprint(src):
                return kb
            return build(src, path)
        except KnowledgeBaseError:
            if not rebuild:
                raise
    elif not rebuild:
        raise KnowledgeBaseError(f"no knowledge base at {path}; run `policybot kb build`")
    return build(Path(source) if source else SOURCE_DIR, path)
