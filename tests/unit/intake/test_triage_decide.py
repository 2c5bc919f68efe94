"""Triage's decision rules (services/intake/triage/decide.py) on scores set by hand, and the
model in use on a few plain posts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from fengqiao.services.intake.triage import load_triager
from fengqiao.services.intake.triage.danger import load_danger
from fengqiao.services.intake.triage.decide import Triager
from fengqiao.services.intake.triage.model import Scores

THRESHOLDS = {
    "urgent_low": 0.1,
    "urgent_high": 0.8,
    "appeal": 0.5,
    "appeal_review": 0.15,
    "category_review": 0.5,
}


@dataclass
class _Model:
    version: str = "triage-test"

    @property
    def thresholds(self) -> dict[str, float]:
        return THRESHOLDS


def triager() -> Triager:
    return Triager(_Model(), load_danger())  # type: ignore[arg-type]


def scores(appeal: float = 0.9, urgent: float = 0.0, category: float = 0.9) -> Scores:
    return Scores(appeal, urgent, (("wage_arrears", category), ("minors", 1 - category)))


def decide(text: str = "老板拖欠工资", **kw: Any) -> Any:
    t = triager()
    hits, _ = t.danger.markers(text)
    return t.decide(scores(**kw), hits)


def test_a_sure_urgent_post_needs_nobody() -> None:
    result = decide(urgent=0.95)
    assert (result.urgent, result.possibly_urgent, result.review) == (True, False, ())


def test_a_possibly_urgent_post_is_urgent_and_goes_to_a_person() -> None:
    result = decide(urgent=0.3)
    assert (result.urgent, result.possibly_urgent) == (True, True)
    assert result.review == ("possibly_urgent",)


def test_a_live_danger_word_makes_a_post_possibly_urgent_whatever_the_model() -> None:
    result = decide("他拿着刀在门口", urgent=0.0)
    assert result.urgent and result.possibly_urgent
    assert "danger word 拿着刀 (violence)" in result.reasons


def test_a_quiet_danger_word_is_only_a_reason() -> None:
    result = decide("跳楼价甩卖啦", urgent=0.0, appeal=0.1)
    assert not result.urgent
    assert "quiet 跳楼 (figurative)" in result.reasons


def test_an_urgent_post_is_always_an_appeal() -> None:
    result = decide(urgent=0.95, appeal=0.01)
    assert result.is_appeal and result.category == "wage_arrears"


def test_a_non_appeal_has_the_not_appeal_category() -> None:
    result = decide(appeal=0.1)
    assert (result.is_appeal, result.category, result.review) == (False, "not_appeal", ())


@pytest.mark.parametrize("appeal", [0.4, 0.6])
def test_a_post_near_the_appeal_threshold_opens_its_case_and_goes_to_a_person(
    appeal: float,
) -> None:
    result = decide(appeal=appeal)
    assert result.is_appeal
    assert "uncertain_appeal" in result.review


def test_a_post_well_below_the_threshold_is_no_appeal_and_needs_nobody() -> None:
    result = decide(appeal=0.2)
    assert (result.is_appeal, result.review) == (False, ())


def test_an_unsure_category_goes_to_a_person() -> None:
    assert decide(category=0.45).review == ("uncertain_category",)
    assert decide(category=0.9).review == ()


def test_the_model_in_use_reads_plain_posts() -> None:
    t = load_triager()
    wages = t.triage("我在博乐市的工地干了八个月，老板拖欠我们十几个人的工资，一分不给")
    assert (wages.is_appeal, wages.urgent, wages.category) == (True, False, "wage_arrears")
    praise = t.triage("为新疆检察点赞，你们辛苦了！")
    assert (praise.is_appeal, praise.category) == (False, "not_appeal")
    assert t.triage("我现在站在楼顶上，工钱要不回来，不想活了").urgent
