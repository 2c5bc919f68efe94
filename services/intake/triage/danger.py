"""The danger lexicon in context: which danger words of a post are live, and which are quieted.

The words and the context rules are data (`services/intake/data/danger.yaml`, explained there).
Every list is matched in one pass by an Aho-Corasick automaton. Pure: no I/O after loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import ahocorasick  # type: ignore[import-not-found,unused-ignore]
import yaml
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DANGER_FILE", "Danger", "Hit", "load_danger"]

DANGER_FILE = Path(__file__).resolve().parents[1] / "data" / "danger.yaml"

Quiet = Literal["live", "figurative", "negated", "past", "joke", "resolved", "news"]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1]
    window: int = Field(ge=0, le=20)
    danger: dict[str, tuple[str, ...]]
    signals: tuple[str, ...] = ()
    soft_kinds: tuple[str, ...] = ()
    negated_before: tuple[str, ...] = ()
    past_before: tuple[str, ...] = ()
    past_after: tuple[str, ...] = ()
    figurative: tuple[str, ...] = ()
    joke: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    news: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """One danger word found: its kind (suicide, violence… or signal), and live or why quiet."""

    word: str
    kind: str
    state: Quiet
    start: int

    @property
    def live(self) -> bool:
        return self.state == "live"

    @property
    def marker(self) -> str:
        """The model's feature for it: "d:<kind>" when live, "q:<state>" when quieted."""
        return f"d:{self.kind}" if self.live else f"q:{self.state}"


@dataclass(frozen=True)
class Danger:
    """The compiled lexicon; `find` is pure."""

    window: int
    soft_kinds: frozenset[str]
    _automaton: Any = field(repr=False)

    def markers(self, text: str) -> tuple[list[Hit], list[str]]:
        """The hits of a normalized text that matter (every danger word, live signals), and the
        model's marker tokens for them."""
        hits = [h for h in self.find(text.lower()) if h.kind != "signal" or h.live]
        return hits, [h.marker for h in hits]

    def find(self, text: str) -> list[Hit]:
        """Every danger word of `text` (normalized, lower case), with its context's verdict."""
        found: list[tuple[int, int, str, str]] = []  # start, end, role, value
        for end, (role, value, word) in self._automaton.iter(text):
            found.append((end - len(word) + 1, end + 1, role, value))
        if not found:
            return []
        figurative = [(s, e) for s, e, role, _ in found if role == "figurative"]
        laughs = any(role == "joke" for *_, role, _ in found)
        over = any(role == "resolved" for *_, role, _ in found)
        told = any(role == "news" for *_, role, _ in found)
        hits = []
        for start, end, role, kind in found:
            if role != "danger":
                continue
            state = self._state(text, start, end, kind, figurative, found, laughs)
            if state == "live" and over:
                state = "resolved"
            elif state == "live" and told:
                state = "news"
            hits.append(Hit(text[start:end], kind, state, start))
        return hits

    def _state(
        self,
        text: str,
        start: int,
        end: int,
        kind: str,
        figurative: list[tuple[int, int]],
        found: list[tuple[int, int, str, str]],
        laughs: bool,
    ) -> Quiet:
        if any(s < end and start < e for s, e in figurative):  # inside or overlapping one
            return "figurative"
        low = start - self.window
        for s, e, role, _ in found:
            if role == "negated" and low <= s and e <= start:
                return "negated"
            if role == "past_before" and low <= s and e <= start:
                return "past"
            if role == "past_after" and s == end:
                return "past"
        if laughs and kind in self.soft_kinds:
            return "joke"
        return "live"


def _compile(data: _File) -> Danger:
    automaton = ahocorasick.Automaton()
    entries: dict[str, tuple[str, str]] = {}

    def add(word: str, role: str, value: str) -> None:
        word = word.lower()
        # A word in two roles keeps the first: danger words before context words.
        if word and word not in entries:
            entries[word] = (role, value)

    for kind, words in data.danger.items():
        for word in words:
            add(word, "danger", kind)
    for word in data.signals:
        add(word, "danger", "signal")
    for role, words in (
        ("negated", data.negated_before),
        ("past_before", data.past_before),
        ("past_after", data.past_after),
        ("figurative", data.figurative),
        ("joke", data.joke),
        ("resolved", data.resolved),
        ("news", data.news),
    ):
        for word in words:
            if word.lower() in entries and role == "figurative":
                raise ValueError(f"{word!r} is both a danger word and a figurative phrase")
            add(word, role, role)
    for word, (role, value) in entries.items():
        automaton.add_word(word, (role, value, word))
    automaton.make_automaton()
    return Danger(data.window, frozenset(data.soft_kinds), automaton)


@cache
def load_danger(path: Path = DANGER_FILE) -> Danger:
    """The lexicon in `path`, validated and compiled once; ValueError names what is wrong."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
    return _compile(_File.model_validate(raw))
