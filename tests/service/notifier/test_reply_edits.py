"""A reviewer approves a held reply with a text of their own (issue 19, deliver 5: 回复审核,
"edit within the platform's rules"), over the notifier's HTTP API: the text is checked by the
rules of every reply — refused with a 422 that says why, nothing posted, the reply still held —
and the notifier appends the reply's receipt code; the edited text is what is posted, once; the
decision keeps who edited and the text that was held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import REPLIES_REQUESTED
from fengqiao.services.notifier.domain import reply_marker
from tests.service.notifier import test_notifier_handlers as handlers_tests
from tests.service.notifier.test_notifier_handlers import AS_REVIEWER, Notifier, request

notifier = handlers_tests.notifier  # their fixture: the notifier app, a fake platform

KEY = "c-0123456789abcdef:acknowledgment:0"
EDIT = "您好，@新疆检察 已收到您反映的情况，已转交属地检察院依法办理，请保持电话畅通。"
MARKER = reply_marker(request())


@dataclass
class Held:
    notifier: Notifier
    http: httpx.AsyncClient  # as a reviewer


@pytest.fixture
async def held(notifier: Notifier) -> AsyncIterator[Held]:
    """The notifier with a reply held."""
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(category="crime_report"), REPLIES_REQUESTED.name)
        assert notifier.platform.posted == []
        transport = httpx.ASGITransport(app=notifier.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://n", headers=AS_REVIEWER
        ) as client:
            yield Held(notifier, client)


async def approve(http: httpx.AsyncClient, **body: str) -> httpx.Response:
    return await http.post(f"/ops/replies/{KEY}/approve", json=body)


async def test_the_held_list_says_what_an_editor_needs(held: Held) -> None:
    http = held.http
    [entry] = (await http.get("/ops/replies/held")).json()
    assert (entry["channel"], entry["category"], entry["urgent"], entry["why"]) == (
        "comment", "crime_report", False, "category",
    )  # fmt: skip
    assert entry["marker"] == MARKER and entry["text"] == entry["body"] + MARKER
    assert entry["room"] == 140 - len(MARKER)


async def test_an_edited_reply_is_posted_once_with_its_receipt_code(
    held: Held,
) -> None:
    notifier, http = held.notifier, held.http
    [entry] = (await http.get("/ops/replies/held")).json()
    approved = await approve(http, text=EDIT + "\r\n", note="措辞调整")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["text"]) == ("sent", EDIT + MARKER)
    again = await approve(http, text="另一段文字")
    assert again.status_code == 409 and "is not held" in again.json()["detail"]
    assert (await approve(http)).status_code == 409
    assert [text for _, _, text, _ in notifier.platform.posted] == [EDIT + MARKER]
    assert [r.status for r in notifier.results] == ["held", "sent"]
    # The decision keeps who edited, the text that was held, and the text approved.
    [decision] = notifier.outbox.decisions.values()
    assert (decision["operator"], decision["note"]) == ("local:gu.min", "措辞调整")
    assert (decision["original"], decision["text"]) == (entry["text"], EDIT + MARKER)
    assert notifier.outbox.edits[KEY]["text"] == EDIT
    # The reply is still the one of its key: a redelivery of its request repeats the outcome.
    async with TestKafkaBroker(notifier.runtime.broker) as broker:
        await broker.publish(request(category="crime_report"), REPLIES_REQUESTED.name)
    assert len(notifier.platform.posted) == 1 and notifier.results[-1].text == EDIT + MARKER


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("很" * 131, f"reply is 131 characters; comment allows {140 - len(MARKER)} besides"),
        ("   ", "reply is empty"),
        ("请拨打13912345678联系我们", "private data"),
        ("已转交，回执 K7Q2M9", "leave the receipt code"),
        ("请联系 @某某律所 咨询", "mentions @某某律所"),
        ("详见 http://example.com/x", "links outside the safe domain"),
    ],
)
async def test_an_edit_outside_the_rules_is_refused_and_nothing_is_posted(
    held: Held,
    text: str,
    why: str,
) -> None:
    notifier, http = held.notifier, held.http
    refused = await approve(http, text=text)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]  # FastAPI's shape, naming the field
    assert error["loc"] == ["body", "text"] and why in error["msg"]
    assert notifier.platform.posted == [] and notifier.outbox.decisions == {}
    [entry] = (await http.get("/ops/replies/held")).json()  # still held, for a better text
    assert entry["key"] == KEY
    assert (await approve(http, text=EDIT)).status_code == 200
    assert len(notifier.platform.posted) == 1


async def test_the_receipt_code_copied_along_is_kept_once(
    held: Held,
) -> None:
    notifier, http = held.notifier, held.http
    assert (await approve(http, text=EDIT + MARKER)).status_code == 200
    assert [text for _, _, text, _ in notifier.platform.posted] == [EDIT + MARKER]


async def test_a_rejection_carries_no_text_and_a_handler_may_not_edit(
    held: Held,
) -> None:
    notifier, http = held.notifier, held.http
    refused = await http.post(f"/ops/replies/{KEY}/reject", json={"text": EDIT})
    assert refused.status_code == 422
    handler = {"Authorization": "Bearer token-handler-ma-lan"}
    forbidden = await http.post(f"/ops/replies/{KEY}/approve", json={"text": EDIT},
                                headers=handler)  # fmt: skip
    assert forbidden.status_code == 403
    assert notifier.platform.posted == [] and len((await http.get("/ops/replies/held")).json())
