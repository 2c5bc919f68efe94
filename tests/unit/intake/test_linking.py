"""Linking: which earlier case a post joins, and why (services/intake/linking.py).

A plain bigram Jaccard stands in for the model's content similarity, so these tests do not
depend on a trained model; the decision rules are what they check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fengqiao.services.intake.domain import matched_words, read_text
from fengqiao.services.intake.linking import Policy, RecentAppeal, amounts, cues, decide
from fengqiao.services.intake.similarity import fingerprint

T0 = datetime(2026, 8, 1, 10, tzinfo=UTC)
WAGES = "我在博乐市工地干活，老板拖欠工资三个月了，求助"
MEDICINE = "孩子急需一种特殊的药，喀什买不到，求助"


def jaccard(a: str, b: str) -> float:
    x = {a[i : i + 2] for i in range(len(a) - 1)}
    y = {b[i : i + 2] for i in range(len(b) - 1)}
    return len(x & y) / len(x | y) if x and y else 0.0


def appeal(
    key: str,
    text: str = WAGES,
    *,
    at: datetime = T0,
    author: str = "u1",
    platform: str = "weibo",
    case_id: str | None = None,
    category: str | None = "wage_arrears",
    is_appeal: bool = True,
) -> RecentAppeal:
    words = matched_words(read_text(text).parsed)
    return RecentAppeal(
        key=key,
        platform=platform,
        author=author,
        post_id=key,
        event_id=f"e-{key}",
        case_id=case_id or f"c-{key}",
        posted_at=at,
        fingerprint=fingerprint(words),
        words=words,
        category=category,
        amounts=amounts(words),
        is_appeal=is_appeal,
    )


def link(new: RecentAppeal, earlier: list[RecentAppeal], policy: Policy | None = None) -> str:
    """The case `new` joins (its own when new)."""
    decision = decide(new, earlier, cue=cues(new.words), similarity=jaccard, policy=policy)
    return decision.case_id


def test_a_new_appeal_keeps_its_own_case() -> None:
    decision = decide(appeal("p2"), [], cue=cues(WAGES), similarity=jaccard)
    assert (decision.kind, decision.case_id, decision.follow_up_of) == ("new", "c-p2", None)


def test_a_copy_to_another_account_joins_the_first_case() -> None:
    first = appeal("p1", f"@新疆检察 {WAGES}")
    new = appeal("p2", f"@博乐检察 {WAGES}")
    decision = decide(new, [first], cue=cues(new.words), similarity=jaccard)
    assert decision.kind == "duplicate"
    assert decision.case_id == decision.follow_up_of == "c-p1"
    assert decision.duplicate_of == first
    assert decision.reason is not None and decision.reason.startswith("near copy")
    assert decision.apply(new).duplicate_of == "e-p1"


def test_a_copy_with_a_phone_number_added_is_still_a_near_copy() -> None:
    first = appeal("p1")
    assert link(appeal("p2", WAGES + " 电话13912345678", at=T0 + timedelta(hours=3)), [first]) == (
        "c-p1"
    )


def test_a_copy_after_the_duplicate_window_is_new_unless_it_refers_back() -> None:
    first = appeal("p1")
    later = T0 + timedelta(days=8)
    assert link(appeal("p2", "我们在工地干了好久了，还有别的问题想问", at=later), [first]) == "c-p2"
    assert link(appeal("p3", "还是那个事，第三次发了，还没人管吗", at=later), [first]) == "c-p1"


def test_another_author_or_platform_never_joins() -> None:
    first = appeal("p1")
    assert link(appeal("p2", author="u2"), [first]) == "c-p2"
    assert link(appeal("p2", platform="wechat"), [first]) == "c-p2"


def test_a_post_is_never_linked_to_itself() -> None:
    assert link(appeal("p1"), [appeal("p1")]) == "c-p1"


def test_a_reference_back_joins_the_related_case_among_several() -> None:
    medicine = appeal("p1", MEDICINE, at=T0 - timedelta(days=20), category="urgent_assistance")
    wages = appeal("p2", at=T0 - timedelta(days=10))
    follow = appeal("p3", "上次反映的孩子急需特殊的药，怎么还没处理", category="urgent_assistance")
    assert link(follow, [medicine, wages]) == "c-p1"


def test_a_bare_reference_back_joins_the_latest_case() -> None:
    medicine = appeal("p1", MEDICINE, at=T0 - timedelta(days=20), category="urgent_assistance")
    wages = appeal("p2", at=T0 - timedelta(days=10))
    assert (
        link(appeal("p3", "还没人联系我，第三次发了", category=None), [medicine, wages]) == "c-p2"
    )


def test_an_unclear_reference_back_among_several_cases_is_only_suggested() -> None:
    a = appeal("p1", MEDICINE, at=T0 - timedelta(days=20), category="urgent_assistance")
    b = appeal(
        "p2", "我家附近的河被工厂污染了", at=T0 - timedelta(days=10), category="public_interest"
    )
    follow = appeal(
        "p3", "第三次发了，村口那条路的坑到底有没有人管，天天有车陷进去", category="other_agency"
    )
    decision = decide(follow, [a, b], cue=cues(follow.words), similarity=jaccard)
    assert decision.kind == "new" and decision.case_id == "c-p3"
    assert decision.suggested in {"c-p1", "c-p2"}
    assert decision.suggested_reason


def test_the_author_saying_it_is_another_matter_is_never_linked() -> None:
    wages = appeal("p1", at=T0 - timedelta(days=3))
    other = appeal(
        "p2", "再问个别的事，跟上次工资那个没关系：我家暖气不热", category="other_agency"
    )
    assert link(other, [wages]) == "c-p2"


def test_the_same_amount_of_money_links_other_words() -> None:
    first = appeal("p1", "包工头欠我们三万四的工钱，在博乐", at=T0 - timedelta(days=5))
    assert link(appeal("p2", "工地那34000元到现在也没给"), [first]) == "c-p1"


def test_thanks_after_a_case_join_it_without_being_an_appeal() -> None:
    first = appeal("p1", at=T0 - timedelta(days=12))
    thanks = appeal("p2", "钱拿到了，谢谢你们！", category=None, is_appeal=False)
    decision = decide(thanks, [first], cue=cues(thanks.words), similarity=jaccard)
    assert decision.case_id == "c-p1" and decision.kind == "follow_up"
    assert decision.reason is not None and "thanks" in decision.reason


def test_a_non_appeal_without_thanks_joins_nothing() -> None:
    first = appeal("p1", at=T0 - timedelta(days=2))
    assert link(appeal("p2", "今天天气真好", category=None, is_appeal=False), [first]) == "c-p2"


def test_posts_of_one_case_count_as_one_case() -> None:
    # Two posts of the same case are no rivals: the reference back is clear.
    first = appeal("p1", at=T0 - timedelta(days=4))
    repeat = replace(
        appeal("p2", "老板拖欠工资，博乐工地", at=T0 - timedelta(days=3)), case_id="c-p1"
    )
    assert link(appeal("p3", "第三次发了，还是没人理吗"), [first, repeat]) == "c-p1"


def test_follow_ups_reach_back_sixty_days_and_not_forward() -> None:
    old = appeal("p1", at=T0 - timedelta(days=59))
    too_old = appeal("p0", MEDICINE, at=T0 - timedelta(days=61))
    assert link(appeal("p3", "第三次发了，还没人管"), [old]) == "c-p1"
    assert link(appeal("p3", "第三次发了，还没人管"), [too_old]) == "c-p3"
    later = appeal("p4", at=T0 + timedelta(hours=1))
    assert link(appeal("p3", "第三次发了，还没人管"), [later]) == "c-p3"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("欠我三万四", {34000}),
        ("工钱两万八千块", {28000}),
        ("一共34000元", {34000}),
        ("1.5万元", {15000}),
        ("3万", {30000}),
        ("五十块", set()),  # too small to tell two matters apart
        ("三个月工资", set()),
    ],
)
def test_amounts_of_money(text: str, found: set[int]) -> None:
    assert amounts(text) == found


def test_the_policy_is_the_tuning_knob() -> None:
    a, b = appeal("p1", "工资被拖欠"), appeal("p2", "房租被拖欠", category="legal_consultation")
    assert link(b, [a]) == "c-p2"
    assert link(b, [a], Policy(duplicate_threshold=0.3)) == "c-p1"


def test_the_details_soon_after_a_terse_first_post_join_it() -> None:
    terse = appeal("p1", "孩子在学校被打了", at=T0 - timedelta(hours=3), category="minors")
    details = appeal(
        "p2", "疏勒县 初二 被几个高年级的要钱 不给就打 老师说小孩打闹", category="minors"
    )
    decision = decide(details, [terse], cue=cues(details.words), similarity=jaccard)
    assert (decision.case_id, decision.reason) == ("c-p1", "the details of a terse first post")
    later = replace(details, posted_at=T0 + timedelta(days=3))
    assert link(later, [terse]) == "c-p2"  # days later it is another matter
