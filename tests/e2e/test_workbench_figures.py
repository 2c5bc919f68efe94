"""督办 and 统计 in a real browser (issue 19, deliver 5 and 7): Debian's Chromium driven by
Playwright against the real stack and services.

Appeals are posted about 哈巴河县 (654324, under 阿勒泰 654300, which no other test writes to);
once the tracker has them dispatched, the unit lead of 阿勒泰 logs in and opens 督办 and 统计.
The figures the pages show for 哈巴河县 are checked against the county's own case list (the
unit API, read as a handler of 哈巴河县: a count made apart from the figures' API). Screenshots
under `test-artifacts/workbench/` (7-supervise, 8-stats)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")

PREFECTURE, COUNTY, OTHER = "654300", "654324", "654321"  # 阿勒泰, 哈巴河县, 布尔津县
OPEN = {"received", "acknowledged", "dispatched", "accepted", "in_progress", "returned",
        "coordinating", "extended", "reopened"}  # fmt: skip
RESOLVED = {"resolved", "callback_pending", "closed"}
APPEALS = (
    "@新疆检察 哈巴河县的建筑工地老板拖欠我们十几个工人工资两个月了，求助（{run}）",
    "@新疆检察 哈巴河县一家饭店老板跑了，欠服务员三个月工钱，请检察院帮忙（{run}）",
    "@新疆检察 布尔津县一个包工头欠我们装修工人的工钱快半年了，求检察院帮帮忙（{run}）",
)


def local_month(at: str | None) -> str:
    """The month of an instant in the calendar's time zone (the statistics' months)."""
    if not at:
        return ""
    return dt.datetime.fromisoformat(at).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


def county_cases(services: Any, token: str) -> list[dict[str, Any]]:
    """哈巴河县's cases as its own handler lists them (the unit API, not the figures' API)."""
    answer = httpx.get(f"{services.url('tracker')}/units/me/cases", params={"limit": 500},
                       headers={"Authorization": f"Bearer {token}"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return [c for c in answer.json() if c["assigned_unit"] == COUNTY]


def resolve(services: Any, token: str, case_id: str) -> None:
    """The county's handler signs for the case and resolves it, through the unit API."""
    with httpx.Client(base_url=services.url("tracker"), timeout=15,
                      headers={"Authorization": f"Bearer {token}"}) as http:  # fmt: skip
        for action, body in (("accept", {}), ("resolve", {"outcome": "工资已发放",
                                                          "amount_recovered": 8000})):  # fmt: skip
            answer = http.post(f"/units/me/cases/{case_id}/{action}", json=body)
            assert answer.status_code == 202 and answer.json()["status"] == "applied", answer.text


def test_a_prefecture_lead_reads_supervision_and_statistics_in_the_browser(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    run = uuid.uuid4().hex[:6]
    posted = [post_appeal(text.format(run=run), account="@新疆检察") for text in APPEALS]
    ids = []
    for appeal, county in zip(posted, (COUNTY, COUNTY, OTHER), strict=True):
        case = wait_for_case(appeal, state="dispatched", timeout=90)
        assert case["chain"][-1] == county, case["chain"]
        ids.append(case["case_id"])
    handler = fengqiao_services.token_for(COUNTY, "handler")
    resolve(fengqiao_services, handler, ids[0])
    wait_for_case(ids[0], state="resolved", timeout=30)  # its view too
    cases = county_cases(fengqiao_services, handler)
    open_count = sum(c["state"] in OPEN for c in cases)
    assert open_count >= 1  # the appeals may have been linked to an earlier run's case

    lead, _ = person(fengqiao_services, PREFECTURE, "unit_lead", name="阿勒泰督办")
    base = fengqiao_services.url("workbench")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log_in(page, base, lead, "/supervise")

    # 督办: 哈巴河县's row shows the open cases its own list counts.
    expect(page.locator("h1")).to_have_text("督办")
    row = page.locator(f'#supervise tr[data-unit="{COUNTY}"]')
    expect(row.locator('[data-figure="open"]')).to_have_text(str(open_count))
    overdue = sum(c["state"] in OPEN and bool(c["overdue"]) for c in cases)
    assert int(row.locator('[data-figure="overdue"]').inner_text()) >= overdue
    assert "652701" not in page.content()  # 博乐市 is another prefecture's
    shot(page, "7-supervise")

    # 统计: this month's cases of 哈巴河县, with the charts.
    page.click('header a[href="/stats"]')
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("统计")
    month = page.locator("#stats-months tr[data-month]").last.get_attribute("data-month")
    assert month
    page.goto(f"{base}/stats?month={month}&figure=volume")
    received = [c for c in cases
                if c["state"] != "merged" and local_month(c["received_at"]) == month]  # fmt: skip
    resolved = sum(c["state"] in RESOLVED for c in received)
    assert resolved >= 1
    row = page.locator(f'#stats-units tr[data-unit="{COUNTY}"]')
    expect(row.locator('[data-figure="volume"]')).to_have_text(str(len(received)))
    rate = f"{resolved / len(received) * 100:.1f}%"
    expect(row.locator('[data-figure="resolution_rate"]')).to_have_text(rate)
    expect(page.locator(f'#stats-units tr[data-unit="{OTHER}"]')).to_have_count(1)
    expect(page.locator("#chart-units rect").first).to_be_visible()
    expect(page.locator("#chart-months")).to_be_visible()
    # The router's returns per unit answer (the fleet's workbench calls the fleet's router).
    expect(page.locator("#stats-returns")).not_to_contain_text("暂时无法")
    page.goto(f"{base}/stats")
    shot(page, "8-stats")
    context.close()
