"""`fengqiao route-eval`: accuracy of the router on a labelled set of posts (tests/router_eval).

Each line is a `fengqiao route` input line plus `expect`: {county, prefecture, urgent, category,
is_appeal, duplicate_of?}. A location key left out of `expect` is not scored (non-appeals).

The set was written for the router's place rules, which it still holds to targets. Urgency,
category and appeal-or-not are intake's triage now, judged on the corpus's frozen test split
(`fengqiao triage eval`); here they are a second check, with targets only where a miss is
unsafe (every urgent post found) or an appeal would go unanswered.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fengqiao.services.router.cli import Normalizer, route_lines
from fengqiao.services.router.domain import Router

__all__ = ["DEFAULT_SET", "TARGETS", "Report", "evaluate", "format_report"]

DEFAULT_SET = Path(__file__).resolve().parents[2] / "tests" / "router_eval" / "posts.jsonl"
TARGETS = {
    "county": 0.95,
    "prefecture": 0.98,
    "urgent_recall": 1.0,
    "is_appeal": 0.95,
}
_FIELDS = ("county", "prefecture", "is_appeal", "category", "duplicate_of")


@dataclass
class Report:
    scores: dict[str, tuple[int, int]] = field(default_factory=dict)  # field → (right, scored)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def rate(self, name: str) -> float:
        right, total = self.scores.get(name, (0, 0))
        return right / total if total else 1.0

    def below_target(self) -> list[str]:
        return [name for name, target in TARGETS.items() if self.rate(name) < target]


def evaluate(lines: Iterable[str], router: Router, normalize: Normalizer) -> Report:
    """Route every labelled post and compare with what it expects."""
    posts = [json.loads(line) for line in lines if line.strip()]
    out, err = io.StringIO(), io.StringIO()
    lines = [json.dumps(p, ensure_ascii=False) for p in posts]
    asyncio.run(route_lines(lines, router, normalize, out, err))
    if err.getvalue():
        raise ValueError(f"the evaluation set has bad lines:\n{err.getvalue()}")
    got = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    report = Report()
    tally: dict[str, list[int]] = {}
    tp = fp = fn = 0
    for post in posts:
        expect, result = post["expect"], got[post["id"]]
        wrong = {}
        for name in _FIELDS:
            if name not in expect and name != "duplicate_of":
                continue
            want = expect.get(name)
            counted = tally.setdefault(name, [0, 0])
            counted[1] += 1
            if result[name] == want:
                counted[0] += 1
            else:
                wrong[name] = {"want": want, "got": result[name]}
        urgent_want, urgent_got = bool(expect["urgent"]), bool(result["urgent"])
        tp += urgent_want and urgent_got
        fp += urgent_got and not urgent_want
        fn += urgent_want and not urgent_got
        if urgent_want != urgent_got:
            wrong["urgent"] = {"want": urgent_want, "got": urgent_got}
        if wrong:
            report.misses.append({"id": post["id"], "text": post["text"], "wrong": wrong})
    report.scores = {name: (r, n) for name, (r, n) in tally.items()}
    report.scores["urgent_recall"] = (tp, tp + fn)
    report.scores["urgent_precision"] = (tp, tp + fp)
    return report


def format_report(report: Report) -> str:
    lines = [f"{'field':<18}{'right':>7}{'of':>6}{'rate':>9}{'target':>9}"]
    for name in (
        "county",
        "prefecture",
        "urgent_recall",
        "urgent_precision",
        "is_appeal",
        "category",
        "duplicate_of",
    ):
        right, total = report.scores.get(name, (0, 0))
        target = TARGETS.get(name)
        mark = (
            ""
            if target is None
            else f"{target:>8.0%}" + (" " if report.rate(name) >= target else "✗")
        )
        lines.append(f"{name:<18}{right:>7}{total:>6}{report.rate(name):>9.1%}{mark:>9}")
    lines.append(f"\nmisses ({len(report.misses)}):")
    for miss in report.misses:
        what = "; ".join(f"{k}: want {v['want']} got {v['got']}" for k, v in miss["wrong"].items())
        lines.append(f"  {miss['id']}  {miss['text'][:60]}\n      {what}")
    return "\n".join(lines)
