"""分诊 in a real browser (issue 19, deliver 7: "A dispatcher corrects a routing in the triage
queue"): Debian's Chromium driven by Playwright against the real stack and services.

A post whose place is unsure opens its case at once at 和田地区 and waits in the router's triage
queue; a dispatcher of 和田地区 logs in to the workbench, finds it in 分诊, opens it, and
corrects it to 皮山县 with another category. The case then reaches 皮山县 with that category,
and its timeline names the dispatcher. The queue and the item are kept as screenshots under
`test-artifacts/workbench/` (the queue's also as docs/workbench-triage.png, by hand)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")

# 116 km from 皮山县's seat, the nearest: a weak clue, so the place is unsure (test_triage_queue).
FAR_FROM_PISHAN = (38.5, 79.0)


def find_in_queue(page: Any, base: str, case_id: str, timeout: float = 60) -> Any:
    """The queue's row of `case_id`, reloading until the router has queued it."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(f"{base}/triage?review=uncertain_place")
        row = page.locator(f'tr[data-case="{case_id}"]')
        if row.count():
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"case {case_id} never reached the workbench's triage queue")
        time.sleep(1)


def test_a_dispatcher_corrects_a_routing_in_the_triage_queue(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    base = fengqiao_services.url("workbench")
    username, _ = person(fengqiao_services, "653200", "dispatcher", name="李伟")
    appeal = post_appeal(
        "老板拖欠我们十几个人的工资三个月了，一分钱没给，天天推，求求你们帮帮忙",
        geo=FAR_FROM_PISHAN,
    )
    case = wait_for_case(appeal, where=lambda c: c.get("assigned_unit") == "653200", timeout=90)
    case_id = case["case_id"]

    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, base, username, "/triage")
    expect(page.locator('header a[href="/triage"]')).to_have_text("分诊")

    row = find_in_queue(page, base, case_id)
    expect(row).to_contain_text("地点存疑")
    expect(row).to_contain_text("皮山县")  # the suggested unit, by name
    shot(page, "triage-1-queue")
    row.locator("a").click()
    page.wait_for_load_state()
    expect(page.locator("#case-id")).to_have_text(case_id)
    expect(page.locator("#suggested-unit")).to_have_attribute("data-unit", "653223")
    expect(page.locator("#evidence li").first).to_be_visible()
    shot(page, "triage-2-item")

    form = page.locator("#form-correct")
    form.locator("select[name=unit]").select_option("653223")
    form.locator("select[name=category]").select_option("judicial_aid")
    form.locator("textarea[name=note]").fill("皮山县的事，电话问过本人")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#ruling")).to_contain_text(f"local:{username}")
    expect(page.locator("#ruled-unit")).to_contain_text("653223")
    shot(page, "triage-3-corrected")
    context.close()

    # The case follows the correction: at 皮山县, with the corrected category, in their name.
    moved = wait_for_case(
        appeal,
        where=lambda c: c.get("assigned_unit") == "653223" and c.get("category") == "judicial_aid",
        timeout=90,
    )
    assert moved["chain"][-1] == "653223"
    assert any(e.get("person") == f"local:{username}" for e in moved["timeline"])
