"""横协调: which agency outside the procuratorate a case needs, from data (`coordination.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fengqiao.contracts import CoordinationRequested, DispatchOrdered, derived_event_id
from fengqiao.services.router.directory import Directory

COORDINATION_FILE = Path(__file__).parent / "data" / "coordination.yaml"


class CoordinationRulesError(ValueError):
    """The coordination file is malformed; the message names the entry."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    category: str
    partner: str
    role: Literal["lead", "co_handler"]
    any: tuple[str, ...] = Field(default=())
    fallback: bool = False


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1]
    rules: tuple[_Rule, ...]


@dataclass(frozen=True)
class CoordinationRules:
    rules: tuple[_Rule, ...]

    def requests(
        self, order: DispatchOrdered, text: str, directory: Directory, *, producer: str
    ) -> list[CoordinationRequested]:
        """The coordination requests a final dispatch needs: at most one per partner kind, the
        first matching rule of each kind winning."""
        found: dict[str, CoordinationRequested] = {}
        for rule in self.rules:
            if rule.category != order.category or rule.partner in found:
                continue
            if rule.fallback and found:
                continue
            if rule.any and not any(word in text for word in rule.any):
                continue
            partner = _partner(directory, order.to_unit, rule.partner)
            if partner is None:
                continue
            unit_id, name, inferred = partner
            found[rule.partner] = CoordinationRequested(
                event_id=derived_event_id("coordination", order.event_id, rule.partner),
                occurred_at=order.occurred_at,
                producer=producer,
                case_id=order.case_id,
                from_unit=unit_id,
                partner_kind=rule.partner,
                partner_name=name,
                partner_inferred=inferred,
                role=rule.role,
                category=order.category,
                rule=rule.id,
            )
        return list(found.values())


def _partner(directory: Directory, unit_id: str, kind: str) -> tuple[str, str, bool] | None:
    """The partner of `kind` of the unit, or of the nearest unit above it that has one."""
    for unit in reversed(directory.chain(unit_id)):
        partner = unit.partner(kind)
        if partner is not None:
            return unit.id, partner.name, partner.inferred
    return None


def load_coordination(path: Path = COORDINATION_FILE) -> CoordinationRules:
    """Load and validate the coordination rules; CoordinationRulesError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _File.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise CoordinationRulesError(f"{path.name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CoordinationRulesError(f"{path.name}: {where}: {first['msg']}") from exc
    return CoordinationRules(parsed.rules)
