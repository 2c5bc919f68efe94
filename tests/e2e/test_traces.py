"""One appeal is one trace (issue 20, deliver 1): the whole fleet as processes, exporting over
OTLP/HTTP to a receiver in this test (`OTEL_EXPORTER_OTLP_ENDPOINT`), takes one appeal; its spans
form a single trace from intake's webhook request, through `posts.raw` (a direct publish),
the normalizer, the router, the tracker's case (a batch hop), its outbox (a direct publish),
the notifier's send (a batch hop), its call to the platform (httpx, and the simulator's side of
it), to the tracker's handling of `replies.sent`. The JSON log lines of the services carry
that trace's id. Any hop that drops `traceparent` leaves the spans after it in another trace,
and the test names the first one missing."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    links: tuple[str, ...]  # the trace ids linked


SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # the protobuf's SpanKind values


class Receiver:
    """An OTLP/HTTP trace receiver (protobuf, as the SDK's exporter sends) on a free port."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            links=tuple(link.trace_id.hex() for link in span.links),
                        )
                    )
        with self.lock:
            self.spans += spans

    def collected(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


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
    ("fengqiao-router", "the router", lambda s: s.name == "appeals process"),
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
        f"where traceparent was dropped); it has: {sorted({(s.service, s.name) for s in ours})}"
    )
    tracked = [s for s in ours if s.service == "fengqiao-tracker" and s.name.endswith(" apply")]
    assert {s.attributes.get("case_id") for s in tracked} == {case_id}
    # Each span's parent is in the trace too: one tree, not spans that only share an id.
    ids = {s.span_id for s in ours}
    roots = [s for s in ours if not s.parent_id or s.parent_id not in ids]
    assert [(r.service, r.name) for r in roots] == [(webhooks[0].service, webhooks[0].name)]
    # A batch's own span (FastStream's, one per poll) links to the messages it was handed.
    batches = [s for s in receiver.collected() if s.name == "replies.requested process"]
    assert any(trace_id in s.links for s in batches)
    assert_logs_carry(Path(fengqiao_services.log_dir), trace_id, case_id)


def assert_logs_carry(log_dir: Path, trace_id: str, case_id: str) -> None:
    """Lines the services logged while handling the appeal carry its trace id."""
    services = set()
    for path in sorted(log_dir.glob("*.log")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if trace_id in line:
                fields = json.loads(line)
                assert fields["trace_id"] == trace_id
                services.add(fields["service"])
    assert services, f"no log line carries the trace id {trace_id} (case {case_id})"
