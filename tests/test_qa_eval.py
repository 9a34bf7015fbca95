"""Accuracy on the question set: top-1 ≥ 95 %, decline ≥ 90 % (the issue's targets)."""
from qa_harness import evaluate, load_cases


def test_eval_set_targets(kb):
    cases = load_cases("qa_eval.yaml")
    assert sum(1 for c in cases if not c.get("decline")) >= 80
    assert sum(1 for c in cases if c.get("decline")) >= 15
    score = evaluate(kb, cases)
    report = "\n".join(score.misses)
    assert score.top1_rate >= 0.95, f"top-1 {score.top1_rate:.3f}\n{report}"
    assert score.decline_rate >= 0.90, f"decline {score.decline_rate:.3f}\n{report}"


def test_dev_set_is_separate():
    dev = {c["q"] for c in load_cases("qa_dev.yaml")}
    ev = {c["q"] for c in load_cases("qa_eval.yaml")}
    assert not dev & ev
