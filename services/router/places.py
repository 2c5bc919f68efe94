"""Place recognition: which units of the directory a text names, and in what role.

One Aho-Corasick pass finds every name, leftmost-longest, so a name inside a longer name never
counts on its own ("伊宁县" over "伊宁", "乌鲁木齐县" over "乌鲁木齐"). The directory gives the
names (full, short, aliases, former, ambiguous); `rules.yaml` (`places:`) adds the lexicon:

- an ambiguous name (和田, 喀什, 伊宁 ...) means the narrowest unit covering every unit it may mean
  (喀什 → 喀什地区, 伊宁 → 伊犁州), with a lower weight; followed by an urban suffix (市区, 城区,
  老城, 县城 ...) it means the county-level unit of that name (喀什老城 → 喀什市);
- a name followed by a product, dish, shop or street word is no place (和田玉, 哈密瓜, 喀什美食,
  和田街); words such as 泡温泉 are consumed whole (温泉 is 温泉县's short name);
- a name after an origin word (从, 老家, 以前在 ...) or before 来的 / 人， is an origin, and a
  name after 不是 is denied: both are reported, with their role, but do not say where the matter is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ahocorasick  # type: ignore[import-not-found,unused-ignore]

from fengqiao.services.router.directory import Directory, Unit
from fengqiao.services.router.placewords import PlaceRules, load_place_rules

__all__ = ["WEIGHTS", "PlaceIndex", "PlaceMention"]


@dataclass(frozen=True)
class PlaceMention:
    """A place name found in a text."""

    name: str
    start: int
    unit_id: str
    kind: str  # full | short | alias | former | landmark | context | ambiguous
    weight: float
    role: str = "where"  # where | origin | negated | not_place


WEIGHTS = {
    "full": 1.0,
    "short": 0.9,
    "alias": 0.85,
    "former": 0.8,
    "context": 0.8,
    "landmark": 0.75,
    "ambiguous": 0.6,
}
_NEVER_A_BRAND = frozenset({"full", "former"})  # 博乐市, 库车县: administrative, never a shop


@lru_cache(maxsize=1)
def _packaged_place_rules() -> PlaceRules:
    return load_place_rules()


class PlaceIndex:
    """Every place name of a directory (and of the lexicon), ready for one-pass matching."""

    def __init__(self, directory: Directory, rules: PlaceRules | None = None) -> None:
        self._rules = rules if rules is not None else _packaged_place_rules()
        self._directory = directory
        self._simplify = self._rules.simplifier()
        self._names: dict[str, tuple[str, str]] = {}
        self._carriers: dict[str, list[str]] = {}
        for unit in directory:
            self._add_unit(unit)
        for name, unit_ids in list(self._carriers.items()):
            self._add_ambiguous(name, unit_ids)
        for extra in self._rules.extra_names:
            for name in extra.names:
                self._put(name, extra.unit, extra.kind, force=True)
        self._automaton: Any = ahocorasick.Automaton()
        for word in self._rules.not_place_words:
            self._automaton.add_word(word, (word, None, "not_place"))
        for name, (unit_id, kind) in self._names.items():
            self._automaton.add_word(name, (name, unit_id, kind))
        self._automaton.make_automaton()

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
        for name in unit.names.ambiguous:
            self._carriers.setdefault(name, []).append(unit.id)

    def _add_ambiguous(self, name: str, unit_ids: list[str]) -> None:
        # An ambiguous name means the narrowest unit that covers every unit it may mean: "喀什"
        # is 喀什地区 (above the city), "伊宁" is 伊犁州 (above both 伊宁市 and 伊宁县) — never one
        # of two equals picked by file order. A longer name or a suffix in the text refines it.
        current = self._names.get(name)
        if current is not None:
            self._carriers[name] = [current[0], *unit_ids]
        covering = _common_ancestor(
            self._directory, [*([current[0]] if current else []), *unit_ids]
        )
        if covering is not None and (current is None or covering != current[0]):
            self._names[name] = (covering, "ambiguous")

    def _put(self, name: str, unit_id: str, kind: str, *, force: bool = False) -> None:
        if len(name) < 2:
            return
        current = self._names.get(name)
        # A full or short name beats an alias or former name of another unit.
        if force or current is None or WEIGHTS[kind] > WEIGHTS[current[1]]:
            self._names[name] = (unit_id, kind)

    def find(self, text: str) -> list[PlaceMention]:
        """Every place mention in `text`, left to right, longest match first, no overlaps."""
        text = self._simplify(text)
        found: list[PlaceMention] = []
        for end, (name, unit_id, kind) in self._automaton.iter_long(text):
            if unit_id is None:
                continue
            start = end - len(name) + 1
            found.append(self._mention(text, name, start, unit_id, kind))
        return found

    def _mention(self, text: str, name: str, start: int, unit_id: str, kind: str) -> PlaceMention:
        end = start + len(name)
        rules = self._rules
        if kind not in _NEVER_A_BRAND and text.startswith(rules.not_place_after, end):
            return PlaceMention(name, start, unit_id, kind, WEIGHTS[kind], "not_place")
        before = text[max(0, start - 6) : start]
        if before.endswith(rules.negated_before):
            return PlaceMention(name, start, unit_id, kind, WEIGHTS[kind], "negated")
        if self._is_origin(text, before, end):
            return PlaceMention(name, start, unit_id, kind, WEIGHTS[kind], "origin")
        refined = self._urban(name, text, end)
        if refined is not None:
            return PlaceMention(name, start, refined, "context", WEIGHTS["context"])
        return PlaceMention(name, start, unit_id, kind, WEIGHTS[kind])

    def _is_origin(self, text: str, before: str, end: int) -> bool:
        rules = self._rules
        linked = [before, *(before.removesuffix(link) for link in rules.origin_links)]
        return any(b.endswith(rules.origin_before) for b in linked) or text.startswith(
            rules.origin_after, end
        )

    def _urban(self, name: str, text: str, end: int) -> str | None:
        """喀什 + 老城 → 喀什市; 哈密 + 城区 → 伊州区; None when no suffix or no such unit."""
        carriers = self._carriers.get(name)
        if not carriers:
            return None
        for suffix, endings in self._rules.urban_suffixes.items():
            if text.startswith(suffix, end):
                for ending in endings:
                    for unit_id in carriers:
                        unit = self._directory[unit_id]
                        if unit.tier == "county" and (unit.division or "").endswith(ending):
                            return unit_id
        return None


def _common_ancestor(directory: Directory, unit_ids: list[str]) -> str | None:
    """The deepest unit whose subtree holds every one of `unit_ids` (None if in two trees)."""
    chains = [[u.id for u in directory.chain(unit_id)] for unit_id in unit_ids]
    common = None
    for ids in zip(*chains, strict=False):
        if len(set(ids)) != 1:
            break
        common = ids[0]
    return common
