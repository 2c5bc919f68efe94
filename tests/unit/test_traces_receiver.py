"""`fengqiao traces` (fengqiao/traces.py): what the SDK's OTLP/HTTP exporter sends, received over
HTTP (gzip too), decoded, and printed as a tree, each span under its parent; anything else is
refused with 400 and the receiver goes on."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fengqiao.runtime import tracing
from fengqiao.traces import SERVER, Receiver, tree


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    try:
        yield receiving
    finally:
        receiving.close()


def exported() -> bytes:
    """One trace as the OTLP/HTTP exporter encodes it: a request and a publish under it."""
    spans = InMemorySpanExporter()
    tracing.setup("intake", exporter=spans)
    try:
        with (
            tracing.tracer().start_as_current_span("POST /webhooks", kind=SpanKind.SERVER),
            tracing.publishing("posts.raw"),
        ):
            pass
    finally:
        tracing.reset()
    return bytes(encode_spans(spans.get_finished_spans()).SerializeToString())


def test_an_export_is_received_decoded_and_printed_as_a_tree(receiver: Receiver) -> None:
    body = exported()
    headers = {"Content-Type": "application/x-protobuf"}
    answer = httpx.post(f"{receiver.url}/v1/traces", content=body, headers=headers)
    assert answer.status_code == 200
    gzipped = {**headers, "Content-Encoding": "gzip"}
    answer = httpx.post(f"{receiver.url}/v1/traces", content=gzip.compress(body), headers=gzipped)
    assert answer.status_code == 200
    spans = receiver.collected()
    assert len(spans) == 4 and {s.service for s in spans} == {"fengqiao-intake"}
    request = next(s for s in spans if s.name == "POST /webhooks")
    assert request.kind == SERVER
    publish = next(s for s in spans if s.name == "posts.raw publish")
    assert publish.parent_id == request.span_id and publish.trace_id == request.trace_id

    (done,) = receiver.quiet_traces(0).values()
    lines = tree(done[:2])
    assert len(lines) == 2
    assert lines[0].endswith("fengqiao-intake: POST /webhooks [server]")
    assert lines[1].endswith("  fengqiao-intake: posts.raw publish [producer]")
    assert receiver.collected() == []  # printed traces leave the receiver


def test_what_is_not_otlp_is_refused_and_the_receiver_goes_on(receiver: Receiver) -> None:
    assert httpx.post(f"{receiver.url}/v1/traces", content=b"\xff not protobuf").status_code == 400
    assert httpx.post(f"{receiver.url}/v1/traces", content=exported()).status_code == 200
    assert len(receiver.collected()) == 2
