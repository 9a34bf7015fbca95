"""Accuracy on the question sets. The issue's targets: top-1 ≥ 95 %, decline ≥ 90 % on unseen questions.

Each set was written by a helper who saw neither the method nor the other sets, in this order:
qa_dev (tuning), qa_eval, qa_holdout, qa_final, qa_fresh, qa_unseen. A set's first score, before
anything was changed with its failures in view, is the honest estimate for unseen questions; after that
it is a regression test. First scores (top-1 / decline): qa_holdout 82.9 / 80.7, qa_final 85.8 / 69.7,
qa_fresh 85.0 / 76.0, qa_unseen 91.5 / 85.3 (the first scored with the example questions). The sets
tuned on are asserted at the targets; the two latest at the level they reached, so that a change which
makes answers to unseen questions worse fails here.
"""
import pytest
from qa_harness import DATA, evaluate, load_cases

TARGET_TOP1, TARGET_DECLINE = 0.95, 0.90
FLOORS = {"qa_fresh.yaml": (0.89, 0.87), "qa_unseen.yaml": (0.91, 0.87)}  # (top-1, decline)


def _score(kb, name):
    cases = load_cases(name)
    assert sum(1 for c in cases if not c.get("decline")) >= 80
    assert sum(1 for c in cases if c.get("decline")) >= 15
    return evaluate(kb, cases)


@pytest.mark.parametrize("name", ["qa_eval.yaml", "qa_holdout.yaml", "qa_final.yaml"])
def test_question_set_meets_the_targets(kb, name):
    score = _score(kb, name)
    report = "\n".join(score.misses)
    assert score.top1_rate >= TARGET_TOP1, f"{name}: top-1 {score.top1_rate:.3f}\n{report}"
    assert score.decline_rate >= TARGET_DECLINE, f"{name}: decline {score.decline_rate:.3f}\n{report}"


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_latest_sets_do_not_regress(kb, name):
    score = _score(kb, name)
    report = "\n".join(score.misses)
    top1, decline = FLOORS[name]
    assert score.top1_rate >= top1, f"{name}: top-1 {score.top1_rate:.3f}\n{report}"
    assert score.decline_rate >= decline, f"{name}: decline {score.decline_rate:.3f}\n{report}"


def test_question_sets_are_separate():
    seen: dict[str, str] = {}
    for path in sorted(DATA.glob("qa_*.yaml")):
        for case in load_cases(path.name):
            assert case["q"] not in seen or seen[case["q"]] == path.name, \
                f"{case['q']!r} in {seen[case['q']]} and {path.name}"
            seen[case["q"]] = path.name
