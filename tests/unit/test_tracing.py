"""The tracing seam (fengqiao/runtime/tracing.py): off without an OTLP endpoint, and then nothing
is installed or imported; on, a provider named for the service as the SDK's environment says;
`traceparent` into Kafka headers and back; a batch's span linked to each message, and each
message's work going on in its own trace."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fengqiao.runtime import tracing
from fengqiao.runtime.logs import JsonFormatter, trace_ids
from fengqiao.runtime.messaging import make_broker

JSON = [("content-type", b"application/json")]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup("intake", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.reset()


@pytest.fixture
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*tracing.ENDPOINTS, "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Record:
    headers: list[tuple[str, bytes]]
    offset: int


def published(name: str) -> tuple[Record, trace.SpanContext]:
    """A Kafka record as a producer in its own trace would have sent it."""
    with tracing.tracer().start_as_current_span(name) as span:
        return Record(tracing.headers(list(JSON)), 7), span.get_span_context()


@pytest.mark.usefixtures("no_endpoint")
def test_off_without_an_endpoint_nothing_is_installed_and_everything_is_handed_back() -> None:
    assert not tracing.wanted()
    assert tracing.setup("intake") is False
    assert not tracing.enabled()
    assert tracing.headers(JSON) is JSON  # the same list: not even a copy per message
    assert tracing.kafka_middlewares() == []
    app = FastAPI()
    assert tracing.instrument_app(app) is app and app.user_middleware == []
    assert tracing.traced("appeals apply", ["m"]) is None
    tracing.remember_batch(["m"], [Record(JSON, 1)])
    assert tracing.origin("m") is None
    assert trace_ids() is None
    broker = make_broker("127.0.0.1:9", service="intake")
    assert not any(type(m).__name__ == "KafkaTelemetryMiddleware" for m in broker.middlewares)


@pytest.mark.usefixtures("no_endpoint")
def test_off_the_sdk_is_not_even_imported() -> None:
    code = (
        "import sys; from fengqiao.runtime import tracing; tracing.setup('intake');"
        "import fengqiao.services.intake.app;"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk',"
        "'opentelemetry.instrumentation', 'opentelemetry.exporter'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == "[]"


def test_an_endpoint_or_a_disabled_sdk_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.wanted()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    try:
        assert tracing.setup("router") is True  # OTLP over HTTP, in batches
        assert tracing.enabled()
        assert len(tracing.kafka_middlewares()) == 1
    finally:
        tracing.reset()
    assert not tracing.enabled()


@pytest.mark.usefixtures("no_endpoint")
def test_the_service_is_named_and_the_sdk_reads_its_own_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = InMemorySpanExporter()
    tracing.setup("tracker", exporter=exporter)
    with tracing.tracer().start_as_current_span("one"):
        pass
    tracing.reset()
    (span,) = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "fengqiao-tracker"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "tracker-eu")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    tracing.setup("tracker", exporter=exporter)
    with tracing.tracer().start_as_current_span("two") as span:
        assert not span.is_recording()
    tracing.reset()
    assert exporter.get_finished_spans() == ()


def test_traceparent_goes_into_the_headers_and_comes_back(spans: InMemorySpanExporter) -> None:
    assert tracing.headers(JSON) == JSON  # outside any span: nothing to carry
    record, sent = published("webhook")
    names = [name for name, _ in record.headers]
    assert names[0] == "content-type" and "traceparent" in names
    received = tracing.span_context_of(tracing.extract(record.headers))
    assert received is not None
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)
    assert tracing.span_context_of(tracing.extract([("content-type", b"x")])) is None


def test_a_publish_outside_faststream_has_its_producer_span(spans: InMemorySpanExporter) -> None:
    with (
        tracing.tracer().start_as_current_span("request") as request,
        tracing.publishing("posts.raw"),
    ):
        headers = tracing.headers(JSON)
    publish = next(s for s in spans.get_finished_spans() if s.name == "posts.raw publish")
    assert publish.parent is not None
    assert publish.parent.span_id == request.get_span_context().span_id
    carried = tracing.span_context_of(tracing.extract(headers))
    assert carried is not None and carried.span_id == publish.context.span_id


def test_a_batch_links_each_message_and_each_goes_on_in_its_own_trace(
    spans: InMemorySpanExporter,
) -> None:
    (first, a), (second, b) = published("appeal a"), published("appeal b")
    messages = [object(), object()]
    with tracing.tracer().start_as_current_span("appeals process") as batch:
        tracing.remember_batch(messages, [first, second])
        origin = tracing.span_context_of(tracing.origin(messages[1]))
        assert origin is not None and origin.trace_id == b.trace_id
        with tracing.joined_by(tracing.traced("appeals apply", messages), [0, 1], case_id="c1"):
            assert tracing.current_trace_id() == trace.format_trace_id(a.trace_id)
        reply = object()
        tracing.follow(reply, messages[1])
        with tracing.within(reply):
            assert tracing.current_trace_id() == trace.format_trace_id(b.trace_id)
        assert tracing.current_trace_id() == trace.format_trace_id(
            batch.get_span_context().trace_id
        )
    finished = {s.name: s for s in spans.get_finished_spans()}
    linked = {link.context.span_id for link in finished["appeals process"].links}
    assert linked == {a.span_id, b.span_id}
    applied = finished["appeals apply"]
    assert applied.context.trace_id == a.trace_id and applied.parent.span_id == a.span_id
    assert {link.context.span_id for link in applied.links} == {
        b.span_id,
        batch.get_span_context().span_id,
    }
    assert applied.attributes["case_id"] == "c1"


def test_messages_without_a_context_start_nothing(spans: InMemorySpanExporter) -> None:
    messages = [object()]
    tracing.remember_batch(messages, [Record(list(JSON), 1)])
    with tracing.joined_for("replies.requested send", messages):
        assert tracing.current_trace_id() is None
    with tracing.joined_for("replies.requested send", [object()]):  # never handed over
        assert tracing.current_trace_id() is None
    assert spans.get_finished_spans() == ()


def test_log_lines_carry_the_trace_id(spans: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("intake")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "accepted", None, None)
    assert "trace_id" not in json.loads(formatter.format(record))
    with tracing.tracer().start_as_current_span("webhook") as span:
        line = json.loads(formatter.format(record))
    assert line["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)


@dataclass
class Request:
    case_id: str


def test_a_case_s_span_names_its_case(spans: InMemorySpanExporter) -> None:
    (record, sent) = published("appeal")
    requests = [Request("c-9")]
    tracing.remember_batch(requests, [record])
    with tracing.joined_for("replies.requested send", requests):
        assert tracing.current_trace_id() == trace.format_trace_id(sent.trace_id)
    span = next(s for s in spans.get_finished_spans() if s.name == "replies.requested send")
    assert span.attributes["case_id"] == "c-9"


def test_what_is_made_from_a_message_follows_the_span_its_work_went_on_in(
    spans: InMemorySpanExporter,
) -> None:
    """The normalizer reads each post of a poll in a span of the post's trace, and publishes its
    appeal later, after the poll's linking: in that span (`carried_on`)."""
    (record, sent) = published("post")
    posts = [object()]
    with tracing.tracer().start_as_current_span("posts.raw process batch"):
        tracing.remember_batch(posts, [record])
        with tracing.joined_for("posts.raw process", posts):
            tracing.carried_on(posts[0])
        appeal = object()
        tracing.follow(appeal, posts[0])
        with tracing.within(appeal), tracing.tracer().start_as_current_span("appeals publish"):
            pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    process, publish = finished["posts.raw process"], finished["appeals publish"]
    assert process.context.trace_id == publish.context.trace_id == sent.trace_id
    assert publish.parent is not None and publish.parent.span_id == process.context.span_id
