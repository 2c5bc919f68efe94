"""退单 and 终审: a unit returns an order; the tier above rules and, if it can, re-dispatches.

The router remembers, per case, what it dispatched (`RoutingRecord`). A return is ruled on by
the returning unit's parent: for "not our jurisdiction" the case goes to the next unit the
evidence pointed to that has not had it yet; otherwise, or when the case has bounced too often,
the parent keeps it. An operator's reassignment dispatches to the unit they chose. Either way the
new orders continue the case's hop numbering, so every hop stays distinct in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fengqiao.contracts import DispatchOrdered, UnitActed, UnitActionKind, redispatch_event_id
from fengqiao.services.router.directory import Directory

RETURNS_FILE = Path(__file__).parent / "data" / "returns.yaml"

_EVIDENCE_KINDS = ("text_place", "geo", "account", "residence")


class ReturnRulesError(ValueError):
    """The returns file is malformed; the message names the entry."""


class RoutingError(ValueError):
    """An action the router cannot rule on (unknown case, unit not on the case...)."""


class _Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ruling: Literal["redispatch", "keep"]
    label: str


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1]
    max_returns: int = Field(ge=0)
    reasons: dict[str, _Reason]


@dataclass(frozen=True)
class ReturnRules:
    max_returns: int
    reasons: dict[str, _Reason]


@dataclass(frozen=True)
class RoutingRecord:
    """What the router dispatched for a case, and what came back."""

    case_id: str
    holder: str  # the unit that has the case now (the final unit of the last dispatch)
    last_hop: int
    round: int
    candidates: tuple[str, ...]  # units the evidence pointed to, strongest first
    tried: tuple[str, ...]  # units that have had the case as final unit
    returns: tuple[tuple[str, str], ...]  # (unit, reason code)
    template: DispatchOrdered  # the last final order: category, urgency, mode, evidence
    processed: frozenset[str] = frozenset()
    version: int = 0


def record_dispatch(orders: list[DispatchOrdered], cause_event_id: str) -> RoutingRecord:
    """The record of a case's first dispatch."""
    final = orders[-1]
    candidates = tuple(
        dict.fromkeys(
            [final.to_unit]
            + [e.unit_id for e in final.evidence if e.kind in _EVIDENCE_KINDS and e.unit_id]
        )
    )
    return RoutingRecord(
        case_id=final.case_id,
        holder=final.to_unit,
        last_hop=max(o.hop for o in orders),
        round=final.round,
        candidates=candidates,
        tried=(final.to_unit,),
        returns=(),
        template=final,
        processed=frozenset({cause_event_id}),
        version=1,
    )


def rule_on(
    record: RoutingRecord,
    action: UnitActed,
    directory: Directory,
    rules: ReturnRules,
    *,
    producer: str,
) -> tuple[RoutingRecord, list[DispatchOrdered]]:
    """Rule on a return or a reassignment; the new record and the orders to publish."""
    if action.event_id in record.processed:
        return record, []
    if action.action is UnitActionKind.REASSIGN:
        target = action.target_unit
        if target is None or target not in directory:
            raise RoutingError(f"case {record.case_id}: reassign needs a known target_unit")
        why = f"reassigned by {action.unit_id}: {action.note or ''}".strip()
        return _redispatch(record, action, directory, target, why, producer=producer)
    if action.action is not UnitActionKind.RETURN:
        return replace(record, processed=record.processed | {action.event_id}), []
    if action.unit_id != record.holder:
        raise RoutingError(
            f"case {record.case_id}: {action.unit_id} returned it but {record.holder} holds it"
        )
    code = action.reason_code or "other"
    reason = rules.reasons.get(code) or rules.reasons["other"]
    returns = (*record.returns, (action.unit_id, code))
    record = replace(record, returns=returns)
    parent = directory[action.unit_id].parent or action.unit_id
    next_unit = _next_candidate(record, directory)
    if reason.ruling == "redispatch" and len(returns) <= rules.max_returns and next_unit:
        why = f"终审 by {parent}: {action.unit_id} returned it ({reason.label})"
        return _redispatch(record, action, directory, next_unit, why, producer=producer)
    why = f"终审 by {parent}: kept after {action.unit_id} returned it ({reason.label})"
    return _redispatch(record, action, directory, parent, why, producer=producer)


def _next_candidate(record: RoutingRecord, directory: Directory) -> str | None:
    for unit_id in record.candidates:
        if unit_id not in record.tried and unit_id in directory:
            return unit_id
    return None


def _redispatch(
    record: RoutingRecord,
    action: UnitActed,
    directory: Directory,
    target: str,
    why: str,
    *,
    producer: str,
) -> tuple[RoutingRecord, list[DispatchOrdered]]:
    """Orders from the lowest common unit of the holder and the target down to the target."""
    chain = [u.id for u in directory.chain(target)]
    holder_chain = [u.id for u in directory.chain(record.holder)]
    start = max(i for i, unit in enumerate(chain) if unit in holder_chain or i == 0)
    hops = (
        [(chain[i], chain[i + 1]) for i in range(start, len(chain) - 1)]
        if start < len(chain) - 1
        else [(chain[start], chain[start])]  # the tier above keeps it
    )
    round_ = record.round + 1
    orders = []
    for offset, (src, dst) in enumerate(hops, start=1):
        hop = record.last_hop + offset
        orders.append(
            record.template.model_copy(
                update={
                    "event_id": redispatch_event_id(action.event_id, hop),
                    "occurred_at": action.occurred_at,
                    "producer": producer,
                    "hop": hop,
                    "round": round_,
                    "reason": why[:500],
                    "from_unit": src,
                    "to_unit": dst,
                    "to_tier": directory[dst].tier,
                    "to_handle": directory[dst].handle,
                    "final": dst == target,
                    "chain": chain,
                    "lead_unit": target,
                    "cc_units": [],
                    # A dispatcher's correction in the triage queue relabels the case too.
                    "category": action.category or record.template.category,
                    "urgency": action.urgency or record.template.urgency,
                }
            )
        )
    new = replace(
        record,
        holder=target,
        last_hop=record.last_hop + len(hops),
        round=round_,
        tried=(*record.tried, target),
        template=orders[-1],
        processed=record.processed | {action.event_id},
        version=record.version + 1,
    )
    return new, orders


def load_return_rules(path: Path = RETURNS_FILE) -> ReturnRules:
    """Load and validate the return reasons; ReturnRulesError names what is wrong."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _File.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise ReturnRulesError(f"{path.name}: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReturnRulesError(f"{path.name}: {where}: {first['msg']}") from exc
    if "other" not in parsed.reasons:
        raise ReturnRulesError(f"{path.name}: reasons must include 'other'")
    return ReturnRules(parsed.max_returns, parsed.reasons)
