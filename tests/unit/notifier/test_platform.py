"""The Weibo client against `httpx.MockTransport`: paths, form fields, and the error hierarchy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from fengqiao.contracts import ReplyChannel, ReplyTarget
from fengqiao.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from fengqiao.services.notifier.adapters.platform import (
    CannotReconcile,
    PermanentError,
    PlatformError,
    Platforms,
    RetryableError,
    WebhookClient,
    WeiboClient,
)

Handler = Callable[[httpx.Request], httpx.Response]
POST = ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1")
COMMENT = POST.model_copy(update={"comment_id": "c9"})


class Platform:
    """Answers with what the test sets and keeps every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Handler = lambda _: httpx.Response(200, json={"id": 42, "idstr": "42"})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def form(self, index: int = -1) -> dict[str, str]:
        fields = parse_qs(self.requests[index].content.decode(), keep_blank_values=True)
        return {k: v[0] for k, v in fields.items()}


@pytest.fixture
def platform() -> Platform:
    return Platform()


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[WeiboClient]:
    client = WeiboClient("https://api.weibo.test", transport=httpx.MockTransport(platform))
    yield client
    await client.aclose()


async def test_a_comment_on_a_post_is_created(client: WeiboClient, platform: Platform) -> None:
    message_id = await client.send(ReplyChannel.COMMENT, POST, "您好", token="t1")
    assert message_id == "42"
    [request] = platform.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.weibo.test/2/comments/create.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert platform.form() == {"id": "p1", "comment": "您好", "access_token": "t1"}


async def test_a_comment_on_a_comment_is_a_reply(client: WeiboClient, platform: Platform) -> None:
    await client.send(ReplyChannel.COMMENT, COMMENT, "您好", token="t1")
    assert platform.requests[0].url.path == "/2/comments/reply.json"
    assert platform.form() == {"id": "p1", "cid": "c9", "comment": "您好", "access_token": "t1"}


async def test_a_private_message_goes_to_the_user(client: WeiboClient, platform: Platform) -> None:
    await client.send(ReplyChannel.PRIVATE_MESSAGE, COMMENT, "私信内容", token="t1")
    assert platform.requests[0].url.path == "/2/messages/reply.json"
    assert platform.form() == {"uid": "u1", "text": "私信内容", "access_token": "t1"}


async def test_the_id_is_used_when_there_is_no_idstr(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(200, json={"id": 5000000000000001})
    assert await client.send(ReplyChannel.COMMENT, POST, "您好", token="t") == "5000000000000001"


async def test_a_private_message_without_user_is_refused_before_sending(
    client: WeiboClient, platform: Platform
) -> None:
    target = POST.model_copy(update={"user_id": None})
    with pytest.raises(PermanentError, match="needs the citizen's user id"):
        await client.send(ReplyChannel.PRIVATE_MESSAGE, target, "x", token="t")
    assert platform.requests == []


async def test_a_comment_without_post_is_refused_before_sending(
    client: WeiboClient, platform: Platform
) -> None:
    target = POST.model_copy(update={"post_id": None})
    with pytest.raises(PermanentError, match="comment needs the post id"):
        await client.send(ReplyChannel.COMMENT, target, "x", token="t")
    assert platform.requests == []


async def test_429_is_retryable_after_the_platforms_delay(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(
        429, headers={"Retry-After": "7"}, json={"error": "rate limited", "error_code": 10023}
    )
    with pytest.raises(RetryableError) as caught:
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")
    assert caught.value.retry_after == 7.0
    assert str(caught.value) == "HTTP 429: rate limited"


async def test_a_retry_after_that_is_not_seconds_is_ignored(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(
        429, headers={"Retry-After": "Fri, 27 Nov 2026 09:00:00 GMT"}
    )
    with pytest.raises(RetryableError) as caught:
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_retryable(
    client: WeiboClient, platform: Platform, status: int
) -> None:
    platform.answer = lambda _: httpx.Response(status, text="<html>bad gateway</html>")
    with pytest.raises(RetryableError, match=f"HTTP {status}") as caught:
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")
    assert caught.value.retry_after is None


async def test_a_refusal_with_an_error_code_is_permanent(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(
        400, json={"error": "text too long", "error_code": 20012, "request": "/2/comments"}
    )
    with pytest.raises(PermanentError, match=r"^20012: text too long$"):
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")


async def test_an_error_code_in_a_200_answer_is_permanent(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(200, json={"error": "repeat", "error_code": 20019})
    with pytest.raises(PermanentError, match=r"^20019: repeat$"):
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")


async def test_a_4xx_without_json_is_permanent(client: WeiboClient, platform: Platform) -> None:
    platform.answer = lambda _: httpx.Response(403, text="forbidden")
    with pytest.raises(PermanentError, match=r"^403: forbidden$"):
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")


async def test_an_answer_without_a_message_id_is_permanent(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(200, json={"text": "ok"})
    with pytest.raises(PermanentError, match="without a message id"):
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("peer closed"),
    ],
)
async def test_a_transport_error_is_retryable(
    client: WeiboClient, platform: Platform, error: httpx.TransportError
) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise error

    platform.answer = fail
    with pytest.raises(RetryableError, match=f"^{type(error).__name__}: ") as caught:
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")
    assert caught.value.retry_after is None
    # Only a failed connection proves the platform never saw the reply.
    assert caught.value.maybe_delivered is not isinstance(error, httpx.ConnectError)


@pytest.mark.parametrize(
    ("status", "maybe"), [(429, False), (503, False), (500, True), (504, True)]
)
async def test_which_answers_may_hide_a_stored_reply(
    client: WeiboClient, platform: Platform, status: int, maybe: bool
) -> None:
    platform.answer = lambda _: httpx.Response(status, json={"error": "x", "error_code": 10001})
    with pytest.raises(RetryableError) as caught:
        await client.send(ReplyChannel.COMMENT, POST, "x", token="t")
    assert caught.value.maybe_delivered is maybe


def test_both_errors_are_platform_errors() -> None:
    assert issubclass(RetryableError, PlatformError)
    assert issubclass(PermanentError, PlatformError)
    assert not issubclass(PermanentError, RetryableError)


async def test_a_status_is_shared(client: WeiboClient, platform: Platform) -> None:
    await client.send(ReplyChannel.STATUS, POST, "已办结 https://fengqiao.example/c/1", token="t")
    assert platform.requests[0].url.path == "/2/statuses/share.json"
    assert platform.form() == {"status": "已办结 https://fengqiao.example/c/1", "access_token": "t"}


def comments(*items: dict[str, object]) -> Handler:
    return lambda _: httpx.Response(200, json={"comments": list(items), "total_number": 9})


async def test_a_comment_already_posted_is_found_among_the_posts_comments(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = comments(
        {"idstr": "2", "text": "别的", "status": {"idstr": "p1"}},
        {"idstr": "3", "text": "您好", "status": {"idstr": "p1"}, "reply_comment": {"idstr": "c9"}},
        {"idstr": "4", "text": "您好", "status": {"id": "p1"}},
    )
    assert await client.find_posted(ReplyChannel.COMMENT, POST, "您好", token="t") == "4"
    assert await client.find_posted(ReplyChannel.COMMENT, COMMENT, "您好", token="t") == "3"
    assert await client.find_posted(ReplyChannel.COMMENT, POST, "没有", token="t") is None
    request = platform.requests[0]
    assert request.method == "GET" and request.url.path == "/2/comments/show.json"
    assert dict(request.url.params) == {"access_token": "t", "count": "200", "id": "p1"}


async def test_a_comment_is_recognised_by_its_marker_whatever_its_text(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = comments(
        {"idstr": "5", "text": "网友：谢谢", "status": {"idstr": "p1"}},
        {"idstr": "4", "text": "您好，已收到〔回执ABC123〕", "status": {"idstr": "p1"}},
    )
    found = await client.find_posted(
        ReplyChannel.COMMENT, POST, "您好，已收到（改过的模板）", token="t", marker="〔回执ABC123〕"
    )
    assert found == "4"


def paged(total: int, *, at: datetime) -> Handler:
    """A post with `total` comments, ids total..1, a minute apart back from `at`."""

    def answer(request: httpx.Request) -> httpx.Response:
        count = int(request.url.params["count"])
        top = int(request.url.params.get("max_id") or total)
        items = [
            {
                "idstr": str(i),
                "text": f"第{i}条",
                "created_at": (at - timedelta(minutes=total - i)).strftime(
                    "%a %b %d %H:%M:%S %z %Y"
                ),
            }
            for i in range(top, max(top - count, 0), -1)
        ]
        return httpx.Response(200, json={"comments": items, "total_number": total})

    return answer


async def test_the_posts_comments_are_read_page_by_page_back_to_the_attempt(
    platform: Platform,
) -> None:
    at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    platform.answer = paged(1_000, at=at)
    client = WeiboClient(
        "https://api.example", transport=httpx.MockTransport(platform), page_size=100
    )
    try:
        found = await client.find_posted(ReplyChannel.COMMENT, POST, "x", token="t", marker="第3条")
        assert found == "3" and len(platform.requests) == 10
        assert platform.requests[1].url.params["max_id"] == "900"
        platform.requests.clear()
        # Absent: the search stops once the comments are older than the attempt (and the skew).
        since = at - timedelta(minutes=150)
        found = await client.find_posted(
            ReplyChannel.COMMENT, POST, "x", token="t", marker="没有", since=since
        )
        assert found is None and len(platform.requests) == 2
    finally:
        await client.aclose()


async def test_a_post_with_too_many_comments_to_read_cannot_be_reconciled(
    platform: Platform,
) -> None:
    platform.answer = paged(1_000, at=datetime(2026, 12, 1, 12, tzinfo=UTC))
    client = WeiboClient(
        "https://api.example", transport=httpx.MockTransport(platform), page_size=100, max_pages=3
    )
    try:
        with pytest.raises(CannotReconcile, match="without reaching the time of the attempt"):
            await client.find_posted(ReplyChannel.COMMENT, POST, "x", token="t", marker="没有")
    finally:
        await client.aclose()


async def test_a_comment_without_its_post_cannot_be_looked_for(
    client: WeiboClient, platform: Platform
) -> None:
    target = POST.model_copy(update={"post_id": None, "comment_id": "c9"})
    with pytest.raises(CannotReconcile, match="without its post"):
        await client.find_posted(ReplyChannel.COMMENT, target, "x", token="t")
    assert platform.requests == []


async def test_a_shared_status_is_found_on_the_timeline(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(200, json={"statuses": [{"id": 7, "text": "办结"}]})
    assert await client.find_posted(ReplyChannel.STATUS, POST, "办结", token="t") == "7"
    assert platform.requests[0].url.path == "/2/statuses/user_timeline.json"


async def test_private_messages_cannot_be_reconciled(
    client: WeiboClient, platform: Platform
) -> None:
    with pytest.raises(CannotReconcile, match="does not list the private messages"):
        await client.find_posted(ReplyChannel.PRIVATE_MESSAGE, POST, "x", token="t")
    assert platform.requests == []


async def test_a_failed_lookup_is_an_error_not_an_absence(
    client: WeiboClient, platform: Platform
) -> None:
    platform.answer = lambda _: httpx.Response(502)
    with pytest.raises(RetryableError):
        await client.find_posted(ReplyChannel.COMMENT, POST, "x", token="t")


# --------------------------------------------------------------------------- the webhook


@pytest.fixture
async def webhook(platform: Platform) -> AsyncIterator[WebhookClient]:
    client = WebhookClient(
        "https://hooks.example/replies", "s3cret", transport=httpx.MockTransport(platform)
    )
    yield client
    await client.aclose()


async def test_a_webhook_reply_is_signed_json(webhook: WebhookClient, platform: Platform) -> None:
    platform.answer = lambda _: httpx.Response(200, json={"id": "w-1"})
    assert await webhook.send(ReplyChannel.COMMENT, POST, "您好", token="tok") == "w-1"
    [request] = platform.requests
    assert str(request.url) == "https://hooks.example/replies"
    assert request.headers["authorization"] == "Bearer tok"
    timestamp = request.headers[TIMESTAMP_HEADER]
    assert request.headers[SIGNATURE_HEADER] == sign("s3cret", timestamp, request.content)
    body = json.loads(request.content)
    assert body == {"channel": "comment", "target": POST.model_dump(mode="json"), "text": "您好"}


@pytest.mark.parametrize(
    ("status", "error"), [(429, RetryableError), (500, RetryableError), (422, PermanentError)]
)
async def test_webhook_errors_follow_the_same_hierarchy(
    webhook: WebhookClient, platform: Platform, status: int, error: type[Exception]
) -> None:
    platform.answer = lambda _: httpx.Response(status, json={"error": "no"})
    with pytest.raises(error):
        await webhook.send(ReplyChannel.COMMENT, POST, "x", token="")
    assert "authorization" not in platform.requests[0].headers


async def test_a_webhook_cannot_reconcile(webhook: WebhookClient) -> None:
    with pytest.raises(CannotReconcile):
        await webhook.find_posted(ReplyChannel.COMMENT, POST, "x", token="t")


async def test_platforms_route_by_the_targets_platform(
    client: WeiboClient, webhook: WebhookClient, platform: Platform
) -> None:
    platforms = Platforms({"weibo": client, "wechat": webhook})
    await platforms.send(ReplyChannel.COMMENT, POST, "微博", token="t")
    wechat = POST.model_copy(update={"platform": "wechat"})
    await platforms.send(ReplyChannel.COMMENT, wechat, "微信", token="t")
    assert [r.url.host for r in platform.requests] == ["api.weibo.test", "hooks.example"]
    unknown = POST.model_copy(update={"platform": "douyin"})
    with pytest.raises(
        PermanentError, match=r"no client for platform 'douyin' \(known: wechat, weibo\)"
    ):
        await platforms.send(ReplyChannel.COMMENT, unknown, "x", token="t")
    await platforms.aclose()
