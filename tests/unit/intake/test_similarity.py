"""Near-duplicates and follow-ups: fingerprints, resemblance, and the decision (thresholds tuned
on the pairs below)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain import matched_words, read_text
from services.intake.similarity import (
    SKETCH_SIZE,
    Policy,
    RecentAppeal,
    decide,
    fingerprint,
    resemblance,
)

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
WAGES = "我在博乐市工地干活，老板拖欠工资三个月了，求助"


def sketch(text: str) -> tuple[int, ...]:
    """The fingerprint intake takes of a whole post (normalized, own words only)."""
    return fingerprint(matched_words(read_text(text).parsed))


def score(a: str, b: str) -> float:
    return resemblance(sketch(a), sketch(b))


# --------------------------------------------------------------------------- fingerprints


def test_a_fingerprint_is_stable_across_processes() -> None:
    # Python's hash() changes per process; the stored fingerprints must not.
    assert fingerprint("工资") == (fingerprint("工资")[0],)
    assert fingerprint("ab") == (8819174121580757002,)


def test_the_sketch_keeps_at_most_k_hashes_in_order() -> None:
    long_text = "".join(chr(0x4E00 + i) for i in range(400))
    fp = fingerprint(long_text)
    assert len(fp) == SKETCH_SIZE
    assert list(fp) == sorted(fp)
    assert all(0 <= h < 2**63 for h in fp)


def test_empty_text_has_an_empty_fingerprint_that_resembles_nothing() -> None:
    assert fingerprint("") == ()
    assert fingerprint("!!! ，。") == ()
    assert resemblance((), ()) == 0.0
    assert resemblance(fingerprint("工资"), ()) == 0.0


def test_resemblance_is_exact_jaccard_for_short_texts() -> None:
    # bigrams: 工资被 拖欠 → {工资, 资被, 被拖, 拖欠} vs {房租, 租被, 被拖, 拖欠}: 2 of 6
    assert resemblance(fingerprint("工资被拖欠"), fingerprint("房租被拖欠")) == pytest.approx(2 / 6)
    assert resemblance(fingerprint("工资被拖欠"), fingerprint("工资被拖欠")) == 1.0


def test_resemblance_estimate_for_long_texts_is_close() -> None:
    base = "".join(chr(0x4E00 + i) for i in range(600))
    half = base[:300] + "".join(chr(0x5E00 + i) for i in range(300))
    # true Jaccard of the bigram sets: 299 shared of 599 + 299 + 1
    assert resemblance(fingerprint(base), fingerprint(half)) == pytest.approx(299 / 899, abs=0.12)


# --------------------------------------------------------------------------- the tuning pairs


SAME_PROBLEM = [
    # copies to other accounts: other mentions, topics, links, emoji
    (f"@新疆检察 {WAGES} #讨薪#", f"@博州检察 @博乐检察 {WAGES} https://t.cn/x 😭"),
    # punctuation, spaces, full width, Traditional characters
    (WAGES, "我在博乐市工地干活,老板拖欠工资三个月了!!求助!!!"),
    (WAGES, "我在博樂市工地幹活，老闆拖欠工資三個月了，求助"),
    (WAGES, "我在博乐市工地干活 老板拖欠工资 三个月了 求助 😭😭"),
    # re-typed: the same problem in other words
    (WAGES, "老板拖欠我工资三个月了，我在博乐市工地干活，求求你们帮帮我"),
    (
        "我妈妈在博乐市打工受伤，法院判了对方赔钱，但是对方没有财产执行不了，怎么办",
        "我妈妈在博乐市打工受伤了，法院判决对方赔偿，可对方没钱执行不了，怎么办啊",
    ),
]
OTHER_PROBLEM = [
    (WAGES, "我妈妈在博乐市打工受伤，法院判了对方赔钱，但是对方没有财产执行不了"),
    (WAGES, "我在伊宁县的饭店干活，老板拖欠工资两个月了，求助"),
    ("孩子急需一种特殊的药，喀什买不到，求助", "我家附近的河被工厂污染了，求助"),
    ("工资被拖欠", "房租被拖欠"),
    ("米东区有个喝醉的人把我岳父打了，医药费不给", WAGES),
]


@pytest.mark.parametrize(("a", "b"), SAME_PROBLEM)
def test_the_same_problem_reaches_the_threshold(a: str, b: str) -> None:
    assert score(a, b) >= Policy().duplicate_threshold


@pytest.mark.parametrize(("a", "b"), OTHER_PROBLEM)
def test_another_problem_stays_below_it(a: str, b: str) -> None:
    assert score(a, b) < Policy().duplicate_threshold


# --------------------------------------------------------------------------- decide


def appeal(
    key: str,
    text: str = WAGES,
    *,
    at: datetime = T0,
    author: str = "u1",
    platform: str = "weibo",
    case_id: str | None = None,
) -> RecentAppeal:
    return RecentAppeal(
        key=key,
        platform=platform,
        author=author,
        post_id=key,
        event_id=f"e-{key}",
        case_id=case_id or f"c-{key}",
        posted_at=at,
        fingerprint=sketch(text),
    )


def test_a_new_appeal_keeps_its_own_case() -> None:
    decision = decide(appeal("p2"), [], refers_back=False)
    assert (decision.kind, decision.case_id, decision.follow_up_of) == ("new", "c-p2", None)


def test_a_copy_to_another_account_joins_the_first_case() -> None:
    first = appeal("p1", f"@新疆检察 {WAGES}")
    decision = decide(appeal("p2", f"@博乐检察 {WAGES}"), [first], refers_back=False)
    assert decision.kind == "duplicate"
    assert decision.case_id == decision.follow_up_of == "c-p1"
    assert decision.duplicate_of == first
    assert decision.apply(appeal("p2")).duplicate_of == "e-p1"


def test_a_repeat_within_seven_days_joins_after_that_it_is_new() -> None:
    first = appeal("p1")
    within = appeal("p2", at=T0 + timedelta(days=6, hours=23))
    after = appeal("p3", at=T0 + timedelta(days=7, minutes=1))
    assert decide(within, [first], refers_back=False).case_id == "c-p1"
    assert decide(after, [first], refers_back=False).kind == "new"


def test_a_post_processed_before_an_earlier_one_still_joins_it() -> None:
    later = appeal("p2", at=T0 + timedelta(hours=2))
    assert decide(appeal("p1"), [later], refers_back=False).case_id == "c-p2"


def test_another_author_or_platform_never_joins() -> None:
    first = appeal("p1")
    assert decide(appeal("p2", author="u2"), [first], refers_back=False).kind == "new"
    assert decide(appeal("p2", platform="wechat"), [first], refers_back=False).kind == "new"


def test_an_appeal_is_never_a_duplicate_of_itself() -> None:
    # A re-delivery after the first delivery stored the fingerprint.
    assert decide(appeal("p1"), [appeal("p1")], refers_back=False).kind == "new"


def test_the_most_similar_earliest_appeal_wins_whatever_the_order() -> None:
    a = appeal("p1", at=T0)
    b = appeal("p0", at=T0 + timedelta(hours=1))
    c = appeal("p3", "我在伊宁县的饭店干活，老板拖欠工资两个月了，求助")
    new = appeal("p9", at=T0 + timedelta(hours=3))
    assert decide(new, [a, b, c], refers_back=False).case_id == "c-p1"
    assert decide(new, [c, b, a], refers_back=False).case_id == "c-p1"


def test_a_duplicate_of_a_merged_appeal_joins_the_original_case() -> None:
    merged = replace(appeal("p2"), case_id="c-p1", follow_up_of="c-p1", duplicate_of="e-p1")
    decision = decide(appeal("p3"), [merged], refers_back=False)
    assert decision.case_id == "c-p1"
    assert decision.duplicate_of == merged


def test_a_follow_up_attaches_to_the_most_recent_case() -> None:
    older = appeal("p1", "孩子急需一种特殊的药，喀什买不到，求助", at=T0 - timedelta(days=20))
    recent = appeal("p2", at=T0 - timedelta(days=10))
    follow = appeal("p3", "还没人联系我，怎么还没处理")
    decision = decide(follow, [older, recent], refers_back=True)
    assert (decision.kind, decision.case_id, decision.follow_up_of) == (
        "follow_up",
        "c-p2",
        "c-p2",
    )
    assert decision.duplicate_of is None


def test_a_follow_up_naming_its_problem_attaches_to_that_case() -> None:
    older = appeal("p1", "孩子急需一种特殊的药，喀什买不到，求助", at=T0 - timedelta(days=20))
    recent = appeal("p2", at=T0 - timedelta(days=10))
    follow = appeal("p3", "上次反映的孩子急需特殊的药的问题，怎么还没处理")
    assert decide(follow, [older, recent], refers_back=True).case_id == "c-p1"


def test_a_follow_up_without_an_earlier_case_is_new() -> None:
    follow = appeal("p3", "还没人联系我")
    assert decide(follow, [], refers_back=True).kind == "new"
    too_old = appeal("p1", at=T0 - timedelta(days=31))
    assert decide(follow, [too_old], refers_back=True).kind == "new"


def test_a_follow_up_does_not_attach_to_a_later_appeal() -> None:
    later = appeal("p2", at=T0 + timedelta(hours=1))
    assert decide(appeal("p3", "还没人联系我"), [later], refers_back=True).kind == "new"


def test_without_follow_up_words_an_unrelated_appeal_is_new() -> None:
    earlier = appeal("p1", at=T0 - timedelta(days=2))
    decision = decide(appeal("p3", "我家附近的河被工厂污染了"), [earlier], refers_back=False)
    assert decision.kind == "new"


def test_the_policy_is_the_tuning_knob() -> None:
    a, b = appeal("p1", "工资被拖欠"), appeal("p2", "房租被拖欠")
    assert decide(b, [a], refers_back=False).kind == "new"
    assert decide(b, [a], refers_back=False, policy=Policy(duplicate_threshold=0.3)).kind == (
        "duplicate"
    )
