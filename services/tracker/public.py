"""The public summary (issue 19, deliver 6): what the matrix has done, per prefecture and month,
for anyone to read, like the matrix's own #新疆检察政在做# posts.

Pure: takes cases, returns aggregates only, never a case. A cell is a prefecture-level unit (the
deepest one in the case's chain; a case led at the top counts as 自治区本级) and a calendar
month in the calendar's time zone, of the month the case was received in:

- received          cases received (merged duplicates not counted)
- resolution_rate   resolved (办结, closed after the callback included) / received
- on_time_rate      resolved by the deadline / resolved
- satisfaction_rate satisfied or basically satisfied / callbacks answered

Small numbers identify people, so:
- a cell of fewer than `MIN_CELL` cases is suppressed (no figure at all, only that it is small);
- a rate over fewer than `MIN_CELL` cases is left out (one satisfaction answer is one person's);
- a month's total is shown, so when a month has exactly one suppressed cell the next smallest is
  suppressed too (else the total minus the others would give it away), and a total that would
  be one suppressed cell's figure, or is itself under `MIN_CELL`, is suppressed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from fengqiao.contracts import CaseState
from fengqiao.services.tracker.domain import Case
from fengqiao.services.tracker.stats import Tally

MIN_CELL = 5
REGION = "自治区本级"  # a case led by the region itself
MAX_MONTHS = 24
PREFECTURES_FILE = Path(__file__).parent / "data" / "prefectures.yaml"


@dataclass(frozen=True)
class Prefectures:
    """Prefecture-level units and their names (data/prefectures.yaml, built from the router's
    directory by scripts/build_prefectures.py)."""

    names: dict[str, str]

    @classmethod
    def load(cls, path: Path = PREFECTURES_FILE) -> Prefectures:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls({str(k): str(v) for k, v in data["prefectures"].items()})

    def of(self, chain: Sequence[str]) -> str:
        """The name of the deepest prefecture-level unit of `chain`, or 自治区本级."""
        for unit in reversed(chain):
            if unit in self.names:
                return self.names[unit]
        return REGION


def months(now: dt.datetime, count: int, tz: ZoneInfo) -> list[str]:
    """The `count` calendar months up to `now`'s (in `tz`), oldest first, as `YYYY-MM`."""
    local = now.astimezone(tz)
    year, month = local.year, local.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


def start_of(month: str, tz: ZoneInfo) -> dt.datetime:
    year, number = (int(part) for part in month.split("-"))
    return dt.datetime(year, number, 1, tzinfo=tz)


def _shown(tally: Tally) -> dict[str, Any]:
    return {
        "received": tally.volume,
        "resolution_rate": _rate(tally.resolved, tally.volume),
        "on_time_rate": _rate(tally.resolved_in_time, tally.resolved),
        "satisfaction_rate": _rate(tally.satisfied, tally.answered),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole >= MIN_CELL else None


SUPPRESSED: dict[str, Any] = {"suppressed": True}


def summary(
    cases: Iterable[Case], wanted: list[str], prefectures: Prefectures, tz: ZoneInfo
) -> dict[str, Any]:
    """Aggregates of `cases` per prefecture and month of `wanted`, small cells suppressed."""
    cells: dict[tuple[str, str], Tally] = {}
    totals = {m: Tally() for m in wanted}
    for case in cases:
        if case.state is CaseState.MERGED or not case.received_at:
            continue
        month = dt.datetime.fromisoformat(case.received_at).astimezone(tz).strftime("%Y-%m")
        if month not in totals:
            continue
        place = prefectures.of(case.chain)
        cells.setdefault((place, month), Tally()).add(case)
        totals[month].add(case)
    hidden = _suppressed(cells, wanted)
    places = [p for p in (REGION, *prefectures.names.values()) if any(k[0] == p for k in cells)]
    return {
        "months": wanted,
        "min_cell": MIN_CELL,
        "prefectures": [
            {
                "name": place,
                "months": {
                    m: SUPPRESSED if (place, m) in hidden else _shown(cells[(place, m)])
                    for m in wanted
                    if (place, m) in cells
                },
            }
            for place in dict.fromkeys(places)
        ],
        "total": {m: _total(totals[m], sum(k[1] == m for k in hidden)) for m in wanted},
    }


def _total(cell: Tally, hidden: int) -> dict[str, Any] | None:
    """A month's total; suppressed when small, or when it is one suppressed cell's figure."""
    if not cell.volume:
        return None
    return SUPPRESSED if cell.volume < MIN_CELL or hidden == 1 else _shown(cell)


def _suppressed(cells: dict[tuple[str, str], Tally], wanted: list[str]) -> set[tuple[str, str]]:
    hidden = {key for key, cell in cells.items() if cell.volume < MIN_CELL}
    for month in wanted:
        small = [k for k in hidden if k[1] == month]
        shown = sorted(
            (k for k in cells if k[1] == month and k not in hidden),
            key=lambda k: cells[k].volume,
        )
        if len(small) == 1 and shown:  # the month's total would give the one away
            hidden.add(shown[0])
    return hidden
