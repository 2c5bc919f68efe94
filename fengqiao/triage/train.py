"""`fengqiao triage train`: the triage models, learned from the corpus, deterministically.

1. **Compare approaches on dev.** Each candidate (`APPROACHES`: logistic regression, a linear
   SVM, complement naive Bayes, over character n-grams of two ranges) learns from `train/` and
   is scored on `dev/` with figures that need no threshold: appeal accuracy, category accuracy,
   urgency's average precision and its precision at full recall. The best mean wins, unless
   one listed before it comes within `TIE` (see `compare`).
2. **Thresholds and calibration out of fold.** The winner is fitted on five grouped folds of
   train+dev (a case's posts stay in one fold); Platt scaling, the category temperature and the
   thresholds of `services.intake.triage.decide` are chosen on those out-of-fold scores:
   see `thresholds.py`.
3. **Fit on train+dev** (and the dispatchers' corrections with `--with-corrections`).
4. **Gate on the frozen test split**: the candidate and the model in use are scored once each;
   a candidate that scores worse is refused, with both sets of figures, and nothing is written.

scikit-learn does the fitting (the `train` extra); the artifact it writes is read by numpy alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fengqiao.contracts import CATEGORIES as ALL_CATEGORIES
from fengqiao.services.intake.triage.danger import Danger, load_danger
from fengqiao.services.intake.triage.features import analyze, prepare
from fengqiao.services.intake.triage.model import FORMAT, Model, build_model
from fengqiao.triage.corpus import Example, digest
from fengqiao.triage.thresholds import Scored, thresholds

__all__ = [
    "APPROACHES",
    "CATEGORIES",
    "Approach",
    "Fitted",
    "compare",
    "fit",
    "train_model",
]

CATEGORIES = tuple(c for c in ALL_CATEGORIES if c != "not_appeal")  # the category head's
FOLDS = 5


@dataclass(frozen=True)
class Approach:
    """One way to learn the three heads."""

    learner: str  # lr | svm | nb
    ngrams: tuple[int, int]
    c: float = 4.0
    min_df: int = 2

    @property
    def name(self) -> str:
        return f"{self.learner}-char{self.ngrams[0]}{self.ngrams[1]}-c{self.c:g}"


# In order of preference: logistic regression first (its scores are probabilities already, so
# calibration only adjusts them), then the rest. A candidate must beat the ones before it by
# more than TIE on dev to be chosen: the dev split's 700-odd posts cannot tell smaller gaps
# from noise (one post is 0.0014 of accuracy).
APPROACHES = (
    Approach("lr", (1, 3), 16.0),
    Approach("lr", (1, 3), 64.0),
    Approach("lr", (1, 3), 4.0),
    Approach("lr", (2, 4), 16.0),
    Approach("svm", (1, 3), 0.5),
    Approach("svm", (1, 4), 0.5),
    Approach("nb", (1, 3), 0.3),
)
TIE = 0.005


def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise SystemExit(
            "fengqiao triage train needs scikit-learn: pip install 'fengqiao[train]'"
        ) from None
    from sklearn import feature_extraction, linear_model, naive_bayes, svm

    return feature_extraction, linear_model, naive_bayes, svm


def tokens(examples: Sequence[Example], approach: Approach, danger: Danger) -> list[list[str]]:
    """What the vectorizer reads of each example: exactly what `Triager.triage` computes."""
    out = []
    for e in examples:
        _, markers = danger.markers(e.text)
        out.append(analyze(prepare(e.text), approach.ngrams, markers))
    return out


@dataclass
class Fitted:
    """The three heads of one approach, fitted: vocabulary, idf, weights and bias."""

    vocabulary: list[str]
    idf: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float64]

    def logits(self, docs: list[list[str]]) -> npt.NDArray[np.float64]:
        # The service's arithmetic (features.Featurizer), on tokens: the out-of-fold scores the
        # thresholds are chosen on are the ones the service will compute.
        index = {t: i for i, t in enumerate(self.vocabulary)}
        out = np.empty((len(docs), self.weights.shape[1]))
        weights = self.weights.astype(np.float64)
        for row, doc in enumerate(docs):
            counts: dict[int, int] = {}
            for t in doc:
                if (i := index.get(t)) is not None:
                    counts[i] = counts.get(i, 0) + 1
            if not counts:
                out[row] = self.bias
                continue
            idx = np.fromiter(counts, dtype=np.intp)
            x = (1 + np.log(np.fromiter(counts.values(), float))) * self.idf[idx]
            x /= np.linalg.norm(x) or 1.0
            out[row] = x @ weights[idx] + self.bias
        return out


def fit(approach: Approach, examples: Sequence[Example], docs: list[list[str]]) -> Fitted:
    """Fit the three heads on `examples` (whose tokens are `docs`)."""
    feature_extraction, linear_model, naive_bayes, svm = _sklearn()
    vectorizer = feature_extraction.text.TfidfVectorizer(
        analyzer=lambda doc: doc, sublinear_tf=True, min_df=approach.min_df, norm="l2"
    )
    x = vectorizer.fit_transform(docs)
    appeal = np.array([e.is_appeal for e in examples])
    urgent = np.array([e.urgent for e in examples])
    appeals = np.flatnonzero(appeal)
    category = np.array([examples[int(i)].category for i in appeals])
    missing = set(CATEGORIES) - set(category)
    if missing:
        raise ValueError(f"no appeals of {sorted(missing)} to learn from")

    def learner(balanced: bool) -> Any:
        weight = "balanced" if balanced else None
        if approach.learner == "lr":
            return linear_model.LogisticRegression(
                C=approach.c, class_weight=weight, max_iter=3000, solver="lbfgs"
            )
        if approach.learner == "svm":
            return svm.LinearSVC(C=approach.c, class_weight=weight, random_state=0)
        return naive_bayes.ComplementNB(alpha=approach.c)

    heads = [
        learner(False).fit(x, appeal),
        learner(True).fit(x, urgent),
        learner(True).fit(x[appeals], category),
    ]
    columns, bias = [], []
    for head in heads[:2]:
        w, b = _linear(head)
        columns.append(w[-1] - (w[0] if len(w) == 2 else 0))
        bias.append(float(b[-1] - (b[0] if len(b) == 2 else 0)))
    w, b = _linear(heads[2])
    order = [list(heads[2].classes_).index(c) for c in CATEGORIES]
    columns += [w[i] for i in order]
    bias += [float(b[i]) for i in order]
    vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return Fitted(
        vocabulary=vocabulary,
        idf=vectorizer.idf_.astype(np.float64),
        weights=np.stack(columns, axis=1).astype(np.float32),
        bias=np.array(bias),
    )


def _linear(head: Any) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(weights per class, bias per class) of a fitted linear scikit-learn model."""
    if hasattr(head, "coef_"):
        coef, intercept = np.asarray(head.coef_), np.asarray(head.intercept_)
        if coef.shape[0] == 1:  # binary: one row for the positive class
            return np.vstack([np.zeros_like(coef[0]), coef[0]]), np.array([0.0, intercept[0]])
        return coef, intercept
    # naive Bayes: log probabilities are linear in the features
    log = np.asarray(head.feature_log_prob_)
    return log, np.asarray(head.class_log_prior_)


# --------------------------------------------------------------------------- comparing


def _average_precision(scores: npt.NDArray[np.float64], truth: npt.NDArray[np.bool_]) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = truth[order]
    if not hits.any():
        return 0.0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def _precision_at_full_recall(
    scores: npt.NDArray[np.float64], truth: npt.NDArray[np.bool_]
) -> float:
    if not truth.any():
        return 0.0
    lowest = scores[truth].min()
    return float(truth[scores >= lowest].mean())


def raw_figures(
    fitted: Fitted, examples: Sequence[Example], docs: list[list[str]]
) -> dict[str, float]:
    """Threshold-free figures of a fitted approach on `examples`."""
    logits = fitted.logits(docs)
    appeal = np.array([e.is_appeal for e in examples])
    urgent = np.array([e.urgent for e in examples])
    predicted_appeal = logits[:, 0] > 0
    category = np.array([CATEGORIES[i] for i in logits[:, 2:].argmax(axis=1)], dtype=object)
    want = np.array([e.category for e in examples], dtype=object)
    got = np.where(predicted_appeal, category, "not_appeal")
    figures = {
        "appeal_accuracy": float((predicted_appeal == appeal).mean()),
        "category_accuracy": float((got == want).mean()),
        "category_accuracy_appeals": float((category[appeal] == want[appeal]).mean()),
        "urgent_average_precision": _average_precision(logits[:, 1], urgent),
        "urgent_precision_at_full_recall": _precision_at_full_recall(logits[:, 1], urgent),
    }
    figures["mean"] = float(np.mean([figures[k] for k in (
        "appeal_accuracy", "category_accuracy", "urgent_average_precision",
        "urgent_precision_at_full_recall")]))  # fmt: skip
    return figures


def compare(
    train: Sequence[Example],
    dev: Sequence[Example],
    approaches: Sequence[Approach] = APPROACHES,
    progress: Callable[[str], None] = lambda _: None,
) -> list[tuple[Approach, dict[str, float]]]:
    """Every approach learned on `train` and scored on `dev`, the chosen one first: the first
    listed whose mean is within `TIE` of the best; then the others, best first."""
    danger = load_danger()
    results = []
    for approach in approaches:
        fitted = fit(approach, train, tokens(train, approach, danger))
        figures = raw_figures(fitted, dev, tokens(dev, approach, danger))
        progress(f"{approach.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        results.append((approach, figures))
    best = max(f["mean"] for _, f in results)
    chosen = next(r for r in results if r[1]["mean"] >= best - TIE)
    rest = sorted((r for r in results if r is not chosen), key=lambda r: -r[1]["mean"])
    return [chosen, *rest]


# --------------------------------------------------------------------------- out of fold


def _folds(examples: Sequence[Example], k: int = FOLDS) -> list[npt.NDArray[np.intp]]:
    """k folds of example indexes; a group's examples share a fold (by a digest of the group)."""
    fold_of = [
        int.from_bytes(hashlib.sha256(e.group.encode()).digest()[:4], "big") % k for e in examples
    ]
    return [np.flatnonzero(np.array(fold_of) == f) for f in range(k)]


def out_of_fold(
    approach: Approach, examples: Sequence[Example], docs: list[list[str]]
) -> npt.NDArray[np.float64]:
    """Each example's logits from the heads fitted on the other folds."""
    out = np.zeros((len(examples), 2 + len(CATEGORIES)))
    for held in _folds(examples):
        rest = np.setdiff1d(np.arange(len(examples)), held)
        fitted = fit(approach, [examples[i] for i in rest], [docs[i] for i in rest])
        out[held] = fitted.logits([docs[i] for i in held])
    return out


def _platt(logit: npt.NDArray[np.float64], truth: npt.NDArray[np.bool_]) -> list[float]:
    _, linear_model, _, _ = _sklearn()
    model = linear_model.LogisticRegression(C=1e6, max_iter=1000).fit(logit[:, None], truth)
    return [float(model.coef_[0][0]), float(model.intercept_[0])]


def _temperature(logits: npt.NDArray[np.float64], truth: npt.NDArray[np.intp]) -> float:
    best, best_loss = 1.0, float("inf")
    for t in np.round(np.arange(0.05, 3.01, 0.05), 2):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = float(-log_p[np.arange(len(truth)), truth].mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


def calibration(logits: npt.NDArray[np.float64], examples: Sequence[Example]) -> dict[str, Any]:
    appeal = np.array([e.is_appeal for e in examples])
    urgent = np.array([e.urgent for e in examples])
    appeals = np.flatnonzero(appeal)
    truth = np.array([CATEGORIES.index(examples[int(i)].category) for i in appeals])
    return {
        "appeal": _platt(logits[:, 0], appeal),
        "urgent": _platt(logits[:, 1], urgent),
        "category_temperature": _temperature(logits[appeals, 2:], truth),
    }


# --------------------------------------------------------------------------- the artifact


def train_model(
    approach: Approach,
    examples: Sequence[Example],
    *,
    sources: dict[str, Any],
    dev_figures: dict[str, float] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Model:
    """The model of `approach` fitted on `examples`, calibrated and thresholded out of fold."""
    danger = load_danger()
    docs = tokens(examples, approach, danger)
    progress(f"{approach.name}: {FOLDS} folds out of fold on {len(examples)} examples")
    oof = out_of_fold(approach, examples, docs)
    cal = calibration(oof, examples)
    progress(f"{approach.name}: fitting on all {len(examples)} examples")
    fitted = fit(approach, examples, docs)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": "",
        "approach": approach.name,
        "features": {"ngrams": list(approach.ngrams), "min_df": approach.min_df},
        "categories": list(CATEGORIES),
        "calibration": cal,
        "thresholds": {},
        "trained_on": {**sources, "examples": len(examples), "digest": digest(examples)},
        "figures": {"dev": dev_figures or {}},
    }
    draft = build_model(meta, fitted.vocabulary, fitted.idf, fitted.weights, fitted.bias)
    urgent_cases = {e.id for e in examples if e.urgent and e.group == e.id}
    scored = []
    for row, e in zip(oof, examples, strict=True):
        s = draft.calibrate(row)
        alarm = any(h.live and h.kind != "signal" for h in danger.find(e.text.lower()))
        inherits = e.group != e.id and e.group in urgent_cases
        scored.append(
            Scored(s.appeal, s.urgent, s.category, s.category_confidence, alarm, inherits)
        )
    meta["thresholds"] = thresholds(scored, examples)
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    h.update(fitted.weights.tobytes())
    h.update(fitted.bias.tobytes())
    meta["version"] = "triage-" + h.hexdigest()[:12]
    return build_model(meta, fitted.vocabulary, fitted.idf, fitted.weights, fitted.bias)
