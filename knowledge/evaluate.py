"""Scores question sets (the tests' format) through knowledge.qa: `policybot eval`, tests/qa_harness.py, `make bench`.

A question set is a YAML list of cases:

    - q: 威海示范企业多久复核一次          # the question
      expect: [weihai:18]                   # every article that is a correct FIRST citation, or
      decline: true                         # … the measures do not answer it
      city: weihai                          # optional: the conversation's city
      kind: paraphrase                      # optional, one of KINDS (default ordinary / out_of_scope)
      expect_all: [weihai:6, baotou:6]      # optional: every one must be among the citations
      context: [包头申报要什么条件]         # optional: earlier turns of the same conversation

Unknown keys are refused. `--leave-out MEASURE` builds the knowledge base as if that measure had never been
seen: without its example questions, without the near-misses that name it or are tied to it, and without its
own lexicon (measures/<id>.lexicon.yaml); whatever the build learns is learned without them.
"""
from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge import kb as kbmod
from knowledge import yamlio
from knowledge.textnorm import normalize

AS_OF = dt.date(2026, 11, 22)
REPO_DATA = kbmod.SOURCE_DIR.parent / "tests" / "data"
KINDS = ("ordinary", "paraphrase", "long", "numbers", "typos", "traditional", "mixed", "comparison", "followup",
         "validity", "out_of_scope")
KEYS = {"q", "expect", "city", "decline", "kind", "expect_all", "context"}
TOP_K = 3


class EvalError(ValueError):
    """A question set or an option that cannot be used; the message says which and why."""


# ---- question sets --------------------------------------------------------------------------------
def load_cases(path: Path | str) -> list[dict]:
    """A question set, checked: each case answerable (expect) or to decline, no unknown key."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = REPO_DATA / path
    try:
        cases = yamlio.loads(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvalError(f"{path.name}: {exc}") from None
    if not isinstance(cases, list):
        raise EvalError(f"{path.name}: expected a list of cases")
    for case in cases:
        if not isinstance(case, dict) or not case.get("q"):
            raise EvalError(f"{path.name}: a case is a mapping with q: {case!r}")
        unknown = set(case) - KEYS
        if unknown:
            raise EvalError(f"{path.name}: unknown keys {sorted(unknown)} in {case}")
        if bool(case.get("decline")) == bool(case.get("expect") or case.get("expect_all")):
            raise EvalError(f"{path.name}: a case needs either expect (or expect_all) or decline: {case}")
        if case.get("kind") is not None and case["kind"] not in KINDS:
            raise EvalError(f"{path.name}: kind {case['kind']!r} is none of {', '.join(KINDS)}")
        for key in ("expect", "expect_all", "context"):
            if case.get(key) is not None and not isinstance(case[key], list):
                raise EvalError(f"{path.name}: {key} must be a list: {case}")
    return cases


def example_questions(source: Path = kbmod.SOURCE_DIR) -> set[str]:
    """Every example question of a knowledge source (answerable and near-misses)."""
    out: set[str] = set()
    for path in Path(source).glob("measures/*" + kbmod.QUESTIONS_SUFFIX):
        for questions in (yamlio.loads(path.read_text(encoding="utf-8")) or {}).values():
            out.update(str(q) for q in questions or [])
    near = Path(source) / "near_misses.yaml"
    if near.exists():
        out.update(str(i["q"] if isinstance(i, dict) else i) for i in yamlio.loads(near.read_text(encoding="utf-8")) or [])
    return out


def default_files() -> list[Path]:
    """The repository's question sets that are tests: those not (mostly) made example questions, and the
    dev measures' sets (tests/data/dev/qa_*.yaml)."""
    if not REPO_DATA.is_dir():
        raise EvalError("no question sets found (tests/data is not here); name the files to score")
    examples = example_questions()
    out = []
    for path in sorted(REPO_DATA.glob("qa_*.yaml")):
        cases = load_cases(path)
        if sum(c["q"] in examples for c in cases) <= len(cases) // 2:
            out.append(path)
    out += sorted((REPO_DATA / "dev").glob("qa_*.yaml"))
    return out


# ---- the knowledge base scored --------------------------------------------------------------------
def _places_of(meta: dict, mid: str) -> list[str]:
    city = meta.get("city") or {}
    return [str(n) for n in [mid, city.get("name"), city.get("short"), *(city.get("aliases") or []),
                             *(city.get("districts") or [])] if n]


def leave_out(dest: Path, measure: str) -> None:
    """Removes from the knowledge source `dest` (a copy) everything learned from `measure`: its example
    questions, its own lexicon, and the near-misses tied to it (city: <it>) or naming one of its places."""
    dest = Path(dest)
    meta_path = dest / "measures" / f"{measure}.yaml"
    if not meta_path.exists():
        raise EvalError(f"--leave-out: no measure {measure!r}")
    for suffix in (kbmod.QUESTIONS_SUFFIX, kbmod.LEXICON_SUFFIX):
        (dest / "measures" / f"{measure}{suffix}").unlink(missing_ok=True)
    near = dest / "near_misses.yaml"
    if near.exists():
        places = [normalize(p) for p in _places_of(yamlio.loads(meta_path.read_text(encoding="utf-8")) or {}, measure)]
        kept = []
        for item in yamlio.loads(near.read_text(encoding="utf-8")) or []:
            q, city = (item.get("q"), item.get("city")) if isinstance(item, dict) else (item, None)
            text = normalize(str(q))
            if city == measure or any(p and p in text for p in places):
                continue
            kept.append(item)
        near.write_text(yaml.safe_dump(kept, allow_unicode=True, sort_keys=False), encoding="utf-8")


def add_measures(dest: Path, raw_dir: Path) -> list[str]:
    """Adds the measures of `raw_dir` (raw extracted <id>.txt, as published) to the source `dest`: through
    knowledge.importer (`policybot kb import`), or as they are when a reviewed <id>.yaml lies beside."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise EvalError(f"--measures: {raw_dir} is not a folder")
    added = []
    for txt in sorted(raw_dir.glob("*.txt")):
        mid = txt.stem
        target = Path(dest) / "measures"
        if (target / f"{mid}.txt").exists():
            continue
        meta = txt.with_suffix(".yaml")
        if meta.exists():
            shutil.copy(txt, target / txt.name)
            shutil.copy(meta, target / meta.name)
        else:
            _import(txt, target, mid)
        added.append(mid)
    if not added and not any(raw_dir.glob("*.txt")):
        raise EvalError(f"--measures: no <id>.txt in {raw_dir}")
    return added


def _importable(folder: Path) -> bool:
    """Can the raw measures of a folder be added: each has a reviewed <id>.yaml, or the importer is here."""
    if all(p.with_suffix(".yaml").exists() for p in folder.glob("*.txt")):
        return True
    return importlib.util.find_spec("knowledge.importer") is not None


def _import(path: Path, target: Path, mid: str) -> None:
    """A raw measure through `policybot kb import` (knowledge.importer): cleaned text and drafted metadata."""
    try:
        importer = importlib.import_module("knowledge.importer")
    except ImportError:
        raise EvalError(f"--measures: {path.name} has no <id>.yaml beside it and knowledge.importer "
                        "(`policybot kb import`) is not installed here") from None
    try:
        result = importer.import_document(path, id=mid, existing=importer.existing_measures(target))
        importer.write_measure(result, target)
    except importer.ImportFailure as exc:
        raise EvalError(f"--measures: {path.name}: {exc}") from None


def build_base(leave_out_measure: str | None = None, measures: list[Path] = (), source: Path = kbmod.SOURCE_DIR,
               workdir: Path | None = None) -> kbmod.KnowledgeBase:
    """The knowledge base to score: the shipped one, plus `measures`, less what was learned from
    `leave_out_measure`."""
    if not leave_out_measure and not measures:
        return kbmod.build(source)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        dest = Path(tmp) / "knowledge"
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.py", "*.pyc", "calendar"))
        for raw in measures:
            add_measures(dest, raw)
        if leave_out_measure:
            leave_out(dest, leave_out_measure)
        return kbmod.build(dest)


# ---- scoring --------------------------------------------------------------------------------------
@dataclass
class Tally:
    answerable: int = 0
    top1: int = 0  # answered, first citation expected (and every expect_all cited)
    top3: int = 0  # an expected article among the first three ranked, declined or not
    ranked_first: int = 0  # the first ranked article expected, declining switched off
    wrongly_declined: int = 0
    declinable: int = 0
    declined: int = 0

    def add(self, other: "Tally") -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def as_dict(self) -> dict:
        r = lambda a, b: round(a / b, 4) if b else None  # noqa: E731
        return {"answerable": self.answerable, "top1": r(self.top1, self.answerable),
                "top3": r(self.top3, self.answerable), "top1_no_decline": r(self.ranked_first, self.answerable),
                "wrongly_declined": r(self.wrongly_declined, self.answerable),
                "declinable": self.declinable, "declined": r(self.declined, self.declinable),
                "counts": {"top1": self.top1, "top3": self.top3, "top1_no_decline": self.ranked_first,
                           "wrongly_declined": self.wrongly_declined, "declined": self.declined}}


@dataclass
class Report:
    overall: Tally = field(default_factory=Tally)
    by_file: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_city: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    # what decided each outcome: reason -> count, for right declines, wrong declines and wrong answers
    declined_by: Counter = field(default_factory=Counter)
    wrongly_declined_by: Counter = field(default_factory=Counter)
    wrong_answer_by: Counter = field(default_factory=Counter)
    not_declined_by: Counter = field(default_factory=Counter)
    misses: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.overall.top1 / self.overall.answerable if self.overall.answerable else 0.0

    @property
    def decline_rate(self) -> float:
        return self.overall.declined / self.overall.declinable if self.overall.declinable else 0.0

    def as_dict(self) -> dict:
        return {"overall": self.overall.as_dict(),
                "by_file": {k: v.as_dict() for k, v in self.by_file.items()},
                "by_city": {k: v.as_dict() for k, v in sorted(self.by_city.items())},
                "by_kind": {k: v.as_dict() for k, v in sorted(self.by_kind.items())},
                "declined_by_reason": dict(self.declined_by.most_common()),
                "wrongly_declined_by_reason": dict(self.wrongly_declined_by.most_common()),
                "wrong_answer_by_reason": dict(self.wrong_answer_by.most_common()),
                "not_declined_by_reason": dict(self.not_declined_by.most_common()),
                "misses": self.misses, "notes": self.notes}

    def text(self, misses: bool = False) -> str:
        def row(name: str, t: Tally) -> str:
            d = t.as_dict()
            pct = lambda v: "   -  " if v is None else f"{100 * v:5.1f}%"  # noqa: E731
            return (f"  {name:<28} {t.answerable:>5}  top-1 {pct(d['top1'])}  top-3 {pct(d['top3'])}  "
                    f"no-decline top-1 {pct(d['top1_no_decline'])}  wrongly declined {pct(d['wrongly_declined'])}"
                    f"   | {t.declinable:>4} to decline: declined {pct(d['declined'])}")
        out = [row("overall", self.overall), "by file:"]
        out += [row(k, v) for k, v in self.by_file.items()]
        out += ["by city:"] + [row(k, v) for k, v in sorted(self.by_city.items())]
        out += ["by kind:"] + [row(k, v) for k, v in sorted(self.by_kind.items())]
        for title, counter in (("right declines, by reason", self.declined_by),
                               ("wrong declines (answerable), by reason", self.wrongly_declined_by),
                               ("wrong answers, by what decided them", self.wrong_answer_by),
                               ("not declined, by what decided them", self.not_declined_by)):
            out.append(f"{title}: " + (", ".join(f"{k} {n}" for k, n in counter.most_common()) or "none"))
        out += [f"note: {n}" for n in self.notes]
        if misses:
            out.append("misses:")
            out += [f"  {m['file']}: {m['q']}  expected {m['expected']} got {m['got']} ({m['reason']})" for m in self.misses]
        return "\n".join(out)


def _label(c) -> str:
    return f"{c.measure}:{c.article}"


def _conversation():
    try:
        return importlib.import_module("knowledge.conversation")
    except ImportError:
        return None


def score_case(kb, case: dict, as_of: dt.date = AS_OF):
    """The answer to a case (its context turns asked first in one conversation when that is possible)."""
    from knowledge.qa import answer
    context = case.get("context") or []
    conv = _conversation() if context else None
    if conv is not None and hasattr(conv, "Conversation"):
        c = conv.Conversation(kb, city=case.get("city"))
        for turn in context:
            c.ask(turn, as_of)
        return c.ask(case["q"], as_of), True
    return answer(kb, case["q"], as_of, case.get("city")), not context


def evaluate(kb, cases: list[dict], name: str = "", as_of: dt.date = AS_OF, report: Report | None = None) -> Report:
    report = report if report is not None else Report()
    skipped = 0
    for case in cases:
        a, whole = score_case(kb, case, as_of)
        skipped += not whole
        t = Tally()
        cited = [_label(c) for c in a.citations]
        ranked = list(dict.fromkeys(cited + list(getattr(a, "ranking", None) or [])))
        reason = a.reason or "answered"
        if case.get("decline"):
            t.declinable = 1
            t.declined = int(a.abstained)
            kind = case.get("kind") or "out_of_scope"
            if a.abstained:
                report.declined_by[reason] += 1
            else:
                report.not_declined_by[reason] += 1
                report.misses.append({"file": name, "q": case["q"], "expected": "decline", "got": cited[0],
                                      "reason": reason, "trace": getattr(a, "trace", None)})
        else:
            t.answerable = 1
            expect = [str(e) for e in case.get("expect") or case.get("expect_all")]
            must = [str(e) for e in case.get("expect_all") or []]
            right = (not a.abstained and cited[0] in expect and all(e in cited for e in must))
            t.top1 = int(right)
            t.top3 = int(any(r in expect for r in ranked[:TOP_K]))
            t.ranked_first = int(bool(ranked) and ranked[0] in expect)
            t.wrongly_declined = int(a.abstained)
            kind = case.get("kind") or "ordinary"
            if a.abstained:
                report.wrongly_declined_by[reason] += 1
            elif not right:
                report.wrong_answer_by[reason] += 1
            if not right:
                report.misses.append({"file": name, "q": case["q"], "expected": expect + [f"all:{e}" for e in must],
                                      "got": cited or None, "reason": reason, "trace": getattr(a, "trace", None)})
        city = case.get("city") or _city_of(case)
        report.overall.add(t)
        report.by_file[name].add(t)
        report.by_city[city].add(t)
        report.by_kind[kind].add(t)
    if skipped:
        report.notes.append(f"{name}: {skipped} case(s) with context turns asked without them "
                            "(knowledge.conversation is not available)")
    return report


def _own_measure(path: Path) -> str | None:
    """The measure a dev question set belongs to: qa_<id>.yaml beside <id>.txt."""
    path = Path(path)
    folder = (path if path.is_absolute() or path.exists() else REPO_DATA / path).parent
    mid = path.stem.removeprefix("qa_")
    return mid if path.stem.startswith("qa_") and (folder / f"{mid}.txt").exists() else None


def _about(kb, case: dict, measure: str) -> bool:
    """Is a case about `measure`: it expects one of its articles, or it is to decline there (its city, a
    place of it named, or no covered city named at all)."""
    wanted = (case.get("expect") or []) + (case.get("expect_all") or [])
    if wanted:
        return any(str(e).startswith(f"{measure}:") for e in wanted)
    if case.get("city"):
        return case["city"] == measure
    from knowledge.qa import cities_in
    named = cities_in(kb, normalize(case["q"], kb.analyzer.t2s))
    return not named or measure in named


def _city_of(case: dict) -> str:
    measures = sorted({str(e).split(":")[0] for e in (case.get("expect") or []) + (case.get("expect_all") or [])})
    if not measures:
        return "(decline, no city)"
    return measures[0] if len(measures) == 1 else "+".join(measures)


def run(files: list[Path], leave_out: str | None = None, measures: list[Path] = (), as_of: dt.date = AS_OF,
        base=None) -> Report:
    """Scores the files on a knowledge base built for the purpose (see build_base); `base` is the shipped
    one, used as it is when nothing is to be left out or added."""
    files = [Path(f) for f in files] or default_files()
    raw_dirs, notes = list(measures), []
    kept, with_raw = [], set()
    for f in files:  # a question set kept beside its measures' raw text (tests/data/dev/): those measures too
        folder = (f if f.is_absolute() or f.exists() else REPO_DATA / f).parent
        if any(folder.glob("*.txt")):
            if not _importable(folder):
                notes.append(f"{f.name}: not scored, its measures need knowledge.importer (`policybot kb import`)")
                continue
            if folder not in raw_dirs:
                raw_dirs.append(folder)
            with_raw.add(f.name)
        kept.append(f)
    sets = [(f.name, load_cases(f)) for f in kept]
    # a dev measure's set (tests/data/dev/qa_<id>.yaml) was written by someone who saw only that measure: its
    # questions are asked in a conversation about that city (as a user of that city's bot would), unless a
    # case says otherwise; a city named in the question still comes first
    sets = [(name, [c if c.get("city") or c.get("context") else dict(c, city=_own_measure(f)) for c in cases])
            if _own_measure(f) else (name, cases) for f, (name, cases) in zip(kept, sets)]
    report = Report()
    report.notes.extend(notes)
    if leave_out:  # one base holding every measure, the left-out one with nothing learned from it
        kb = build_base(leave_out, raw_dirs)
        report.notes.append(f"left out: the example questions, near-misses and own lexicon of {leave_out}")
        for name, cases in sets:  # only its questions (and those to decline) say what an unseen measure gets
            evaluate(kb, [c for c in cases if _about(kb, c, leave_out)], name, as_of, report)
        return report
    # the shipped measures' sets on the shipped base (plus --measures), the dev sets with their measures added
    plain = [(n, c) for n, c in sets if n not in with_raw]
    if plain:
        kb = base if base is not None and not measures else build_base(None, list(measures))
        for name, cases in plain:
            evaluate(kb, cases, name, as_of, report)
    dev = [(n, c) for n, c in sets if n in with_raw]
    if dev:
        kb = build_base(None, raw_dirs)
        for name, cases in dev:
            evaluate(kb, cases, name, as_of, report)
    return report
