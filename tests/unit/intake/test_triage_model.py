"""The triage artifact: features as scikit-learn computes them, files read without unpickling,
and malformed artifacts refused with a message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from fengqiao.services.intake.triage.features import Featurizer, analyze, cosine, prepare
from fengqiao.services.intake.triage.model import FORMAT, Model, ModelError, build_model, load_model

TEXTS = [
    "我在博乐市工地干活，老板拖欠工资三个月了",
    "孩子在学校被同学打了，老师不管",
    "为检察官点赞！辛苦了",
    "老板拖欠工资，求助 @新疆检察 https://t.cn/x",
    "工资工资工资",
]
CATEGORIES = ["wage_arrears", "minors"]


def test_prepare_drops_mentions_and_links_and_folds_digits() -> None:
    assert prepare("@新疆检察 欠我3200元 https://t.cn/abc  求助") == "欠我0000元 求助"


def test_analyze_gives_ngrams_then_markers() -> None:
    assert analyze("工资", (1, 2), ["d:suicide"]) == ["工", "资", "工资", "\x00d:suicide"]


def test_the_featurizer_computes_what_scikit_learn_does() -> None:
    docs = [analyze(prepare(t), (1, 3)) for t in TEXTS]
    vectorizer = TfidfVectorizer(analyzer=lambda d: d, sublinear_tf=True, norm="l2", min_df=1)
    matrix = vectorizer.fit_transform(docs)
    ours = Featurizer(dict(vectorizer.vocabulary_), vectorizer.idf_, (1, 3))
    for row, text in enumerate(TEXTS):
        indexes, weights = ours.transform(prepare(text))
        dense = np.zeros(matrix.shape[1])
        dense[indexes] = weights
        assert np.allclose(dense, matrix[row].toarray()[0])


def test_unknown_text_has_no_features_and_resembles_nothing() -> None:
    ours = Featurizer({"工": 0}, np.array([1.0]), (1, 1))
    empty = ours.transform("xyz")
    assert len(empty[0]) == 0
    assert cosine(empty, ours.transform("工")) == 0.0
    assert cosine(ours.transform("工"), ours.transform("工工")) == pytest.approx(1.0)


def small_model(**meta: Any) -> Model:
    vocabulary = ["工", "资", "工资", "孩", "子"]
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(len(vocabulary), 2 + len(CATEGORIES))).astype(np.float32)
    base = {
        "format": FORMAT,
        "version": "triage-test",
        "features": {"ngrams": [1, 2]},
        "categories": CATEGORIES,
        "calibration": {"appeal": [1.0, 0.0], "urgent": [1.0, 0.0], "category_temperature": 1.0},
        "thresholds": {"urgent_low": 0.2, "urgent_high": 0.9, "appeal": 0.5},
        "figures": {},
    }
    return build_model(base | meta, vocabulary, np.ones(len(vocabulary)), weights, np.zeros(4))


def test_a_saved_model_loads_the_same_and_scores_the_same(tmp_path: Path) -> None:
    model = small_model()
    model.save(tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.version == "triage-test"
    assert loaded.featurizer.vocabulary == model.featurizer.vocabulary
    assert loaded.score("工资") == model.score("工资")
    scores = loaded.score("孩子")
    assert [c for c, _ in scores.categories] == sorted(
        CATEGORIES, key=lambda c: -dict(scores.categories)[c]
    )
    assert sum(p for _, p in scores.categories) == pytest.approx(1.0)


def test_saving_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    small_model().save(tmp_path / "a")
    small_model().save(tmp_path / "b")
    for name in ("model.json", "model.npz"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_arrays_holding_python_objects_are_refused(tmp_path: Path) -> None:
    small_model().save(tmp_path)
    with (tmp_path / "model.npz").open("wb") as out:  # an object array needs pickle to load
        np.savez(out, idf=np.array([{"x": 1}], dtype=object), weights=np.zeros(1), bias=np.zeros(1))
    with pytest.raises(ModelError, match="cannot read the triage model"):
        load_model(tmp_path)


def test_a_missing_artifact_is_refused_with_its_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=str(tmp_path)):
        load_model(tmp_path)


def test_another_format_or_disagreeing_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="format"):
        small_model(format="something-else/9")
    small_model().save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text(encoding="utf-8"))
    meta["categories"] = ["wage_arrears"]  # the weights have a column more
    (tmp_path / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="shapes disagree"):
        load_model(tmp_path)
