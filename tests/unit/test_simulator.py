"""The platform simulator over ASGI: Weibo's limits and errors, fault injection, reset."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fengqiao.contracts import ReplyChannel, ReplyTarget
from fengqiao.services.notifier.adapters.platform import PermanentError, RetryableError, WeiboClient
from fengqiao.simulator.platform import COMMENT_LIMIT, MESSAGE_LIMIT, CitizenPost, Platform, Rules
from fengqiao.simulator.server import create_app


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
    await client.post("/2/comments/create.json", data=comment("第二条"))
    assert [r["text"] for r in (await client.get("/_sim/received?since=1")).json()] == ["第二条"]
    assert (await client.get("/_sim/received?since=2")).json() == []


async def test_a_form_is_read_url_encoded_or_multipart(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    encoded = await client.post("/2/comments/create.json", data=comment("a+b&c=d 100%"))
    multipart = await client.post(
        "/2/comments/create.json", data=comment("多部分"), files={"pic": ("a.txt", b"x")}
    )
    assert (encoded.status_code, multipart.status_code) == (200, 200)
    assert [r["text"] for r in platform.received] == ["a+b&c=d 100%", "多部分"]
    blank = await client.post(
        "/2/comments/create.json",
        content=b"id=p1&comment=&access_token=t",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert blank.json()["error_code"] == 10016


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
    assert answer.json()["fail_next"] == 2 and answer.json()["status"] == 503
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


# ------------------------------------------------------------------ the platform's rules


def message(text: str = "私信", uid: str = "1000000001", token: str = "t") -> dict[str, str]:
    return {"uid": uid, "text": text, "access_token": token}


async def test_a_fault_after_accept_stores_the_post_and_answers_an_error(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await client.post("/_sim/faults", json={"fail_next": 1, "status": 500, "after_accept": True})
    response = await client.post("/2/comments/create.json", data=comment())
    assert response.status_code == 500
    assert len(platform.received) == 1


async def test_a_delayed_answer_comes_after_the_post_is_stored(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await client.post("/_sim/faults", json={"delay_next": 1, "delay_seconds": 0.3})
    task = asyncio.create_task(client.post("/2/comments/create.json", data=comment()))
    await asyncio.sleep(0.1)
    assert len(platform.received) == 1 and not task.done()
    started = time.monotonic()
    assert (await task).status_code == 200
    assert time.monotonic() - started > 0.1


async def test_beyond_the_rate_limit_posts_are_answered_429_with_retry_after(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    rules = await client.post("/_sim/rules", json={"posts_per_hour": 2})
    assert rules.json()["posts_per_hour"] == 2
    statuses = [
        (await client.post("/2/comments/create.json", data=comment())).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    refused = await client.post("/2/comments/create.json", data=comment())
    assert refused.json()["error_code"] == 10023
    assert 3590 <= int(refused.headers["Retry-After"]) <= 3600
    assert len(platform.received) == 2
    # per access token
    other = await client.post("/2/comments/create.json", data=comment(access_token="t2"))
    assert other.status_code == 200


async def test_the_rate_window_slides(platform: Platform) -> None:
    platform.rules = Rules(posts_per_hour=1, window_seconds=10)
    now = datetime(2026, 8, 1, tzinfo=UTC)
    assert platform.throttled("t", now) is None
    assert platform.throttled("t", now + timedelta(seconds=4)) == pytest.approx(6)
    assert platform.throttled("t", now + timedelta(seconds=10)) is None


async def test_a_shared_status_needs_a_safe_link_and_no_topic(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    def share(text: str) -> dict[str, str]:
        return {"status": text, "access_token": "t"}

    ok = await client.post(
        "/2/statuses/share.json", data=share("已办结 https://fengqiao.example/c/1")
    )
    assert ok.status_code == 200
    topic = await client.post(
        "/2/statuses/share.json", data=share("#新疆检察政在做# https://fengqiao.example/c/1")
    )
    assert (topic.status_code, topic.json()["error_code"]) == (400, 20020)
    elsewhere = await client.post("/2/statuses/share.json", data=share("看 https://evil.example/"))
    assert (elsewhere.status_code, elsewhere.json()["error_code"]) == (400, 20021)
    long = await client.post(
        "/2/statuses/share.json", data=share("字" * 120 + " https://fengqiao.example/c/1")
    )
    assert long.json()["error_code"] == 20012
    assert [r["kind"] for r in platform.received] == ["status"]


async def test_private_messages_without_windows_rule_go_anywhere(client: httpx.AsyncClient) -> None:
    assert (await client.post("/2/messages/reply.json", data=message())).status_code == 200


async def test_a_private_message_within_48_hours_of_the_citizens_message(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    await client.post("/_sim/rules", json={"message_windows": True})
    await client.post("/_sim/accounts", json={"access_token": "t", "handle": "@新疆检察"})
    never = await client.post("/2/messages/reply.json", data=message())
    assert never.json()["error_code"] == 20110
    assert "has not written to the account within 48 hours" in never.json()["error"]
    old = datetime.now(UTC) - timedelta(hours=49)
    platform.write(CitizenPost(kind="message", text="在吗", to="@新疆检察", created_at=old))
    assert (await client.post("/2/messages/reply.json", data=message())).status_code == 400
    platform.write(CitizenPost(kind="message", text="在吗", to="@博州检察"))  # another account
    assert (await client.post("/2/messages/reply.json", data=message())).status_code == 400
    await client.post("/_sim/posts", json={"kind": "message", "text": "在吗", "to": "@新疆检察"})
    statuses = [
        (await client.post("/2/messages/reply.json", data=message())).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]  # unlimited within the window


async def test_one_private_message_within_48_hours_of_an_at_mention(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/_sim/rules", json={"message_windows": True})
    await client.post("/_sim/posts", json={"kind": "status", "text": "@新疆检察 求助"})
    first = await client.post("/2/messages/reply.json", data=message())
    second = await client.post("/2/messages/reply.json", data=message())
    assert first.status_code == 200
    assert second.json()["error_code"] == 20110
    assert "only one reply within 48 hours after an @-mention" in second.json()["error"]
    # another user is another window
    await client.post("/_sim/posts", json={"text": "@新疆检察 求助", "user_id": "2000000002"})
    assert (
        await client.post("/2/messages/reply.json", data=message(uid="2000000002"))
    ).status_code == 200
    # a new mention opens a new single reply
    await client.post("/_sim/posts", json={"kind": "comment", "text": "@新疆检察 还在等"})
    assert (await client.post("/2/messages/reply.json", data=message())).status_code == 200


async def test_what_an_account_posted_is_listed_newest_first(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/_sim/accounts", json={"access_token": "t", "handle": "@新疆检察"})
    first = (await client.post("/2/comments/create.json", data=comment("一"))).json()
    second = (await client.post("/2/comments/reply.json", data=comment("二", cid="c9"))).json()
    await client.post("/2/comments/create.json", data=comment("别人的", access_token="t2"))
    await client.post("/2/messages/reply.json", data=message())
    shared = await client.post(
        "/2/statuses/share.json", data={"status": "https://fengqiao.example/", "access_token": "t"}
    )
    listed = (await client.get("/2/comments/by_me.json", params={"access_token": "t"})).json()
    assert listed["total_number"] == 2
    assert [c["idstr"] for c in listed["comments"]] == [second["idstr"], first["idstr"]]
    assert listed["comments"][0]["status"]["idstr"] == "p1"
    assert listed["comments"][0]["reply_comment"] == {"idstr": "c9"}
    assert "reply_comment" not in listed["comments"][1]
    one = await client.get("/2/comments/by_me.json", params={"access_token": "t", "count": 1})
    assert len(one.json()["comments"]) == 1
    timeline = (
        await client.get("/2/statuses/user_timeline.json", params={"access_token": "t"})
    ).json()
    assert [s["idstr"] for s in timeline["statuses"]] == [shared.json()["idstr"]]
    assert (await client.get("/2/comments/by_me.json")).status_code == 403
    bad = await client.get("/2/comments/by_me.json", params={"access_token": "t", "count": "x"})
    assert bad.status_code == 400


async def test_the_notifiers_client_reconciles_against_the_simulator(platform: Platform) -> None:
    target = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="123")
    client = WeiboClient("http://sim", transport=httpx.ASGITransport(app=create_app(platform)))
    try:
        platform.faults.fail_next, platform.faults.after_accept = 1, True
        platform.faults.status = 502
        with pytest.raises(RetryableError) as caught:
            await client.send(ReplyChannel.COMMENT, target, "您好", token="t")
        assert caught.value.maybe_delivered
        found = await client.find_posted(ReplyChannel.COMMENT, target, "您好", token="t")
        assert found == platform.received[0]["id"]
        other = target.model_copy(update={"post_id": "456"})
        assert await client.find_posted(ReplyChannel.COMMENT, other, "您好", token="t") is None
    finally:
        await client.aclose()


async def test_a_posts_comments_are_shown_newest_first_page_by_page(
    client: httpx.AsyncClient,
) -> None:
    """comments/show as Weibo answers it: everyone's comments on one post (the account's
    replies and comments on comments, and citizens'), newest first, by count and max_id."""
    await client.post("/_sim/accounts", json={"access_token": "t", "handle": "@新疆检察"})
    citizen = (
        await client.post(
            "/_sim/posts", json={"kind": "comment", "text": "谢谢", "status_id": "1234"}
        )
    ).json()
    first = (await client.post("/2/comments/create.json", data=comment("一", id="1234"))).json()
    second = (
        await client.post("/2/comments/reply.json", data=comment("二", id="1234", cid="c9"))
    ).json()
    await client.post("/2/comments/create.json", data=comment("别处", id="p2"))
    shown = (
        await client.get("/2/comments/show.json", params={"access_token": "t", "id": "1234"})
    ).json()
    assert [c["idstr"] for c in shown["comments"]] == [
        second["idstr"],
        first["idstr"],
        citizen["idstr"],
    ]
    assert shown["total_number"] == 3
    newest = shown["comments"][0]
    assert newest["reply_comment"] == {"idstr": "c9"} and newest["status"]["idstr"] == "1234"
    assert newest["created_at"].endswith(str(datetime.now(UTC).year))  # Weibo's time format
    params = {"access_token": "t", "id": "1234", "count": "1"}
    page = (await client.get("/2/comments/show.json", params=params)).json()
    assert [c["idstr"] for c in page["comments"]] == [second["idstr"]]
    assert page["next_cursor"] == int(first["idstr"])
    older = {**params, "max_id": str(page["next_cursor"])}
    page = (await client.get("/2/comments/show.json", params=older)).json()
    assert [c["idstr"] for c in page["comments"]] == [first["idstr"]]
    second_page = {**params, "page": "3"}
    page = (await client.get("/2/comments/show.json", params=second_page)).json()
    assert [c["idstr"] for c in page["comments"]] == [citizen["idstr"]]
    assert (await client.get("/2/comments/show.json", params={"id": "1234"})).status_code == 403
    missing = await client.get("/2/comments/show.json", params={"access_token": "t"})
    assert missing.status_code == 400 and missing.json()["error_code"] == 10016
