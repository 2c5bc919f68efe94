"""An author's record as stored: every field linking reads comes back, the record keeps the
newest appeals, and a claim's week lies in one period (two copies in one week meet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fengqiao.services.intake.adapters import recent_codec
from fengqiao.services.intake.adapters.recent_mongo import PERIOD, period_name, period_of
from fengqiao.services.intake.linking import RecentAppeal

T0 = datetime(2026, 8, 1, 10, 0, 0, 123456, tzinfo=UTC)


def appeal(key: str, at: datetime = T0, **fields: object) -> RecentAppeal:
    return RecentAppeal(key=key, platform="weibo", author="u1", post_id=key, event_id=f"e-{key}",
                        case_id=f"c-{key}", posted_at=at, fingerprint=(1, 2**63 - 1), **fields)  # type: ignore[arg-type]  # fmt: skip


def test_every_field_comes_back() -> None:
    full = appeal(
        "a",
        words="工资的事",
        category="wage_arrears",
        amounts=frozenset({3000}),
        phones=frozenset({"d1"}),
        follow_up_of="c-0",
        duplicate_of="e-0",
        is_appeal=False,
        urgent=True,
        urgent_case=True,
        link_reason="near copy",
        suggested="c-9",
        suggested_reason="similar",
    )
    for a in (full, appeal("b")):
        [stored] = recent_codec.kept({}, [a], 10)
        doc = {"packed": recent_codec.packed([stored])}
        assert recent_codec.appeals(doc, "weibo", "u1") == [a]
    assert set(recent_codec.entry(appeal("b"))) == {"key", "post_id", "event_id", "case_id", "at",
                                                    "fp", "words"}  # fmt: skip


def test_a_record_keeps_the_newest() -> None:
    old = {e["key"]: e for e in recent_codec.kept({}, [appeal(str(i), T0 + timedelta(hours=i))
                                                        for i in range(4)], 10)}  # fmt: skip
    kept = recent_codec.kept(old, [appeal("new", T0 - timedelta(days=1))], 3)
    assert [e["key"] for e in kept] == ["3", "2", "1"]


def test_a_week_lies_in_one_period() -> None:
    week = timedelta(weeks=1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for w in range(2900, 2960):
        start = epoch + w * week
        assert period_of(start) == period_of(start + week - timedelta(microseconds=1))
    assert period_name(period_of(T0)) == "linking_20260716"
    assert period_of(datetime(2026, 7, 16, tzinfo=UTC) + PERIOD) == period_of(T0) + 1
