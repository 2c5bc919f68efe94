"""The workbench in a real browser (issue 19, deliver 7): Debian's Chromium driven by
Playwright (`executable_path`, never `playwright install`) against the real stack and services.

A county handler of 博乐市 logs in, opens the dispatched case, signs for it (签收), reports
progress and resolves it (办结), and the citizen's answer to the callback (回访) closes it; a
handler of the sibling 精河县 cannot open it (404 page); logging out ends the session on the
server (the old cookie no longer works, in the workbench nor at the tracker). Each page is kept
as a screenshot under `test-artifacts/workbench/`."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from fengqiao.auth.guard import SESSION_COOKIE
from fengqiao.demo import asked_back
from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def fengqiao_service_env() -> dict[str, str]:
    """The callback question goes out a second after 办结 (not the days of the defaults)."""
    limits = {"defaults": {"callback_ask": "1 seconds", "callback_answer": "300 seconds"}}
    return {
        "FENGQIAO_TRACKER_TIME_LIMITS": json.dumps(limits),
        "FENGQIAO_TRACKER_SWEEP_INTERVAL_SECONDS": "0.3",
    }


def act(page: Any, name: str, fields: dict[str, str], state: str) -> None:
    form = page.locator(f"#form-{name}")
    if not form.is_visible():
        page.click(f"#form-{name} >> xpath=.. >> summary")
    for field, value in fields.items():
        form.locator(f"[name={field}]").fill(value)
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    playwright_sync.expect(page.locator("#message")).to_be_visible()
    playwright_sync.expect(page.locator("#state")).to_have_attribute("data-state", state)


def test_a_county_handler_signs_reports_and_resolves_in_the_browser(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    base = fengqiao_services.url("workbench")
    handler, _ = person(fengqiao_services, "652701", "handler", name="王力")
    sibling, _ = person(fengqiao_services, "652702", "handler", name="赵敏")
    appeal = post_appeal("@新疆检察 博乐市的工地拖欠我们工资三个月了，求助", account="@新疆检察")
    case = wait_for_case(appeal, state="dispatched", timeout=90)
    case_id = case["case_id"]
    assert case["chain"][-1] == "652701"

    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(base + "/")
    shot(page, "1-login")
    log_in(page, base, handler, "/?state=dispatched")
    expect(page.locator("h1")).to_have_text("收件箱")
    link = page.locator(f'a[href="/cases/{case_id}"]')
    expect(page.locator("#inbox")).to_contain_text("个工作小时")  # the time left, office hours
    shot(page, "2-inbox")
    shot(page, "inbox-docs", full_page=False)  # docs/workbench-inbox.png
    if link.count():
        link.first.click()
    else:  # many cases of 博乐市 in this session: it may be on a later page
        page.goto(f"{base}/cases/{case_id}")
    expect(page.locator("#state")).to_have_attribute("data-state", "dispatched")
    # Units by name (the router's directory), not by code.
    expect(page.locator("#hops")).to_contain_text("博尔塔拉蒙古自治州人民检察院 → 博乐市人民检察院")
    shot(page, "3-case-dispatched")
    act(page, "accept", {}, "accepted")
    act(page, "progress", {"note": "已联系用人单位，约定本周内发放"}, "in_progress")
    act(page, "resolve", {"outcome": "工资已全部发放", "amount_recovered": "12000"}, "resolved")
    expect(page.locator("#timeline")).to_contain_text(f"local:{handler}")
    shot(page, "4-case-resolved")

    # The tracker asks the citizen back (回访) at once here; the citizen's answer closes it.
    wait_for_case(case_id, where=asked_back, timeout=60)
    post_appeal("满意，谢谢检察官", author_id=appeal.author_id, account=appeal.account)
    wait_for_case(case_id, state="closed", timeout=60)
    page.goto(f"{base}/cases/{case_id}")
    expect(page.locator("#state")).to_have_attribute("data-state", "closed")
    expect(page.locator("#state")).to_have_text("已结案")
    shot(page, "4b-case-closed-by-the-callback")
    shot(page, "case-docs", full_page=False)  # docs/workbench-case.png

    # A handler of the sibling 精河县 cannot open it: the 404 page, nothing of the case.
    other = browser.new_context(locale="zh-CN")
    other_page = other.new_page()
    log_in(other_page, base, sibling)
    answer = other_page.goto(f"{base}/cases/{case_id}")
    assert answer is not None and answer.status == 404
    expect(other_page.locator("h1")).to_contain_text("无权查看")
    assert "拖欠" not in other_page.content()
    shot(other_page, "5-sibling-404")
    other.close()

    # Logging out ends the session on the server: the old cookie no longer works.
    [cookie] = [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.click("#logout")
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    shot(page, "6-logged-out")
    replay = browser.new_context()
    replay.add_cookies([cookie])
    replayed = replay.new_page()
    replayed.goto(f"{base}/cases/{case_id}")
    assert "/login" in replayed.url
    replay.close()
    context.close()
    tracker = fengqiao_services.url("tracker")
    deadline = time.monotonic() + 15  # each process trusts a checked session ≤ 5 s
    while True:
        status = httpx.get(
            f"{tracker}/units/me", cookies={SESSION_COOKIE: cookie["value"]}
        ).status_code
        if status == 401 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 401
