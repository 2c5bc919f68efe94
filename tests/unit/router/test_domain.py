"""Routing on the real directory and place lexicon: where a matter is, the hops down the tiers,
and what the router reads of intake's triage (it never decides category or urgency itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fengqiao.contracts import (
    AppealNormalized,
    Author,
    DispatchMode,
    ReplyTarget,
    Triage,
    Urgency,
    derived_event_id,
)
from fengqiao.services.router.directory import Directory, load_directory
from fengqiao.services.router.domain import Policy, Router
from fengqiao.services.router.places import PlaceIndex

AT = datetime(2026, 8, 1, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory()


@pytest.fixture(scope="module")
def parts(directory: Directory) -> dict[str, Any]:
    return {"directory": directory, "places": PlaceIndex(directory)}


@pytest.fixture(scope="module")
def router(parts: dict[str, Any]) -> Router:
    return Router(**parts)


def make_router(parts: dict[str, Any], policy: Policy = "chain", **kw: Any) -> Router:
    return Router(**parts, policy=policy, **kw)


def appeal(
    text: str,
    *,
    account: str = "@新疆检察",
    residence: str | None = None,
    pii: tuple[str, ...] = (),
    event_id: str = "appeal-1",
    triage: Triage | None = None,
    is_appeal: bool = True,
) -> AppealNormalized:
    return AppealNormalized(
        event_id=event_id,
        occurred_at=AT,
        producer="intake",
        case_id="c-1",
        post_event_id="raw-1",
        platform="weibo",
        channel="webhook",
        account=account,
        author=Author(id="u1", stated_residence=residence),
        posted_at=AT,
        original_text=text,
        text=text,
        masked_text=text,
        pii_kinds=list(pii),
        lang="zh",
        is_appeal=is_appeal,
        reply_to=ReplyTarget(platform="weibo", account=account, user_id="u1", post_id="p1"),
        triage=triage,
    )


def triaged(category: str, *, urgent: bool = False, review: tuple[str, ...] = ()) -> Triage:
    return Triage(
        category=category,
        urgent=urgent,
        possibly_urgent="possibly_urgent" in review,
        appeal_confidence=0.99,
        urgent_confidence=0.9 if urgent else 0.01,
        category_confidence=0.8,
        review=list(review),
        reasons=[f"category {category} 0.80"],
        model="triage-test",
    )


# --------------------------------------------------------------------------- locate


def test_a_named_county_is_located_with_its_evidence(router: Router) -> None:
    where = router.locate(appeal("博乐市的工地拖欠工资"))
    assert where.unit_id == "652701"
    assert where.confidence == 1.0
    assert [(e.kind, e.value, e.unit_id) for e in where.evidence] == [
        ("text_place", "博乐市", "652701")
    ]


def test_the_more_specific_place_wins(router: Router) -> None:
    assert router.locate(appeal("孩子急需特种药，喀什买不到，伽师县还有")).unit_id == "653129"


def test_among_equally_specific_places_the_last_named_wins(router: Router) -> None:
    assert router.locate(appeal("我在博乐市，工地在伽师县")).unit_id == "653129"


@pytest.mark.parametrize(
    "text",
    [
        "从伽师县来的，在乌鲁木齐打工被拖欠工资",
        "我是伽师县人，在乌鲁木齐打工被拖欠工资",
        "老家在伽师县，现在乌鲁木齐打工被拖欠工资",
        "老家伽师县，现在乌鲁木齐打工被拖欠工资",
        "户籍在伽师县，在乌鲁木齐打工被拖欠工资",
        "来自伽师县，在乌鲁木齐打工被拖欠工资",
    ],
)
def test_where_someone_comes_from_does_not_win(router: Router, text: str) -> None:
    where = router.locate(appeal(text))
    assert where.unit_id == "650100"
    # The origin is listed, for the record, but weighs nothing.
    assert {(e.kind, e.weight) for e in where.evidence if e.unit_id == "653129"} == {
        ("text_origin", 0.0)
    }


def test_an_origin_alone_falls_back_to_the_account(router: Router) -> None:
    where = router.locate(appeal("从和田来的，工资被拖欠了", account="@博乐检察"))
    assert where.unit_id == "652701"
    assert [e.kind for e in where.evidence] == ["text_origin", "account"]


def test_the_account_is_the_evidence_when_the_text_names_no_place(router: Router) -> None:
    where = router.locate(appeal("工资被拖欠三个月了，求助", account="@博乐检察"))
    assert where.unit_id == "652701"
    assert where.confidence == 0.6
    assert [(e.kind, e.value, e.unit_id) for e in where.evidence] == [
        ("account", "@博乐检察", "652701")
    ]


def test_the_region_account_is_no_evidence(router: Router) -> None:
    assert router.locate(appeal("工资被拖欠了")).unit_id == "xj"


@pytest.mark.parametrize("text", ["@新疆检察 工资被拖欠", "@伽师检察 @博州检察 帮帮我"])
def test_mentions_are_accounts_not_places(router: Router, text: str) -> None:
    where = router.locate(appeal(text))
    assert where.unit_id == "xj"
    assert [e.kind for e in where.evidence] == ["fallback"]


def test_the_stated_residence_is_the_last_evidence(router: Router) -> None:
    where = router.locate(appeal("工资被拖欠了", residence="伊宁县"))
    assert (where.unit_id, where.confidence) == ("654021", 0.4)
    assert where.evidence[0].kind == "residence"


def test_a_place_in_the_text_beats_account_and_residence(router: Router) -> None:
    where = router.locate(appeal("伽师县拖欠工资", account="@博乐检察", residence="伊宁县"))
    assert where.unit_id == "653129"


def test_no_evidence_leaves_the_case_with_the_region(router: Router) -> None:
    where = router.locate(appeal("工资被拖欠了"))
    assert (where.unit_id, where.confidence) == ("xj", 0.1)
    assert [(e.kind, e.unit_id) for e in where.evidence] == [("fallback", "xj")]


# --------------------------------------------------------------------------- dispatch


def test_the_chain_policy_gives_one_order_per_hop(router: Router) -> None:
    post = appeal("博乐市的工地拖欠工资", triage=triaged("wage_arrears"))
    orders = router.dispatch(post, producer="router")
    assert [(o.hop, o.from_unit, o.to_unit, o.to_tier, o.final) for o in orders] == [
        (1, "xj", "652700", "prefecture", False),
        (2, "652700", "652701", "county", True),
    ]
    assert [o.to_handle for o in orders] == ["@博州检察", "@博乐检察"]
    for order in orders:
        assert order.chain == ["xj", "652700", "652701"]
        assert order.lead_unit == "652701"
        assert order.cc_units == []
        assert order.case_id == "c-1"
        assert order.occurred_at == AT
        assert order.producer == "router"
        assert order.mode is DispatchMode.PUBLIC_MENTION
        assert order.category == "wage_arrears"
        assert order.urgency is Urgency.GENERAL
        assert order.confidence == 1.0
        assert [(e.kind, e.value) for e in order.evidence] == [
            ("text_place", "博乐市"),
            ("triage", "category wage_arrears 0.80"),
        ]


def test_a_branch_under_a_prefecture_adds_a_hop(router: Router) -> None:
    orders = router.dispatch(appeal("塔城市拖欠工资"), producer="router")
    assert [(o.from_unit, o.to_unit) for o in orders] == [
        ("xj", "654000"),
        ("654000", "654200"),
        ("654200", "654201"),
    ]
    assert [o.final for o in orders] == [False, False, True]


def test_order_ids_are_derived_from_the_appeal_and_the_hop(router: Router) -> None:
    orders = router.dispatch(appeal("博乐市拖欠工资"), producer="router")
    assert [o.event_id for o in orders] == [
        derived_event_id("dispatch", "appeal-1", "1"),
        derived_event_id("dispatch", "appeal-1", "2"),
    ]


def test_dispatching_the_same_appeal_again_repeats_the_same_orders(router: Router) -> None:
    first = router.dispatch(appeal("博乐市拖欠工资"), producer="router")
    again = router.dispatch(appeal("博乐市拖欠工资"), producer="router")
    assert first == again


def test_another_appeal_gets_other_order_ids(router: Router) -> None:
    first = router.dispatch(appeal("博乐市拖欠工资"), producer="router")
    other = router.dispatch(appeal("博乐市拖欠工资", event_id="appeal-2"), producer="router")
    assert not {o.event_id for o in first} & {o.event_id for o in other}


def test_the_direct_policy_orders_the_county_at_once_copying_the_prefecture(
    parts: dict[str, Any],
) -> None:
    [order] = make_router(parts, "direct").dispatch(appeal("博乐市拖欠工资"), producer="router")
    assert (order.hop, order.from_unit, order.to_unit, order.to_tier) == (
        1,
        "xj",
        "652701",
        "county",
    )
    assert order.final
    assert order.cc_units == ["652700"]
    assert order.chain == ["xj", "652700", "652701"]
    assert order.event_id == derived_event_id("dispatch", "appeal-1", "1")


def test_the_direct_policy_copies_every_unit_in_between(parts: dict[str, Any]) -> None:
    [order] = make_router(parts, "direct").dispatch(appeal("塔城市拖欠工资"), producer="router")
    assert (order.from_unit, order.to_unit, order.cc_units) == (
        "xj",
        "654201",
        ["654000", "654200"],
    )


@pytest.mark.parametrize("policy", ["chain", "direct"])
def test_with_no_place_the_region_keeps_the_case(parts: dict[str, Any], policy: Policy) -> None:
    [order] = make_router(parts, policy).dispatch(appeal("工资被拖欠了"), producer="router")
    assert (order.hop, order.from_unit, order.to_unit, order.to_tier) == (1, "xj", "xj", "region")
    assert order.final
    assert order.chain == ["xj"]
    assert order.lead_unit == "xj"
    assert order.cc_units == []
    assert order.to_handle == "@新疆检察"


def test_the_account_leads_to_its_unit_when_no_place_is_named(router: Router) -> None:
    orders = router.dispatch(appeal("工资被拖欠了", account="@博乐检察"), producer="router")
    assert orders[-1].to_unit == "652701"
    assert orders[-1].confidence == 0.6


def test_an_appeal_with_private_data_is_dispatched_by_private_message(router: Router) -> None:
    orders = router.dispatch(appeal("博乐市拖欠工资", pii=("phone",)), producer="router")
    assert {o.mode for o in orders} == {DispatchMode.PRIVATE_MESSAGE}


def test_the_default_mode_is_a_setting(parts: dict[str, Any]) -> None:
    quiet = make_router(parts, mode=DispatchMode.PRIVATE_MESSAGE)
    orders = quiet.dispatch(appeal("博乐市拖欠工资"), producer="router")
    assert {o.mode for o in orders} == {DispatchMode.PRIVATE_MESSAGE}


def test_triage_decides_category_and_urgency_of_every_order(router: Router) -> None:
    urgent = appeal("孩子急需特种药，伽师县还有", triage=triaged("urgent_assistance", urgent=True))
    orders = router.dispatch(urgent, producer="router")
    assert {o.urgency for o in orders} == {Urgency.URGENT}
    assert {o.category for o in orders} == {"urgent_assistance"}
    assert ("triage", "category urgent_assistance 0.80") in {
        (e.kind, e.value) for e in orders[0].evidence
    }


def test_an_appeal_without_triage_gets_the_default_category_and_a_person(router: Router) -> None:
    decision = router.decide(appeal("伽师县拖欠工资"))
    assert (decision.what.category, decision.what.urgent) == ("legal_consultation", False)
    assert decision.review == ("no_triage",)


def test_triage_review_reasons_go_to_the_queue(router: Router) -> None:
    decision = router.decide(
        appeal("伽师县拖欠工资", triage=triaged("wage_arrears", review=("uncertain_category",)))
    )
    assert decision.review == ("uncertain_category",)
    assert decision.opens_at == decision.chain[-1] == "653129"


def test_an_unsure_place_opens_the_case_at_its_prefecture(router: Router) -> None:
    post = appeal("拖欠工资", residence="伽师县", triage=triaged("wage_arrears"))
    decision = router.decide(post)
    assert decision.where.confidence < 0.5 and decision.chain[-1] == "653129"
    assert decision.opens_at == "653100" and "uncertain_place" in decision.review
    orders = router.dispatch(post, producer="router", decision=decision)
    assert orders[-1].to_unit == "653100" and orders[-1].final


def test_an_urgent_post_with_no_place_goes_to_a_person(router: Router) -> None:
    decision = router.decide(appeal("快来人", triage=triaged("urgent_assistance", urgent=True)))
    assert decision.opens_at == "xj" and "no_place" in decision.review


# --------------------------------------------------------------------------- geo and refinement


@pytest.fixture(scope="module")
def geo_router(parts: dict[str, Any]) -> Router:
    from fengqiao.services.router.geo import load_seats

    return Router(**parts, seats=load_seats())


def with_geo(text: str, lat: float, lon: float, **kw: Any) -> AppealNormalized:
    from fengqiao.contracts import GeoPoint

    return appeal(text, **kw).model_copy(update={"geo": GeoPoint(lat=lat, lon=lon)})


def test_a_geo_point_is_evidence_when_the_text_names_no_place(geo_router: Router) -> None:
    where = geo_router.locate(with_geo("老板拖欠工资", 41.75, 86.17))
    assert where.unit_id == "652801"
    assert [e.kind for e in where.evidence] == ["geo"]
    assert where.confidence < 0.7


def test_a_place_in_the_text_beats_a_geo_point(geo_router: Router) -> None:
    assert geo_router.locate(with_geo("伽师县拖欠工资", 41.75, 86.17)).unit_id == "653129"


def test_a_clue_inside_a_named_prefecture_refines_it(geo_router: Router) -> None:
    assert geo_router.locate(appeal("在喀什打工被欠薪", account="@伽师检察")).unit_id == "653129"
    assert geo_router.locate(with_geo("在伊宁被欠薪", 43.98, 81.53)).unit_id == "654021"


def test_a_clue_outside_the_named_prefecture_does_not(geo_router: Router) -> None:
    assert geo_router.locate(appeal("在喀什打工被欠薪", account="@博乐检察")).unit_id == "653100"


def test_a_geo_point_inside_the_accounts_prefecture_refines_it(geo_router: Router) -> None:
    where = geo_router.locate(with_geo("老板拖欠工资", 44.89, 82.08, account="@博州检察"))
    assert where.unit_id == "652701"


def test_the_region_named_in_the_text_decides_nothing(router: Router) -> None:
    assert router.locate(appeal("在新疆打工被欠薪", account="@博乐检察")).unit_id == "652701"


def test_intake_decides_appeal_or_not(router: Router) -> None:
    assert not router.decide(appeal("为检察官点赞，辛苦了", is_appeal=False)).is_appeal
    assert router.decide(appeal("谢谢你们，快来人，救救我")).is_appeal
