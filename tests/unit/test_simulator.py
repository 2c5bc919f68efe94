"""The platform simulator over ASGI: Weibo's limits and errors, fault injection, reset."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from contracts import ReplyChannel, ReplyTarget
from fengqiao.simulator.server import COMMENT_LIMIT, MESSAGE_LIMIT, Platform, create_app
from services.notifier.adapters.platform import PermanentError, RetryableError, WeiboClient


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        yield client


def comment(text: str = "您好，已收到", **form: str) -> dict[str, str]:
    return {"id": "p1", "comment": text, "access_token": "t", **form}


async def test_a_comment_is_accepted_and_recorded(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    response = await client.post("/2/comments/create.json", data=comment())
    assert response.status_code == 200
    body = response.json()
    assert body["idstr"] == str(body["id"])
    assert body["text"] == "您好，已收到"
    [record] = platform.received
    assert (record["kind"], record["id"], record["text"], record["target"]) == (
        "comment",
        body["idstr"],
        "您好，已收到",
        {"id": "p1"},
    )
    assert (await client.get("/_sim/received")).json() == platform.received


async def test_message_ids_are_distinct(client: httpx.AsyncClient) -> None:
    first = (await client.post("/2/comments/create.json", data=comment())).json()
    second = (await client.post("/2/comments/create.json", data=comment())).json()
    assert first["idstr"] != second["idstr"]


async def test_a_reply_to_a_comment_and_a_private_message(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    reply = await client.post("/2/comments/reply.json", data=comment(cid="c9"))
    message = await client.post(
        "/2/messages/reply.json", data={"uid": "u1", "text": "私信", "access_token": "t"}
    )
    assert (reply.status_code, message.status_code) == (200, 200)
    assert [(r["kind"], r["target"]) for r in platform.received] == [
        ("comment_reply", {"id": "p1", "cid": "c9"}),
        ("private_message", {"uid": "u1"}),
    ]


async def test_a_comment_of_140_characters_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/2/comments/create.json", data=comment("字" * COMMENT_LIMIT))
    assert response.status_code == 200


async def test_a_longer_comment_is_refused_with_20012(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    response = await client.post("/2/comments/create.json", data=comment("字" * 141))
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == 20012
    assert body["request"] == "/2/comments/create.json"
    assert platform.received == []


async def test_a_private_message_may_be_longer_than_a_comment(client: httpx.AsyncClient) -> None:
    form = {"uid": "u1", "access_token": "t"}
    ok = await client.post("/2/messages/reply.json", data={**form, "text": "字" * MESSAGE_LIMIT})
    long = await client.post("/2/messages/reply.json", data={**form, "text": "字" * 301})
    assert ok.status_code == 200
    assert (long.status_code, long.json()["error_code"]) == (400, 20012)


async def test_a_missing_access_token_is_403(client: httpx.AsyncClient, platform: Platform) -> None:
    response = await client.post("/2/comments/create.json", data={"id": "p1", "comment": "x"})
    assert response.status_code == 403
    assert response.json()["error_code"] == 21301
    assert platform.received == []


async def test_a_missing_parameter_is_named(client: httpx.AsyncClient, platform: Platform) -> None:
    response = await client.post("/2/comments/reply.json", data=comment())
    assert response.status_code == 400
    assert response.json()["error_code"] == 10016
    assert "(cid)" in response.json()["error"]
    assert platform.received == []


async def test_injected_faults_answer_n_times_then_recover(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    answer = await client.post("/_sim/faults", json={"fail_next": 2, "status": 503})
    assert answer.json() == {"fail_next": 2, "status": 503}
    statuses = [
        (await client.post("/2/comments/create.json", data=comment())).status_code for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    assert len(platform.received) == 1


async def test_an_injected_fault_carries_a_weibo_error_body(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"fail_next": 1, "status": 429})
    response = await client.post("/2/comments/create.json", data=comment())
    assert response.status_code == 429
    assert response.json()["error_code"] == 10001


async def test_a_fault_status_outside_4xx_5xx_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/_sim/faults", json={"fail_next": 1, "status": 200})
    assert response.status_code == 422


async def test_reset_forgets_everything(client: httpx.AsyncClient, platform: Platform) -> None:
    await client.post("/2/comments/create.json", data=comment())
    await client.post("/_sim/faults", json={"fail_next": 5})
    assert (await client.post("/_sim/reset")).json() == {"status": "reset"}
    assert (await client.get("/_sim/received")).json() == []
    assert platform.faults.fail_next == 0
    assert (await client.post("/2/comments/create.json", data=comment())).status_code == 200


async def test_health(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok", "service": "simulator"}


# ------------------------------------------------------------------ with the notifier's client


async def test_the_notifiers_client_and_the_simulator_agree(platform: Platform) -> None:
    target = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
    client = WeiboClient("http://sim", transport=httpx.ASGITransport(app=create_app(platform)))
    try:
        message_id = await client.send(ReplyChannel.COMMENT, target, "您好", token="t")
        assert platform.received[0]["id"] == message_id
        with pytest.raises(PermanentError, match=r"^20012: "):
            await client.send(ReplyChannel.COMMENT, target, "字" * 141, token="t")
        with pytest.raises(PermanentError, match=r"^21301: "):
            await client.send(ReplyChannel.COMMENT, target, "您好", token="")
        platform.faults.fail_next = 1
        with pytest.raises(RetryableError, match=r"^HTTP 503: system error"):
            await client.send(ReplyChannel.COMMENT, target, "您好", token="t")
        assert len(platform.received) == 1
    finally:
        await client.aclose()
