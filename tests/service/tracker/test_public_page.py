"""The public page over HTTP: no login, aggregates only, small cells suppressed, in Chinese or
English, one read of the store a minute however many callers (issue 19, deliver 6)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from fengqiao.contracts import CaseState
from fengqiao.services.tracker.domain import Case
from fengqiao.services.tracker.public_api import public_router

TZ = ZoneInfo("Asia/Shanghai")


class Store:
    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC).isoformat()
        bole = ("xj", "652700", "652701")
        self.cases = [
            Case(
                case_id=f"c-secret-{i}",
                chain=bole,
                received_at=now,
                state=CaseState.CLOSED,
                resolved_at=now,
                resolved_in_time=True,
                satisfaction="satisfied",
                masked_text="工资被拖欠",
            )
            for i in range(8)
        ]
        self.cases += [
            Case(case_id=f"c-open-{i}", chain=("xj", "654000", "654200"), received_at=now)
            for i in range(6)
        ]
        self.cases += [
            Case(case_id=f"c-few-{i}", chain=("xj", "650100", "650102"), received_at=now)
            for i in range(2)
        ]
        self.reads = 0

    async def received(self, since: dt.datetime, until: dt.datetime) -> list[Case]:
        assert since.tzinfo is not None and since < until
        self.reads += 1
        return self.cases


@pytest.fixture
async def page() -> AsyncIterator[tuple[httpx.AsyncClient, Store]]:
    store = Store()
    app = FastAPI()
    app.include_router(public_router(store.received, TZ))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://public") as http:
        yield http, store


async def test_the_page_needs_no_login_and_shows_aggregates_only(
    page: tuple[httpx.AsyncClient, Store],
) -> None:
    http, _ = page
    response = await http.get("/public")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "群众诉求办理情况" in html and "博尔塔拉蒙古自治州" in html and "<svg" in html
    assert "不足5件" in html  # 乌鲁木齐市's two cases, and 塔城地区's six, the next smallest
    assert "c-secret" not in html and "c-few" not in html and "工资" not in html
    english = await http.get("/public", params={"lang": "en", "months": 3})
    assert "Xinjiang procuratorate" in english.text and "&lt; 5" in english.text


async def test_the_summary_is_json_and_read_once_a_minute(
    page: tuple[httpx.AsyncClient, Store],
) -> None:
    http, store = page
    first = (await http.get("/public/summary", params={"months": 2})).json()
    for _ in range(20):
        assert (await http.get("/public/summary", params={"months": 2})).json() == first
    assert store.reads == 1
    assert len(first["months"]) == 2 and first["min_cell"] == 5
    names = {p["name"]: p["months"] for p in first["prefectures"]}
    month = first["months"][-1]
    assert names["博尔塔拉蒙古自治州"][month]["satisfaction_rate"] == 1.0
    assert names["乌鲁木齐市"][month] == names["塔城地区"][month] == {"suppressed": True}
    assert first["total"][month]["received"] == 16


@pytest.mark.parametrize("query", [{"months": 0}, {"months": 25}, {"lang": "fr"}])
async def test_a_bad_query_is_a_clear_422(
    page: tuple[httpx.AsyncClient, Store], query: dict[str, object]
) -> None:
    http, _ = page
    response = await http.get("/public", params=query)
    assert response.status_code == 422, response.text
