"""knowledge/ranker.py: the learned ranker and answer decision (numpy only at question time)."""
import json

import numpy as np

from knowledge import ranker
from knowledge.qa import RANK_FEATURES


def test_logistic_regression_recovers_known_weights():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 3))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(X @ [1.5, -2.0, 0.0] + 0.5)))).astype(float)
    mean, scale, w = ranker.fit_logistic(X, y, l2=1.0)
    assert np.allclose(w[:-1] / scale, [1.5, -2.0, 0.0], atol=0.2)


def test_conditional_logit_recovers_known_weights():
    rng = np.random.default_rng(2)
    true, blocks, starts, gold, n = np.array([2.0, -1.0, 0.5]), [], [], [], 0
    for _ in range(2000):
        k = int(rng.integers(2, 8))
        X = rng.normal(size=(k, 3))
        p = np.exp(X @ true)
        starts.append(n)
        gold.append(n + int(rng.choice(k, p=p / p.sum())))
        n += k
        blocks.append(X)
    mean, scale, w = ranker.fit_conditional_logit(np.vstack(blocks), np.array(starts), np.array(gold), l2=1.0)
    assert np.allclose(w[:-1] / scale, true, atol=0.25)


def test_the_threshold_is_the_best_balance_of_right_answers_and_declines():
    p = np.array([0.9, 0.8, 0.7, 0.5, 0.3, 0.6, 0.65, 0.75])
    right = np.array([True, True, True, False, False, False, False, False])
    answerable = np.array([True, True, True, True, False, False, False, False])
    t, value = ranker._best_threshold(p, right, answerable, [0.05, 0.95, 0.01], "min")
    assert 0.65 < t <= 0.7 and abs(value - 0.75) < 1e-9  # 3 of 4 answered right, 3 of 4 declined
    t, value = ranker._best_threshold(p, right, answerable, [0.05, 0.95, 0.01], "sum")
    assert abs(value - 1.5) < 1e-9


def test_the_shipped_model_was_cross_validated_by_measure(kb):
    report = kb.model.report
    for regime in ranker.REGIMES:
        r = report[regime]
        # leave one measure out; the reference measures (knowledge/reference/) only as measures without examples
        assert r["folds"] == (["baotou", "weihai"] if regime == "seen" else sorted(["baotou", "weihai", *kb.references]))
        assert 0.05 <= r["threshold"] <= 0.95 and kb.model.regimes[regime].threshold == r["threshold"]
        assert 0 < r["cv_top1"] <= r["cv_top1_no_decline"] <= 1 and 0 < r["cv_declined"] <= 1


def test_the_fallback_model_fits_the_features():
    model = ranker.Model.from_dict(json.loads(ranker.FALLBACK.read_text(encoding="utf-8")))
    for regime in model.regimes.values():
        assert len(regime.ranker.w) == len(RANK_FEATURES) + 1
        assert len(regime.decision.w) == len(ranker.DECIDE_FEATURES) + 1


class _Unit:
    def __init__(self, measure):
        self.measure = measure


class _Cand:
    def __init__(self, measure, regime):
        self.unit, self.regime = _Unit(measure), regime


def test_a_measure_scored_lower_without_examples_gets_its_threshold_shifted_alike(kb):
    model = ranker.Model(dict(kb.model.regimes), {}, {"newcity": -0.5})
    base = kb.model.regimes["unseen"].threshold
    lowered = model.threshold(_Cand("newcity", "unseen"))
    logit = np.log(base / (1 - base)) - 0.5
    assert abs(lowered - 1 / (1 + np.exp(-logit))) < 1e-9 and lowered < base
    assert model.threshold(_Cand("othercity", "unseen")) == base  # no shift measured: unchanged
    assert model.threshold(_Cand("newcity", "seen")) == kb.model.regimes["seen"].threshold  # examples: none
    # a saved model keeps its shifts
    assert ranker.Model.from_dict(json.loads(json.dumps(model.as_dict()))).shift == {"newcity": -0.5}


def test_the_shipped_base_shifts_no_measure_it_was_trained_on(kb):
    assert kb.model.shift == {}  # both shipped measures have examples: they are the reference


def test_an_articles_lead_is_its_chapter_title_and_first_sentence(kb):
    measure = kb.measure_ids[0]
    number, art = next((n, a) for n, a in kb.measures[measure].articles.items() if a.chapter_title)
    lead = kb.article_lead_terms(measure, number)
    assert set(kb.analyzer.index_terms(art.chapter_title)) <= lead
    assert lead <= kb.article_terms(measure, number)
