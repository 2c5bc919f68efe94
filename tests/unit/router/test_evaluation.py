"""The router on its labelled evaluation set (tests/router_eval/posts.jsonl), through the same
path as `fengqiao route`: intake's normalization, triage and linking, then Router.decide.

The set was written for the router's place rules; the triage models never learned from it, so
its urgency and appeal figures are a second held-out check of them."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from fengqiao.pipeline import route_pipeline
from fengqiao.services.router.cli import route_lines
from fengqiao.services.router.evaluate import DEFAULT_SET, TARGETS, Report, evaluate, format_report


@pytest.fixture(scope="module")
def parts() -> tuple[Any, Any]:
    return route_pipeline()


@pytest.fixture(scope="module")
def report(parts: tuple[Any, Any]) -> Report:
    router, normalize = parts
    with DEFAULT_SET.open(encoding="utf-8") as lines:
        return evaluate(lines, router, normalize)


def test_the_set_is_big_and_varied() -> None:
    posts = [json.loads(line) for line in DEFAULT_SET.read_text(encoding="utf-8").splitlines()]
    assert len(posts) >= 220
    expects = [p["expect"] for p in posts]
    assert sum(e["urgent"] for e in expects) >= 20
    assert sum(not e["is_appeal"] for e in expects) >= 10
    assert sum("geo" in p for p in posts) >= 8
    counties = {e.get("county") for e in expects} - {None}
    prefectures = {e.get("prefecture") for e in expects} - {None}
    assert len(counties) >= 95 and len(prefectures) >= 17


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_targets_are_met(report: Report, name: str) -> None:
    assert report.rate(name) >= TARGETS[name], format_report(report)


def test_the_report_lists_every_field_and_the_misses(report: Report) -> None:
    text = format_report(report)
    for name in (
        "county",
        "prefecture",
        "urgent_recall",
        "urgent_precision",
        "is_appeal",
        "category",
    ):
        assert name in text
    assert f"misses ({len(report.misses)})" in text


def test_the_article_cases_route_as_in_the_article(parts: tuple[Any, Any]) -> None:
    router, normalize = parts
    posts = [
        ("a1", "我母亲在博乐市务工时摔伤，官司赢了，可对方一直没有可执行的财产，赔偿金拿不到"),
        ("a2", "我公公是米东区一个小区的志愿者，劝阻醉酒的居民时被打伤住院，不愿意承担医药费"),
        ("a3", "急求助！家人急需一种特种药，喀什市区的药店都买不到，听说伽师县的医院还有一盒存药"),
    ]
    lines = [
        json.dumps({"id": i, "account": "@新疆检察", "author": "u", "text": t}, ensure_ascii=False)
        for i, t in posts
    ]
    out, err = io.StringIO(), io.StringIO()
    assert asyncio.run(route_lines(lines, router, normalize, out, err)) == 0
    got = {r["id"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert got["a1"]["chain"] == ["xj", "652700", "652701"]
    assert got["a2"]["chain"] == ["xj", "650100", "650109"]
    assert got["a3"]["chain"] == ["xj", "653100", "653129"]
    assert (got["a3"]["urgent"], got["a3"]["category"]) == (True, "urgent_assistance")


def test_bad_lines_are_reported_by_number_and_the_rest_routed(parts: tuple[Any, Any]) -> None:
    router, normalize = parts
    lines = [
        '{"id": "ok", "account": "@新疆检察", "author": "u", "text": "博乐市拖欠工资"}',
        "{not json",
        '{"id": "x", "text": "no account"}',
        "",
    ]
    out, err = io.StringIO(), io.StringIO()
    assert asyncio.run(route_lines(lines, router, normalize, out, err)) == 1
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == ["ok"]
    errors = err.getvalue().splitlines()
    assert errors[0].startswith("line 2: not JSON")
    assert errors[1].startswith("line 3: account")
    assert "Traceback" not in err.getvalue()


def test_a_repeat_by_the_same_author_is_a_duplicate() -> None:
    router, normalize = route_pipeline()  # its own run: no other test's posts to link to
    text = "玛纳斯县一个工地拖欠我们二十几个人的工资三个月了，求帮忙"
    lines = [
        json.dumps({"id": i, "account": "@新疆检察", "author": "u", "text": t}, ensure_ascii=False)
        for i, t in [("p1", text), ("p2", text + "！！"), ("p3", "博乐市一个饭店欠我工资")]
    ]
    out = io.StringIO()
    asyncio.run(route_lines(lines, router, normalize, out, io.StringIO()))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["duplicate_of"] for r in records] == [None, "p1", None]
    assert [r["follow_up_of"] for r in records] == [None, "p1", None]
    assert any(r.startswith("linked: near copy") for r in records[1]["reasons"])
    assert records[1]["chain"] == records[0]["chain"]  # it joins that case, with its place
