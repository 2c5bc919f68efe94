"""Logging of every service process: one JSON object a line on stderr (or text for a developer's
terminal), carrying what is known of the work at hand, with private data masked.

- `configure_logging(service)`: the root logger's one handler (`fengqiao run <service>` calls
  it); `FENGQIAO_LOG_FORMAT=json|text` (json by default), `FENGQIAO_LOG_LEVEL` (INFO).
- `log_context(**fields)` / `bind(**fields)`: fields (`case_id`, `event_id`, `topic`,
  `partition`, `offset`, `method`, `path`, `request_id`...) every line logged meanwhile carries,
  in this task and in the tasks it starts. The dead-letter middleware binds a consumed message's
  fields, `RequestContext` an HTTP request's.
- `trace_id`: what `trace_ids()` returns: the current span's trace id once
  `fengqiao.runtime.tracing.setup` turned tracing on (`set_trace_ids`), else None and left out.

Every line's message, arguments, fields and exception text go through `mask_pii` in the
formatter: whatever a handler logs, a phone, ID or bank card number never reaches the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.runtime.pii import mask_pii

_FIELDS: ContextVar[Mapping[str, Any]] = ContextVar(
    "fengqiao_log_fields", default=MappingProxyType({})
)


def bind(**fields: Any) -> Token[Mapping[str, Any]]:
    """Add `fields` (None values left out) to what lines logged from now on carry; the token
    undoes it (`unbind`)."""
    merged = {**_FIELDS.get(), **{k: v for k, v in fields.items() if v is not None}}
    return _FIELDS.set(merged)


def unbind(token: Token[Mapping[str, Any]]) -> None:
    _FIELDS.reset(token)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Lines logged inside carry `fields`."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def context_fields() -> Mapping[str, Any]:
    """The fields bound now."""
    return _FIELDS.get()


_trace_ids: Callable[[], str | None] = lambda: None  # noqa: E731


def set_trace_ids(source: Callable[[], str | None]) -> None:
    """Where `trace_id` comes from (the current span's, once tracing is set up)."""
    global _trace_ids
    _trace_ids = source


def trace_ids() -> str | None:
    return _trace_ids()


def masked(value: Any) -> Any:
    """`value` with private data masked (strings; numbers and None as they are; anything else
    as its text). Escaped text (a `bytes` repr's `\\xe5\\x8f\\xb7`, JSON's `\\u53f7`, as
    Kafka clients log at DEBUG) is read as the text it stands for first: the hex digits of an
    escape would otherwise run into the number after it, and hide it from the masking."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    if "\\x" in text or "\\u" in text:
        text = _ESCAPED.sub(_unescaped, text)
    return mask_pii(text)[0]


_ESCAPED = re.compile(r"(?:\\x[0-9a-fA-F]{2})+|(?:\\u[0-9a-fA-F]{4})+")


def _unescaped(match: re.Match[str]) -> str:
    escaped = match.group(0)
    if escaped[1] == "x":
        return bytes.fromhex(escaped.replace("\\x", "")).decode("utf-8", "replace")
    units = "".join(chr(int(escaped[i + 2 : i + 6], 16)) for i in range(0, len(escaped), 6))
    return units.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


# The attributes every LogRecord has: anything else was passed as `extra=` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields and `extra=` fields of `record`, masked, and its trace id."""
    fields = {k: masked(v) for k, v in context_fields().items()}
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = masked(value)
    trace_id = trace_ids()
    if trace_id:
        fields["trace_id"] = trace_id
    return fields


def _message(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a bad format string still logs what it has
        text = f"{record.msg!s} {record.args!r}"
    return str(masked(text))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, service, logger, message, the context and
    `extra=` fields, and the exception's text; all masked."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": _message(record),
        }
        line.update(record_fields(record))
        if record.exc_info:
            line["exception"] = masked(self.formatException(record.exc_info))
        if record.stack_info:
            line["stack"] = masked(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """A line a record for a developer's terminal: time, service, level, logger, message and
    `[key=value ...]` of the fields; masked as the JSON lines are."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record)
        text = f"{when} {self.service} {record.levelname} {record.name}: {_message(record)}"
        fields = record_fields(record)
        if fields:
            text += " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]"
        if record.exc_info:
            text += "\n" + str(masked(self.formatException(record.exc_info)))
        if record.stack_info:
            text += "\n" + str(masked(self.formatStack(record.stack_info)))
        return text


class LogSettings(BaseSettings):
    """How a service process logs (env prefix `FENGQIAO_LOG_`)."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_LOG_", extra="ignore")

    format: Literal["json", "text"] = Field(
        default="json", description="json: a JSON object a line; text: for a terminal."
    )
    level: str = Field(default="INFO", description="The root logger's level (DEBUG, INFO...).")


def configure_logging(service: str, settings: LogSettings | None = None) -> logging.Handler:
    """The root logger's only handler, on stderr, formatting as `settings` say; returned."""
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    kind = JsonFormatter if settings.format == "json" else TextFormatter
    handler.setFormatter(kind(service))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    logging.captureWarnings(True)  # Python's warnings are lines of the log too, not bare text
    # httpx logs every request at INFO: a line per reply posted, per poll; its errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler


REQUEST_ID = "x-request-id"


class RequestContext:
    """ASGI middleware: lines logged while a request is handled carry its `method`, `path` and
    `request_id` (the caller's `X-Request-ID` when it sends a short one, else a new one), and
    the response carries `X-Request-ID`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or ()).get(REQUEST_ID.encode(), b"").decode("latin-1")
        request_id = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
        header = (REQUEST_ID.encode(), request_id.encode("latin-1"))

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        with log_context(method=scope.get("method"), path=scope.get("path"), request_id=request_id):
            await self.app(scope, receive, send_with_id)
