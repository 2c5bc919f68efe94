"""Split a training writer's file into its train and dev parts, whole cases at a time.

    python data/triage/split.py data/triage/pool/R6.jsonl   # → train/R6.jsonl and dev/R6.jsonl

A case (a first post and every post linked to it) goes to dev when a digest of its first post's
id falls in the dev fifth, so the split is deterministic and a thread is never cut in two. Posts
keep the writer's order. Standard library only. The test split is never made with this: it was
written apart, by other writers, before any model existed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEV_SHARE = 5  # one case in five


def is_dev(case: str) -> bool:
    return int(hashlib.sha256(case.encode()).hexdigest(), 16) % DEV_SHARE == 0


def split(path: Path) -> tuple[int, int]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    parts: dict[str, list[str]] = {"train": [], "dev": []}
    for line in lines:
        post = json.loads(line)
        case = post["expect"].get("follow_up_of") or post["id"]
        parts["dev" if is_dev(case) else "train"].append(line)
    for name, chosen in parts.items():
        (HERE / name).mkdir(exist_ok=True)
        (HERE / name / path.name).write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return len(parts["train"]), len(parts["dev"])


if __name__ == "__main__":
    for name in sys.argv[1:]:
        train, dev = split(Path(name))
        print(f"{name}: {train} train, {dev} dev")
