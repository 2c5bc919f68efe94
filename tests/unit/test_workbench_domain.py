"""The workbench's decisions without I/O: inbox order and pages, remaining time, CSRF tokens,
login limits."""

from __future__ import annotations

import datetime as dt

from fengqiao.services.workbench import domain
from fengqiao.services.workbench.forms import ACTIONS, FormError

NOW = dt.datetime(2026, 12, 7, 4, 0, tzinfo=dt.UTC)


def case(cid: str, *, hours: float | None, urgency: str = "normal", **more: object) -> dict:
    due = None if hours is None else (NOW + dt.timedelta(hours=hours)).isoformat()
    return {"case_id": cid, "deadline": due, "urgency": urgency, "overdue": False, **more}


def test_overdue_then_urgent_then_nearest_deadline() -> None:
    cases = [
        case("later", hours=50),
        case("none", hours=None),
        case("soon", hours=2),
        case("urgent", hours=70, urgency="urgent"),
        case("past", hours=-1),
        case("flagged", hours=30, overdue=True),
    ]
    page = domain.inbox(cases, domain.Filters(), NOW)
    assert [c["case_id"] for c in page.cases] == [
        "past", "flagged", "urgent", "soon", "later", "none",
    ]  # fmt: skip


def test_filters_and_pages() -> None:
    cases = [case(f"c{i:02}", hours=i, category="wages" if i % 2 else "land") for i in range(45)]
    filters = domain.Filters.of({"category": "wages", "page": "2"})
    page = domain.inbox(cases, filters, NOW)
    assert (page.total, page.pages, page.number) == (22, 2, 2)
    assert [c["case_id"] for c in page.cases] == ["c41", "c43"]
    assert domain.Filters.of({"page": "x"}).page == 1
    assert domain.inbox(cases, domain.Filters(page=99), NOW).number == 3


def test_the_date_filter_keeps_the_days_received_on_the_offices_clock() -> None:
    received = {  # UTC; Beijing is 8 hours ahead
        "early": "2026-12-01T15:59:00+00:00",  # 12-01 23:59 in Beijing
        "late": "2026-12-01T16:00:00+00:00",  # 12-02 00:00 in Beijing
        "later": "2026-12-05T03:00:00+00:00",
    }
    cases = [{**case(k, hours=1), "received_at": at} for k, at in received.items()]
    cases.append(case("no-date", hours=1))

    def kept(**query: str) -> list[str]:
        page = domain.inbox(cases, domain.Filters.of(query), NOW)
        return sorted(c["case_id"] for c in page.cases)

    assert kept(since="2026-12-02") == ["late", "later"]
    assert kept(until="2026-12-01") == ["early"]
    assert kept(since="2026-12-02", until="2026-12-04") == ["late"]
    assert kept(since="not a day") == ["early", "late", "later", "no-date"]  # ignored


def test_remaining_time_is_described_both_ways() -> None:
    assert domain.describe_hours(27.5, "zh") == "还剩 1 天 3 小时"
    assert domain.describe_hours(-2.25, "zh") == "超期 2 小时 15 分"
    assert domain.describe_hours(-30, "en") == "1 d 6 h overdue"


def test_the_csrf_token_belongs_to_one_session_and_one_key() -> None:
    token = domain.csrf_token(b"k", "session-a")
    assert domain.csrf_ok(b"k", "session-a", token)
    assert not domain.csrf_ok(b"k", "session-b", token)
    assert not domain.csrf_ok(b"other", "session-a", token)
    assert not domain.csrf_ok(b"k", "session-a", "")


def test_failed_logins_wait_per_user_and_per_address_then_expire() -> None:
    now = [0.0]
    limiter = domain.LoginLimiter(per_user=2, per_address=3, window=60, clock=lambda: now[0])
    limiter.failed("a", "10.0.0.1")
    assert limiter.retry_after("a", "10.0.0.1") == 0
    limiter.failed("a", "10.0.0.1")
    assert limiter.retry_after("a", "10.0.0.2") == 60  # the username, from anywhere
    limiter.failed("b", "10.0.0.1")
    assert limiter.retry_after("c", "10.0.0.1") == 60  # the address, for any name
    assert limiter.retry_after("c", "10.0.0.9") == 0
    now[0] = 61
    assert limiter.retry_after("a", "10.0.0.1") == 0
    limiter.failed("d", "x")
    limiter.succeeded("d")
    assert limiter.failures.get("user:d") is None


def test_action_forms_make_the_unit_api_bodies() -> None:
    assert ACTIONS["accept"].body({}) == {}
    resolved = ACTIONS["resolve"].body({"outcome": " 已发放 ", "amount_recovered": "12,000"})
    assert resolved == {"outcome": "已发放", "amount_recovered": 12000.0}
    asked = ACTIONS["extension"].body({"requested_deadline": "2026-12-20T17:00"})
    assert asked == {"requested_deadline": "2026-12-20T17:00:00+08:00"}
    for name, form in (("progress", {}), ("resolve", {"outcome": "x", "amount_recovered": "-1"}),
                       ("extension", {"requested_deadline": "soon"})):  # fmt: skip
        try:
            ACTIONS[name].body(form)
        except FormError:
            continue
        raise AssertionError(f"{name} took {form}")


def test_the_inbox_shows_the_work_to_do_unless_asked_for_all() -> None:
    cases = [
        case("done", hours=1, state="resolved"),
        case("closed", hours=-5, state="closed"),
        case("todo", hours=9, state="accepted"),
    ]
    todo = domain.inbox(cases, domain.Filters.of({}), NOW)
    assert [c["case_id"] for c in todo.cases] == ["todo"]
    every = domain.Filters.of({"state": "all"})
    assert every.asked_state is None
    assert [c["case_id"] for c in domain.inbox(cases, every, NOW).cases] == [
        "todo", "done", "closed",
    ]  # fmt: skip
    assert domain.Filters.of({"state": "resolved"}).asked_state == "resolved"


def test_every_code_a_person_reads_has_a_name_in_both_languages() -> None:
    """A state, time-limit class, category or return reason added later without a name here
    would show its raw code; this names the one that is missing."""
    from fengqiao.contracts import CATEGORIES, CaseState, ReplyPurpose, Urgency
    from fengqiao.services.router.returns import load_return_rules
    from fengqiao.services.workbench import codes

    wanted = {
        "state": [s.value for s in CaseState],
        "urgency": [u.value for u in Urgency],
        "return_reason": list(load_return_rules().reasons),
        "category": list(CATEGORIES),
    }
    for kind, values in wanted.items():
        for value in values:
            for lang in ("zh", "en"):
                assert codes.name(kind, value, lang) != value or lang == "en", (kind, value)
    # Every event the tracker writes on a timeline (read from its source: "case.<what>").
    import re
    from pathlib import Path

    import fengqiao.services.tracker as tracker

    source = "".join(f.read_text() for f in Path(tracker.__file__).parent.rglob("*.py"))
    events = set(re.findall(r'"(case\.[a-z_]+)"', source)) - {"case.id"}
    assert len(events) > 20
    wanted["event"] = sorted(events)
    wanted["purpose"] = [p.value for p in ReplyPurpose]
    for kind, values in wanted.items():
        for value in values:
            assert codes.name(kind, value, "zh") != value, (kind, value)
    assert tuple(load_return_rules().reasons) == codes.RETURN_REASONS
    assert codes.name("state", None) == "—" and codes.name("state", "new_one") == "new_one"


async def test_units_are_named_from_the_router_and_by_id_while_it_cannot_say() -> None:
    import httpx

    from fengqiao.services.workbench.client import Api, UnitNames

    calls: list[str] = []

    def directory(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["cookie"])
        if len(calls) == 1:
            return httpx.Response(503, json={"detail": "starting"})
        return httpx.Response(200, json=[{"id": "652701", "name": "博乐市人民检察院"}])

    router = Api("http://router", 5, httpx.MockTransport(directory))
    names = UnitNames(ttl=600)
    assert names.due()
    await names.refresh(router, "s1")
    assert names("652701") == "652701" and names(None) == "—"  # not yet: the id
    assert not names.due()  # tried again in half a minute, not at every page
    names.fetched -= 31
    assert names.due()
    await names.refresh(router, "s2")
    assert names("652701") == "博乐市人民检察院" and names("x") == "x"
    assert calls == ["fengqiao_session=s1", "fengqiao_session=s2"]
    await router.aclose()


def test_both_languages_have_every_word() -> None:
    from fengqiao.services.workbench.labels import LABELS

    assert set(LABELS["zh"]) == set(LABELS["en"]), set(LABELS["zh"]) ^ set(LABELS["en"])


def test_working_time_left_is_said_in_working_hours() -> None:
    assert domain.describe_working_hours(12.5, "zh") == "还剩 12.5 个工作小时"
    assert domain.describe_working_hours(-3.0, "zh") == "超期 3 个工作小时"
    assert domain.describe_working_hours(0.25, "en") == "0.2 working hours left"
