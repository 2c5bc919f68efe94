"""A citizen who writes to the account by private message is answered by private message, end
to end on the real stack (issue 18, deliver 3): a Weibo push of type `text`, signed as Weibo
signs it, opens a case through intake, the router dispatches it, and the notifier acknowledges
it and announces the dispatch with `messages/reply` to the citizen's uid on the simulator; no
comment is attempted (there is no post to comment on), nothing fails."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from fengqiao.services.intake.weibo import push_signature

SECRET = "push-" + uuid.uuid4().hex
ACCOUNT = "@新疆检察"
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def fengqiao_service_env() -> dict[str, str]:
    accounts = {"xinjiang": {"handle": ACCOUNT, "app_secret": SECRET}}
    return {"FENGQIAO_INTAKE_WEIBO_ACCOUNTS": json.dumps(accounts)}


def push_private_message(intake: str, sender: str, text: str) -> None:
    """POST a Weibo push of a private message (type `text`) to the account's push URL."""
    body = {
        "type": "text",
        "receiver_id": 1902538057,
        "sender_id": int(sender),
        "created_at": datetime.now(BEIJING).strftime("%a %b %d %H:%M:%S %z %Y"),
        "text": text,
        "data": {},
    }
    timestamp, nonce = str(int(time.time() * 1000)), str(random.randrange(10**8))
    response = httpx.post(
        f"{intake}/webhooks/weibo/xinjiang",
        params={
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": push_signature(SECRET, timestamp, nonce),
        },
        content=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_an_appeal_by_private_message_is_acknowledged_by_private_message(
    fengqiao_services: Any, platform: Any, wait_for_case: Any
) -> None:
    sender = str(random.randrange(10**9, 10**10))
    push_private_message(
        fengqiao_services.url("intake"), sender, "博乐市的工地老板拖欠我们工资三个月了，求助"
    )
    deadline = time.monotonic() + 90
    case_id = None
    while case_id is None and time.monotonic() < deadline:
        appeals = fengqiao_services.watcher.of(
            "appeals", lambda a: a.author.id == sender and a.account == ACCOUNT
        )
        case_id = appeals[0].case_id if appeals else None
        time.sleep(0.2)
    assert case_id is not None, "the push made no appeal"
    case = wait_for_case(
        case_id,
        where=lambda c: any(e["event"] == "case.acknowledged" for e in c["timeline"]),
        timeout=90,
    )
    assert not [e for e in case["timeline"] if e["event"].startswith("reply.")], case["timeline"]
    messages = [
        r
        for r in platform.received()
        if r["kind"] == "private_message" and r["target"].get("uid") == sender
    ]
    assert messages, "no private message reached the citizen"
    assert case_id[-8:] in messages[0]["text"] and "〔回执" not in messages[0]["text"]
    sent = fengqiao_services.watcher.of("replies.sent", lambda r: r.case_id == case_id)
    assert {r.status for r in sent} == {"sent"}, [(r.purpose, r.status, r.error) for r in sent]
