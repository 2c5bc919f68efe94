"""OpenTelemetry traces of the services: the one seam every service goes through.

`setup(service)` (`fengqiao run <service>` calls it before building the app) installs the SDK's
TracerProvider, resource `service.name=fengqiao-<service>`, exporting over OTLP/HTTP, **only when
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set**. Otherwise
nothing is installed or imported and every helper below gives back what it was handed: tracing
off costs a flag test. The SDK reads the other standard variables itself (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*`
headers, timeout, compression); `OTEL_SDK_DISABLED=true` keeps it off.

Where the services use it:

- `kafka_middlewares()`: FastStream's `KafkaTelemetryMiddleware` on every broker (`make_broker`):
  a span per message consumed (the publisher's `traceparent` its parent) and per publish;
- `instrument_app(app)`, `instrument_client(client)`: FastAPI's and httpx's instrumentation on
  every HTTP app and on the clients that call out (the notifier's platform, the workbench's
  services, intake's pollers);
- `headers(base)`: the W3C `traceparent` of the current span added to a Kafka message's headers
  (`DirectProducer`, which publishes outside FastStream);
- batches: FastStream gives a batch subscriber's poll one span of its own. `remember_batch`
  (the batch subscriber's decoder) links that span to each message's context and remembers each
  decoded message's context; `origin(message)` gives it back, `follow(derived, message)` lends
  it to what was made from the message (the notifier's `ReplySent`, the router's orders),
  `carried_on(message)` makes a span opened for the message its context from then on,
  `within(message)` publishes in it (`publish_to`, `publish_all`, `DirectProducer`), and
  `joined(name, contexts)` is the span of work done for some messages at once (a case's changes
  in the tracker, a case's replies in the notifier): its parent is the first message's context
  and it links to the others, so one appeal's trace runs on through the batch hops instead of
  ending at each poll.

`trace_id` of the current span goes on every log line (`fengqiao.runtime.logs.set_trace_ids`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind

from fengqiao.runtime.logs import set_trace_ids

ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTRUMENTATION = "fengqiao"
# Probes and scrapes are not worth a trace each.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

App = TypeVar("App", bound="FastAPI")
Client = TypeVar("Client", bound="httpx.Client | httpx.AsyncClient")
_provider: Any = None  # the SDK's TracerProvider once `setup` installed one
_tracer: trace.Tracer = trace.NoOpTracer()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()
# The contexts of the messages a batch handler was handed, by the id of each decoded message
# (kept with it, so an id is never read for another object): set by the batch decoder in the
# handler's context, so the tasks the handler starts see them too.
_ORIGINS: ContextVar[dict[int, tuple[object, Context]] | None] = ContextVar(
    "fengqiao_trace_origins", default=None
)


def wanted() -> bool:
    """Whether the environment asks for traces: an OTLP endpoint is set, the SDK not disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINTS)


def setup(service: str, *, exporter: Any = None) -> bool:
    """Install the TracerProvider of `service` when the environment asks for traces (`wanted`),
    exporting over OTLP/HTTP in batches; with `exporter` (a test's `InMemorySpanExporter`),
    whatever the environment says, each span handed to it as it ends. True when installed."""
    global _provider, _tracer
    if exporter is None and not wanted():
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    # OTEL_SERVICE_NAME (read by the SDK) names the service when set; else fengqiao-<service>.
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"fengqiao-{service}"}
    provider = TracerProvider(resource=Resource.create(named))  # sampler: OTEL_TRACES_SAMPLER
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)  # for libraries that use the global one (once)
    _provider, _tracer = provider, provider.get_tracer(INSTRUMENTATION)
    set_trace_ids(current_trace_id)
    return True


def reset() -> None:
    """Tracing off again (tests): spans made from now on are not recorded by this seam."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, trace.NoOpTracer()
    set_trace_ids(lambda: None)


def enabled() -> bool:
    return _provider is not None


def tracer() -> trace.Tracer:
    """fengqiao's own tracer (a no-op one while tracing is off)."""
    return _tracer


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


# ------------------------------------------------------------------ instrumentation


def kafka_middlewares() -> list[Any]:
    """FastStream's Kafka telemetry middleware (none while tracing is off)."""
    if _provider is None:
        return []
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    return [KafkaTelemetryMiddleware(tracer_provider=_provider)]


def instrument_app(app: App) -> App:
    """`app` (FastAPI) with a server span per request (but probes and scrapes)."""
    if _provider is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=_provider,
            excluded_urls=EXCLUDED_URLS,
            exclude_spans=["receive", "send"],
        )
    return app


def instrument_client(client: Client) -> Client:
    """`client` (an httpx client, whatever its transport) with a client span per request,
    carrying `traceparent` to the server it calls."""
    if _provider is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=_provider)
    return client


# ------------------------------------------------------------------ Kafka headers


def headers(base: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """`base` with the current span's `traceparent` (and `tracestate`) added; `base` itself
    while tracing is off or outside any span."""
    if _provider is None:
        return base
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    if not carrier:
        return base
    return [*base, *((name, value.encode()) for name, value in carrier.items())]


def publishing(topic: str) -> contextlib.AbstractContextManager[Any]:
    """The producer span of a message published outside FastStream (`<topic> publish`), current
    inside (so `headers` carries it); nothing while tracing is off."""
    if _provider is None:
        return _NOTHING
    return _tracer.start_as_current_span(
        f"{topic} publish",
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
    )


def extract(record_headers: Iterable[tuple[str, bytes | None]] | None) -> Context:
    """The context a Kafka message's headers carry (an empty one when none)."""
    carrier = {
        name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
        for name, value in record_headers or ()
        if value is not None
    }
    return propagate.extract(carrier)


def span_context_of(ctx: Context | None) -> trace.SpanContext | None:
    if ctx is None:
        return None
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context if span_context.is_valid else None


# ------------------------------------------------------------------ batches


def remember_batch(messages: Sequence[object], records: Sequence[Any]) -> None:
    """For a batch handler (called in its context): each decoded message's context, read from
    its record's headers, remembered for `origin`, and the current span (FastStream's span of
    the poll) linked to each of them. Nothing while tracing is off."""
    if _provider is None:
        return
    origins: dict[int, tuple[object, Context]] = {}
    batch_span = trace.get_current_span()
    linked: set[tuple[int, int]] = set()
    for message, record in zip(messages, records, strict=True):
        ctx = extract(getattr(record, "headers", None))
        origins[id(message)] = (message, ctx)
        span_context = span_context_of(ctx)
        if span_context is not None and batch_span.is_recording():
            key = (span_context.trace_id, span_context.span_id)
            if key not in linked:
                linked.add(key)
                offset = getattr(record, "offset", None)
                batch_span.add_link(span_context, {"messaging.kafka.offset": offset or 0})
    _ORIGINS.set(origins)


def origin(message: object) -> Context | None:
    """The context `message` was published in, if a batch handler was handed it (`remember_batch`)
    or it was made from such a message (`follow`)."""
    origins = _ORIGINS.get()
    if origins is None:
        return None
    found = origins.get(id(message))
    return found[1] if found is not None and found[0] is message else None


# A span's name and the context of each message of a batch (by position): what a batch
# handler hands the code that works on some of them at once (`joined_by`).
Traced = tuple[str, Sequence[Context | None]]


def traced(name: str, messages: Iterable[object]) -> Traced | None:
    """`name` and `origin` of each message (None while tracing is off)."""
    if _provider is None:
        return None
    return name, [origin(message) for message in messages]


def joined_for(
    name: str, messages: Iterable[object], **attributes: Any
) -> contextlib.AbstractContextManager[Any]:
    """`joined` for `messages` (their `origin`s); the span's `case_id` is the first message's,
    unless given."""
    if _provider is None:
        return _NOTHING
    messages = list(messages)
    if messages:
        attributes.setdefault("case_id", getattr(messages[0], "case_id", None))
    return joined(name, [origin(message) for message in messages], **attributes)


def joined_by(
    batch: Traced | None, positions: Iterable[int], **attributes: Any
) -> contextlib.AbstractContextManager[Any]:
    """`joined` for the messages at `positions` of a `traced` batch."""
    if batch is None:
        return _NOTHING
    name, contexts = batch
    return joined(name, [contexts[i] for i in positions], **attributes)


def follow(derived: object, source: object) -> None:
    """`derived`, made from `source` (a result from its request), is published in `source`'s
    context: its trace goes on."""
    origins = _ORIGINS.get()
    found = origin(source)
    if origins is not None and found is not None:
        origins[id(derived)] = (derived, found)


def carried_on(message: object) -> None:
    """The work on `message` goes on in the current span (one opened for it, `joined_for`): what
    is made from it afterwards (`follow`) is published in that span's context."""
    origins = _ORIGINS.get()
    if origins is not None and origin(message) is not None:
        origins[id(message)] = (message, otel_context.get_current())


def within(message: object) -> contextlib.AbstractContextManager[Any]:
    """Publish `message` in the context it was made in (`origin`), if known."""
    if _provider is None:
        return _NOTHING
    ctx = origin(message)
    return _NOTHING if ctx is None else attached(ctx)


@contextlib.contextmanager
def attached(ctx: Context) -> Iterator[None]:
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


def joined(
    name: str, contexts: Iterable[Context | None] | None, **attributes: Any
) -> contextlib.AbstractContextManager[Any]:
    """The span of work done at once for some messages of a batch, current inside: a child of
    the first message's context, linked to the other messages' and to the batch's span (the
    current one). Nothing while tracing is off or none of the messages carried a context."""
    if _provider is None or contexts is None:
        return _NOTHING
    span_contexts = [s for s in map(span_context_of, contexts) if s is not None]
    if not span_contexts:
        return _NOTHING
    parent, *others = span_contexts
    batch = trace.get_current_span().get_span_context()
    links = [Link(s) for s in others if s != parent]
    if batch.is_valid:
        links.append(Link(batch, {"fengqiao.link": "batch"}))
    return _tracer.start_as_current_span(
        name,
        context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={k: v for k, v in attributes.items() if v is not None},
    )
