"""Open311 GeoReport v2 on intake: services, requests, and the read model kept from case.events.

The app is driven through ASGI without its lifespan; the read model's subscriber through
FastStream's in-memory broker, with the in-memory store.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import CASE_EVENTS, CaseEventRecorded, CaseState
from fengqiao.runtime.clock import FakeClock
from fengqiao.runtime.service import Runtime
from fengqiao.services.intake.adapters.recent import InMemoryRecentAppeals
from fengqiao.services.intake.adapters.requests import InMemoryRequestsStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.domain import case_id_for, normalize
from fengqiao.services.intake.open311 import load_services
from fengqiao.services.intake.read_model import PUBLIC_NOTES
from fengqiao.services.intake.settings import IntakeSettings

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
URL = "/open311/v2/requests.json"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KEY = "city-app-key-0123456789"


@pytest.fixture
def sink() -> InMemoryPostSink:
    return InMemoryPostSink()


@pytest.fixture
def store() -> InMemoryRequestsStore:
    return InMemoryRequestsStore()


@pytest.fixture
def built(sink: InMemoryPostSink, store: InMemoryRequestsStore) -> tuple[Runtime, Any]:
    settings = IntakeSettings(open311_api_keys={"city-app": KEY, "other": "other-key-0123456789"})
    # Every store in memory: service tests run before (and without) the real stack.
    return build(
        settings,
        sink=sink,
        clock=FakeClock(NOW),
        requests_store=store,
        recent=InMemoryRecentAppeals(),
    )


@pytest.fixture
async def client(built: tuple[Runtime, Any]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=built[1])
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


def fields(**overrides: Any) -> dict[str, Any]:
    base = {
        "api_key": KEY,
        "service_code": "wage_arrears",
        "lat": "44.9",
        "long": "82.07",
        "description": "博乐市工地拖欠工资三个月，电话13812345678，邮箱 zhang@example.com",
        "email": "zhang@example.com",
        "phone": "13812345678",
        "first_name": "张",
        "last_name": "三",
        "account_id": "acc-1",
    }
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


async def file(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    return await client.post(URL, content=urlencode(fields(**overrides)), headers=FORM)


def problem(response: httpx.Response) -> str:
    [error] = response.json()
    assert error["code"] == response.status_code
    return str(error["description"])


# --------------------------------------------------------------------------- services


async def test_services_are_the_categories_but_not_appeal(client: httpx.AsyncClient) -> None:
    response = await client.get("/open311/v2/services.json")
    assert response.status_code == 200
    services = response.json()
    codes = [s["service_code"] for s in services]
    assert "wage_arrears" in codes and "minors" in codes
    assert "not_appeal" not in codes
    assert len(codes) == 10
    for s in services:
        assert set(s) == {
            "service_code",
            "service_name",
            "description",
            "metadata",
            "type",
            "keywords",
            "group",
        }
        assert s["metadata"] is False and s["type"] == "realtime"


def test_the_services_file_names_only_known_categories() -> None:
    codes = {s.service_code for s in load_services()}
    assert codes == {
        "wage_arrears",
        "judicial_aid",
        "personal_injury",
        "urgent_assistance",
        "complaint_appeal",
        "crime_report",
        "public_interest",
        "legal_consultation",
        "minors",
        "other_agency",
    }


# --------------------------------------------------------------------------- POST requests


async def test_a_form_request_is_stored_then_answered(
    client: httpx.AsyncClient, sink: InMemoryPostSink, store: InMemoryRequestsStore
) -> None:
    response = await file(client)
    assert response.status_code == 201
    [answer] = response.json()
    request_id = answer["service_request_id"]
    assert answer["service_notice"]
    [raw] = sink.posts
    assert (raw.platform, raw.channel, raw.source_id) == ("open311", "open311", request_id)
    assert "api_key" not in raw.payload and KEY not in json.dumps(raw.payload)
    assert raw.payload["client"] == "city-app"
    record = store.requests[request_id]
    assert record.case_id == case_id_for(raw)
    assert "13812345678" not in record.description and "zhang@" not in record.description


async def test_the_normalizer_reads_an_open311_request(
    client: httpx.AsyncClient, sink: InMemoryPostSink, store: InMemoryRequestsStore
) -> None:
    await file(client, address_string="博乐市青得里大街1号")
    [raw] = sink.posts
    appeal = normalize(raw, producer="test")
    assert appeal.case_id == store.requests[raw.source_id].case_id
    assert "138****5678" in appeal.masked_text and "博乐市青得里大街" in appeal.masked_text
    assert appeal.author.id == "city-app:acc-1"
    assert appeal.reply_to.post_id == raw.source_id


async def test_json_is_taken_too(client: httpx.AsyncClient, sink: InMemoryPostSink) -> None:
    body = {**fields(), "lat": 44.9, "long": 82.07}
    response = await client.post(URL, json=body)
    assert response.status_code == 201
    assert sink.posts[0].payload["lat"] == "44.9"


@pytest.mark.parametrize("key", [None, "", "wrong", KEY + "x"])
async def test_a_missing_or_wrong_api_key_is_403(
    client: httpx.AsyncClient, sink: InMemoryPostSink, key: str | None
) -> None:
    response = await file(client, api_key=key)
    assert response.status_code == 403
    assert problem(response) == "api_key missing or invalid"
    assert sink.posts == []


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"service_code": "not_appeal"}, "service_code 'not_appeal' not found"),
        ({"service_code": "potholes"}, "not found"),
        ({"service_code": None}, "service_code: Field required"),
        ({"lat": None, "long": None}, "a location is required"),
        ({"long": None}, "lat and long go together"),
        ({"lat": "91"}, "lat:"),
        ({"lat": "nan"}, "lat:"),
        ({"description": "长" * 4001}, "description:"),
        ({"media_url": "javascript:alert(1)"}, "media_url:"),
    ],
)
async def test_a_bad_request_is_400_in_the_spec_format(
    client: httpx.AsyncClient, sink: InMemoryPostSink, overrides: dict[str, Any], says: str
) -> None:
    response = await file(client, **overrides)
    assert response.status_code == 400
    assert says in problem(response)
    assert sink.posts == []


async def test_an_address_alone_is_a_location(client: httpx.AsyncClient) -> None:
    assert (await file(client, lat=None, long=None, address_id="addr-9")).status_code == 201
    assert (await file(client, lat=None, long=None, address_string="博乐市")).status_code == 201


async def test_a_description_of_4000_characters_is_taken(client: httpx.AsyncClient) -> None:
    assert (await file(client, description="长" * 4000)).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"service_code=x", "text/plain", 415),
        (b"\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"[1, 2]", "application/json", 400),
        (b"{not json", "application/json", 400),
        (b'{"service_code": {"a": 1}}', "application/json", 400),
        (b"service_code=a&service_code=b", "application/x-www-form-urlencoded", 400),
        (b'{"service_code": "wage_arrears", "address_id": "\\ud800"}', "application/json", 400),
    ],
)
async def test_unreadable_bodies_are_refused(
    client: httpx.AsyncClient, body: bytes, content_type: str, status: int
) -> None:
    response = await client.post(URL, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    problem(response)


async def test_a_failing_sink_is_503_with_retry_after(
    client: httpx.AsyncClient, sink: InMemoryPostSink
) -> None:
    sink.fail = True
    response = await file(client)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert problem(response).startswith("cannot store")


# --------------------------------------------------------------------------- GET request


async def test_a_new_request_is_open_and_shows_no_private_data(
    client: httpx.AsyncClient,
) -> None:
    request_id = (await file(client)).json()[0]["service_request_id"]
    response = await client.get(f"/open311/v2/requests/{request_id}.json")
    assert response.status_code == 200
    [shown] = response.json()
    assert shown == {
        "service_request_id": request_id,
        "status": "open",
        "status_notes": None,
        "agency_responsible": None,
        "service_code": "wage_arrears",
        "description": shown["description"],
        "requested_datetime": NOW.isoformat(),
        "updated_datetime": NOW.isoformat(),
        "expected_datetime": None,
    }
    text = response.text
    for private in ("13812345678", "zhang@example.com", "acc-1", KEY):
        assert private not in text
    assert "138****5678" in shown["description"]


@pytest.mark.parametrize("request_id", ["0" * 32, "nope", "g" * 32, "A" * 32, "x" * 300])
async def test_an_unknown_request_is_404(client: httpx.AsyncClient, request_id: str) -> None:
    response = await client.get(f"/open311/v2/requests/{request_id}.json")
    assert response.status_code == 404
    problem(response)


def case_event(
    case_id: str,
    n: int,
    event: str,
    state: CaseState,
    *,
    unit_id: str | None = None,
    detail: str | None = None,
) -> CaseEventRecorded:
    return CaseEventRecorded(
        event_id=f"e{n}-{case_id}",
        occurred_at=NOW + timedelta(minutes=n),
        producer="tracker",
        case_id=case_id,
        event=event,
        state=state,
        unit_id=unit_id,
        caused_by=f"cause{n}",
        detail=detail,
    )


async def test_a_poll_of_case_events_looks_its_cases_up_at_once(
    client: httpx.AsyncClient, built: tuple[Runtime, Any], store: InMemoryRequestsStore
) -> None:
    """Most cases have no Open311 request: a poll's cases are asked for in one lookup, not
    one per event (4.75 lookups an appeal before, bench/e2e.py)."""
    request_id = (await file(client)).json()[0]["service_request_id"]
    case_id = store.requests[request_id].case_id
    asked: list[set[str]] = []
    tracked = store.tracked

    async def counted(case_ids: Any) -> set[str]:
        ids = set(case_ids)
        asked.append(ids)
        return await tracked(ids)

    store.tracked = counted  # type: ignore[method-assign]
    others = [case_event(f"c-other-{n}", 1, "case.opened", CaseState.RECEIVED) for n in range(5)]
    mine = case_event(case_id, 1, "case.opened", CaseState.RECEIVED)
    async with TestKafkaBroker(built[0].broker) as br:
        await br.publish_batch(*others, mine, topic=CASE_EVENTS.name)
    assert asked == [{case_id, *(e.case_id for e in others)}]
    assert [row.case_id for row in store.events.values()] == [case_id]


async def test_case_events_become_status_agency_and_notes(
    client: httpx.AsyncClient, built: tuple[Runtime, Any], store: InMemoryRequestsStore
) -> None:
    request_id = (await file(client)).json()[0]["service_request_id"]
    case_id = store.requests[request_id].case_id
    S = CaseState  # noqa: N806
    events = [
        case_event(case_id, 1, "case.opened", S.RECEIVED, detail="via @新疆检察"),
        case_event(case_id, 2, "case.dispatched", S.DISPATCHED, unit_id="xj", detail="hop 1: r"),
        case_event(case_id, 2, "case.dispatched", S.DISPATCHED, unit_id="bl", detail="hop 2: p"),
        case_event(case_id, 3, "case.resolved", S.RESOLVED, detail="已支付，联系13912345678"),
    ]
    # the deepest hop arrives first; every event is delivered twice
    events[1], events[2] = events[2], events[1]
    events[1] = events[1].model_copy(update={"event_id": "hop1"})
    other = case_event("c-not-open311", 9, "case.closed", S.CLOSED)
    async with TestKafkaBroker(built[0].broker) as br:
        for e in [*events, *events, other]:
            await br.publish(e, CASE_EVENTS.name)
    assert len(store.events) == 4  # once each, and none of the other case
    [shown] = (await client.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert shown["status"] == "open"
    assert shown["agency_responsible"] == "bl"
    assert shown["status_notes"] == "已支付，联系139****5678"
    assert "13912345678" not in json.dumps(shown)
    assert shown["updated_datetime"] == (NOW + timedelta(minutes=3)).isoformat()

    async with TestKafkaBroker(built[0].broker) as br:
        await br.publish(case_event(case_id, 5, "case.closed", S.CLOSED), CASE_EVENTS.name)
    [shown] = (await client.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert shown["status"] == "closed"
    assert shown["agency_responsible"] == "bl"


async def test_a_failed_or_held_reply_shows_a_neutral_note_never_its_error(
    client: httpx.AsyncClient, built: tuple[Runtime, Any], store: InMemoryRequestsStore
) -> None:
    """The issue: the public read "acknowledgment: no access token for @新疆检察" (the tracker
    records a reply that failed with the notifier's error as its detail)."""
    request_id = (await file(client)).json()[0]["service_request_id"]
    case_id = store.requests[request_id].case_id
    S = CaseState  # noqa: N806
    failed = "acknowledgment: not sendable: no access token for @新疆检察"
    held = "acknowledgment: outcome of an earlier attempt unknown; held for an operator"
    url = f"/open311/v2/requests/{request_id}.json"
    async with TestKafkaBroker(built[0].broker) as br:
        await br.publish(case_event(case_id, 1, "case.opened", S.RECEIVED), CASE_EVENTS.name)
        await br.publish(
            case_event(case_id, 2, "reply.failed", S.RECEIVED, detail=failed), CASE_EVENTS.name
        )
        [shown] = (await client.get(url)).json()
        assert shown["status_notes"] == PUBLIC_NOTES["reply.failed"]
        assert "token" not in json.dumps(shown, ensure_ascii=False)
        await br.publish(
            case_event(case_id, 3, "reply.held", S.RECEIVED, detail=held), CASE_EVENTS.name
        )
        [shown] = (await client.get(url)).json()
        assert shown["status_notes"] == PUBLIC_NOTES["reply.held"]
        assert "operator" not in json.dumps(shown, ensure_ascii=False)


async def test_a_request_merged_into_an_earlier_case_follows_that_case(
    client: httpx.AsyncClient,
    built: tuple[Runtime, Any],
    sink: InMemoryPostSink,
    store: InMemoryRequestsStore,
) -> None:
    from fengqiao.contracts import POSTS_RAW

    request_id = (await file(client)).json()[0]["service_request_id"]
    [raw] = sink.posts
    async with TestKafkaBroker(built[0].broker) as br:
        await br.publish(raw, POSTS_RAW.name)  # the normalizer names the request's case
    assert store.mapped[request_id] == case_id_for(raw)  # a new case: the one computed at accept

    # Had it been merged into an earlier case, the normalizer would have said so:
    await store.map_case("0" * 32, "c-earlier")
    await store.add_request(
        store.requests[request_id].__class__(
            request_id="0" * 32,
            case_id="c-accepted",
            service_code="wage_arrears",
            description="d",
            requested_at=NOW,
        )
    )
    async with TestKafkaBroker(built[0].broker) as br:
        await br.publish(
            case_event("c-earlier", 1, "case.dispatched", CaseState.DISPATCHED, unit_id="bl"),
            CASE_EVENTS.name,
        )
    [shown] = (await client.get(f"/open311/v2/requests/{'0' * 32}.json")).json()
    assert shown["agency_responsible"] == "bl"
