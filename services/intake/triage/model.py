"""The triage models as a versioned artifact: two files, read without unpickling anything.

- `model.json`: format, version, how it was trained (corpus files and digest, corrections, the
  chosen approach), the vocabulary, the categories, calibration, thresholds and the figures it
  scored on the dev and test splits.
- `model.npz`: numpy arrays only (`idf`, `weights`, `bias`), loaded with `allow_pickle=False`.

Three linear heads share one TF-IDF vector (`features.Featurizer`): `appeal` (appeal or not),
`urgent` (risk to life or safety), and `category` (which of the appeal categories, for appeals).
The weights are one matrix, so a post costs one gather and one product. Binary heads are
calibrated by Platt scaling and the category head by a temperature, both fitted out of fold.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fengqiao.services.intake.triage.features import Featurizer

__all__ = ["FORMAT", "MODEL_DIR", "Model", "ModelError", "Scores", "load_model"]

FORMAT = "fengqiao-triage/1"
MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "triage"


class ModelError(ValueError):
    """The artifact is missing, of another format, or inconsistent; the message says which."""


@dataclass(frozen=True, slots=True)
class Scores:
    """Calibrated probabilities for one post."""

    appeal: float
    urgent: float
    categories: tuple[tuple[str, float], ...]  # every appeal category, most likely first

    @property
    def category(self) -> str:
        return self.categories[0][0]

    @property
    def category_confidence(self) -> float:
        return self.categories[0][1]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@dataclass(frozen=True)
class Model:
    """A loaded artifact; `score` is pure and thread-safe."""

    meta: dict[str, Any]
    featurizer: Featurizer
    weights: npt.NDArray[np.float32]  # features × (1 + 1 + categories): appeal, urgent, categories
    bias: npt.NDArray[np.float64]
    categories: tuple[str, ...]
    thresholds: dict[str, float] = field(init=False, repr=False, compare=False)
    _platt: tuple[float, float, float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cal = self.meta["calibration"]
        platt = (*map(float, cal["appeal"]), *map(float, cal["urgent"]))
        object.__setattr__(self, "_platt", platt)
        thresholds = {k: float(v) for k, v in self.meta["thresholds"].items()}
        object.__setattr__(self, "thresholds", thresholds)

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    def logits(self, text: str, markers: Sequence[str] = ()) -> npt.NDArray[np.float64]:
        """Raw scores of every column for one prepared text."""
        indexes, values = self.featurizer.transform(text, markers)
        if not len(indexes):
            return self.bias.copy()
        return values @ self.weights[indexes] + self.bias

    def score(self, text: str, markers: Sequence[str] = ()) -> Scores:
        """Calibrated probabilities for one prepared text (`features.prepare`)."""
        return self.calibrate(self.logits(text, markers))

    def calibrate(self, logits: npt.NDArray[np.float64]) -> Scores:
        a, b, c, d = self._platt
        values = logits.tolist()  # ten-odd numbers: plain floats beat numpy calls here
        appeal = _sigmoid(a * values[0] + b)
        urgent = _sigmoid(c * values[1] + d)
        temperature = self.meta["calibration"]["category_temperature"]
        z = [v / temperature for v in values[2:]]
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        ranked = sorted(zip(self.categories, exps, strict=True), key=lambda ce: -ce[1])
        return Scores(appeal, urgent, tuple((c, e / total) for c, e in ranked))

    def save(self, directory: Path) -> None:
        """Write `model.json` and `model.npz` into `directory` (made if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        vocabulary = sorted(self.featurizer.vocabulary, key=self.featurizer.vocabulary.__getitem__)
        meta = {**self.meta, "features": {**self.meta["features"], "vocabulary": vocabulary}}
        arrays = {"idf": self.featurizer.idf, "weights": self.weights, "bias": self.bias}
        # numpy's savez stamps each member with the time; a fixed stamp makes the same model
        # the same bytes (training is deterministic, and its output should show it).
        with zipfile.ZipFile(directory / "model.npz", "w", zipfile.ZIP_DEFLATED) as out:
            for name, array in arrays.items():
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(2026, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with out.open(member, "w") as stream:
                    np.lib.format.write_array(stream, np.ascontiguousarray(array))
        (directory / "model.json").write_text(
            json.dumps(meta, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
            encoding="utf-8",
        )


def build_model(
    meta: dict[str, Any],
    vocabulary: list[str],
    idf: npt.NDArray[np.float64],
    weights: npt.NDArray[np.float32],
    bias: npt.NDArray[np.float64],
) -> Model:
    """A model from its parts, checked for consistency (ModelError says what is off)."""
    if meta.get("format") != FORMAT:
        raise ModelError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    categories = tuple(meta["categories"])
    columns = 2 + len(categories)
    if idf.shape != (len(vocabulary),) or weights.shape != (len(vocabulary), columns):
        raise ModelError(
            f"shapes disagree: {len(vocabulary)} tokens, idf {idf.shape}, weights {weights.shape}"
        )
    if bias.shape != (columns,):
        raise ModelError(f"bias has shape {bias.shape}, expected ({columns},)")
    low, high = meta["features"]["ngrams"]
    featurizer = Featurizer({t: i for i, t in enumerate(vocabulary)}, idf, (low, high))
    stripped = {
        **meta,
        "features": {k: v for k, v in meta["features"].items() if k != "vocabulary"},
    }
    return Model(stripped, featurizer, weights, bias, categories)


def load_model(directory: Path = MODEL_DIR) -> Model:
    """The artifact in `directory`; ModelError when it is missing or malformed."""
    try:
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        with np.load(directory / "model.npz", allow_pickle=False) as arrays:
            idf = arrays["idf"].astype(np.float64)
            weights = arrays["weights"].astype(np.float32)
            bias = arrays["bias"].astype(np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read the triage model in {directory}: {exc}") from exc
    return build_model(meta, list(meta["features"]["vocabulary"]), idf, weights, bias)
