"""`fengqiao stack` output: the table, JSON, and errors as one line on stderr."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from fengqiao.runtime.settings import StackSettings
from fengqiao.stack import ComponentStatus
from fengqiao.stack.cli import format_table, run


def _env(monkeypatch: pytest.MonkeyPatch, settings: StackSettings, external: bool = False) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)
    monkeypatch.setenv("FENGQIAO_MONGO_URI", settings.mongo_uri)
    monkeypatch.setenv("FENGQIAO_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("FENGQIAO_EXTERNAL", "true" if external else "false")


def test_table_aligns_columns() -> None:
    rows = [
        ComponentStatus(
            "kafka", "running", 12, "127.0.0.1:19092", Path("/c/server.log"), "answers"
        ),
        ComponentStatus("ferretdb", "stopped", None, "127.0.0.1:27117", None, ""),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["COMPONENT", "STATE", "PID", "ADDRESS", "LOG", "DETAIL"]
    assert lines[1].split() == [
        "kafka",
        "running",
        "12",
        "127.0.0.1:19092",
        "/c/server.log",
        "answers",
    ]
    assert lines[2].split() == ["ferretdb", "stopped", "-", "127.0.0.1:27117", "-", "-"]
    assert lines[1].index("running") == lines[2].index("stopped")


def test_status_json_of_a_stopped_stack(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, settings)
    assert run(argparse.Namespace(action="status", json=True)) == 1  # not running → non-zero
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["state"], r["pid"]) for r in rows] == [
        ("kafka", "stopped", None),
        ("ferretdb", "stopped", None),
    ]


def test_external_up_and_down_do_nothing(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, settings, external=True)
    assert run(argparse.Namespace(action="up", json=False)) == 0
    assert run(argparse.Namespace(action="down", json=False)) == 0
    out = capsys.readouterr().out
    assert "nothing to start" in out
    assert "nothing to stop" in out


def test_errors_are_one_line_on_stderr(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _env(monkeypatch, settings)
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP", "kafka.example.com:9092")
    assert run(argparse.Namespace(action="up", json=False)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("fengqiao stack: FENGQIAO_KAFKA_BOOTSTRAP=")
    assert captured.err.count("\n") == 1
