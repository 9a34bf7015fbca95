"""knowledge.evaluate (`policybot eval`): the question-set format, the leave-out source, the scoring."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowledge import evaluate as ev
from knowledge import kb as kbmod

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("case, message", [
    ({"q": "复核多久一次", "expect": ["weihai:18"], "topic": "x"}, "unknown keys"),
    ({"q": "复核多久一次"}, "either expect"),
    ({"q": "复核多久一次", "expect": ["weihai:18"], "decline": True}, "either expect"),
    ({"q": "复核多久一次", "expect": ["weihai:18"], "kind": "odd"}, "kind"),
    ({"q": "复核多久一次", "expect": "weihai:18"}, "must be a list"),
])
def test_bad_cases_are_refused(tmp_path, case, message):
    path = tmp_path / "qa_x.yaml"
    path.write_text(yaml.safe_dump([case], allow_unicode=True), encoding="utf-8")
    with pytest.raises(ev.EvalError, match=message):
        ev.load_cases(path)


def test_leave_out_removes_what_was_learned_from_the_measure(tmp_path):
    dest = tmp_path / "knowledge"
    import shutil
    shutil.copytree(kbmod.SOURCE_DIR, dest, ignore=shutil.ignore_patterns("*.py", "__pycache__", "calendar"))
    (dest / "measures" / "weihai.lexicon.yaml").write_text("synonyms: {}\n", encoding="utf-8")
    near = yaml.safe_load((dest / "near_misses.yaml").read_text(encoding="utf-8"))
    tied = [i for i in near if isinstance(i, dict) and i.get("city") == "weihai"]
    naming = [i for i in near if not isinstance(i, dict) and "威海" in i]
    assert tied or naming  # else this test would test nothing
    ev.leave_out(dest, "weihai")
    assert not (dest / "measures" / "weihai.questions.yaml").exists()
    assert not (dest / "measures" / "weihai.lexicon.yaml").exists()
    assert (dest / "measures" / "baotou.questions.yaml").exists()
    assert (dest / "measures" / "weihai.txt").exists() and (dest / "measures" / "weihai.yaml").exists()
    kept = yaml.safe_load((dest / "near_misses.yaml").read_text(encoding="utf-8"))
    assert not [i for i in kept if isinstance(i, dict) and i.get("city") == "weihai"]
    assert not [i for i in kept if "威海" in (i["q"] if isinstance(i, dict) else i)]
    assert len(kept) > len(near) // 2  # the generic near-misses stay
    with pytest.raises(ev.EvalError, match="no measure"):
        ev.leave_out(dest, "nowhere")


def test_scoring_counts_top1_top3_declines_and_reasons(kb):
    cases = [{"q": "威海示范企业多久复核一次", "expect": ["weihai:18"], "kind": "ordinary"},
             {"q": "威海示范企业多久复核一次", "expect": ["weihai:1"], "kind": "paraphrase"},  # wrong on purpose
             {"q": "今天天气怎么样", "decline": True},
             {"q": "上海的示范企业申报条件", "decline": True}]
    r = ev.evaluate(kb, cases, "t")
    assert (r.overall.answerable, r.overall.top1, r.overall.declinable, r.overall.declined) == (2, 1, 2, 2)
    assert r.by_kind["paraphrase"].top1 == 0 and r.by_kind["ordinary"].top1 == 1
    assert r.by_city["weihai"].answerable == 2
    assert r.declined_by["uncovered_city"] == 1 and sum(r.declined_by.values()) == 2
    assert sum(r.wrong_answer_by.values()) == 1 and r.misses[0]["q"] == cases[1]["q"]
    d = r.as_dict()
    assert d["overall"]["top1"] == 0.5 and d["by_kind"]["paraphrase"]["top1"] == 0.0


def test_context_turns_are_noted_when_no_conversation_is_available(kb, monkeypatch):
    monkeypatch.setattr(ev, "_conversation", lambda: None)
    r = ev.evaluate(kb, [{"q": "那包头呢", "context": ["威海申报条件是什么"], "expect": ["baotou:6"], "kind": "followup"}], "t")
    assert r.notes and "context" in r.notes[0]


def test_eval_command(kb_file, tmp_path):
    path = tmp_path / "qa_small.yaml"
    path.write_text(yaml.safe_dump([{"q": "威海示范企业多久复核一次", "expect": ["weihai:18"]},
                                    {"q": "今天天气怎么样", "decline": True}], allow_unicode=True), encoding="utf-8")
    env = dict(os.environ, POLICYBOT_KB=str(kb_file), POLICYBOT_DB=str(tmp_path / "t.db"))
    out = subprocess.run([sys.executable, "-m", "bot.cli", "eval", "--json", str(path)], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["overall"]["top1"] == 1.0 and data["overall"]["declined"] == 1.0
    bad = subprocess.run([sys.executable, "-m", "bot.cli", "eval", str(tmp_path / "none.yaml")], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr
