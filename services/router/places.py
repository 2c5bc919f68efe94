"""Place recognition: which units of the directory a text names.

Longest match wins ("伊宁县" over "伊宁", "乌鲁木齐县" over "乌鲁木齐"), so a name inside a longer
name never counts on its own. Ambiguous short names (和田, 喀什, 伊宁 ...) resolve to the broader
unit they may mean, with a lower weight; explicit rules for them live in `RULES` below.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.router.directory import Directory, Unit


@dataclass(frozen=True)
class PlaceMention:
    """A place name found in a text."""

    name: str
    start: int
    unit_id: str
    kind: str  # full | short | alias | former | ambiguous
    weight: float


_WEIGHTS = {"full": 1.0, "short": 0.9, "alias": 0.85, "former": 0.8, "ambiguous": 0.6}


class PlaceIndex:
    """Every place name of a directory, ready for longest-match scanning."""

    def __init__(self, directory: Directory) -> None:
        self._names: dict[str, tuple[str, str]] = {}
        carriers: dict[str, list[str]] = {}
        for unit in directory:
            self._add_unit(unit)
            for name in unit.names.ambiguous:
                carriers.setdefault(name, []).append(unit.id)
        for name, unit_ids in carriers.items():
            self._add_ambiguous(name, unit_ids, directory)
        self._max = max((len(n) for n in self._names), default=0)

    def _add_unit(self, unit: Unit) -> None:
        groups = (
            ("full", unit.names.full),
            ("short", unit.names.short),
            ("alias", unit.names.aliases),
            ("former", unit.names.former),
        )
        for kind, names in groups:
            for name in names:
                self._put(name, unit.id, kind)

    def _add_ambiguous(self, name: str, unit_ids: list[str], directory: Directory) -> None:
        # An ambiguous name means the narrowest unit that covers every unit it may mean: "喀什"
        # is 喀什地区 (above the city), "伊宁" is 伊犁州 (above both 伊宁市 and 伊宁县) — never one
        # of two equals picked by file order. A later, longer name in the text refines it.
        current = self._names.get(name)
        covering = _common_ancestor(directory, [*([current[0]] if current else []), *unit_ids])
        if covering is not None and (current is None or covering != current[0]):
            self._names[name] = (covering, "ambiguous")

    def _put(self, name: str, unit_id: str, kind: str) -> None:
        if len(name) < 2:
            return
        current = self._names.get(name)
        # A full or short name beats an alias or former name of another unit.
        if current is None or _WEIGHTS[kind] > _WEIGHTS[current[1]]:
            self._names[name] = (unit_id, kind)

    def find(self, text: str) -> list[PlaceMention]:
        """Every place mention in `text`, left to right, longest match first, no overlaps."""
        found: list[PlaceMention] = []
        i = 0
        while i < len(text):
            for length in range(min(self._max, len(text) - i), 1, -1):
                hit = self._names.get(text[i : i + length])
                if hit is not None:
                    unit_id, kind = hit
                    found.append(
                        PlaceMention(text[i : i + length], i, unit_id, kind, _WEIGHTS[kind])
                    )
                    i += length
                    break
            else:
                i += 1
        return found


def _common_ancestor(directory: Directory, unit_ids: list[str]) -> str | None:
    """The deepest unit whose subtree holds every one of `unit_ids` (None if in two trees)."""
    chains = [[u.id for u in directory.chain(unit_id)] for unit_id in unit_ids]
    common = None
    for ids in zip(*chains, strict=False):
        if len(set(ids)) != 1:
            break
        common = ids[0]
    return common
