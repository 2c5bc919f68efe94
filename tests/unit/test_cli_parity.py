"""`fengqiao normalize` and `fengqiao route` give the same answer for what intake decides (appeal
or not, urgency, category, and which earlier line a post joins): one place decides each label."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

from fengqiao.pipeline import route_pipeline
from fengqiao.services.intake.cli import run as normalize
from fengqiao.services.router.cli import route_lines
from fengqiao.triage.corpus import read_posts, split_files
from fengqiao.triage.evaluate import in_order


def test_both_commands_agree_on_a_dev_file() -> None:
    posts = in_order(read_posts(split_files("dev")[:1]))
    lines = [json.dumps(p, ensure_ascii=False) for p in posts]
    out, err = io.StringIO(), io.StringIO()
    data = "\n".join(lines).encode()
    assert normalize(io.BytesIO(data), out, err, now=datetime(2026, 12, 1, tzinfo=UTC)) == 0
    normalized = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    out = io.StringIO()
    assert asyncio.run(route_lines(lines, *route_pipeline(), out, io.StringIO())) == 0
    routed = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert normalized.keys() == routed.keys() and len(routed) > 50
    for key in ("is_appeal", "urgent", "category", "duplicate_of", "follow_up_of"):
        assert {i: r[key] for i, r in normalized.items()} == {i: r[key] for i, r in routed.items()}
