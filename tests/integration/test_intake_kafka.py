"""Intake on the real Kafka: every accepted webhook post is in posts.raw once, and normalized."""

from __future__ import annotations

import json

import httpx

from fengqiao.contracts import APPEALS, POSTS_RAW
from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.signing import signed_headers
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import GenericSource, IntakeSettings
from fengqiao.testing import serving
from fengqiao.watch import TopicWatcher

SECRET = "integration-secret-0123"


async def test_accepted_posts_reach_posts_raw_and_appeals(
    stack: StackSettings, run_id: str
) -> None:
    _, app = build(
        IntakeSettings(
            stack=stack,
            generic_secrets={"itest": SECRET},
            generic_sources={"itest": GenericSource(platforms=["generic"], accounts=["@新疆检察"])},
        )
    )
    ids = [f"{run_id}-{i}" for i in range(20)]
    async with (
        TopicWatcher(stack.kafka_bootstrap, [POSTS_RAW.name, APPEALS.name]) as watcher,
        serving(app),
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            for post_id in ids:
                body = json.dumps(
                    {
                        "id": post_id,
                        "account": "@新疆检察",
                        "author": {"id": f"u-{post_id}"},
                        "text": f"博乐市拖欠工资求助 {post_id}",
                    },
                    ensure_ascii=False,
                ).encode()
                response = await client.post(
                    "/webhooks/generic/itest", content=body, headers=signed_headers(SECRET, body)
                )
                assert response.status_code == 202, response.text
        wanted = {f"itest:{i}" for i in ids}
        await watcher.wait_for(
            lambda w: len(w.of(APPEALS.name, lambda a: a.reply_to.post_id in ids)) == len(ids),
            timeout=60,
            what="every post normalized",
        )
    raw = [m.source_id for m in watcher.of(POSTS_RAW.name) if m.source_id in wanted]
    assert sorted(raw) == sorted(wanted)  # each exactly once
    appeals = watcher.of(APPEALS.name, lambda a: a.reply_to.post_id in ids)
    assert len({a.case_id for a in appeals}) == len(ids)
    assert watcher.errors == []
