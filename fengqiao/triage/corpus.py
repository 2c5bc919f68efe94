"""The labelled corpus (`data/triage/`): its splits, read into examples the models learn from.

- `test/`: the frozen test split, written first and never tuned on;
- `dev/`: where approaches and settings are compared;
- `train/`: what the models learn from (with `dev/` for the model in use).

Each file holds JSON lines in `fengqiao route`'s input format plus `expect` and `tags`
(`data/triage/LABELS.md`). Corrections made by dispatchers in the triage queue are examples too
(`Example.from_correction`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fengqiao.services.intake.domain import triage_text

__all__ = ["CORPUS_DIR", "SPLITS", "Example", "digest", "load_split", "read_posts", "split_files"]

CORPUS_DIR = Path(__file__).resolve().parents[2] / "data" / "triage"
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled post: the text the models read, and its labels."""

    id: str
    text: str  # normalized and masked, as intake hands it to triage
    is_appeal: bool
    urgent: bool
    category: str
    group: str  # the case it belongs to: examples of one case stay in one fold
    tags: tuple[str, ...] = ()

    @classmethod
    def from_post(cls, post: dict[str, Any]) -> Example:
        expect = post["expect"]
        return cls(
            id=post["id"],
            text=triage_text(post["text"]),
            is_appeal=bool(expect["is_appeal"]),
            urgent=bool(expect["urgent"]),
            category=expect["category"],
            group=expect.get("follow_up_of") or post["id"],
            tags=tuple(post.get("tags", ())),
        )

    @classmethod
    def from_correction(cls, correction: dict[str, Any]) -> Example:
        """A dispatcher's correction (the triage queue's stored record) as an example."""
        return cls(
            id=f"correction:{correction['_id']}",
            text=correction["text"],
            is_appeal=bool(correction["is_appeal"]),
            urgent=bool(correction["urgent"]),
            category=correction["category"],
            group=f"correction:{correction.get('case_id') or correction['_id']}",
            tags=("correction",),
        )


def split_files(split: str, root: Path = CORPUS_DIR) -> list[Path]:
    """The files of one split, in name order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: one of {', '.join(SPLITS)}")
    return sorted((root / split).glob("*.jsonl"))


def read_posts(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every post of the files, in file order (a bad line raises ValueError naming it)."""
    posts = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                posts.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: {exc.msg}") from None
    return posts


def load_split(split: str, root: Path = CORPUS_DIR) -> list[Example]:
    """The examples of one split."""
    files = split_files(split, root)
    if not files:
        raise ValueError(f"no corpus files in {root / split}")
    return [Example.from_post(p) for p in read_posts(files)]


def digest(examples: Sequence[Example]) -> str:
    """A digest of what the models learn from: ids, texts and labels, in order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.id, e.text, e.is_appeal, e.urgent, e.category]).encode())
    return h.hexdigest()[:16]
