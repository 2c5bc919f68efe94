"""The fault drill's parts that need no stack (issue 18, deliver 7): its pushes are signed as
intake checks them and are appeals that open a case; its count tells an acknowledgment on the
right channel from one elsewhere, a second one from the first; its table adds up."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fengqiao.pipeline import route_pipeline
from fengqiao.services.intake.readers import parse_weibo_time
from fengqiao.services.intake.weibo import WeiboPush, check_signature
from fengqiao.services.router.cli import route_lines
from fengqiao.testing.audit import ACK_PHRASE, Outcome, attribute
from fengqiao.testing.drill import Row, table
from fengqiao.testing.pushes import Delivery, PushLoad, weibo_time

TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "notifier" / "templates"


def test_a_push_is_signed_as_intake_checks_it_and_reads_as_weibo_writes_it() -> None:
    load = PushLoad("http://intake", secret="s3cret", run="r1")
    query = load.signed_query()
    check_signature(
        "s3cret",
        signature=query["signature"],
        timestamp=query["timestamp"],
        nonce=query["nonce"],
        now=datetime.now(UTC),
        window_seconds=300,
    )
    with pytest.raises(Exception, match="signature"):
        check_signature(
            "other",
            signature=query["signature"],
            timestamp=query["timestamp"],
            nonce=query["nonce"],
            now=datetime.now(UTC),
            window_seconds=300,
        )
    at = datetime(2026, 11, 27, 13, 0, tzinfo=UTC).timestamp()
    assert weibo_time(at) == "Fri Nov 27 21:00:00 +0800 2026"
    assert parse_weibo_time(weibo_time(at)).timestamp() == at


def test_every_fifth_push_is_a_private_message_and_the_rest_mention_a_status() -> None:
    load = PushLoad("http://intake", secret="s", run="r1")
    pushes = [load.make(i) for i in range(10)]
    assert [p.channel for p in pushes].count("private_message") == 2
    for push in pushes:
        body = WeiboPush.model_validate_json(push.body)
        assert body.sender_id == push.sender_id
        if push.channel == "comment":
            assert body.type == "mention"
            assert body.data == {"subtype": "status", "key": push.post_id}
        else:
            assert body.type == "text" and push.post_id is None
    assert len({p.sender_id for p in pushes}) == 10  # never linked as one author's repeats
    assert PushLoad("http://intake", secret="s", run="r2").make(0).sender_id != pushes[0].sender_id


def test_every_push_text_opens_a_case_at_once() -> None:
    """Not a post for the triage queue (a case would wait for a dispatcher): if a retrained
    model changes that, the drill would count cases that were never meant to open."""
    load = PushLoad("http://intake", secret="s", run="5eed0001")
    lines = []
    for i in range(0, 96, 1):
        body = json.loads(load.make(i).body)
        post = {"id": str(i), "account": "@新疆检察", "author": body["sender_id"]}
        lines.append(json.dumps(post | {"channel": "push", "text": body["text"]}))
    out = io.StringIO()
    assert asyncio.run(route_lines(lines, *route_pipeline(), out, io.StringIO())) == 0
    routed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(routed) == 96
    assert [r["id"] for r in routed if not r["is_appeal"] or r["triage"]] == []


def test_every_urgent_push_is_an_urgent_appeal_and_only_those() -> None:
    """`urgent_every` mixes appeals in danger into a load (bench/e2e.py measures how long they
    wait behind a burst): triage must read them as urgent, and the others as not."""
    load = PushLoad("http://intake", secret="s", run="5eed0002", urgent_every=4)
    lines = []
    for i in range(16):
        body = json.loads(load.make(i).body)
        post = {"id": str(i), "account": "@新疆检察", "author": body["sender_id"]}
        lines.append(json.dumps(post | {"channel": "push", "text": body["text"]}))
    out = io.StringIO()
    assert asyncio.run(route_lines(lines, *route_pipeline(), out, io.StringIO())) == 0
    routed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in routed if r["urgent"]] == ["3", "7", "11", "15"]
    assert [load.make(i).urgent for i in range(8)] == [False, False, False, True] * 2
    assert all(r["is_appeal"] for r in routed)


def test_the_acknowledgment_phrase_is_in_both_acknowledgment_templates_and_no_other() -> None:
    having = sorted(p.name for p in TEMPLATES.glob("*.j2") if ACK_PHRASE in p.read_text())
    assert having == ["acknowledgment.comment.j2", "acknowledgment.private_message.j2"]


def outcome(load: PushLoad, index: int, case: str) -> Outcome:
    delivery = Delivery(load.make(index), sent_at=0.0, accepted_at=1.0)
    return Outcome(delivery, cases={case}, assigned={case})


def ack(kind: str, target: dict[str, str], text: str, at: str) -> dict[str, object]:
    return {"kind": kind, "target": target, "text": f"{ACK_PHRASE} {text}", "received_at": at}


def test_acknowledgments_are_given_to_their_appeal_by_channel() -> None:
    load = PushLoad("http://intake", secret="s", run="r1")
    mention, private = outcome(load, 0, "c-aaaaaaaaaaaa11111111"), outcome(load, 4, "c-b2222222")
    post, sender = mention.delivery.push.post_id, private.delivery.push.sender_id
    assert post is not None
    attribute(
        [mention, private],
        [
            ack("comment", {"id": post}, "编号11111111", "2026-12-07T08:00:02+00:00"),
            ack("comment", {"id": post}, "编号11111111", "2026-12-07T08:00:01+00:00"),
            ack("private_message", {"uid": sender}, "编号b2222222", "2026-12-07T08:00:03+00:00"),
            ack("comment", {"id": "999"}, "编号b2222222", "2026-12-07T08:00:04+00:00"),
            ack("comment", {"id": "998"}, "编号77777777", "2026-12-07T08:00:05+00:00"),
        ],
    )
    assert len(mention.acks) == 2 and not mention.elsewhere  # a second one: a duplicate
    assert mention.first_ack_at == datetime.fromisoformat("2026-12-07T08:00:01+00:00").timestamp()
    assert "acknowledged 2 times" in (mention.problem() or "")
    assert len(private.acks) == 1 and len(private.elsewhere) == 1  # by its reference, as a comment
    assert "wrong channel" in (private.problem() or "")


def test_an_appeal_is_complete_with_one_case_and_one_acknowledgment_only() -> None:
    load = PushLoad("http://intake", secret="s", run="r1")
    found = outcome(load, 0, "c-1")
    assert not found.complete and "never acknowledged" in (found.problem() or "")
    found.acks.append({"kind": "comment"})
    assert found.complete and found.problem() is None
    found.cases.add("c-2")
    assert not found.complete and "2 cases" in (found.problem() or "")
    unopened = Outcome(found.delivery, assigned={"c-3"})
    assert "never opened" in (unopened.problem() or "")
    assert "no appeal" in (Outcome(found.delivery).problem() or "")


def row(**changes: object) -> Row:
    fields: dict[str, object] = {
        "fault": "kill -9 tracker",
        "sent": 10,
        "accepted": 10,
        "cases": 10,
        "acks": 10,
        "duplicates": 0,
        "missing": 0,
        "wrong_channel": 0,
        "dead_letters": 0,
        "lag": 0,
        "drain_seconds": 3.2,
        "drained": True,
    }
    return Row(**(fields | changes))  # type: ignore[arg-type]


def test_a_row_is_clean_only_when_every_figure_is() -> None:
    assert row().clean
    for change in (
        {"accepted": 9},
        {"cases": 9},
        {"acks": 9},
        {"duplicates": 1},
        {"missing": 1},
        {"wrong_channel": 1},
        {"dead_letters": 1},
        {"lag": 1},
        {"drained": False},
    ):
        assert not row(**change).clean, change


def test_the_table_has_a_line_per_fault_and_a_total() -> None:
    text = table([row(), row(fault="store down 30 s", dead_letters=5, drained=False)])
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["fault", "sent"]
    assert lines[3].split()[:3] == ["total", "20", "20"]
    assert lines[2].split()[-4:] == ["5", "0", ">3", "(not)"]
