"""回复审核 over HTTP (issue 19, deliver 5), in front of the real notifier app (in-process, its
operators' API and guard; Kafka replaced by FastStream's test broker, the platform by a fake): a
reviewer sees the held reply as it would be posted, approves it as it is or edited, or rejects
it with a reason, each as themselves; the notifier's refusals (an edit outside the platform's
rules, a reply decided already) are pages in the person's language, the typed text kept; a
handler gets the 403 page, an auditor reads without forms; a forged CSRF token changes nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.auth.accounts import Accounts
from fengqiao.auth.guard import Guard, LocalSessions
from fengqiao.auth.store import MemoryAuthStore
from fengqiao.contracts import REPLIES_REQUESTED, ReplySent
from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox
from fengqiao.services.notifier.app import build as notifier_app
from fengqiao.services.notifier.domain import reply_marker
from fengqiao.services.notifier.settings import NotifierSettings
from fengqiao.services.workbench.app import build
from fengqiao.services.workbench.settings import WorkbenchSettings
from tests.service.notifier.test_notifier_handlers import FakePlatform, request
from tests.service.workbench.test_workbench import HTML, PASSWORD, csrf_of, log_in

KEY = "c-0123456789abcdef:acknowledgment:0"
ACTION = f"/replies/{quote(KEY, safe='')}"
EDIT = "您好，@新疆检察 已收到您反映的情况，已转交属地检察院依法办理。"
MARKER = reply_marker(request())


@dataclass
class World:
    bench: httpx.AsyncClient
    platform: FakePlatform
    outbox: InMemoryOutbox
    results: list[ReplySent]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    accounts = Accounts(MemoryAuthStore())
    people = (("gu.min", "xj", "reviewer"), ("ma.lan", "652701", "handler"),
              ("shen.yi", "xj", "auditor"))  # fmt: skip
    for username, unit, role in people:
        await accounts.add(username, name=username, unit_id=unit, roles=[role],
                           password=PASSWORD)  # fmt: skip
    platform, outbox = FakePlatform(), InMemoryOutbox()
    settings = NotifierSettings(default_access_token="t", hold_categories=["crime_report"],
                                rate_limits=False)  # fmt: skip
    runtime, notifier, _ = notifier_app(
        settings, platform=platform, outbox=outbox,
        guard=Guard("notifier", [LocalSessions(accounts)]),
    )  # fmt: skip
    results: list[ReplySent] = []

    @runtime.broker.subscriber("replies.sent", group_id="probe")
    async def on_sent(result: ReplySent) -> None:
        results.append(result)

    _, app = build(
        WorkbenchSettings(notifier_url="http://notifier"), accounts=accounts,
        transports={"notifier": httpx.ASGITransport(notifier)},
    )  # fmt: skip
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(request(category="crime_report"), REPLIES_REQUESTED.name)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://w"
        ) as http:
            yield World(http, platform, outbox, results)


def posted(world: World) -> list[str]:
    return [text for _, _, text, _ in world.platform.posted]


async def the_page(world: World, username: str) -> httpx.Response:
    assert (await log_in(world.bench, username)).status_code == 303
    return await world.bench.get("/replies", headers=HTML)


async def test_a_reviewer_sees_the_held_reply_as_it_would_be_posted(world: World) -> None:
    page = await the_page(world, "gu.min")
    assert page.status_code == 200, page.text
    assert '<a href="/replies" aria-current="page">回复审核</a>' in page.text
    [held] = world.outbox.records.values()
    for shown in ("c-0123456789abcdef", "受理回复", "评论", "举报报案", "敏感类别",
                  held["text"], MARKER, f"{len(held['text']) - len(MARKER)} / 130 字"):  # fmt: skip
        assert shown in page.text, shown
    assert f'action="{ACTION}/approve"' in page.text and 'name="reason"' in page.text
    english = await world.bench.get("/replies?lang=en", headers=HTML)
    assert "Reply review" in english.text and "a category whose replies need approval" in (
        english.text
    )


async def test_a_reviewer_edits_and_approves_once_as_themselves(world: World) -> None:
    page = await the_page(world, "gu.min")
    form = {"csrf": csrf_of(page), "original": "x", "text": EDIT + "\r\n", "note": "措辞"}
    done = await world.bench.post(f"{ACTION}/approve", data=form, headers=HTML)
    assert done.status_code == 303, done.text
    shown = await world.bench.get(done.headers["location"], headers=HTML)
    assert "已批准发布：案件 c-0123456789abcdef 的回复（已发送）" in shown.text
    assert "没有待审核的回复" in shown.text
    assert posted(world) == [EDIT + MARKER]
    [decision] = world.outbox.decisions.values()
    assert (decision["operator"], decision["text"], decision["note"]) == (
        "local:gu.min", EDIT + MARKER, "措辞",
    )  # fmt: skip
    again = await world.bench.post(f"{ACTION}/approve", data=form, headers=HTML)
    assert again.status_code == 409 and "此回复已由他人处理" in again.text
    assert posted(world) == [EDIT + MARKER]


async def test_an_unchanged_text_is_approved_as_the_template_wrote_it(world: World) -> None:
    page = await the_page(world, "gu.min")
    body = re.search(r'name="original" value="([^"]*)"', page.text)
    assert body is not None
    form = {"csrf": csrf_of(page), "original": body[1], "text": body[1]}
    assert (await world.bench.post(f"{ACTION}/approve", data=form, headers=HTML)).status_code == 303
    [held] = world.outbox.records.values()
    assert posted(world) == [held["text"]] and "text" not in next(
        iter(world.outbox.decisions.values())
    )


async def test_an_edit_outside_the_rules_is_a_page_with_the_text_kept(world: World) -> None:
    page = await the_page(world, "gu.min")
    csrf = csrf_of(page)
    long = "很" * 131
    refused = await world.bench.post(
        f"{ACTION}/approve", data={"csrf": csrf, "original": "x", "text": long}, headers=HTML
    )
    assert refused.status_code == 422, refused.text
    assert "回复内容不符合平台规则" in refused.text and "回复过长：131 字" in refused.text
    assert f">{long}</textarea>" in refused.text  # what they typed, to shorten
    private = await world.bench.post(
        f"{ACTION}/approve", data={"csrf": csrf, "original": "x", "text": "电话13912345678"},
        headers=HTML,
    )  # fmt: skip
    assert private.status_code == 422 and "private data" in private.text
    assert posted(world) == [] and world.outbox.decisions == {} and world.outbox.holds


async def test_a_rejection_needs_a_reason_and_names_the_reviewer(world: World) -> None:
    page = await the_page(world, "gu.min")
    csrf = csrf_of(page)
    missing = await world.bench.post(f"{ACTION}/reject", data={"csrf": csrf}, headers=HTML)
    assert missing.status_code == 422 and "请填写驳回理由" in missing.text
    assert world.outbox.holds
    done = await world.bench.post(
        f"{ACTION}/reject", data={"csrf": csrf, "reason": "等待公安通报"}, headers=HTML
    )
    assert done.status_code == 303
    shown = await world.bench.get(done.headers["location"], headers=HTML)
    assert "已驳回" in shown.text
    assert posted(world) == [] and world.results[-1].status == "failed"
    assert world.results[-1].error == "rejected by local:gu.min: 等待公安通报"


async def test_a_forged_csrf_token_changes_nothing(world: World) -> None:
    page = await the_page(world, "gu.min")
    assert csrf_of(page)
    for verb, extra in (("approve", {"text": EDIT}), ("reject", {"reason": "x"})):
        for csrf in ("", "0" * 64):
            forged = await world.bench.post(
                f"{ACTION}/{verb}", data={"csrf": csrf, **extra}, headers=HTML
            )
            assert forged.status_code == 403 and "表单已过期" in forged.text
    assert posted(world) == [] and world.outbox.decisions == {} and world.outbox.holds


async def test_a_handler_gets_the_403_page_and_an_auditor_reads_without_forms(
    world: World,
) -> None:
    page = await the_page(world, "ma.lan")
    assert page.status_code == 403 and "您无权执行此操作" in page.text
    assert 'href="/replies"' not in page.text  # no link to it in their header
    acted = await world.bench.post(
        f"{ACTION}/approve", data={"csrf": csrf_of(page), "text": EDIT}, headers=HTML
    )
    assert acted.status_code == 403
    # The refusal's page says who is logged in and lets them out (it had no logout form).
    assert "ma.lan，652701" in page.text
    out = await world.bench.post("/logout", data={"csrf": csrf_of(page)}, headers=HTML)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    read = await the_page(world, "shen.yi")
    assert read.status_code == 200 and "批准或驳回需要审核员角色" in read.text
    assert "c-0123456789abcdef" in read.text and 'name="reason"' not in read.text
    acted = await world.bench.post(
        f"{ACTION}/approve", data={"csrf": csrf_of(read), "text": EDIT}, headers=HTML
    )
    assert acted.status_code == 403
    assert posted(world) == [] and world.outbox.holds
