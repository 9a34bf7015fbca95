"""Accuracy on the question set: the issue's targets are top-1 ≥ 95 % and decline ≥ 90 %."""
import pytest
from qa_harness import evaluate, load_cases

# Measured with `make bench`. The targets are not met yet (issue 2 stays open); the floor below is the
# level reached, so that a change which makes answers worse fails here instead of passing quietly.
FLOOR_TOP1, FLOOR_DECLINE = 0.77, 0.77


@pytest.fixture(scope="module")
def eval_score(kb):
    cases = load_cases("qa_eval.yaml")
    assert sum(1 for c in cases if not c.get("decline")) >= 80
    assert sum(1 for c in cases if c.get("decline")) >= 15
    return evaluate(kb, cases)


def test_eval_set_does_not_regress(eval_score):
    report = "\n".join(eval_score.misses)
    assert eval_score.top1_rate >= FLOOR_TOP1, f"top-1 {eval_score.top1_rate:.3f}\n{report}"
    assert eval_score.decline_rate >= FLOOR_DECLINE, f"decline {eval_score.decline_rate:.3f}\n{report}"


@pytest.mark.xfail(reason="issue 2 targets not reached yet: see `make bench`", strict=False)
def test_eval_set_meets_the_issue_targets(eval_score):
    report = "\n".join(eval_score.misses)
    assert eval_score.top1_rate >= 0.95, f"top-1 {eval_score.top1_rate:.3f}\n{report}"
    assert eval_score.decline_rate >= 0.90, f"decline {eval_score.decline_rate:.3f}\n{report}"


def test_dev_set_is_separate():
    dev = {c["q"] for c in load_cases("qa_dev.yaml")}
    ev = {c["q"] for c in load_cases("qa_eval.yaml")}
    assert not dev & ev
