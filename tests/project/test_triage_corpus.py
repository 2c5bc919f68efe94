"""The triage corpus and the model in use: the corpus is what the issue asked for, its test split
was committed once and never touched, and `fengqiao triage train` makes the model in use again,
to the byte (its version is a digest of its weights and of how it was made)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fengqiao.contracts import CATEGORIES
from fengqiao.services.intake.triage.model import load_model
from fengqiao.triage.corpus import CORPUS_DIR, read_posts, split_files

ROOT = Path(__file__).resolve().parents[2]


def posts(*splits: str) -> list[dict]:  # type: ignore[type-arg]
    return read_posts(p for s in splits for p in split_files(s))


def test_the_corpus_is_large_wide_and_labelled() -> None:
    everything = posts("train", "dev", "test")
    assert len(everything) >= 2500 and len(posts("test")) >= 500
    expects = [p["expect"] for p in everything]
    assert sum(e["urgent"] for e in expects) >= 300
    share = sum(not e["is_appeal"] for e in expects) / len(expects)
    assert 0.25 <= share <= 0.4  # about a third are no appeals
    assert set(Counter(e["category"] for e in expects)) == set(CATEGORIES)
    tags = Counter(t for p in everything for t in p.get("tags", ()))
    for tag in ("figurative", "repost", "thanks", "other_matter", "traditional", "pinyin",
                "typo", "uyghur", "kazakh", "short", "long", "no_stock_words"):  # fmt: skip
        assert tags[tag] >= 10, tag
    assert sum(bool(e["follow_up_of"]) for e in expects) >= 300


def test_every_corpus_file_passes_its_checker() -> None:
    files = [str(p) for s in ("train", "dev", "test") for p in split_files(s)]
    done = subprocess.run(
        [sys.executable, str(CORPUS_DIR / "check.py"), *files], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_test_split_was_written_once_and_never_edited() -> None:
    try:
        log = subprocess.run(
            ["git", "log", "--format=%h", "--", "data/triage/test"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if not log:
        pytest.skip("a shallow or partial history")
    assert len(log) == 1, f"the frozen test split was changed in {len(log)} commits: {log}"


def test_the_model_in_use_records_its_test_figures_in_the_results() -> None:
    model = load_model()
    results = (CORPUS_DIR / "RESULTS.md").read_text(encoding="utf-8")
    [row] = [line for line in results.splitlines() if f"| {model.version} |" in line]
    assert "accepted" in row
    test = model.meta["figures"]["test"]
    assert f"{test['urgent_recall']:.1%}" in row and f"{test['category_accuracy']:.1%}" in row


def test_training_again_makes_the_model_in_use(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fengqiao.cli", "triage", "train", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{load_model().version} is the model in use already" in done.stdout, done.stdout[-3000:]
    assert json.dumps(load_model().meta["thresholds"])
