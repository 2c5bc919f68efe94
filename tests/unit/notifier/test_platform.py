"""The Weibo client against `httpx.MockTransport`: paths, form fields, and the error hierarchy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs

import httpx
import pytest

from contracts import ReplyChannel, ReplyTarget
from services.notifier.adapters.platform import (
    PermanentError,
    PlatformError,
    RetryableError,
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


def test_both_errors_are_platform_errors() -> None:
    assert issubclass(RetryableError, PlatformError)
    assert issubclass(PermanentError, PlatformError)
    assert not issubclass(PermanentError, RetryableError)
