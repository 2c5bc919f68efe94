"""The router's place lexicon (data/places.yaml): it loads, and a load error names the entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fengqiao.services.router.placewords import PLACES_FILE, PlaceRulesError, load_place_rules


def packaged() -> dict[str, Any]:
    return yaml.safe_load(PLACES_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "places.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_packaged_lexicon_loads() -> None:
    rules = load_place_rules()
    assert rules.simplifier()("博樂市") == "博乐市"
    assert "玉" in rules.not_place_after


def test_a_small_lexicon_loads(tmp_path: Path) -> None:
    rules = load_place_rules(write(tmp_path, {"schema_version": 2, "traditional": "樂乐"}))
    assert rules.simplifier()("博樂") == "博乐"
    assert rules.extra_names == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "places.yaml: colour: Extra inputs are not permitted"),
        ({"traditional": "樂乐 x"}, "places.yaml: traditional: pairs of two characters expected"),
        (
            {"extra_names": [{"unit": "652701", "kind": "nickname", "names": ["x"]}]},
            "places.yaml: extra_names.0.kind: ",
        ),
    ],
)
def test_a_load_error_names_the_entry(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(PlaceRulesError) as caught:
        load_place_rules(write(tmp_path, packaged() | change))
    assert str(caught.value).startswith(message)


def test_broken_yaml_and_a_missing_file_are_place_rules_errors(tmp_path: Path) -> None:
    with pytest.raises(PlaceRulesError, match=r"^places\.yaml: "):
        load_place_rules(write(tmp_path, "traditional: [unclosed"))
    with pytest.raises(PlaceRulesError, match=r"^nope\.yaml: "):
        load_place_rules(tmp_path / "nope.yaml")
