"""Category and urgency from the words of an appeal. The rules are data (`data/rules.yaml`).

The same file carries the place lexicon (`places:`) the place recognizer uses: traditional
characters, names the directory lacks, words that only look like places, origin and negation
markers. Every word list is matched in one pass by an Aho-Corasick automaton.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ahocorasick  # type: ignore[import-not-found,unused-ignore]
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RULES_FILE = Path(__file__).parent / "data" / "rules.yaml"

__all__ = [
    "RULES_FILE",
    "Classification",
    "PlaceRules",
    "Rules",
    "RulesError",
    "load_rules",
]


class RulesError(ValueError):
    """The rules file is malformed; the message names the entry."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Rule(_Model):
    id: str | None = None
    code: str | None = None
    weight: float = Field(default=1.0, gt=0)
    any: tuple[str, ...] = Field(min_length=1)
    with_: tuple[str, ...] = Field(default=(), alias="with")


class _ExtraNames(_Model):
    unit: str
    kind: str = Field(pattern=r"^(alias|ambiguous|landmark)$")
    names: tuple[str, ...] = Field(min_length=1)


class PlaceRules(_Model):
    """The place lexicon: see the `places:` section of rules.yaml for what each list means."""

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


class _RulesFile(_Model):
    schema_version: int
    default_category: str
    urgent_unless_before: tuple[str, ...] = ()
    urgent_unless_after: tuple[str, ...] = ()
    urgent: tuple[_Rule, ...]
    categories: tuple[_Rule, ...]
    places: PlaceRules = Field(default_factory=PlaceRules)


@dataclass(frozen=True)
class Classification:
    category: str
    urgent: bool
    rules_fired: tuple[str, ...]


@dataclass(frozen=True)
class Rules:
    """Urgency and category rules, compiled once; `classify` is pure."""

    default_category: str
    urgent: tuple[_Rule, ...]
    categories: tuple[_Rule, ...]
    places: PlaceRules = field(default_factory=PlaceRules)
    unless_before: tuple[str, ...] = ()
    unless_after: tuple[str, ...] = ()
    _words: Any = field(init=False, repr=False, compare=False)
    _simplify: Callable[[str], str] = field(init=False, repr=False, compare=False)
    _urgent_words: dict[str, list[int]] = field(init=False, repr=False, compare=False)
    _category_words: dict[str, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        words = ahocorasick.Automaton()
        for rule in (*self.urgent, *self.categories):
            for word in (*rule.any, *rule.with_):
                words.add_word(word, word)
        if len(words):
            words.make_automaton()
        object.__setattr__(self, "_words", words)
        object.__setattr__(self, "_simplify", self.places.simplifier())
        # Which category rules each word belongs to, so scoring walks only the words found.
        by_word: dict[str, list[int]] = {}
        for index, rule in enumerate(self.categories):
            for word in dict.fromkeys(rule.any):
                by_word.setdefault(word, []).append(index)
        object.__setattr__(self, "_category_words", by_word)
        urgent_words: dict[str, list[int]] = {}
        for index, rule in enumerate(self.urgent):
            for word in dict.fromkeys(rule.any):
                urgent_words.setdefault(word, []).append(index)
        object.__setattr__(self, "_urgent_words", urgent_words)

    def simplify(self, text: str) -> str:
        """Traditional characters of the lexicon folded to simplified ones."""
        return self._simplify(text)

    def classify(self, text: str) -> Classification:
        """The category and urgency of `text`, with the ids of the rules that fired."""
        text = self.simplify(text)
        found = self._find(text)
        fired: list[str] = []
        candidates = sorted({i for word in found for i in self._urgent_words.get(word, ())})
        for index in candidates:
            rule = self.urgent[index]
            if self._urgent_fires(rule, text, found):
                fired.append(rule.id or "urgent")
        hits: dict[int, int] = {}
        for word in found:
            for index in self._category_words.get(word, ()):
                hits[index] = hits.get(index, 0) + 1
        scores: dict[str, float] = {}
        for index in sorted(hits):
            rule = self.categories[index]
            if rule.code and (not rule.with_ or any(w in found for w in rule.with_)):
                scores[rule.code] = scores.get(rule.code, 0.0) + hits[index] * rule.weight
                fired.append(f"category.{rule.code}")
        category = max(scores, key=lambda c: scores[c]) if scores else self.default_category
        return Classification(
            category, bool(fired) and _any_urgent(fired, self.urgent), tuple(fired)
        )

    def _find(self, text: str) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        if len(self._words):
            for end, word in self._words.iter(text):
                found.setdefault(word, []).append(end - len(word) + 1)
        return found

    def _urgent_fires(self, rule: _Rule, text: str, found: dict[str, list[int]]) -> bool:
        if rule.with_ and not any(w in found for w in rule.with_):
            return False
        for word in rule.any:
            starts = found.get(word)
            if starts is None:
                continue
            for start in starts:
                if not self._quieted(text, start, start + len(word)):
                    return True
        return False

    def _quieted(self, text: str, start: int, end: int) -> bool:
        # "不是急事", "去年抢救过": a negation or past marker close before, or 过 right after.
        before = text[max(0, start - 6) : start]
        return any(w in before for w in self.unless_before) or text.startswith(
            self.unless_after, end
        )


def _any_urgent(fired: list[str], urgent: tuple[_Rule, ...]) -> bool:
    ids = {rule.id or "urgent" for rule in urgent}
    return any(f in ids for f in fired)


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
    try:
        return Rules(
            parsed.default_category,
            parsed.urgent,
            parsed.categories,
            parsed.places,
            parsed.urgent_unless_before,
            parsed.urgent_unless_after,
        )
    except ValueError as exc:
        raise RulesError(f"{path.name}: places.{exc}") from exc
