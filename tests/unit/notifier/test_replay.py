"""Replies looked for by their marker before any second attempt, and replies replayed from the
dead letters (issue 18, deliver 2 and 3): a reply whose earlier attempt's outcome was never
recorded is found by its marker, not posted again; a reply that could not be sent as configured,
or whose retries ran out, is tried again when an operator replays it, once."""

from __future__ import annotations

from datetime import timedelta

from fengqiao.contracts import ReplyChannel
from fengqiao.services.notifier.adapters.platform import NotSendable, RetryableError
from fengqiao.services.notifier.domain import reply_marker
from fengqiao.services.notifier.sender import Origin
from tests.unit.notifier.test_sender import KEY, START, TARGET, make, request

REPLAY = Origin(
    "replies.requested", 3, 41, "c-0123456789abcdef", replay_of="replies.requested:3:41"
)


def test_a_public_reply_carries_a_marker_of_its_key_a_private_message_none() -> None:
    marker = reply_marker(request())
    assert marker.startswith("〔回执") and marker.endswith("〕") and len(marker) == 10
    assert reply_marker(request()) == marker  # stable: derived from (case, purpose, hop)
    assert reply_marker(request(hop=1)) != marker
    assert reply_marker(request(channel=ReplyChannel.PRIVATE_MESSAGE)) == ""


async def test_the_marker_ends_the_posted_text_within_the_limit() -> None:
    n = make()
    long = "很长的说明。" * 40
    await n.sender.handle(
        request(template_id="progress", variables={"note": long, "unit_name": "博乐市检察院"})
    )
    [(_, _, text, _)] = n.platform.posted
    assert text.endswith(reply_marker(request())) and len(text) <= 140


async def test_a_reply_left_sending_is_found_by_its_marker_and_not_posted_again() -> None:
    n = make()
    req = request()
    marker = reply_marker(req)
    # The earlier attempt: claimed, posted (the platform took it), its outcome never recorded.
    n.outbox.claims[KEY] = {
        "_id": KEY,
        "state": "sending",
        "attempted_at": START - timedelta(minutes=2),
        "parts": [f"您好，已收到。{marker}"],
        "request": req.model_dump(mode="json"),
    }
    n.platform.taken = {"别的回复": "m7", f"您好，已收到。{marker}": "m8"}
    result = await n.sender.handle(req, REPLAY)
    assert result is not None and (result.status, result.platform_message_id) == ("sent", "m8")
    assert n.platform.posted == [] and n.platform.lookups == 1


async def test_an_unsendable_reply_is_sent_when_replayed_once_fixed_and_only_once() -> None:
    tokens: dict[str, str] = {}
    n = make(tokens=tokens)
    failed = await n.sender.handle(request())
    assert failed is not None and failed.status == "failed" and n.results.dead
    assert await n.sender.handle(request(), REPLAY) is not None
    assert n.platform.posted == []  # still no token: failed again, dead-lettered again
    assert len(n.results.dead) == 2
    tokens["@新疆检察"] = "token-xj"
    # A delivery that is no replay, or the same replay again, repeats the outcome.
    for origin in (Origin("replies.requested", 3, 41), REPLAY):
        again = await n.sender.handle(request(), origin)
        assert again is not None and again.status == "failed" and n.platform.posted == []
    # The second dead letter, replayed.
    sent = await n.sender.handle(request(), Origin("replies.requested", 3, 97, replay_of="x:3:97"))
    assert sent is not None and sent.status == "sent"
    assert [(c, t) for c, t, _, _ in n.platform.posted] == [(ReplyChannel.COMMENT, TARGET)]
    assert n.platform.lookups == 0  # nothing had reached the platform: nothing to look for
    await n.sender.handle(request(), REPLAY)
    assert len(n.platform.posted) == 1


async def test_a_reply_the_platform_client_cannot_send_is_counted_dead_lettered_and_retried() -> (
    None
):
    n = make()
    n.platform.errors = [NotSendable("comment needs the post id")]
    failed = await n.sender.handle(request())
    assert failed is not None and failed.status == "failed"
    assert failed.error == "not sendable: comment needs the post id"
    assert n.sender.metrics.unsendable.labels("@新疆检察")._value.get() == 1
    assert [key for key, _, _ in n.results.dead] == [KEY]
    sent = await n.sender.handle(request(), REPLAY)
    assert sent is not None and sent.status == "sent" and len(n.platform.posted) == 1


async def test_a_replayed_reply_whose_retries_ran_out_is_looked_for_before_posting() -> None:
    n = make(max_attempts=2)
    n.platform.errors = [RetryableError("HTTP 503", maybe_delivered=False)] * 2
    failed = await n.sender.handle(request())
    assert failed is not None and failed.status == "failed" and n.results.dead
    text = n.outbox.records[KEY]["text"]
    n.platform.taken = {text: "m5"}  # it did get through after all
    sent = await n.sender.handle(request(), REPLAY)
    assert sent is not None and (sent.status, sent.platform_message_id) == ("sent", "m5")
    assert n.platform.posted == []


def test_a_replayed_request_is_known_by_the_header_ops_puts_on_it() -> None:
    from types import SimpleNamespace

    from fengqiao.ops.dlq import REPLAY_HEADER
    from fengqiao.services.notifier import handlers

    assert handlers.REPLAY_HEADER == REPLAY_HEADER
    headers = [("other", b"x"), (REPLAY_HEADER, b"replies.requested:1:2")]
    record = SimpleNamespace(
        topic="replies.requested", partition=1, offset=5, key=b"c-1", headers=headers
    )
    assert handlers.origin_of(record) == Origin(
        "replies.requested", 1, 5, "c-1", replay_of="replies.requested:1:2"
    )
    assert (
        handlers.origin_of(SimpleNamespace(**{**record.__dict__, "headers": []})).replay_of is None
    )
