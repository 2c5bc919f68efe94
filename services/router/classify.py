"""Category and urgency from the words of an appeal. The rules are data (`data/rules.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RULES_FILE = Path(__file__).parent / "data" / "rules.yaml"


class RulesError(ValueError):
    """The rules file is malformed; the message names the entry."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str | None = None
    code: str | None = None
    weight: float = Field(default=1.0, gt=0)
    any: tuple[str, ...] = Field(min_length=1)


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int
    default_category: str
    urgent: tuple[_Rule, ...]
    categories: tuple[_Rule, ...]


@dataclass(frozen=True)
class Classification:
    category: str
    urgent: bool
    rules_fired: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    default_category: str
    urgent: tuple[_Rule, ...]
    categories: tuple[_Rule, ...]

    def classify(self, text: str) -> Classification:
        """The category and urgency of `text`, with the ids of the rules that fired."""
        fired: list[str] = []
        urgent = False
        for rule in self.urgent:
            if any(word in text for word in rule.any):
                urgent = True
                fired.append(rule.id or "urgent")
        scores: dict[str, float] = {}
        for rule in self.categories:
            hits = sum(1 for word in rule.any if word in text)
            if hits and rule.code:
                scores[rule.code] = scores.get(rule.code, 0.0) + hits * rule.weight
                fired.append(f"category.{rule.code}")
        category = max(scores, key=lambda c: scores[c]) if scores else self.default_category
        return Classification(category, urgent, tuple(fired))


def load_rules(path: Path = RULES_FILE) -> Rules:
    """Load and validate the rules file; RulesError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _RulesFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise RulesError(f"{path.name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RulesError(f"{path.name}: {where}: {first['msg']}") from exc
    for rule in parsed.categories:
        if not rule.code:
            raise RulesError(f"{path.name}: a category rule has no code: {list(rule.any)[:3]}")
    return Rules(parsed.default_category, parsed.urgent, parsed.categories)
