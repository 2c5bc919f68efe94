"""The rules of the matrix tree, checked whenever a `Directory` is built.

Every broken rule raises `DirectoryError` naming the unit, e.g.
``directory.yaml: unit '652701': parent '659999' does not exist``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fengqiao.services.router.directory_file import DirectoryError

if TYPE_CHECKING:
    from fengqiao.services.router.directory import Unit

__all__ = ["check_tree"]

# Which tiers each kind may sit at.
_KIND_TIERS: dict[str, frozenset[str]] = {
    "region": frozenset({"region"}),
    "prefecture": frozenset({"prefecture"}),
    "branch": frozenset({"prefecture"}),
    "county": frozenset({"county"}),
    "railway": frozenset({"prefecture", "county"}),
    "xpcc": frozenset({"region", "prefecture", "county"}),
}

# Which parent kinds each kind may hang under. A branch may hang under a prefecture-level unit
# because 伊犁州 (副省级) runs the 塔城 and 阿勒泰 procuratorates as its branches.
_PARENT_KINDS: dict[str, frozenset[str]] = {
    "prefecture": frozenset({"region"}),
    "branch": frozenset({"region", "prefecture"}),
    "county": frozenset({"prefecture", "branch"}),
    "railway": frozenset({"region", "railway"}),
    "xpcc": frozenset({"xpcc"}),
}

_TIER_RANK = {"region": 0, "prefecture": 1, "county": 2}


def _fail(origin: str, unit_id: str, problem: str) -> None:
    raise DirectoryError(f"{origin}: unit '{unit_id}': {problem}")


def check_tree(units: tuple[Unit, ...], origin: str) -> None:
    _check_unique(units, origin)
    by_id = {u.id: u for u in units}
    _check_parents(units, by_id, origin)
    _check_cycles(units, by_id, origin)
    _check_roots(units, origin)
    _check_tiers(units, by_id, origin)
    _check_codes(units, origin)
    _check_names(units, origin)


def _check_unique(units: tuple[Unit, ...], origin: str) -> None:
    ids: set[str] = set()
    codes: dict[str, str] = {}
    handles: dict[str, str] = {}
    for unit in units:
        if unit.id in ids:
            _fail(origin, unit.id, "duplicate id")
        ids.add(unit.id)
        for code in unit.jurisdiction_codes:
            if code in codes:
                _fail(origin, unit.id, f"jurisdiction code '{code}' also in unit '{codes[code]}'")
            codes[code] = unit.id
        if unit.handle is not None:
            if unit.handle in handles:
                _fail(
                    origin, unit.id, f"handle '{unit.handle}' also of unit '{handles[unit.handle]}'"
                )
            handles[unit.handle] = unit.id


def _check_parents(units: tuple[Unit, ...], by_id: Mapping[str, Unit], origin: str) -> None:
    for unit in units:
        if unit.parent is not None and unit.parent not in by_id:
            _fail(origin, unit.id, f"parent '{unit.parent}' does not exist")


def _check_cycles(units: tuple[Unit, ...], by_id: Mapping[str, Unit], origin: str) -> None:
    for unit in units:
        path = [unit.id]
        parent = unit.parent
        while parent is not None:
            if parent in path:
                loop = " → ".join([*path[path.index(parent) :], parent])
                _fail(origin, unit.id, f"parent chain loops: {loop}")
            path.append(parent)
            parent = by_id[parent].parent


def _check_roots(units: tuple[Unit, ...], origin: str) -> None:
    regions = [u for u in units if u.kind == "region"]
    if len(regions) != 1:
        found = ", ".join(f"'{u.id}'" for u in regions) or "none"
        raise DirectoryError(f"{origin}: exactly one region unit expected, found {found}")
    for unit in units:
        is_root_kind = unit.kind in ("region", "xpcc") and unit.tier == "region"
        if unit.parent is None and not is_root_kind:
            _fail(origin, unit.id, "has no parent (only the region unit and the XPCC root may)")
        if unit.parent is not None and unit.tier == "region":
            _fail(origin, unit.id, f"tier region but has parent '{unit.parent}'")


def _check_tiers(units: tuple[Unit, ...], by_id: Mapping[str, Unit], origin: str) -> None:
    for unit in units:
        if unit.tier not in _KIND_TIERS[unit.kind]:
            _fail(origin, unit.id, f"kind '{unit.kind}' cannot be at tier '{unit.tier}'")
        if unit.parent is None:
            continue
        parent = by_id[unit.parent]
        if parent.kind not in _PARENT_KINDS[unit.kind]:
            _fail(
                origin,
                unit.id,
                f"a {unit.kind} unit cannot hang under {parent.kind} unit '{parent.id}'",
            )
        # A child sits one tier below its parent; only a branch may share its parent's tier.
        step = _TIER_RANK[unit.tier] - _TIER_RANK[parent.tier]
        if step != 1 and not (step == 0 and unit.kind == "branch"):
            _fail(
                origin,
                unit.id,
                f"tier '{unit.tier}' does not fit under '{parent.id}' (tier '{parent.tier}')",
            )


def _check_codes(units: tuple[Unit, ...], origin: str) -> None:
    for unit in units:
        if unit.kind == "railway" and unit.jurisdiction_codes:
            _fail(origin, unit.id, "railway units have no territorial jurisdiction codes")
        geographic = unit.kind in ("region", "prefecture", "branch", "county")
        # The region unit keeps its short id `xj`; every other geographic unit is its own code.
        if geographic and unit.kind != "region" and unit.id not in unit.jurisdiction_codes:
            _fail(origin, unit.id, "a geographic unit's id must be its own GB/T 2260 code")
        if geographic and not unit.jurisdiction_codes:
            _fail(origin, unit.id, "a geographic unit needs at least one jurisdiction code")


def _check_names(units: tuple[Unit, ...], origin: str) -> None:
    """An unambiguous name must point to one unit; names that may mean two go in ``ambiguous``."""
    owners: dict[str, str] = {}
    for unit in units:
        for name in dict.fromkeys(unit.names.unambiguous()):
            if name in owners:
                _fail(
                    origin,
                    unit.id,
                    f"name '{name}' is also an unambiguous name of unit '{owners[name]}' "
                    "(list it under names.ambiguous)",
                )
            owners[name] = unit.id
