"""Training the triage models: deterministic, thresholds out of fold, and the test-split gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fengqiao.services.intake.triage.model import load_model
from fengqiao.triage import train
from fengqiao.triage.cli import worse
from fengqiao.triage.corpus import Example, load_split
from fengqiao.triage.thresholds import Scored, thresholds

CORPUS = Path(__file__).resolve().parents[3] / "data" / "triage"


def example(i: int, *, urgent: bool = False, appeal: bool = True) -> Example:
    return Example(
        id=f"e{i}", text="", is_appeal=appeal, urgent=urgent,
        category="wage_arrears" if appeal else "not_appeal", group=f"e{i}",
    )  # fmt: skip


def scored(urgent: float, *, alarm: bool = False, appeal: float = 0.9) -> Scored:
    return Scored(appeal, urgent, "wage_arrears", 0.9, alarm)


def test_urgent_low_keeps_every_urgent_example_at_least_possibly_urgent() -> None:
    rows = [scored(0.9), scored(0.3), scored(0.05, alarm=True)] + [scored(0.01)] * 30
    examples = [example(0, urgent=True), example(1, urgent=True), example(2, urgent=True)]
    examples += [example(i) for i in range(3, 33)]
    t = thresholds(rows, examples)
    assert t["urgent_low"] <= 0.3  # the lowest urgent score no danger word caught
    assert t["urgent_low"] > 0.01  # lower would cost more precision than the floor allows
    assert t["urgent_high"] >= t["urgent_low"]


def test_urgent_low_goes_lower_while_precision_allows() -> None:
    rows = [scored(0.9), scored(0.5), scored(0.2)] + [scored(0.1)] * 30
    examples = [example(0, urgent=True), example(1, urgent=True)] + [
        example(i) for i in range(2, 33)
    ]
    t = thresholds(rows, examples)
    assert 0.2 < t["urgent_low"] <= 0.5  # 0.2 would make precision 2 of 3, below the floor


def test_the_appeal_threshold_weighs_a_missed_appeal_above_an_extra_case() -> None:
    # An unsure post (within appeal_review below the threshold) opens its case too, so the cut
    # the cost is counted at lies appeal_review below the threshold.
    rows = [scored(0.0, appeal=p) for p in (0.9, 0.8, 0.7, 0.35, 0.1, 0.05)]
    labels = (True, True, True, True, False, False)
    examples = [example(i, appeal=a) for i, a in enumerate(labels)]
    t = thresholds(rows, examples)
    cut = t["appeal"] - t["appeal_review"]
    assert 0.1 < cut <= 0.35  # every appeal kept, no extra case


def test_the_gate_refuses_a_candidate_that_scores_worse() -> None:
    in_use = {"urgent_recall": 1.0, "urgent_precision": 0.9, "appeal_accuracy": 0.95,
              "category_accuracy": 0.88, "linked": 0.93}  # fmt: skip
    assert worse(in_use, in_use) == []
    assert worse(in_use | {"category_accuracy": 0.8}, in_use)
    assert "urgent recall" in worse(in_use | {"urgent_recall": 0.99}, in_use)[0]
    assert worse(in_use | {"category_accuracy": 0.885, "appeal_accuracy": 0.945}, in_use) == []


@pytest.fixture(scope="module")
def dev() -> list[Example]:
    return load_split("dev", CORPUS)


def test_fitting_is_deterministic(dev: list[Example]) -> None:
    approach = train.Approach("lr", (1, 2), 4.0)
    docs = train.tokens(dev, approach, train.load_danger())
    a, b = train.fit(approach, dev, docs), train.fit(approach, dev, docs)
    assert a.vocabulary == b.vocabulary
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)


def test_the_folds_keep_a_case_together(dev: list[Example]) -> None:
    folds = train._folds(dev)
    fold_of = {dev[i].id: f for f, members in enumerate(folds) for i in members}
    assert sorted(fold_of) == sorted(e.id for e in dev)
    for e in dev:
        assert fold_of[e.id] == fold_of[next(x.id for x in dev if x.group == e.group)]


def test_the_model_in_use_records_how_it_was_made() -> None:
    model = load_model()
    meta = model.meta
    assert meta["version"].startswith("triage-")
    assert set(meta["thresholds"]) >= {"urgent_low", "urgent_high", "appeal", "category_review"}
    assert meta["trained_on"]["splits"] == ["train", "dev"]
    assert "test" in meta["figures"] and "dev" in meta["figures"]
    assert json.dumps(meta)  # plain JSON, nothing pickled
