"""`fengqiao triage train|eval`: learn the triage models from the corpus, and score them.

    fengqiao triage eval [--split test|dev|train] [--model DIR] [--json]
    fengqiao triage train [--with-corrections] [--approach NAME] [--out DIR] [--force]

`train` compares the approaches on the dev split, fits the best on train+dev (and the
dispatchers' corrections), scores the candidate once on the frozen test split and records the
figures in `data/triage/RESULTS.md`. A candidate that scores worse there than the model in use
is refused (exit 2) and nothing is written, unless `--force`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fengqiao.triage.corpus import CORPUS_DIR, Example, load_split, split_files

if TYPE_CHECKING:
    from fengqiao.services.intake.triage.model import Model
    from fengqiao.triage.train import Approach

__all__ = ["GATED", "add_parser", "worse"]

RESULTS = CORPUS_DIR / "RESULTS.md"
# What the gate compares: urgent recall must not drop; the mean of these must not drop by more
# than GATE_SLACK.
GATED = ("urgent_precision", "appeal_accuracy", "category_accuracy", "linked")
GATE_SLACK = 0.005


def add_parser(sub: Any) -> None:
    triage = sub.add_parser("triage", help="train and evaluate the triage models")
    actions = triage.add_subparsers(dest="triage_command", required=True, metavar="ACTION")
    ev = actions.add_parser("eval", help="score triage and routing on a labelled split")
    ev.add_argument("--split", default="test", choices=["test", "dev", "train"])
    ev.add_argument("--model", type=Path, default=None, help="model directory (default: in use)")
    ev.add_argument("--json", action="store_true", help="the figures as JSON")
    ev.add_argument("--worst", type=int, default=20, help="how many misses to show")
    ev.set_defaults(func=_eval)
    tr = actions.add_parser("train", help="learn the models from the corpus (deterministic)")
    tr.add_argument(
        "--with-corrections",
        action="store_true",
        help="add the dispatchers' corrections from the router's store",
    )
    tr.add_argument("--approach", default=None, help="skip the comparison; use this approach")
    tr.add_argument("--out", type=Path, default=None, help="where to write (default: in use)")
    tr.add_argument("--force", action="store_true", help="write even if the gate refuses it")
    tr.set_defaults(func=_train)


def _eval(args: argparse.Namespace) -> int:
    from fengqiao.services.intake.triage.model import MODEL_DIR
    from fengqiao.triage.evaluate import format_report, run_split, score

    files = split_files(args.split)
    if not files:
        print(f"no corpus files in {CORPUS_DIR / args.split}", file=sys.stderr)
        return 1
    posts, outputs, confidences = run_split(files, args.model or MODEL_DIR)
    report = score(posts, outputs, confidences)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=1))
    else:
        print(f"{args.split} split: {len(posts)} posts in {len(files)} files")
        print(format_report(report, worst=args.worst))
    return 0


def worse(candidate: dict[str, float], in_use: dict[str, float]) -> list[str]:
    """Why `candidate` scores worse than `in_use` (empty: it does not)."""
    why = []
    if candidate.get("urgent_recall", 0) < in_use.get("urgent_recall", 0) - 1e-9:
        why.append(
            f"urgent recall {candidate['urgent_recall']:.1%} < {in_use['urgent_recall']:.1%}"
        )
    mean_c = sum(candidate.get(k, 0) for k in GATED) / len(GATED)
    mean_u = sum(in_use.get(k, 0) for k in GATED) / len(GATED)
    if mean_c < mean_u - GATE_SLACK:
        why.append(f"mean of {', '.join(GATED)} {mean_c:.1%} < {mean_u:.1%}")
    return why


def _train(args: argparse.Namespace) -> int:
    from fengqiao.services.intake.triage.model import MODEL_DIR, ModelError, load_model

    trained = _candidate(args)
    if trained is None:
        return 1
    approach, sources, model = trained
    try:
        current = load_model(MODEL_DIR)
    except ModelError:
        current = None
    if current is not None and current.version == model.version:
        _say(f"{model.version} is the model in use already: nothing to record or write")
        return 0
    return _gate(args, approach.name, sources, model, current)


def _say(line: str) -> None:
    print(line, flush=True)


def _candidate(args: argparse.Namespace) -> tuple[Approach, dict[str, Any], Model] | None:
    """(the approach chosen on dev, what the model learned from, the model fitted on
    train+dev); None for an unknown `--approach`."""
    from fengqiao.triage import train

    train_set, dev = load_split("train"), load_split("dev")
    _say(f"corpus: {len(train_set)} train, {len(dev)} dev examples")
    if args.approach:
        chosen = [a for a in train.APPROACHES if a.name == args.approach]
        if not chosen:
            names = ", ".join(a.name for a in train.APPROACHES)
            print(f"unknown approach {args.approach!r}: one of {names}", file=sys.stderr)
            return None
        results = train.compare(train_set, dev, chosen, progress=_say)
    else:
        _say("comparing approaches (learned on train, scored on dev):")
        results = train.compare(train_set, dev, progress=_say)
    approach, dev_figures = results[0]
    _say(f"chosen: {approach.name} (mean {dev_figures['mean']:.3f} on dev)")
    examples: list[Example] = [*train_set, *dev]
    sources: dict[str, Any] = {
        "splits": ["train", "dev"],
        "files": [str(p.relative_to(CORPUS_DIR)) for s in ("train", "dev") for p in split_files(s)],
        "comparison": {a.name: round(f["mean"], 4) for a, f in results},
    }
    if args.with_corrections:
        corrections = _corrections()
        _say(f"corrections: {len(corrections)} from the triage queue")
        examples += corrections
        sources["corrections"] = len(corrections)
    model = train.train_model(
        approach, examples, sources=sources, dev_figures=dev_figures, progress=_say
    )
    return approach, sources, model


def _gate(
    args: argparse.Namespace,
    approach: str,
    sources: dict[str, Any],
    model: Model,
    current: Model | None,
) -> int:
    """Score the candidate on the frozen test split, record it, and write it unless it scores
    worse than the model in use (exit 2) and `--force` is not given."""
    from fengqiao.services.intake.triage.model import MODEL_DIR
    from fengqiao.triage.evaluate import run_split, score

    test_files = split_files("test")
    with tempfile.TemporaryDirectory() as scratch:
        model.save(Path(scratch))
        posts, outputs, confidences = run_split(test_files, Path(scratch))
    figures = score(posts, outputs, confidences).figures
    model.meta["figures"]["test"] = figures
    out = args.out or MODEL_DIR
    # The model in use, scored again under this code (its decisions may have changed since).
    in_use = score(*run_split(test_files, MODEL_DIR)).figures if current else None
    why = worse(figures, in_use) if in_use else []
    _record(model.version, approach, sources, figures, in_use, refused=bool(why))
    _say(_figure_lines(figures, in_use))
    if current is not None:
        _say(f"(the model in use: {current.version})")
    if why and not args.force:
        _say("REFUSED: the candidate scores worse on the frozen test split than the model in use:")
        for reason in why:
            _say(f"  {reason}")
        return 2
    model.save(out)
    _say(f"wrote {model.version} to {out} (its test figures are recorded in {RESULTS})")
    return 0


def _corrections() -> list[Example]:
    import asyncio

    from pymongo import AsyncMongoClient

    from fengqiao.services.router.adapters.triage_queue import MongoTriageQueue
    from fengqiao.services.router.settings import RouterSettings

    settings = RouterSettings()

    async def read() -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.stack.mongo_uri, serverSelectionTimeoutMS=5000
        )
        try:
            return await MongoTriageQueue(client, settings.database).corrections()
        finally:
            await client.close()

    return [Example.from_correction(c) for c in asyncio.run(read())]


def _figure_lines(figures: dict[str, float], in_use: dict[str, float] | None) -> str:
    lines = ["figure on the test split        candidate   in use"]
    for name, value in figures.items():
        old = f"{in_use[name]:8.1%}" if in_use and name in in_use else "       -"
        lines.append(f"  {name:28} {value:8.1%} {old}")
    return "\n".join(lines)


def _record(
    version: str,
    approach: str,
    sources: dict[str, Any],
    figures: dict[str, float],
    in_use: dict[str, float] | None,
    *,
    refused: bool,
) -> None:
    """One row per candidate scored on the test split, appended to RESULTS.md."""
    keys = ("urgent_recall", "urgent_precision", "appeal_accuracy", "category_accuracy",
            "category_recall_min", "linked", "wrong_links", "county", "prefecture")  # fmt: skip
    if not RESULTS.exists() or "| date |" not in RESULTS.read_text(encoding="utf-8"):
        head = ("date", "model", "approach", "examples", *keys, "outcome")
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n")
    examples = f"{sources.get('files') and len(sources['files'])} files"
    if sources.get("corrections"):
        examples += f" + {sources['corrections']} corrections"
    outcome = "refused" if refused else ("accepted (first)" if in_use is None else "accepted")
    row = [datetime.now(UTC).date().isoformat(), version, approach, examples]
    row += [f"{figures.get(k, 0):.1%}" for k in keys] + [outcome]
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write("| " + " | ".join(row) + " |\n")
