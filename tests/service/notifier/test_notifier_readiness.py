"""A notifier that cannot reply looks so (issue 20, deliver 3): its /readyz names the accounts
it has no token for, and `fengqiao ops metrics` counts those replies failed and dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from fengqiao.contracts import (
    REPLIES_REQUESTED,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplyTarget,
)
from fengqiao.ops import scrape
from fengqiao.runtime.clock import FakeClock
from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox
from fengqiao.services.notifier.app import build
from fengqiao.services.notifier.settings import NotifierSettings

NOW = datetime(2026, 8, 1, 10, 5, tzinfo=UTC)


class Platform:
    def __init__(self) -> None:
        self.posted: list[str] = []

    async def send(self, channel: Any, target: Any, text: str, *, token: str) -> str:
        self.posted.append(text)
        return f"m{len(self.posted)}"

    async def find_posted(self, *_: Any, **__: Any) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def request(account: str) -> ReplyRequested:
    return ReplyRequested(
        event_id=f"req-{account}",
        occurred_at=NOW,
        producer="tracker",
        case_id="c-0123456789abcdef",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        channel=ReplyChannel.COMMENT,
        target=ReplyTarget(platform="weibo", account=account, user_id="u1", post_id="p1"),
        template_id="acknowledgment",
        variables={"account": account, "case_ref": "89abcdef"},
    )


async def answers(settings: NotifierSettings, *accounts: str) -> tuple[httpx.Response, str]:
    """/readyz's answer and /metrics' text, after replies for `accounts`."""
    runtime, app, _ = build(
        settings, platform=Platform(), outbox=InMemoryOutbox(), clock=FakeClock(NOW)
    )
    async with TestKafkaBroker(runtime.broker) as broker:
        for account in accounts:
            await broker.publish(request(account), REPLIES_REQUESTED.name)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://n") as http:
            return await http.get("/readyz"), (await http.get("/metrics")).text


async def readiness(settings: NotifierSettings, *accounts: str) -> tuple[int, str]:
    """/readyz's status and its access_tokens check, after replies for `accounts`."""
    answer, _ = await answers(settings, *accounts)
    return answer.status_code, answer.json()["checks"]["access_tokens"]


async def test_a_notifier_without_any_token_is_not_ready() -> None:
    status, check = await readiness(NotifierSettings())
    assert status == 503
    assert check == "no access token configured: set FENGQIAO_NOTIFIER_ACCESS_TOKENS"


async def test_an_account_of_a_reply_without_a_token_is_named() -> None:
    settings = NotifierSettings(access_tokens={"@新疆检察": SecretStr("t")})
    assert (await readiness(settings, "@新疆检察"))[1] == "ok"
    status, check = await readiness(settings, "@新疆检察", "@伊犁检察")
    assert status == 503
    assert check == "no access token for @伊犁检察: set FENGQIAO_NOTIFIER_ACCESS_TOKENS"


async def test_a_configured_account_without_a_token_is_named_before_any_reply() -> None:
    settings = NotifierSettings(
        access_tokens={"@新疆检察": SecretStr("t")}, accounts=["@新疆检察", "@喀什检察"]
    )
    status, check = await readiness(settings)
    assert status == 503
    assert check == "no access token for @喀什检察: set FENGQIAO_NOTIFIER_ACCESS_TOKENS"
    settings = NotifierSettings(default_access_token=SecretStr("t"), accounts=["@喀什检察"])
    assert (await readiness(settings))[1] == "ok"


async def test_ops_metrics_counts_replies_without_a_token_failed_and_dead_lettered() -> None:
    """The issue: `fengqiao ops metrics` showed such a notifier with 0 failed and no dead
    letters, since no handler raised."""
    _, text = await answers(NotifierSettings(), "@新疆检察")
    summary = scrape.summarize("notifier", "http://n", text).as_dict()
    line = summary["topics"]["replies.requested"]
    assert (line["processed"], line["failed"], line["dead_letters"]) == (1, 1, 1)
    assert summary["gauges"]["fengqiao_notifier_replies_unsendable_total"] == 1
