"""`fengqiao triage eval`: how triage and routing score on a labelled split, label by label.

Every post of the split goes through the same path as `fengqiao route` (intake's normalizer with
its triage and linking, then the router), file by file in `created_at` order (a file is one
stream: links may only point back within it). Printed per label: precision, recall and F1 per
class, the confusion matrix, calibration (how often the model is right per confidence band), and
the worst misses, the confident ones first.

Linking is scored per post: a post labelled `follow_up_of: X` is linked right when its output
names X, or a post that is linked to X, in `follow_up_of` or `duplicate_of`. A post labelled with
no link is linked wrongly when its output names any.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fengqiao.contracts import CATEGORIES
from fengqiao.pipeline import route_pipeline
from fengqiao.services.intake.triage.model import MODEL_DIR
from fengqiao.services.router.cli import Linked, PostIn, route_lines
from fengqiao.triage.corpus import read_posts

__all__ = ["TARGETS", "Report", "format_report", "run_split", "score"]

# The issue's targets on the frozen test split (a figure below its target is flagged).
TARGETS = {
    "urgent_recall": 1.0,
    "urgent_precision": 0.85,
    "appeal_accuracy": 0.95,
    "category_accuracy": 0.85,
    "category_recall_min": 0.70,
    "linked": 0.90,
    "county": 0.97,
    "prefecture": 0.99,
}
TARGETS_AT_MOST = {"wrong_links": 0.02}
BANDS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.01))


@dataclass
class Report:
    """Every figure of one run, and the misses."""

    figures: dict[str, float] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → (right, of)
    per_class: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    confusion: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    calibration: dict[str, list[tuple[str, int, float, float]]] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def below_target(self) -> list[str]:
        low = [k for k, t in TARGETS.items() if k in self.figures and self.figures[k] < t - 1e-9]
        high = [k for k, t in TARGETS_AT_MOST.items() if k in self.figures and self.figures[k] > t]
        return low + high

    def to_json(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "counts": {k: list(v) for k, v in self.counts.items()},
            "per_class": self.per_class,
        }


def _rate(right: int, total: int) -> float:
    return right / total if total else 1.0


def _per_class(
    pairs: Sequence[tuple[str, str]], classes: Sequence[str]
) -> dict[str, dict[str, float]]:
    out = {}
    for c in classes:
        tp = sum(w == c and g == c for w, g in pairs)
        fp = sum(w != c and g == c for w, g in pairs)
        fn = sum(w == c and g != c for w, g in pairs)
        p, r = _rate(tp, tp + fp), _rate(tp, tp + fn)
        out[c] = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "support": float(tp + fn),
        }
    return out


def _confusion(pairs: Sequence[tuple[str, str]]) -> dict[str, Counter[str]]:
    matrix: dict[str, Counter[str]] = {}
    for want, got in pairs:
        matrix.setdefault(want, Counter())[got] += 1
    return matrix


def _resolve(post_id: str | None, links: dict[str, str | None]) -> str | None:
    """The first post of the case `post_id` belongs to, by following links back."""
    seen = set()
    while post_id is not None and post_id in links and links[post_id] and post_id not in seen:
        seen.add(post_id)
        post_id = links[post_id]
    return post_id


def score(
    posts: Sequence[dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
    confidences: dict[str, dict[str, float]] | None = None,
) -> Report:
    """The figures of `outputs` (route records by id) against the posts' `expect`."""
    wrong: list[dict[str, Any]] = [{} for _ in posts]  # per post: label → want and got
    pairs = _label_pairs(posts, outputs, wrong)
    report = Report()
    report.counts = {
        **_label_counts(pairs, len(posts)),
        **_place_counts(posts, outputs, wrong),
        **_link_counts(posts, outputs, wrong),
    }
    report.figures = {k: _rate(*v) if k != "wrong_links" else (v[0] / v[1] if v[1] else 0.0)
                      for k, v in report.counts.items()}  # fmt: skip
    report.per_class = {
        "is_appeal": _per_class(pairs["is_appeal"], ("True", "False")),
        "urgent": _per_class(pairs["urgent"], ("True", "False")),
        "category": _per_class(pairs["category"], CATEGORIES),
    }
    present = [c for c in CATEGORIES if report.per_class["category"][c]["support"]]
    report.figures["category_recall_min"] = min(
        (report.per_class["category"][c]["recall"] for c in present), default=1.0
    )
    report.confusion = {label: _confusion(p) for label, p in pairs.items()}
    if confidences:
        report.calibration = _calibration(posts, outputs, confidences)
    for post, fields in zip(posts, wrong, strict=True):
        if fields:
            conf = (confidences or {}).get(post["id"], {})
            report.misses.append(
                {"id": post["id"], "text": post["text"], "wrong": fields, "confidence": conf}
            )
    report.misses.sort(key=lambda m: -max(m["confidence"].values(), default=0.0))
    return report


def _label_pairs(
    posts: Sequence[dict[str, Any]], outputs: dict[str, dict[str, Any]], wrong: list[dict[str, Any]]
) -> dict[str, list[tuple[str, str]]]:
    """(labelled, decided) per post for is_appeal, urgent and category; the misses in `wrong`."""
    pairs: dict[str, list[tuple[str, str]]] = {"is_appeal": [], "urgent": [], "category": []}
    for post, fields in zip(posts, wrong, strict=True):
        e, o = post["expect"], outputs[post["id"]]
        pairs["is_appeal"].append((str(e["is_appeal"]), str(o["is_appeal"])))
        pairs["category"].append((e["category"], o["category"]))
        pairs["urgent"].append((str(e["urgent"]), str(o["urgent"])))
        for name in ("is_appeal", "urgent", "category"):
            if e[name] != o[name]:
                fields[name] = {"want": e[name], "got": o[name]}
    return pairs


def _label_counts(pairs: dict[str, list[tuple[str, str]]], n: int) -> dict[str, tuple[int, int]]:
    urgent = pairs["urgent"]
    tp = sum(w == "True" and g == "True" for w, g in urgent)
    fp = sum(w == "False" and g == "True" for w, g in urgent)
    fn = sum(w == "True" and g == "False" for w, g in urgent)
    return {
        "appeal_accuracy": (sum(w == g for w, g in pairs["is_appeal"]), n),
        "urgent_recall": (tp, tp + fn),
        "urgent_precision": (tp, tp + fp),
        "category_accuracy": (sum(w == g for w, g in pairs["category"]), n),
    }


def _place_counts(
    posts: Sequence[dict[str, Any]], outputs: dict[str, dict[str, Any]], wrong: list[dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """(right, of) for the county and prefecture of the appeals labelled with one."""
    tallies = {"county": [0, 0], "prefecture": [0, 0]}
    for post, fields in zip(posts, wrong, strict=True):
        e, o = post["expect"], outputs[post["id"]]
        if not e["is_appeal"]:
            continue
        for name, tally in tallies.items():
            if name in e:
                tally[1] += 1
                if o.get(name) == e[name]:
                    tally[0] += 1
                else:
                    fields[name] = {"want": e[name], "got": o.get(name)}
    return {name: (right, of) for name, (right, of) in tallies.items()}


_LINK_KINDS = ("repeat", "follow_up", "repost", "thanks")


def _link_counts(
    posts: Sequence[dict[str, Any]], outputs: dict[str, dict[str, Any]], wrong: list[dict[str, Any]]
) -> dict[str, tuple[int, int]]:
    """Links made right (of those labelled), wrong (of those made), and right per kind."""
    out_links = {
        pid: (o.get("follow_up_of") or o.get("duplicate_of")) for pid, o in outputs.items()
    }
    want_links = {p["id"]: p["expect"].get("follow_up_of") for p in posts}
    linked, should_link, wrong_links, made = 0, 0, 0, 0
    by_kind: dict[str, list[int]] = {}
    for post, fields in zip(posts, wrong, strict=True):
        target = want_links.get(post["id"])
        got = out_links.get(post["id"])
        if got:
            made += 1
        if target:
            should_link += 1
            right = bool(got) and _resolve(got, out_links) == _resolve(target, want_links)
            linked += right
            kind = next((t for t in post.get("tags", ()) if t in _LINK_KINDS), "other")
            tally = by_kind.setdefault(kind, [0, 0])
            tally[0] += right
            tally[1] += 1
            if not right:
                fields["follow_up_of"] = {"want": target, "got": got}
        elif got:
            wrong_links += 1
            fields["follow_up_of"] = {"want": None, "got": got}
    counts = {"linked": (linked, should_link), "wrong_links": (wrong_links, made)}
    counts.update({f"linked_{kind}": (r, t) for kind, (r, t) in sorted(by_kind.items())})
    return counts


def _calibration(
    posts: Sequence[dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
    confidences: dict[str, dict[str, float]],
) -> dict[str, list[tuple[str, int, float, float]]]:
    """Per label and confidence band: (band, posts, mean confidence, share right). The
    confidence is the model's probability of the answer it gave."""
    rows: dict[str, list[tuple[float, bool]]] = {"is_appeal": [], "urgent": [], "category": []}
    for post in posts:
        c, e, o = confidences.get(post["id"]), post["expect"], outputs[post["id"]]
        if not c:
            continue
        p = c["appeal"]
        rows["is_appeal"].append((p if o["is_appeal"] else 1 - p, e["is_appeal"] == o["is_appeal"]))
        p = c["urgent"]
        rows["urgent"].append((p if o["urgent"] else 1 - p, e["urgent"] == o["urgent"]))
        if o["is_appeal"] and e["is_appeal"]:
            rows["category"].append((c["category"], e["category"] == o["category"]))
    out = {}
    for label, pairs in rows.items():
        bands = []
        for low, high in BANDS:
            inside = [(p, r) for p, r in pairs if low <= p < high]
            if inside:
                mean = sum(p for p, _ in inside) / len(inside)
                bands.append((f"{low:.2f}-{min(high, 1):.2f}", len(inside), mean,
                              sum(r for _, r in inside) / len(inside)))  # fmt: skip
        out[label] = bands
    return out


# --------------------------------------------------------------------------- running


def in_order(posts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Posts in `created_at` order (stable for equal instants)."""
    return sorted(posts, key=lambda p: p.get("created_at") or "")


def run_split(
    files: Sequence[Path], model_dir: Path = MODEL_DIR
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """(posts, route records by id, model confidences by id) for the posts of `files`, each
    file routed as one stream."""
    posts_all: list[dict[str, Any]] = []
    outputs: dict[str, dict[str, Any]] = {}
    confidences: dict[str, dict[str, float]] = {}
    for path in files:
        posts = in_order(read_posts([path]))
        posts_all += posts
        router, normalize = route_pipeline(model_dir)

        async def observed(post: PostIn, line: int) -> Linked:
            appeal, links = await normalize(post, line)  # noqa: B023 (used before the next file)
            if appeal.triage is not None:
                t = appeal.triage
                confidences[post.id] = {
                    "appeal": t.appeal_confidence,
                    "urgent": t.urgent_confidence,
                    "category": t.category_confidence,
                }
            return appeal, links

        out, err = io.StringIO(), io.StringIO()
        lines = [json.dumps(p, ensure_ascii=False) for p in posts]
        asyncio.run(route_lines(lines, router, observed, out, err))
        if err.getvalue():
            raise ValueError(f"{path}: lines the router refused:\n{err.getvalue()}")
        for line in out.getvalue().splitlines():
            record = json.loads(line)
            outputs[record["id"]] = record
    return posts_all, outputs, confidences


def format_report(report: Report, *, worst: int = 15) -> str:
    """The report as text for a terminal."""
    lines = ["figure                       value     (right / of)   target"]
    for name, value in report.figures.items():
        right, total = report.counts.get(name, (0, 0))
        target = TARGETS.get(name)
        at_most = TARGETS_AT_MOST.get(name)
        flag = ""
        if target is not None:
            flag = f">= {target:.0%}" + ("  BELOW" if value < target - 1e-9 else "")
        elif at_most is not None:
            flag = f"<= {at_most:.0%}" + ("  ABOVE" if value > at_most else "")
        counted = f"({right} / {total})" if name in report.counts else ""
        lines.append(f"{name:28} {value:7.1%}   {counted:14} {flag}")
    for label, classes in report.per_class.items():
        lines += ["", f"{label}: class        precision  recall   F1     support"]
        for c, m in classes.items():
            lines.append(
                f"  {c:22} {m['precision']:7.1%} {m['recall']:7.1%} {m['f1']:7.1%} "
                f"{int(m['support']):6d}"
            )
    for label, matrix in report.confusion.items():
        cols = sorted({g for row in matrix.values() for g in row} | set(matrix))
        short = {c: c[:6] for c in cols}
        lines += ["", f"{label}: confusion (rows: labelled, columns: decided)"]
        lines.append(" " * 24 + " ".join(f"{short[c]:>6}" for c in cols))
        for want in cols:
            row = matrix.get(want, Counter())
            lines.append(f"  {want:22}" + " ".join(f"{row.get(c, 0):6d}" for c in cols))
    if report.calibration:
        lines += ["", "calibration: band      posts  mean confidence  right"]
        for label, bands in report.calibration.items():
            for band, n, mean, share in bands:
                lines.append(f"  {label:10} {band:10} {n:6d} {mean:12.1%} {share:10.1%}")
    lines += ["", f"worst misses (the {worst} most confident of {len(report.misses)}):"]
    for miss in report.misses[:worst]:
        wrong = "; ".join(f"{k} {v['want']}→{v['got']}" for k, v in miss["wrong"].items())
        conf = " ".join(f"{k} {v:.2f}" for k, v in miss["confidence"].items())
        lines.append(f"  {miss['id']}: {wrong} [{conf}] {miss['text'][:60]}")
    return "\n".join(lines)
