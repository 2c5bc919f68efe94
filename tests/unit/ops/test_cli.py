"""`fengqiao ops`: every subcommand takes --json; an unreachable cluster is one line and exit 2."""

from __future__ import annotations

import pytest

from fengqiao.cli import build_parser, main

COMMANDS = [
    ["topics"],
    ["lag", "--threshold", "5"],
    ["dlq", "list"],
    ["dlq", "show", "appeals:0:1"],
    ["dlq", "replay", "appeals:0:1"],
    ["dlq", "replay", "--all"],
    ["dlq", "purge", "appeals:0:1"],
    ["cases", "c-1"],
    ["metrics"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_subcommand_takes_json(command: list[str]) -> None:
    args = build_parser().parse_args(["ops", *command, "--json"])
    assert args.json is True and args.command == "ops"


def test_replay_wants_an_id_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ops", "dlq", "replay"])
    assert "one of the arguments id --all is required" in capsys.readouterr().err


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "metrics"], ids=" ".join)
def test_an_unreachable_cluster_is_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert main(["ops", *command, "--timeout", "3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("fengqiao ops: Kafka at 127.0.0.1:1 does not answer")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
