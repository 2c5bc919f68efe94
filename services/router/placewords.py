"""The place lexicon the place recognizer uses, as data (`data/places.yaml`): traditional
characters, names the directory lacks, words that only look like places, origin and negation
markers. (Category and urgency are intake's triage: the router decides where, not what.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PLACES_FILE = Path(__file__).parent / "data" / "places.yaml"

__all__ = ["PLACES_FILE", "PlaceRules", "PlaceRulesError", "load_place_rules"]


class PlaceRulesError(ValueError):
    """The place lexicon is malformed; the message names the entry."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _ExtraNames(_Model):
    unit: str
    kind: str = Field(pattern=r"^(alias|ambiguous|landmark)$")
    names: tuple[str, ...] = Field(min_length=1)


class PlaceRules(_Model):
    """The place lexicon: see data/places.yaml for what each list means."""

    schema_version: int = 2
    traditional: str = ""
    extra_names: tuple[_ExtraNames, ...] = ()
    not_place_words: tuple[str, ...] = ()
    not_place_after: tuple[str, ...] = ()
    origin_before: tuple[str, ...] = ()
    origin_after: tuple[str, ...] = ()
    origin_links: tuple[str, ...] = ()
    negated_before: tuple[str, ...] = ()
    urban_suffixes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    def simplifier(self) -> Callable[[str], str]:
        """Traditional → simplified for the pairs listed ("烏乌 魯鲁 ..."); a text without any
        of them is returned as is, after one regex scan (most texts)."""
        pairs = self.traditional.split()
        bad = [p for p in pairs if len(p) != 2]
        if bad:
            raise ValueError(f"traditional: pairs of two characters expected, got {bad[:3]}")
        if not pairs:
            return lambda text: text
        table = {p[0]: p[1] for p in pairs}
        pattern = re.compile("[" + re.escape("".join(table)) + "]")
        return lambda text: pattern.sub(lambda m: table[m.group()], text)


def load_place_rules(path: Path = PLACES_FILE) -> PlaceRules:
    """Load and validate the place lexicon; PlaceRulesError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        rules = PlaceRules.model_validate(raw)
        rules.simplifier()  # checks the pairs of `traditional`
    except (OSError, yaml.YAMLError) as exc:
        raise PlaceRulesError(f"{path.name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlaceRulesError(f"{path.name}: {where}: {first['msg']}") from exc
    except ValueError as exc:
        raise PlaceRulesError(f"{path.name}: {exc}") from exc
    return rules
