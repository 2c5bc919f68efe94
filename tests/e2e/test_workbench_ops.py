"""运维 (ops) in a real browser (issue 19, deliver 5 and 7) on the real stack and services: a
poison appeal is dead-lettered by the services; an operator finds it on the workbench's 运维 page
(its message masked) and replays it from the page, once; a handler gets the refusal page. The
screenshots go to `test-artifacts/workbench/`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from fengqiao.contracts import APPEALS
from fengqiao.testing.factories import appeal_message
from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")

PHONE = "13912345678"


async def publish_poison(bootstrap: str, case_id: str) -> None:
    appeal = appeal_message(f"电话{PHONE}", case_id=case_id, occurred_at=datetime.now(UTC))
    body = appeal.model_dump(mode="json") | {"is_appeal": "maybe"}  # off contract
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(APPEALS.name, json.dumps(body).encode(), key=case_id.encode())
    finally:
        await producer.stop()


def dead_letter_of(router: str, token: str, case_id: str) -> dict[str, Any]:
    """The dead letter of `case_id`'s poison, once the services wrote it (the router's API)."""
    deadline = time.monotonic() + 90
    while True:
        listed = httpx.get(
            f"{router}/ops/dead-letters", params={"status": "all"},
            headers={"authorization": f"Bearer {token}"}, timeout=30,
        )  # fmt: skip
        assert listed.status_code == 200, listed.text
        found = [e for e in listed.json()["dead_letters"] if e["origin"]["key"] == case_id]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, "the poison appeal was not dead-lettered"
        time.sleep(1)


def test_an_operator_replays_a_dead_letter_from_the_page(
    fengqiao_services: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    base = fengqiao_services.url("workbench")
    operator, token = person(fengqiao_services, "xj", "ops")
    handler, _ = person(fengqiao_services, "652701", "handler")
    case_id = f"c-e2e-dlq-{uuid.uuid4().hex[:10]}"
    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        poison = publish_poison(fengqiao_services.stack.kafka_bootstrap, case_id)
        thread.submit(asyncio.run, poison).result(timeout=60)
    letter = dead_letter_of(fengqiao_services.url("router"), token, case_id)

    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 800})
    page = context.new_page()
    log_in(page, base, operator, "/ops")
    expect(page.locator("h1")).to_contain_text("运维")
    expect(page.locator('header a[href="/ops"]')).to_be_visible()
    row = page.locator(f'#dead-letters tr[data-letter="{letter["id"]}"]')
    expect(row).to_have_attribute("data-status", "new")
    expect(page.locator("#dlq-counts")).to_contain_text(APPEALS.name)
    shot(page, "ops-1-dead-letters")
    shot(page, "ops-docs", full_page=False)  # as it opens: docs/workbench-ops.png
    row.get_by_role("link", name="查看").click()
    expect(page.locator("#dlq-payload")).to_contain_text("139****5678")
    assert PHONE not in page.content()
    shot(page, "ops-2-dead-letter")
    page.locator("#form-replay button").click()
    page.wait_for_load_state()
    expect(page.locator("#message")).to_contain_text(f"已重放：{letter['id']}")
    shot(page, "ops-3-replayed")
    page.goto(f"{base}/ops?status=all")
    expect(row).to_have_attribute("data-status", "replayed")
    expect(row.locator("form")).to_have_count(0)  # no second replay offered
    # Asked again anyway (a stale page): the router refuses, the page says why.
    again = context.request.post(
        f"{base}/ops/dead-letters/{letter['id']}/replay",
        form={"csrf": page.locator("header input[name=csrf]").get_attribute("value") or ""},
        headers={"accept": "text/html"},
    )
    assert again.status == 409 and "已处理" in again.text()
    context.close()

    other = browser.new_context(locale="zh-CN")
    refused = other.new_page()
    log_in(refused, base, handler)
    assert refused.locator('header a[href="/ops"]').count() == 0
    answer = refused.goto(f"{base}/ops")
    assert answer is not None and answer.status == 403
    expect(refused.locator("h1")).to_contain_text("无权")
    assert letter["id"] not in refused.content()
    shot(refused, "ops-4-handler-refused")
    other.close()
