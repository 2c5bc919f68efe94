"""Charts as server-rendered SVG (no script, no library), like the public page's: this module
only computes the geometry (pure); the templates draw it (`statistics.html.j2`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BAR_WIDTH = 28
BAR_GAP = 14
BAR_HEIGHT = 120  # the tallest bar, in the SVG's units
LINE_WIDTH = 520
LINE_HEIGHT = 140
PALETTE = ("#9b1c1c", "#2f6f4f", "#1f5f9f", "#b54708")


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    text: str  # the value as shown
    x: int
    height: int

    @property
    def y(self) -> int:
        return BAR_HEIGHT - self.height


@dataclass(frozen=True)
class Bars:
    bars: list[Bar]
    width: int
    height: int = BAR_HEIGHT


def bars(items: Sequence[tuple[str, float | None, str]], top: float | None = None) -> Bars:
    """One bar per (label, value, text), scaled to `top` (default: the largest value); a value
    of None (no figure) draws no bar but keeps its place and label."""
    largest = top if top else max((v for _, v, _ in items if v is not None), default=0.0)
    scale = BAR_HEIGHT / largest if largest > 0 else 0.0
    out = [
        Bar(label, value, text, 10 + i * (BAR_WIDTH + BAR_GAP),
            round(max(value, 0.0) * scale) if value is not None else 0)
        for i, (label, value, text) in enumerate(items)
    ]  # fmt: skip
    return Bars(out, max(200, 20 + len(items) * (BAR_WIDTH + BAR_GAP)))


@dataclass(frozen=True)
class Line:
    name: str  # a label key
    color: str
    segments: list[str]  # SVG polyline points, one per run of months with a figure
    dots: list[tuple[float, float, str]]  # x, y, the value as shown


@dataclass(frozen=True)
class Lines:
    lines: list[Line]
    ticks: list[tuple[float, str]]  # x and month
    width: int = LINE_WIDTH
    height: int = LINE_HEIGHT


def x_of(index: int, count: int) -> float:
    step = (LINE_WIDTH - 60) / max(count - 1, 1)
    return round(40 + index * step, 1)


def y_of(rate: float) -> float:
    """A rate (0–1) on the chart: 0 at the bottom, 1 at the top."""
    return round(LINE_HEIGHT - 20 - max(0.0, min(rate, 1.0)) * (LINE_HEIGHT - 30), 1)


def lines(months: Sequence[str], series: dict[str, Sequence[float | None]]) -> Lines:
    """One line per series of rates (0–1) over `months`; a month without a figure breaks it."""
    drawn = []
    for i, (name, values) in enumerate(series.items()):
        segments: list[list[str]] = [[]]
        dots = []
        for index, value in enumerate(values):
            if value is None:
                segments.append([])
                continue
            x, y = x_of(index, len(months)), y_of(value)
            segments[-1].append(f"{x},{y}")
            dots.append((x, y, f"{value * 100:.0f}%"))
        runs = [" ".join(points) for points in segments if points]
        drawn.append(Line(name, PALETTE[i % len(PALETTE)], runs, dots))
    ticks = [(x_of(i, len(months)), month) for i, month in enumerate(months)]
    return Lines(drawn, ticks)
