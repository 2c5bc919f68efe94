"""How many posts a second one process triages: appeal or not, urgency and category, with the
danger lexicon, on the corpus's own texts (every split; the texts' labels are not read).

    .venv/bin/python bench/triage.py [--rounds 5] [--model DIR]

Two figures, each the median of the rounds:
- **triage**: `Triager.triage` on a normalized, masked text (the models and the lexicon);
- **full**: `services.intake.domain.read_text` on the post as written: folding, Traditional →
  Simplified, entities, masking, language, triage, the linking cues and the fingerprint: all
  intake reads of a post before it looks at the author's history.
Target: at least 5,000 posts/s for the full triage (issue 16).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fengqiao.services.intake.domain import read_text, triage_text
from fengqiao.services.intake.triage import load_triager
from fengqiao.services.intake.triage.model import MODEL_DIR
from fengqiao.triage.corpus import SPLITS, read_posts, split_files

TARGET = 5000


def rate(work: list[str], step: object) -> float:
    started = time.perf_counter()
    for text in work:
        step(text)  # type: ignore[operator]
    return len(work) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    triager = load_triager(args.model)
    posts = [p["text"] for s in SPLITS for p in read_posts(split_files(s))]
    prepared = [triage_text(t) for t in posts]
    read_text(posts[0], triager)  # warm: OpenCC's dictionaries, the automatons
    gc.collect()
    triage_rates, full_rates = [], []
    for _ in range(args.rounds):
        triage_rates.append(rate(prepared, triager.triage))
        full_rates.append(rate(posts, lambda t: read_text(t, triager)))
    triage, full = statistics.median(triage_rates), statistics.median(full_rates)
    chars = sum(map(len, posts)) / len(posts)
    print(
        f"{len(posts)} posts (mean {chars:.0f} characters), model {triager.model.version}: "
        f"triage {triage:,.0f} posts/s, full {full:,.0f} posts/s (range {min(full_rates):,.0f}"
        f"-{max(full_rates):,.0f}); target {TARGET:,}/s "
        f"{'met' if full >= TARGET else 'NOT met'}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    return 0 if full >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
