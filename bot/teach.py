"""What operators teach the knowledge base from the console, kept apart from the shipped sources.

The shipped example questions (knowledge/measures/<id>.questions.yaml, knowledge/near_misses.yaml) are the
project's, reviewed in git. What an operator adds in the console (a declined question linked to the article that
answers it, a question marked out of scope) is the bureau's, and lives in one file beside the database:
`operator_examples.yaml` (data/ by default). It is read, never written, by the knowledge base build; upgrading the
bot never touches it, and `git status` of the sources stays clean.

How the build sees it: only through the public `knowledge.kb.build(source, out)` / `load(path, source)`. When the
file has entries, `source_dir()` lays out a copy of knowledge/ beside the database (`kb-source/`: the measures,
lexicon, gazetteer and near-misses, with the operator's questions appended to the measure's questions file and to
near_misses.yaml) and the knowledge base is built from that copy. Its fingerprint covers the additions, so a
`serve` restarted later loads the same knowledge base, and `policybot kb build` builds it too. Whatever method
ranks and declines (BM25 re-ranking today, possibly a model trained at build time), it learns from the same files.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import yaml

from bot.clock import now_shanghai
from knowledge import kb as kbmod

FILE_NAME = "operator_examples.yaml"
OVERLAY_DIR = "kb-source"
SHIPPED_FROM = ".shipped-from"  # in the overlay: the folder it copies (not a source file of the build)
HEADER = ("# Questions the bureau's operators taught in the console (policybot serve, /admin/unanswered).\n"
          "# examples: a question and the article that answers it; near_misses: a question to decline.\n"
          "# Read by the knowledge base build beside knowledge/; edit with care, then `policybot kb build`.\n")
_lock = threading.Lock()


class TeachError(ValueError):
    """An addition that cannot be made (unknown measure or article, empty question); the message is Chinese."""


def operator_file(db: Path) -> Path:
    return Path(db).parent / FILE_NAME


def read(path: Path) -> dict:
    """{"examples": [{q, measure, article, by, at}], "near_misses": [{q, city?, by, at}]}; empty when absent."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        data = {}
    except (OSError, yaml.YAMLError) as exc:
        raise kbmod.KnowledgeBaseError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise kbmod.KnowledgeBaseError(f"{path}: expected examples: and near_misses: lists")
    return {"examples": [e for e in data.get("examples") or [] if isinstance(e, dict) and e.get("q")],
            "near_misses": [e for e in data.get("near_misses") or [] if isinstance(e, dict) and e.get("q")]}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=200)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".operator-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(body)
    os.replace(tmp, path)  # atomic: the build never reads half a file


def add_example(path: Path, kb, question: str, measure: str, article: int, by: str) -> bool:
    """The question answers `measure`'s article; False when it was already there."""
    question = " ".join((question or "").split())
    if not question:
        raise TeachError("问题为空。")
    m = kb.measures.get(measure)
    if m is None:
        raise TeachError(f"没有“{measure}”这个办法。")
    if article not in m.articles:
        raise TeachError(f"{m.citation_title}没有第{article}条（共{max(m.articles)}条）。")
    with _lock:
        data = read(path)
        if any(e["q"] == question and e.get("measure") == measure and e.get("article") == article
               for e in data["examples"]):
            return False
        # a question now answered is no longer one to decline
        data["near_misses"] = [e for e in data["near_misses"] if e["q"] != question]
        data["examples"].append({"q": question, "measure": measure, "article": int(article), "by": by,
                                 "at": now_shanghai().isoformat(timespec="seconds")})
        _write(path, data)
    return True


def add_near_miss(path: Path, question: str, by: str, city: str | None = None) -> bool:
    """The question is one to decline (for `city`'s measure only, when given); False when already there."""
    question = " ".join((question or "").split())
    if not question:
        raise TeachError("问题为空。")
    with _lock:
        data = read(path)
        if any(e["q"] == question and e.get("city") == city for e in data["near_misses"]):
            return False
        data["examples"] = [e for e in data["examples"] if e["q"] != question]
        entry = {"q": question, "by": by, "at": now_shanghai().isoformat(timespec="seconds")}
        if city:
            entry["city"] = city
        data["near_misses"].append(entry)
        _write(path, data)
    return True


def base_source(db: Path, kb_path: Path | None = None, base: Path | None = None) -> Path:
    """The folder of measures operators' questions are added to: `base` when given, else the folder the knowledge
    base at `kb_path` was built from (`kb build --source DIR`), else the package's knowledge/. A base built from
    this overlay names the folder the overlay was made from."""
    if base is not None:
        return Path(base)
    recorded = kbmod.built_from(kb_path) if kb_path is not None and hasattr(kbmod, "built_from") else None
    target = Path(db).parent / OVERLAY_DIR
    if recorded is not None and Path(recorded).resolve() == target.resolve():
        try:
            recorded = Path((target / SHIPPED_FROM).read_text(encoding="utf-8").strip())
        except OSError:
            recorded = None
    if recorded is not None and (Path(recorded) / "measures").is_dir():
        return Path(recorded)
    return kbmod.SOURCE_DIR


def source_dir(db: Path, kb_path: Path | None = None, base: Path | None = None) -> Path:
    """The folder the knowledge base is built from: its base folder (base_source) when operators added nothing,
    else a copy of it beside the database with their questions merged in (rewritten only when its content
    changes)."""
    shipped = base_source(db, kb_path, base)
    additions = read(operator_file(db))
    if not additions["examples"] and not additions["near_misses"]:
        return Path(shipped)
    target = Path(db).parent / OVERLAY_DIR
    with _lock:
        files = _overlay_files(Path(shipped), additions)
        files[SHIPPED_FROM] = str(Path(shipped).resolve()).encode("utf-8")
        if _same(target, files):
            return target
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".kb-source-"))
        for rel, data in files.items():
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        old = target.with_name(f".{OVERLAY_DIR}-old-{os.getpid()}-{threading.get_ident()}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    return target


def _same(target: Path, files: dict[str, bytes]) -> bool:
    if not target.is_dir():
        return False
    present = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    return all((target / rel).read_bytes() == data for rel, data in files.items())


def _overlay_files(shipped: Path, additions: dict) -> dict[str, bytes]:
    """Every data file of knowledge/ (not the code), with the operator's questions merged into the copies."""
    files: dict[str, bytes] = {}
    for path in sorted(shipped.rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
            files[str(path.relative_to(shipped))] = path.read_bytes()
    by_measure: dict[str, dict[int, list[str]]] = {}
    for e in additions["examples"]:
        measure, article = str(e.get("measure") or ""), e.get("article")
        rel_text = f"measures/{measure}.txt"
        if rel_text not in files or not isinstance(article, int):
            continue  # a measure no longer shipped: its additions wait, the build does not fail
        by_measure.setdefault(measure, {}).setdefault(article, []).append(str(e["q"]))
    for measure, added in by_measure.items():
        rel = f"measures/{measure}{kbmod.QUESTIONS_SUFFIX}"
        current = yaml.safe_load(files[rel].decode("utf-8")) if rel in files else {}
        current = current if isinstance(current, dict) else {}
        for article, questions in added.items():
            have = list(current.get(article) or [])
            current[article] = have + [q for q in questions if q not in have]
        files[rel] = ("# shipped questions plus the operators' (operator_examples.yaml)\n"
                      + yaml.safe_dump(current, allow_unicode=True, sort_keys=True, width=200)).encode("utf-8")
    if additions["near_misses"]:
        rel = "near_misses.yaml"
        current = yaml.safe_load(files[rel].decode("utf-8")) if rel in files else []
        current = list(current or [])
        for e in additions["near_misses"]:
            current.append({"q": str(e["q"]), "city": e["city"]} if e.get("city") else str(e["q"]))
        files[rel] = ("# shipped near-misses plus the operators' (operator_examples.yaml)\n"
                      + yaml.safe_dump(current, allow_unicode=True, sort_keys=False, width=200)).encode("utf-8")
    return files


def load(db: Path, kb_path: Path, rebuild: bool = True):
    """The knowledge base for this database: built from its measures plus what its operators taught."""
    return kbmod.load(kb_path, source_dir(db, kb_path), rebuild=rebuild)


def build(db: Path, kb_path: Path):
    """Rebuild now (the console's background rebuild)."""
    return kbmod.build(source_dir(db, kb_path), kb_path)
