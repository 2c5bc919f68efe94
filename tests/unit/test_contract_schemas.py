"""Each topic's schema against the committed one: a change that breaks readers on one side of a
rolling deploy needs a raised schema_version; the checker itself, on made-up versions."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field, create_model

from fengqiao.contracts import Contract, Envelope, schema_version_field
from fengqiao.contracts import schemas as committed_schemas
from fengqiao.contracts.compatibility import Change, changes
from fengqiao.contracts.schemas import REFRESH, problems
from fengqiao.contracts.schemas.__main__ import main


def test_every_topic_schema_is_the_committed_one() -> None:
    found = committed_schemas.check()
    assert not found, "\n".join(found)


# --------------------------------------------------------------------------- made-up versions


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Colour2(StrEnum):
    RED = "red"
    BLUE = "blue"
    GREEN = "green"


class Place(Contract):
    name: str = Field(max_length=32)
    lat: float | None = None


class Place2(Contract):
    name: int
    lat: float | None = None


BASE: dict[str, Any] = {
    "case_id": (str, ...),
    "hop": (int, ...),
    "note": (str | None, None),
    "colour": (Colour, ...),
    "place": (Place, ...),
    "tags": (list[str], []),
}


def message(version: int = 1, drop: tuple[str, ...] = (), **fields: Any) -> type[Envelope]:
    """A message type made of BASE with `fields` changed and `drop` removed; always named the
    same, as versions of one message are."""
    merged = {k: v for k, v in {**BASE, **fields}.items() if k not in drop}
    if version != 1:
        merged["schema_version"] = (int, schema_version_field(version))
    model: type[Envelope] = create_model("Message", __base__=Envelope, **merged)
    return model


def diff(new: type[Envelope], old: type[Envelope] | None = None) -> list[Change]:
    return changes((old or message()).model_json_schema(), new.model_json_schema())


def test_the_same_schema_has_no_changes() -> None:
    assert diff(message()) == []


def test_a_description_is_no_change() -> None:
    assert diff(message(hop=(int, Field(description="The hop.")))) == []


def test_a_removed_field_breaks() -> None:
    [change] = diff(message(drop=("note",)))
    assert (change.kind, change.path, change.breaking) == ("removed", "note", True)


def test_a_retyped_field_breaks() -> None:
    [change] = diff(message(hop=(str, ...)))
    assert (change.kind, change.path, change.breaking) == ("retyped", "hop", True)
    assert "integer" in change.detail and "string" in change.detail


def test_an_optional_field_that_changes_type_breaks() -> None:
    [change] = diff(message(note=(int | None, None)))
    assert (change.kind, change.path) == ("retyped", "note")


def test_a_changed_constraint_breaks() -> None:
    [change] = diff(message(hop=(int, Field(ge=1))))
    assert (change.kind, change.path) == ("retyped", "hop")


def test_a_new_allowed_value_breaks_older_readers() -> None:
    [change] = diff(message(colour=(Colour2, ...)))
    assert (change.kind, change.path) == ("retyped", "colour")


def test_a_field_retyped_inside_a_nested_value_breaks() -> None:
    [change] = diff(message(place=(Place2, ...)))
    assert (change.kind, change.path) == ("retyped", "place.name")


def test_items_of_a_list_are_compared() -> None:
    [change] = diff(message(tags=(list[int], [])))
    assert (change.kind, change.path) == ("retyped", "tags[]")


def test_a_new_required_field_breaks() -> None:
    [change] = diff(message(unit_id=(str, ...)))
    assert (change.kind, change.path, change.breaking) == ("required", "unit_id", True)


def test_an_optional_field_made_required_breaks() -> None:
    [change] = diff(message(note=(str | None, ...)))
    assert (change.kind, change.path) == ("required", "note")


def test_a_new_optional_field_does_not_break() -> None:
    [change] = diff(message(unit_id=(str | None, None)))
    assert (change.kind, change.path, change.breaking) == ("added", "unit_id", False)


def test_a_required_field_made_optional_changes_nothing_readers_see() -> None:
    assert diff(message(hop=(int, 1))) == []


# --------------------------------------------------------------------------- what the check asks


def asks(new: type[Envelope], old: type[Envelope] | None = None) -> list[str]:
    return problems("t", (old or message()).model_json_schema(), new.model_json_schema())


def test_a_breaking_change_asks_to_raise_the_version() -> None:
    first, *listed = asks(message(drop=("note",)))
    assert "schema_version to 2" in first and "schema_version_field(2)" in first
    assert listed == ["  note: removed"]


def test_a_breaking_change_with_a_raised_version_asks_only_to_refresh() -> None:
    [found] = asks(message(version=2, drop=("note",)))
    assert REFRESH in found and "compatibly" in found


def test_a_new_optional_field_asks_to_refresh_the_committed_schema() -> None:
    [found] = asks(message(unit_id=(str | None, None)))
    assert REFRESH in found and "compatibly" in found


def test_a_lowered_version_is_refused() -> None:
    [found] = asks(message(), old=message(version=3))
    assert "went down from 3 to 1" in found


def test_a_topic_without_a_committed_schema_asks_to_write_one() -> None:
    [found] = problems("t", None, message().model_json_schema())
    assert "no schema is committed" in found and REFRESH in found


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(committed_schemas, "FOLDER", tmp_path)
    monkeypatch.setattr(committed_schemas, "MESSAGES", {"t": message()})
    return tmp_path


def test_writing_commits_a_compatible_change(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--write"]) == 0
    assert main([]) == 0
    newer = message(unit_id=(str | None, None))
    monkeypatch.setattr(committed_schemas, "MESSAGES", {"t": newer})
    assert main([]) == 1
    assert main(["--write"]) == 0
    written = json.loads((folder / "t.json").read_text(encoding="utf-8"))
    assert written == newer.model_json_schema()
    assert main([]) == 0


def test_writing_refuses_a_breaking_change_until_the_version_is_raised(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--write"]) == 0
    before = (folder / "t.json").read_text(encoding="utf-8")
    monkeypatch.setattr(committed_schemas, "MESSAGES", {"t": message(drop=("note",))})
    assert main(["--write"]) == 1
    assert "schema_version to 2" in capsys.readouterr().err
    assert (folder / "t.json").read_text(encoding="utf-8") == before
    monkeypatch.setattr(committed_schemas, "MESSAGES", {"t": message(2, drop=("note",))})
    assert main(["--write"]) == 0
    assert main([]) == 0


def test_a_schema_no_topic_has_is_reported(folder: Path) -> None:
    assert main(["--write"]) == 0
    (folder / "gone.json").write_text("{}", encoding="utf-8")
    assert committed_schemas.check() == ["gone.json: no topic has this schema: remove it"]
