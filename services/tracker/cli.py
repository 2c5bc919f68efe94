"""`fengqiao stats`: the assessment figures per unit and tier for a period, from the tracker's
store (the same computation as the tracker's `GET /ops/stats`).

    fengqiao stats --since 2026-11-01 --until 2026-12-01 [--unit 652700] [--json]

Dates are local dates of the business calendar (Asia/Shanghai by default), `since` inclusive,
`until` exclusive; full ISO 8601 instants are accepted too. Default: the last 30 days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import IO, Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError, ServerSelectionTimeoutError
from rich.cells import cell_len

from fengqiao.services.tracker import stats
from fengqiao.services.tracker.adapters.cases import MongoCaseRepository
from fengqiao.services.tracker.settings import TrackerSettings

COLUMNS = (
    ("volume", "volume"),
    ("response_rate", "响应率"),
    ("resolution_rate", "解决率"),
    ("satisfaction_rate", "满意率"),
    ("on_time_rate", "on time"),
    ("median_sign_hours", "sign h"),
    ("median_resolution_hours", "resolve h"),
    ("overdue_open", "overdue"),
    ("returns", "returns"),
    ("no_answer", "no answer"),
    ("amount_recovered", "yuan"),
    ("merged", "merged"),
)


class StatsError(Exception):
    """Bad arguments or an unreachable store; the message says which."""


def parse_when(text: str, settings: TrackerSettings) -> dt.datetime:
    """A local date (midnight in the calendar's zone) or an aware ISO 8601 instant."""
    zone = settings.rules("cli").calendar.timezone
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), zone)
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise StatsError(f"cannot read date {text!r}: use YYYY-MM-DD or ISO 8601") from None
    return when if when.tzinfo else when.replace(tzinfo=zone)


async def report(
    settings: TrackerSettings, since: dt.datetime, until: dt.datetime, unit: str | None
) -> stats.Report:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.stack.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=3000
    )
    try:
        cases = await MongoCaseRepository(client, settings.database).received(since, until)
    except ServerSelectionTimeoutError:
        raise StatsError(
            f"no MongoDB answers at {settings.stack.mongo_uri} (local stack: `fengqiao stack up`)"
        ) from None
    except PyMongoError as exc:
        raise StatsError(
            f"reading the tracker's store at {settings.stack.mongo_uri}: {exc}"
        ) from exc
    finally:
        await client.close()
    return stats.compute(cases, since, until, unit=unit)


RATES = frozenset(k for k, _ in COLUMNS if k.endswith("_rate"))


def cell(key: str, value: object) -> str:
    """A figure as people read it: rates in percent, hours to a tenth, yuan whole."""
    if value is None:
        return "–"
    if key in RATES and isinstance(value, float):
        return f"{value:.0%}"
    if key == "amount_recovered" and isinstance(value, (int, float)):
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def format_table(result: stats.Report) -> str:
    header = ["", *[title for _, title in COLUMNS]]
    rows = [[str(r["unit"]), *[cell(k, r[k]) for k, _ in COLUMNS]] for r in result.units]
    rows += [[f"[{r['tier']}]", *[cell(k, r[k]) for k, _ in COLUMNS]] for r in result.tiers]
    rows.append(["TOTAL", *[cell(k, result.total[k]) for k, _ in COLUMNS]])
    widths = [max(cell_len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        # Padded by the width on a terminal: 响应率 takes six columns, not three.
        return "  ".join(c + " " * (w - cell_len(c)) for c, w in zip(cells, widths, strict=True))

    lines = [f"cases received {result.since.isoformat()} – {result.until.isoformat()}"]
    lines += [line(header), *(line(row) for row in rows)]
    return "\n".join(lines)


def run(
    since: str | None,
    until: str | None,
    unit: str | None,
    as_json: bool,
    out: IO[str],
    err: IO[str],
) -> int:
    try:
        settings = TrackerSettings()
        start, end = stats.period(
            parse_when(since, settings) if since else None,
            parse_when(until, settings) if until else None,
            dt.datetime.now(dt.UTC),
        )
        result = asyncio.run(report(settings, start, end, unit))
    except (StatsError, ValueError) as exc:
        print(f"fengqiao stats: {exc}", file=err)
        return 2
    if as_json:
        json.dump(result.as_dict(), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write(format_table(result) + "\n")
    return 0
