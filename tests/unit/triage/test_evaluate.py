"""`fengqiao triage eval`'s scoring: per-label figures, linking counted by case, the report."""

from __future__ import annotations

from typing import Any

from fengqiao.triage.evaluate import Report, format_report, score


def post(
    pid: str,
    *,
    urgent: bool = False,
    category: str = "wage_arrears",
    link: str | None = None,
    appeal: bool = True,
    county: str | None = "652701",
    tags: tuple[str, ...] = (),
) -> dict[str, Any]:
    expect: dict[str, Any] = {"is_appeal": appeal, "urgent": urgent, "category": category}
    expect["follow_up_of"] = link
    if appeal:
        expect |= {"county": county, "prefecture": "652700"}
    return {"id": pid, "text": f"text of {pid}", "expect": expect, "tags": list(tags)}


def out(pid: str, **fields: Any) -> dict[str, Any]:
    base = {"is_appeal": True, "urgent": False, "category": "wage_arrears", "county": "652701",
            "prefecture": "652700", "follow_up_of": None, "duplicate_of": None}  # fmt: skip
    return base | fields


def test_urgency_appeal_and_category_figures() -> None:
    posts = [post("a", urgent=True), post("b"), post("c", appeal=False, category="not_appeal")]
    outputs = {
        "a": out("a", urgent=True),
        "b": out("b", urgent=True, category="minors"),
        "c": out("c", is_appeal=False, category="not_appeal"),
    }
    report = score(posts, outputs)
    assert report.counts["urgent_recall"] == (1, 1)
    assert report.counts["urgent_precision"] == (1, 2)
    assert report.counts["appeal_accuracy"] == (3, 3)
    assert report.counts["category_accuracy"] == (2, 3)
    assert report.per_class["category"]["wage_arrears"]["recall"] == 0.5
    assert report.confusion["category"]["wage_arrears"]["minors"] == 1
    assert "urgent_precision" in report.below_target()


def test_a_link_to_any_post_of_the_right_case_counts_and_a_stray_link_is_wrong() -> None:
    posts = [
        post("a"),
        post("b", link="a", tags=("repeat",)),
        post("c", link="a", tags=("thanks",)),
        post("d"),
        post("e", link="d", tags=("repost",)),
    ]
    outputs = {
        "a": out("a"),
        "b": out("b", duplicate_of="a", follow_up_of="a"),
        "c": out("c", follow_up_of="b"),  # b is in a's case: right
        "d": out("d", follow_up_of="a"),  # a new matter linked: wrong
        "e": out("e"),  # missed
    }
    report = score(posts, outputs)
    assert report.counts["linked"] == (2, 3)
    assert report.counts["wrong_links"] == (1, 3)
    assert report.counts["linked_repost"] == (0, 1)
    assert {m["id"] for m in report.misses} == {"d", "e"}


def test_places_are_scored_on_appeals_only() -> None:
    posts = [post("a"), post("b", county="652722"), post("c", appeal=False, category="not_appeal")]
    outputs = {"a": out("a"), "b": out("b"), "c": out("c", is_appeal=False, category="not_appeal",
                                                        county=None)}  # fmt: skip
    assert score(posts, outputs).counts["county"] == (1, 2)


def test_calibration_bands_and_the_report_text() -> None:
    posts = [post("a", urgent=True), post("b")]
    outputs = {"a": out("a", urgent=True), "b": out("b", urgent=True)}
    confidences = {"a": {"appeal": 0.99, "urgent": 0.9, "category": 0.8},
                   "b": {"appeal": 0.97, "urgent": 0.6, "category": 0.9}}  # fmt: skip
    report = score(posts, outputs, confidences)
    urgent_bands = {band: (n, right) for band, n, _, right in report.calibration["urgent"]}
    assert urgent_bands["0.50-0.70"] == (1, 0.0) and urgent_bands["0.85-0.95"] == (1, 1.0)
    text = format_report(report, worst=5)
    assert "urgent_precision" in text and "calibration" in text and "b: urgent False→True" in text
    assert isinstance(report, Report) and report.misses[0]["id"] == "b"
