"""The public summary: aggregates per prefecture and month, small numbers suppressed, never a
case (issue 19, deliver 6)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fengqiao.contracts import CaseState
from fengqiao.services.tracker import public
from fengqiao.services.tracker.domain import Case

TZ = ZoneInfo("Asia/Shanghai")
ROOT = Path(__file__).resolve().parents[3]
BOLE = ("xj", "652700", "652701")  # 博尔塔拉 → 博乐
URUMQI = ("xj", "650100", "650102")
TACHENG = ("xj", "654000", "654200", "654201")  # 伊犁州 → 塔城地区 → 塔城市
PREFECTURES = public.Prefectures.load()
MONTHS = ["2026-11", "2026-12"]


def case(
    n: int, chain: tuple[str, ...], at: str = "2026-12-03T02:00:00+00:00", **kw: object
) -> Case:
    return Case(case_id=f"c-{chain[-1]}-{n}", chain=chain, received_at=at, **kw)  # type: ignore[arg-type]


def resolved(n: int, chain: tuple[str, ...], *, on_time: bool, satisfaction: str) -> Case:
    return case(
        n,
        chain,
        state=CaseState.CLOSED,
        resolved_at="2026-12-05T02:00:00+00:00",
        resolved_in_time=on_time,
        satisfaction=satisfaction,
    )


def cells(result: dict, name: str) -> dict:
    return next(p["months"] for p in result["prefectures"] if p["name"] == name)


def test_a_cell_gives_rates_over_enough_cases_only() -> None:
    cases = [resolved(i, BOLE, on_time=i < 4, satisfaction="satisfied") for i in range(6)]
    cases += [case(i, BOLE) for i in range(6, 8)]  # open
    cases += [case(i, URUMQI) for i in range(20, 30)]
    cases += [case(99, BOLE, state=CaseState.MERGED)]  # counted where it was merged into
    result = public.summary(cases, MONTHS, PREFECTURES, TZ)
    bole = cells(result, "博尔塔拉蒙古自治州")["2026-12"]
    assert bole == {
        "received": 8,
        "resolution_rate": 0.75,
        "on_time_rate": round(4 / 6, 3),
        "satisfaction_rate": 1.0,
    }
    urumqi = cells(result, "乌鲁木齐市")["2026-12"]
    assert urumqi["received"] == 10 and urumqi["resolution_rate"] == 0.0
    assert urumqi["on_time_rate"] is None and urumqi["satisfaction_rate"] is None  # 0 resolved
    assert result["total"]["2026-12"]["received"] == 18 and result["total"]["2026-11"] is None


def test_a_small_cell_is_suppressed_and_so_is_the_one_its_total_would_give_away() -> None:
    cases = [case(i, BOLE) for i in range(3)]  # small
    cases += [case(i, URUMQI) for i in range(10, 16)]  # 6: the smallest shown
    cases += [case(i, TACHENG) for i in range(20, 40)]  # 20
    result = public.summary(cases, MONTHS, PREFECTURES, TZ)
    assert cells(result, "博尔塔拉蒙古自治州")["2026-12"] == public.SUPPRESSED
    assert cells(result, "乌鲁木齐市")["2026-12"] == public.SUPPRESSED  # secondary
    assert cells(result, "塔城地区")["2026-12"]["received"] == 20  # the deepest prefecture unit
    assert result["total"]["2026-12"]["received"] == 29


def test_a_total_that_would_be_one_small_cell_is_suppressed() -> None:
    result = public.summary([case(i, BOLE) for i in range(4)], MONTHS, PREFECTURES, TZ)
    assert cells(result, "博尔塔拉蒙古自治州")["2026-12"] == public.SUPPRESSED
    assert result["total"]["2026-12"] == public.SUPPRESSED


def test_a_month_is_the_calendars_and_a_case_at_the_top_is_the_regions() -> None:
    late = "2026-11-30T17:00:00+00:00"  # 1 December, 01:00 in Urumqi's official time
    cases = [case(i, ("xj",), at=late) for i in range(5)]
    result = public.summary(cases, MONTHS, PREFECTURES, TZ)
    assert list(cells(result, public.REGION)) == ["2026-12"]  # not November
    assert cells(result, public.REGION)["2026-12"]["received"] == 5


def test_nothing_of_a_case_is_in_the_summary() -> None:
    cases = [
        case(i, BOLE, masked_text="我被拖欠工资 手机 138****0000", author_id="u-secret")
        for i in range(7)
    ]
    text = json.dumps(public.summary(cases, MONTHS, PREFECTURES, TZ), ensure_ascii=False)
    assert "c-652701" not in text and "u-secret" not in text and "工资" not in text


def test_months_run_back_from_now_in_the_calendars_time_zone() -> None:
    now = datetime(2026, 12, 31, 17, tzinfo=UTC)  # 1 January 2027 in Urumqi
    assert public.months(now, 3, TZ) == ["2026-11", "2026-12", "2027-01"]
    assert public.start_of("2027-01", TZ) == datetime(2027, 1, 1, tzinfo=TZ)


def test_the_prefecture_names_are_built_from_the_directory() -> None:
    check = [sys.executable, str(ROOT / "scripts/build_prefectures.py"), "--check"]
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
