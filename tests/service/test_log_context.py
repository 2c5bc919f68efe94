"""Lines logged while a consumed message is handled carry its topic, partition, offset,
`case_id` and `event_id` (set where every message passes: the dead-letter middleware and the
subscriber's decoder), and only then: the next message's lines carry the next one's."""

from __future__ import annotations

import io
import json
import logging

from faststream.kafka import TestKafkaBroker

from fengqiao.contracts import APPEALS
from fengqiao.runtime.logs import JsonFormatter
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.settings import StackSettings
from fengqiao.services.router import handlers
from fengqiao.services.router.app import build_router
from fengqiao.services.router.settings import RouterSettings
from tests.service.router.test_router_handlers import appeal


async def test_a_handled_message_s_lines_carry_its_case_event_topic_and_partition() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("router"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    runtime = Runtime.create("router", StackSettings(), with_mongo=False)
    handlers.register(
        runtime.broker,
        build_router(RouterSettings()),
        producer="router",
        group_id="router",
        registry=runtime.registry,
    )
    first, second = appeal(case_id="c-log-1"), appeal(case_id="c-log-2")
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(first, APPEALS.name, key=b"c-log-1")
            await broker.publish(second, APPEALS.name, key=b"c-log-2")
            await broker.publish(b'{"not": "an appeal"}', APPEALS.name, key=b"c-log-3")
            logging.getLogger("fengqiao.test").info("after the messages")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    routed = [line for line in lines if str(line["message"]).startswith("case c-log")]
    assert [(r["case_id"], r["event_id"], r["topic"]) for r in routed] == [
        ("c-log-1", first.event_id, APPEALS.name),
        ("c-log-2", second.event_id, APPEALS.name),
    ]
    assert all("partition" in r and "offset" in r for r in routed)
    [letter] = [line for line in lines if str(line["message"]).startswith("dead letter")]
    assert letter["topic"] == APPEALS.name and "case_id" not in letter
    [after] = [line for line in lines if line["message"] == "after the messages"]
    assert not {"case_id", "event_id", "topic"} & set(after)
