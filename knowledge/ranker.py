"""The learned part of the question answering: a ranker and a calibrated answer-or-decline decision.

Both are logistic regressions over features that name no measure and no article (knowledge/qa.py
RANK_FEATURES, DECIDE_FEATURES), trained at `policybot kb build` on the knowledge base's own example
questions (measures/<id>.questions.yaml: the article each answers; near_misses.yaml: questions to decline):

- the ranker scores each (question, candidate article) pair: is it the article that answers;
- the decision model gives the probability that the ranker's best article of a measure is right, from
  that article's features, how far it leads, and what holds for the whole question (foreign words, how
  close the nearest question to decline is);
- the answer threshold is the probability that does best, over a leave-one-measure-out cross-validation,
  on (answerable questions answered right) + (questions to decline declined).

The reference measures (knowledge/reference/: other cities' measures with their questions, never answered from)
are trained on as measures without examples of their own only.

Every example question is seen twice in training: as a question about a measure whose examples are known
(the question itself left out of the examples), and as one about a measure never seen (all of that measure's
examples left out). So the model learns both to use a measure's own examples and to do without them,
through what examples of the same topic in other measures say. Training uses numpy only (Newton's method);
at question time a model is two dot products.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge import yamlio

FALLBACK = Path(__file__).with_name("ranker_fallback.json")
DECIDE_FEATURES = (
    "r_top",  # the ranker's score of the best article
    # (its share of the ranker's probability and its lead over the next were dropped: several articles may all
    # answer (a procedure spread over four), and leave-one-measure-out CV did better without them, 0.864 / 0.804
    # against 0.861 / 0.797)
    "coverage", "s_log", "lacks_required", "off_topic", "intent", "ex_article", "ex_topic", "near_miss_detail",
    "foreign_share", "foreign_max",  # words the measures never use (奖金, 所得税)
    "near_miss",  # log(1 + BM25 of the closest question to decline)
    # (how close the closest answerable example is, and the two compared, were dropped: leave-one-measure-out
    # cross-validation gave the same figures without them, 0.861 / 0.797 against 0.860 / 0.797, and a model
    # that does not ask "have I seen this wording" holds better for new wordings)
    "situational", "n_content",
    # a measure without examples asked about alone: how confidently the other cities' measures with examples
    # answer the question, and how similar this article is to their answer (0 / -1 otherwise)
    "elsewhere_margin", "elsewhere_sim",
    # and whether this article plays the same role (topic) in its measure as that answer in its own
    "elsewhere_topic",
)
_SETTINGS = yamlio.pipeline()["ranker"]  # how each was chosen: there
Z_CAP = float(_SETTINGS["z_cap"])
FOREIGN_CAP = float(_SETTINGS["foreign_cap"])
CONTEXT = ("n_content", "situational")


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float, iters: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2-penalised logistic regression by Newton's method on standardised features: (mean, scale, weights
    with the intercept last)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([(X - mean) / scale, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    penalty = np.full(Z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iters):
        p = _sigmoid(Z @ w)
        grad = Z.T @ (p - y) + penalty * w
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-7:
            break
    return mean, scale, w


def fit_conditional_logit(X: np.ndarray, starts: np.ndarray, gold: np.ndarray, l2: float,
                          iters: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Conditional logit (softmax over each question's candidates, McFadden) by Newton's method: the
    ranker. `starts`: first row of each question's candidates; `gold`: the right row of each (absolute)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = (X - mean) / scale
    k = Z.shape[1]
    w = np.zeros(k)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(Z))))

    def loss(w):
        s = Z @ w
        top = np.maximum.reduceat(s, starts)
        return float(-(s[gold] - top - np.log(np.add.reduceat(np.exp(s - top[seg]), starts))).sum() + 0.5 * l2 * w @ w)

    current = loss(w)
    for _ in range(iters):
        s = Z @ w
        s -= np.maximum.reduceat(s, starts)[seg]
        e = np.exp(s)
        p = e / np.add.reduceat(e, starts)[seg]
        mean_x = np.add.reduceat(Z * p[:, None], starts)  # expected features per question
        grad = -(Z[gold] - mean_x).sum(axis=0) + l2 * w
        centred = Z - mean_x[seg]
        hess = (centred * p[:, None]).T @ centred + l2 * np.eye(k)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-4:  # backtracking: Newton's full step can overshoot on nearly separable data
            new = loss(w - t * step)
            if new <= current:
                break
            t /= 2
        w = w - t * step
        if abs(current - new) < 1e-6 * max(1.0, abs(current)):
            break
        current = new
    return mean, scale, np.append(w, 0.0)


@dataclass
class Linear:
    mean: np.ndarray
    scale: np.ndarray
    w: np.ndarray

    def logit(self, X: np.ndarray) -> np.ndarray:
        return self._z(X) @ self.w[:-1] + self.w[-1]

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return self._z(x) * self.w[:-1]

    def _z(self, X: np.ndarray) -> np.ndarray:
        # standardised, and bounded: a value far outside what training saw (a feature nearly constant there)
        # must not decide alone
        return np.clip((X - self.mean) / self.scale, -Z_CAP, Z_CAP)

    def as_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "w": self.w.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Linear":
        return cls(np.asarray(d["mean"]), np.asarray(d["scale"]), np.asarray(d["w"]))


@dataclass
class Regime:
    """The ranker, the decision and its threshold for one situation: a measure whose own example questions
    are known ("seen"), or one without any ("unseen", a measure just added)."""
    ranker: Linear
    decision: Linear
    threshold: float
    # the threshold when another city's measure answers the question confidently (the question is of the
    # domain: only which article of this measure is left to tell); fitted like `threshold`, on those rows only
    threshold_in_domain: float | None = None

    def as_dict(self) -> dict:
        return {"ranker": self.ranker.as_dict(), "decision": self.decision.as_dict(), "threshold": self.threshold,
                "threshold_in_domain": self.threshold_in_domain}

    @classmethod
    def from_dict(cls, d: dict) -> "Regime":
        t = d.get("threshold_in_domain")
        return cls(Linear.from_dict(d["ranker"]), Linear.from_dict(d["decision"]), float(d["threshold"]),
                   None if t is None else float(t))


REGIMES = ("seen", "unseen")


@dataclass
class Model:
    regimes: dict[str, Regime]
    report: dict  # how it was trained and what cross-validation found
    # per measure without examples of its own: how much lower (in logits) the unseen decision scores it than
    # the measures it was trained on, on the same questions (calibrate_shift); its threshold moves with it
    shift: dict = field(default_factory=dict)

    def threshold(self, c) -> float:
        return self._shifted(c, self.regimes[c.regime].threshold)

    def threshold_in_domain(self, c) -> float:
        """The threshold for c when another city's measure answers the same question confidently."""
        regime = self.regimes[c.regime]
        return self._shifted(c, regime.threshold if regime.threshold_in_domain is None else regime.threshold_in_domain)

    def _shifted(self, c, t: float) -> float:
        delta = self.shift.get(c.unit.measure, 0.0) if c.regime == "unseen" else 0.0
        if not delta:
            return t
        return float(1.0 / (1.0 + math.exp(-(math.log(t / (1.0 - t)) + delta))))

    def elsewhere_p(self, a) -> float:
        """The best probability that another measure (analysis `a`, scoped to the other cities) answers."""
        tops = self.best_per_measure(a)
        return max((c.p - self.threshold(c) for c in tops), default=-1.0)

    # ---- at question time ---------------------------------------------------------------------
    def best_per_measure(self, a) -> list:
        """Scores every candidate (c.r), and gives each measure's best with its probability (c.p), most
        probable first; each measure with the regime it is in (its own examples known or not)."""
        if not a.candidates:
            return []
        by_measure: dict[str, list] = defaultdict(list)
        for c in a.candidates:
            by_measure[c.unit.measure].append(c)
        tops = []
        for measure, cands in by_measure.items():
            regime = "seen" if measure in a.ev.seen else "unseen"
            if regime not in self.regimes:  # training: a regime not fitted yet
                continue
            model = self.regimes[regime]
            X = np.vstack([c.x for c in cands])
            r = model.ranker.logit(X)
            for c, score in zip(cands, r):
                c.r, c.regime = float(score), regime
            d = decision_features(a, X, r)
            best = cands[int(np.argmax(r))]
            best.p = float(_sigmoid(model.decision.logit(d[None, :]))[0])
            best.d = d
            tops.append(best)
        tops.sort(key=lambda c: -c.p)
        return tops

    def explain(self, c, negative: bool = True) -> str:
        """The decision feature that weighed most against (or for) answering with candidate c."""
        contrib = self.regimes[c.regime].decision.contributions(c.d)
        contrib[[DECIDE_FEATURES.index(n) for n in CONTEXT]] = 0.0  # the question's setting, not evidence
        i = int(np.argmin(contrib) if negative else np.argmax(contrib))
        return DECIDE_FEATURES[i]

    def as_dict(self) -> dict:
        return {"regimes": {k: v.as_dict() for k, v in self.regimes.items()}, "report": self.report,
                "shift": self.shift}

    @classmethod
    def from_dict(cls, d: dict) -> "Model":
        """A saved model; ValueError when it was learned on other features than this code computes."""
        from knowledge.qa import RANK_FEATURES
        model = cls({k: Regime.from_dict(v) for k, v in d["regimes"].items()}, d.get("report") or {},
                    dict(d.get("shift") or {}))
        for regime in model.regimes.values():
            if len(regime.ranker.w) != len(RANK_FEATURES) + 1 or len(regime.decision.w) != len(DECIDE_FEATURES) + 1:
                raise ValueError("the model was learned on other features: rebuild the knowledge base")
        return model


def decision_features(a, X: np.ndarray, r: np.ndarray) -> np.ndarray:
    """DECIDE_FEATURES for the best of one measure's candidates (rows of X, ranker scores r)."""
    from knowledge.qa import RF
    top = int(np.argmax(r))
    x = X[top]
    near = math.log1p(a.ev.decline)
    return np.array([
        r[top],
        x[RF["coverage"]], x[RF["s_log"]], x[RF["lacks_required"]], x[RF["off_topic"]], x[RF["intent"]],
        x[RF["ex_article"]], x[RF["ex_topic"]], x[RF["near_miss_detail"]],
        a.foreign_share, min(a.foreign_max, FOREIGN_CAP), near,
        float(a.situational), math.log1p(a.n_content),
        a.elsewhere_margin, a.elsewhere_sim.get(top, 0.0), a.elsewhere_topic.get(top, 0.0),
    ])


def model_of(kb):
    """The knowledge base's model: learned at build, or (a base without any example question) the model
    learned on the shipped base (ranker_fallback.json)."""
    if kb.model is None:
        cached = kb.cache.get("_fallback_model")
        if cached is None:
            cached = kb.cache["_fallback_model"] = Model.from_dict(json.loads(FALLBACK.read_text(encoding="utf-8")))
        return cached
    return kb.model


# ---- training -------------------------------------------------------------------------------------
@dataclass
class Row:
    group: str  # the measure the question is about (cross-validation folds)
    seen: bool  # the measure's own examples were known
    X: np.ndarray  # candidate features, one row per candidate of the measure
    gold: int  # the right candidate's row, -1 when none is right (or the question is to decline)
    answerable: bool
    analysis: object
    part: int  # the article's number (or the question's position): folds when there is one measure only
    elsewhere: object = None  # unseen rows: the question read against the other cities' measures (seen)


def training_rows(kb) -> list[Row]:
    from knowledge import intents, qa
    from knowledge.textnorm import normalize
    ex = kb.examples
    n = len(ex.texts)
    same_text: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(ex.texts):
        same_text[normalize(t, kb.analyzer.t2s)].append(i)
    tied = {m: np.zeros(n, dtype=bool) for m in kb.measure_ids}
    for i, measures in ex.decline_only_for.items():
        for m in measures:
            tied[m][i] = True
    # questions to decline are spread over the measures that have answerable examples (the folds)
    known = sorted({lab[0] for lab in ex.labels if lab}, key=kb.measure_ids.index)
    rows: list[Row] = []
    for i, text in enumerate(ex.texts):
        label = ex.labels[i]
        if label:
            measure = label[0]
        elif i in ex.decline_only_for and sorted(ex.decline_only_for[i])[0] in known:
            measure = sorted(ex.decline_only_for[i])[0]
        else:
            measure = known[i % len(known)]
        q = kb.analyzer.query(qa.focus(kb, text))
        own = qa._scope_text(kb, [measure])
        if (intents.other_programme(kb.lexicon, q.text, kb.analyzer, own)
                or intents.other_programme(kb.lexicon, q.expanded, kb.analyzer, own)):
            continue  # declined by rule, before any ranking
        unknown = kb.analyzer.unknown_words(q)
        itself = np.zeros(n, dtype=bool)
        itself[same_text[normalize(text, kb.analyzer.t2s)]] = True
        pos = kb.measure_ids.index(measure)
        # a reference measure (kb.references) is never asked about: it teaches what a measure without examples
        # of its own gets, not the regime of a measure with them (whose examples are many: fitted on those,
        # the seen threshold would be set for a few hundred examples, not the shipped measures' thousands)
        for seen in (False,) if measure in kb.references else (True, False):
            # unseen: as if the measure were new: its own examples are gone; what examples of the same topic
            # say comes from the other measures' (with one measure only, from none: the ranker learns nothing
            # from them then, rather than something that would not hold for a new measure)
            drop = itself if seen else (itself | (ex.measure_pos == pos) | tied[measure])
            a = qa.analyse(kb, q, [measure], unknown, drop)
            if not a.candidates:
                continue
            X = np.vstack([c.x for c in a.candidates])
            gold = -1
            if label:
                gold = next((k for k, c in enumerate(a.candidates) if (c.unit.measure, c.unit.article) == label), -1)
            elsewhere = None
            if not seen:  # the other cities' measures, their own examples known (only the question left out)
                others = qa.taught_elsewhere(kb, measure)
                if others:
                    elsewhere = qa.analyse(kb, q, others, unknown, itself)
            rows.append(Row(measure, seen, X, gold, bool(label), a, label[1] if label else i, elsewhere))
    return rows


def _fit(rows: list[Row], l2: float) -> tuple[Linear, Linear]:
    ranked = [r for r in rows if r.gold >= 0 and len(r.X) > 1]  # a question with a choice to learn from
    X = np.vstack([r.X for r in ranked])
    starts = np.cumsum([0] + [len(r.X) for r in ranked[:-1]])
    gold = starts + np.asarray([r.gold for r in ranked])
    rank = Linear(*fit_conditional_logit(X, starts, gold, l2))
    D, t = _decision_matrix(rows, rank)
    return rank, Linear(*fit_logistic(D, t, l2))


def _decision_matrix(rows: list[Row], rank: Linear) -> tuple[np.ndarray, np.ndarray]:
    D, t = [], []
    for row in rows:
        r = rank.logit(row.X)
        D.append(decision_features(row.analysis, row.X, r))
        t.append(float(row.answerable and int(np.argmax(r)) == row.gold))
    return np.vstack(D), np.asarray(t)


def _best_threshold(p: np.ndarray, right: np.ndarray, answerable: np.ndarray, grid,
                    objective: str = "min") -> tuple[float, float]:
    """The threshold on the grid that does best on (share of answerable questions answered right,
    share of questions to decline declined): the worse of the two (`min`), or their sum (`sum`)."""
    best_t, best_v = 0.5, -1.0
    steps = int(round((grid[1] - grid[0]) / grid[2]))
    for t in (round(grid[0] + k * grid[2], 6) for k in range(steps + 1)):
        answered = p >= t
        top1 = (answered & right)[answerable].mean() if answerable.any() else 1.0
        declined = (~answered)[~answerable].mean() if (~answerable).any() else 1.0
        v = min(top1, declined) if objective == "min" else top1 + declined
        if v > best_v + 1e-12:
            best_t, best_v = float(t), float(v)
    return best_t, best_v


def _best_pair(p: np.ndarray, right: np.ndarray, answerable: np.ndarray, in_domain: np.ndarray, grid,
               objective: str = "min") -> tuple[float, float, float]:
    """The pair (threshold, threshold in domain) on the grid that does best on the objective over all rows,
    an in-domain row answered when it passes either (as at question time, knowledge/qa.py answer)."""
    steps = int(round((grid[1] - grid[0]) / grid[2]))
    ts = [round(grid[0] + k * grid[2], 6) for k in range(steps + 1)]
    n_ans, n_dec = max(int(answerable.sum()), 1), max(int((~answerable).sum()), 1)
    best = (0.5, 0.5, -1.0)
    for t in ts:
        for t_dom in ts:
            answered = p >= (np.where(in_domain, min(t, t_dom), t))
            top1 = (answered & right & answerable).sum() / n_ans
            declined = (~answered & ~answerable).sum() / n_dec
            v = min(top1, declined) if objective == "min" else top1 + declined
            if v > best[2] + 1e-12:
                best = (float(t), float(t_dom), float(v))
    return best


def _folds(rows: list[Row]) -> list[str]:
    """Cross-validation folds: leave one measure out; with one measure only, five folds of its articles."""
    groups = sorted({r.group for r in rows if r.answerable})
    if len(groups) > 1:
        return [r.group for r in rows]
    return [f"part{r.part % 5}" for r in rows]


def train(kb, settings: dict) -> Model | None:
    """The model for a knowledge base with example questions (None without any)."""
    if kb.examples is None or not any(lab for lab in kb.examples.labels):
        return None
    from knowledge import qa
    l2 = float(settings["l2"])
    all_rows = training_rows(kb)
    regimes, report = {}, {"rows": len(all_rows)}
    for regime in REGIMES:
        rows = [r for r in all_rows if r.seen == (regime == "seen")]
        if not any(r.answerable for r in rows):
            continue  # (seen: no measure of the base has examples of its own, only the reference measures do)
        if regime == "unseen":  # what the other cities' measures (examples known) say: with the seen model
            partial = Model(dict(regimes), {})
            for r in rows:
                if r.elsewhere is not None and r.elsewhere.candidates:
                    qa.read_elsewhere(kb, r.analysis, r.elsewhere, partial)
        folds = _folds(rows)
        names = sorted(set(folds))
        oof_p, oof_right, oof_ans = np.zeros(len(rows)), np.zeros(len(rows), bool), np.asarray([r.answerable for r in rows])
        for g in names:
            held = np.asarray([f == g for f in folds])
            train_rows = [r for r, h in zip(rows, held) if not h]
            if not any(r.answerable for r in train_rows):
                continue
            rank, decide = _fit(train_rows, l2)
            D, right = _decision_matrix([r for r, h in zip(rows, held) if h], rank)
            oof_p[held] = _sigmoid(decide.logit(D))
            oof_right[held] = right.astype(bool)
        threshold, value = _best_threshold(oof_p, oof_right, oof_ans, settings["threshold_grid"],
                                           settings["threshold_objective"])
        rank, decide = _fit(rows, l2)
        regimes[regime] = Regime(rank, decide, threshold)
        answered = oof_p >= threshold
        # in domain: another city's measure (its examples known) answers the question confidently; its own
        # threshold, fitted on those rows' out-of-fold predictions (when there are enough of both kinds)
        in_domain = np.zeros(len(rows), bool)
        if regime == "unseen" and "seen" in regimes:
            partial = Model(dict(regimes), {})
            in_domain = np.asarray([r.elsewhere is not None and bool(r.elsewhere.candidates)
                                    and partial.elsewhere_p(r.elsewhere) >= 0 for r in rows])
            n_min = int(settings["in_domain_min_rows"])
            if (in_domain & oof_ans).sum() >= n_min and (in_domain & ~oof_ans).sum() >= n_min:
                # fitted jointly with the other threshold, on the objective over all rows: the in-domain rows
                # alone hold few questions to decline, and their own best would trade many answers for them
                threshold, t_dom, value = _best_pair(oof_p, oof_right, oof_ans, in_domain, settings["threshold_grid"],
                                                     settings["threshold_objective"])
                regimes[regime].threshold = threshold
                regimes[regime].threshold_in_domain = t_dom
                answered = np.where(in_domain, oof_p >= min(t_dom, threshold), oof_p >= threshold)
        report[regime] = {
            "folds": names, "threshold": threshold, "objective": round(value, 4),
            "cv_top1": round(float((answered & oof_right)[oof_ans].mean()), 4),
            "cv_top1_no_decline": round(float(oof_right[oof_ans].mean()), 4),
            "cv_declined": round(float((~answered)[~oof_ans].mean()), 4),
            "threshold_in_domain": regimes[regime].threshold_in_domain,
            "in_domain_rows": [int((in_domain & oof_ans).sum()), int((in_domain & ~oof_ans).sum())],
        }
    model = Model(regimes, report)
    calibrate_shift(kb, model, settings)
    return model


def _cross_logit(kb, model: Model, target: str, sample: list[int]) -> float | None:
    """The mean decision logit of `target` as a measure without examples, over the answerable example
    questions `sample` of other cities' measures asked of it (the question itself and target's examples
    left out)."""
    from knowledge import qa
    ex = kb.examples
    pos = kb.measure_ids.index(target)
    others = qa.taught_elsewhere(kb, target)
    logits = []
    for i in sample:
        q = kb.analyzer.query(qa.focus(kb, ex.texts[i]))
        unknown = kb.analyzer.unknown_words(q)
        drop = ex.measure_pos == pos
        drop = drop.copy()
        drop[i] = True
        a = qa.analyse(kb, q, [target], unknown, drop)
        if not a.candidates:
            continue
        qa.read_elsewhere(kb, a, qa.analyse(kb, q, others, unknown, drop), model)
        tops = [c for c in model.best_per_measure(a) if c.regime == "unseen"]
        if tops:
            p = min(max(tops[0].p, 1e-6), 1 - 1e-6)
            logits.append(math.log(p / (1 - p)))
    return float(np.mean(logits)) if logits else None


def calibrate_shift(kb, model: Model, settings: dict) -> None:
    """Per-measure calibration of the unseen decision (label-free): the same sample of other measures'
    example questions is asked of each measure as if it had no examples; a measure without examples of its
    own that scores lower on it than the measures the decision was trained on (the reference) gets its
    threshold lowered by the difference in mean logit, so that its probabilities mean what they meant in
    the leave-one-measure-out cross-validation. Nothing is shifted without two measures with examples."""
    ex = kb.examples
    taught = sorted({lab[0] for lab in ex.labels if lab})
    if len(taught) < 2 or "unseen" not in model.regimes:
        return
    n = int(settings["shift_sample"])
    answerable = [i for i, lab in enumerate(ex.labels) if lab]

    def sample_for(target: str) -> list[int]:
        from knowledge.kb import city_measures
        mine = set(city_measures(kb.measures, target)) if target in kb.measures else {target}
        pool = [i for i in answerable if ex.labels[i][0] not in mine]
        step = max(1, len(pool) // n)
        return pool[::step][:n]
    reference = [_cross_logit(kb, model, m, sample_for(m)) for m in taught]
    reference = [r for r in reference if r is not None]
    if not reference:
        return
    ref = float(np.mean(reference))
    for m in kb.measure_ids:
        if m in taught:
            continue
        own = _cross_logit(kb, model, m, sample_for(m))
        if own is not None and own < ref:
            model.shift[m] = round(own - ref, 4)
    model.report["shift"] = {"reference_logit": round(ref, 4), **model.shift}


def write_fallback(kb) -> None:
    """Saves the shipped base's model for bases without example questions (`python -m knowledge.ranker`)."""
    FALLBACK.write_text(json.dumps(kb.model.as_dict(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from knowledge import kb as kbmod
    built = kbmod.build(kbmod.SOURCE_DIR)
    write_fallback(built)
    print(json.dumps(built.model.report, indent=1))
