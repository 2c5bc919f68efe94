"""`fengqiao traces`: a small OTLP/HTTP trace receiver that prints each trace as a tree, for
following one appeal through the services where no Jaeger or Tempo runs (no Docker here):

    .venv/bin/fengqiao traces --port 4318 &                       # prints each trace when done
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318      # the services export to it
    make demo

It takes what the SDK's OTLP/HTTP exporter sends (protobuf on `/v1/traces`, gzip or not), and
prints a trace once no span of it came for `--quiet` seconds: each span under its parent, with
its service, name, duration and the case it worked on. The end-to-end test of traces
(`tests/e2e/test_traces.py`) reads the fleet's spans through the same `Receiver`.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP's SpanKind values
KINDS = {SERVER: "server", CLIENT: "client", PRODUCER: "producer", CONSUMER: "consumer"}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    start_ns: int
    end_ns: int
    attributes: Mapping[str, Any]
    links: tuple[str, ...]  # the trace ids it links to


def decode(body: bytes) -> list[Span]:
    """The spans of one OTLP/HTTP export request (protobuf)."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name"))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    Span(
                        service=service,
                        name=span.name,
                        kind=span.kind,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        links=tuple(link.trace_id.hex() for link in span.links),
                    )
                )
    return spans


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind) if kind else None
    return found


class Receiver:
    """An OTLP/HTTP receiver on `host:port` (0: a free one) in a thread of its own; `url` is
    what OTEL_EXPORTER_OTLP_ENDPOINT should say."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.lock = threading.Lock()
        self.spans: list[Span] = []
        self.arrived: dict[str, float] = {}  # trace id → monotonic time its last span came
        self.server = ThreadingHTTPServer((host, port), _handler(self.take))
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def take(self, body: bytes) -> None:
        spans = decode(body)
        now = time.monotonic()
        with self.lock:
            self.spans += spans
            for span in spans:
                self.arrived[span.trace_id] = now

    def collected(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def quiet_traces(self, seconds: float) -> dict[str, list[Span]]:
        """The traces no span came for in `seconds`, taken out of the receiver."""
        limit = time.monotonic() - seconds
        with self.lock:
            done = {t for t, at in self.arrived.items() if at <= limit}
            taken = {t: [s for s in self.spans if s.trace_id == t] for t in done}
            self.spans = [s for s in self.spans if s.trace_id not in done]
            for trace_id in done:
                del self.arrived[trace_id]
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(take: Callable[[bytes], None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            try:
                take(body)
            except Exception:  # not OTLP protobuf: refused, the receiver goes on
                self.send_error(400, "not an OTLP/HTTP protobuf export request")
                return
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:  # no line per export
            pass

    return Handler


def tree(spans: list[Span]) -> list[str]:
    """The lines of a trace: each span under its parent, in the order they started."""
    ids = {s.span_id for s in spans}
    children: dict[str, list[Span]] = {}
    for span in sorted(spans, key=lambda s: s.start_ns):
        parent = span.parent_id if span.parent_id in ids else ""
        children.setdefault(parent, []).append(span)
    start = min((s.start_ns for s in spans), default=0)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, ()):
            offset = (span.start_ns - start) / 1e6
            took = (span.end_ns - span.start_ns) / 1e6
            case = span.attributes.get("case_id")
            lines.append(
                f"{offset:9.1f} ms {took:8.1f} ms  {'  ' * depth}{span.service}: {span.name}"
                + (f" [{KINDS[span.kind]}]" if span.kind in KINDS else "")
                + (f" case {case}" if case else "")
            )
            walk(span.span_id, depth + 1)

    walk("", 0)
    return lines


def serve(host: str, port: int, quiet: float, print_line: Callable[[str], None] = print) -> int:
    """Receive until interrupted; print each trace once it is quiet."""
    receiver = Receiver(host, port)
    print_line(f"receiving OTLP/HTTP traces on {receiver.url} (OTEL_EXPORTER_OTLP_ENDPOINT)")
    try:
        while True:
            time.sleep(0.5)
            for trace_id, spans in receiver.quiet_traces(quiet).items():
                services = sorted({s.service for s in spans})
                print_line(f"\ntrace {trace_id}: {len(spans)} spans, {', '.join(services)}")
                for line in tree(spans):
                    print_line(line)
    except KeyboardInterrupt:
        return 0
    finally:
        receiver.close()
