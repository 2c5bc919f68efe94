"""The log formatter of every service (fengqiao.runtime.logs): JSON lines with the context's
fields, and private data masked in the message, its arguments, `extra=` fields and exceptions."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import httpx
import pytest
from fastapi import FastAPI

from fengqiao.runtime.logs import (
    JsonFormatter,
    LogSettings,
    RequestContext,
    TextFormatter,
    bind,
    configure_logging,
    log_context,
    set_trace_ids,
    unbind,
)

PHONE = "13812345678"
ID_NUMBER = "11010519491231002X"  # a valid check digit
CARD = "6222021234567890128"  # passes Luhn
PRIVATE = (PHONE, ID_NUMBER, CARD)


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad post from {PHONE}, card {CARD}")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("fengqiao.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def as_json(made: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter("router").format(made)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_a_line_is_one_json_object_with_the_context_fields() -> None:
    with log_context(case_id="XJ-1", event_id="e1", topic="appeals", partition=2, offset=7):
        line = as_json(record("case %s routed", "XJ-1"))
    assert line["message"] == "case XJ-1 routed"
    assert line["level"] == "WARNING"
    assert line["service"] == "router"
    assert line["logger"] == "fengqiao.test"
    assert str(line["time"]).endswith("+00:00")
    assert {k: line[k] for k in ("case_id", "event_id", "topic", "partition", "offset")} == {
        "case_id": "XJ-1",
        "event_id": "e1",
        "topic": "appeals",
        "partition": 2,
        "offset": 7,
    }
    assert "trace_id" not in line  # no tracing: left out, not null
    outside = as_json(record("later"))
    assert "case_id" not in outside and "topic" not in outside


def test_extra_fields_are_fields_and_none_is_not_bound() -> None:
    token = bind(case_id="XJ-2", event_id=None)
    try:
        line = as_json(record("x", unit="xj-bl"))
    finally:
        unbind(token)
    assert line["case_id"] == "XJ-2" and "event_id" not in line
    assert line["unit"] == "xj-bl"


def test_trace_id_comes_from_its_source_when_there_is_one() -> None:
    set_trace_ids(lambda: "4bf92f3577b34da6a3ce929d0e0e4736")
    try:
        assert as_json(record("x"))["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    finally:
        set_trace_ids(lambda: None)


@pytest.mark.parametrize("formatter", [JsonFormatter("intake"), TextFormatter("intake")])
def test_private_data_is_masked_in_message_args_fields_and_exception(
    formatter: logging.Formatter,
) -> None:
    made = record(
        f"post text 手机{PHONE} 身份证{ID_NUMBER}: %s",
        f"卡号 {CARD}",
        exc=True,
        text=f"电话{PHONE}",
    )
    with log_context(path=f"/search/{PHONE}"):
        line = formatter.format(made)
    for number in PRIVATE:
        assert number not in line
    assert "138****5678" in line and "110105********002X" in line and "6222" in line
    assert "ValueError: bad post from 138****5678" in line.replace("\\n", "\n")


def test_a_bad_format_string_still_logs_masked() -> None:
    line = as_json(record(f"{PHONE} %s %s", "one"))
    assert PHONE not in str(line["message"]) and "138****5678" in str(line["message"])


def test_configure_logging_formats_by_settings(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("tracker", LogSettings(format="json", level="info"))
        logging.getLogger("fengqiao.x").info("hello %s", PHONE)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["service"] == "tracker" and line["message"] == "hello 138****5678"
        configure_logging("tracker", LogSettings(format="text", level="WARNING"))
        logging.getLogger("fengqiao.x").info("hidden")
        logging.getLogger("fengqiao.x").warning("shown")
        err = capsys.readouterr().err
        assert "hidden" not in err and "tracker WARNING fengqiao.x: shown" in err
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in before:
            root.addHandler(handler)
        root.setLevel(level)


def test_the_format_is_json_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FENGQIAO_LOG_FORMAT", raising=False)
    assert LogSettings().format == "json"
    monkeypatch.setenv("FENGQIAO_LOG_FORMAT", "text")
    assert LogSettings().format == "text"


def test_an_http_request_binds_method_path_and_request_id() -> None:
    app = FastAPI()
    seen: list[dict[str, object]] = []

    @app.get("/cases/{case_id}")
    async def case(case_id: str) -> dict[str, str]:
        seen.append(as_json(record("reading")))
        return {}

    app.add_middleware(RequestContext)

    async def call() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            given = await client.get("/cases/XJ-3", headers={"X-Request-ID": "req-42"})
            fresh = await client.get("/cases/XJ-4")
        return given, fresh

    given, fresh = asyncio.run(call())
    assert given.headers["x-request-id"] == "req-42"
    assert seen[0]["method"] == "GET" and seen[0]["path"] == "/cases/XJ-3"
    assert seen[0]["request_id"] == "req-42"
    assert seen[1]["request_id"] == fresh.headers["x-request-id"] != "req-42"


@pytest.mark.parametrize(
    "escape",
    [lambda text: repr(text.encode()), lambda text: json.dumps(text)],
    ids=["bytes-repr", "json-ascii"],
)
def test_numbers_after_escaped_text_are_masked(escape: object) -> None:
    # aiokafka logs a message's value at DEBUG as `bytes`: in `\xe5\x8f\xb7650102...` the
    # escape's last hex digit ran into the ID number, and neither it nor the card was masked.
    text = f"身份证号{ID_NUMBER}，卡{CARD}，电话{PHONE}"
    line = as_json(record("Sending value=%s", escape(text)))  # type: ignore[operator]
    for number in PRIVATE:
        assert number not in str(line["message"])
    assert "身份证号110105********002X" in str(line["message"])
