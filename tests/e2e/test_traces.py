"""One appeal is one trace (issue 20, deliver 1): the whole fleet as processes, exporting over
OTLP/HTTP to a receiver in this test (`OTEL_EXPORTER_OTLP_ENDPOINT`), takes one appeal; its spans
form a single trace from intake's webhook request, through `posts.raw` (a direct publish),
the normalizer, the router, the tracker's case (a batch hop), its outbox (a direct publish),
the notifier's send (a batch hop), its call to the platform (httpx, and the simulator's side of
it), to the tracker's handling of `replies.sent`. The JSON log lines of the services carry
that trace's id. Any hop that drops `traceparent` leaves the spans after it in another trace,
and the test names the first one missing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fengqiao.traces import CLIENT, SERVER, Receiver, Span, tree


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    try:
        yield receiving
    finally:
        receiving.close()


@pytest.fixture(scope="module")
def fengqiao_service_env(receiver: Receiver) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # spans leave each process within 0.2 s
        "FENGQIAO_LOG_FORMAT": "json",
        "FENGQIAO_LOG_LEVEL": "DEBUG",  # lines in every service while the appeal is handled
    }


def named(name: str) -> Any:
    return lambda s: s.name == name


# Each hop of one appeal, in order: (service, what its span is). A hop whose span is not in the
# webhook's trace is where `traceparent` was dropped.
HOPS = [
    ("fengqiao-intake", "the webhook request", lambda s: s.kind == SERVER and "webhooks" in s.name),
    ("fengqiao-intake", "the direct publish to posts.raw", lambda s: s.name == "posts.raw publish"),
    ("fengqiao-intake", "the normalizer", lambda s: s.name == "posts.raw process"),
    ("fengqiao-intake", "the publish to appeals", lambda s: s.name == "appeals publish"),
    ("fengqiao-router", "the router", lambda s: s.name == "appeals route"),
    ("fengqiao-tracker", "the tracker opening the case", lambda s: s.name == "appeals apply"),
    ("fengqiao-tracker", "the tracker's dispatch", lambda s: s.name == "dispatch.orders apply"),
    (
        "fengqiao-tracker",
        "the tracker's outbox publish to replies.requested",
        lambda s: s.name == "replies.requested publish",
    ),
    ("fengqiao-notifier", "the notifier's send", lambda s: s.name == "replies.requested send"),
    ("fengqiao-notifier", "the call to the platform", lambda s: s.kind == CLIENT),
    ("fengqiao-simulator", "the platform's side of the call", lambda s: s.kind == SERVER),
    ("fengqiao-notifier", "the publish to replies.sent", named("replies.sent publish")),
    ("fengqiao-tracker", "the tracker taking replies.sent", named("replies.sent apply")),
]


def missing_hops(spans: list[Span], trace_id: str) -> list[str]:
    ours = [s for s in spans if s.trace_id == trace_id]
    return [
        f"{what} ({service})"
        for service, what, matches in HOPS
        if not any(s.service == service and matches(s) for s in ours)
    ]


def test_one_appeal_is_one_trace_from_the_webhook_to_replies_sent(
    fengqiao_services: Any, post_appeal: Any, receiver: Receiver
) -> None:
    posted = post_appeal("博乐市的工地老板拖欠我们工资三个月了，求助")
    case_id = fengqiao_services.case_id(posted, timeout=90)
    fengqiao_services.wait_for_case(
        case_id,
        where=lambda c: any(e["event"] == "case.acknowledged" for e in c["timeline"]),
        timeout=90,
    )
    webhooks = [s for s in receiver.collected() if HOPS[0][2](s)]
    assert len(webhooks) == 1, f"one webhook request expected, got {webhooks}"
    trace_id = webhooks[0].trace_id

    deadline = time.monotonic() + 20  # the last spans leave the processes within 0.2 s
    missing = missing_hops(receiver.collected(), trace_id)
    while missing and time.monotonic() < deadline:
        time.sleep(0.2)
        missing = missing_hops(receiver.collected(), trace_id)
    ours = [s for s in receiver.collected() if s.trace_id == trace_id]
    assert not missing, (
        f"the trace {trace_id} of the webhook lacks: {', '.join(missing)} (the first is the hop "
        "where traceparent was dropped); it has:\n" + "\n".join(tree(ours))
    )
    per_case = [s for s in ours if s.name.endswith((" apply", " send"))]  # tracker, notifier
    assert len(per_case) >= 4 and {s.attributes.get("case_id") for s in per_case} == {case_id}
    # Each span's parent is in the trace too: one tree, not spans that only share an id.
    ids = {s.span_id for s in ours}
    roots = [s for s in ours if not s.parent_id or s.parent_id not in ids]
    assert [(r.service, r.name) for r in roots] == [(webhooks[0].service, webhooks[0].name)]
    # A batch's own span (FastStream's, one per poll) links to the messages it was handed.
    batches = [s for s in receiver.collected() if s.name == "replies.requested process"]
    assert any(trace_id in s.links for s in batches)
    assert_logs_carry(Path(fengqiao_services.log_dir), trace_id, case_id)


def assert_logs_carry(log_dir: Path, trace_id: str, case_id: str) -> None:
    """Lines each service logged while handling the appeal (at DEBUG: its Kafka client's and
    the store's lines too) carry its trace id."""
    services = set()
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if trace_id in line:
                fields = json.loads(line)
                assert fields["trace_id"] == trace_id
                services.add(fields["service"])
    wanted = {"intake", "router", "tracker", "notifier"}
    assert services >= wanted, (
        f"no log line of {sorted(wanted - services)} carries the trace id {trace_id} "
        f"(case {case_id}; logs in {log_dir})"
    )
