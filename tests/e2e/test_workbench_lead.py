"""组长裁决 in a real browser (issue 19, deliver 5 and 7) on the real stack and services: 博乐市's
handler signs for a dispatched case and asks for an extension (through the tracker's API, as
themselves); the unit lead of 博州 (652700), the unit above, opens the case in the workbench and
approves the extension from the case page; the tracker records it in the lead's name."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")


def test_a_unit_lead_approves_an_extension_from_the_case_page(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    base, tracker = fengqiao_services.url("workbench"), fengqiao_services.url("tracker")
    _, handler = person(fengqiao_services, "652701", "handler")
    lead, _ = person(fengqiao_services, "652700", "unit_lead")
    appeal = post_appeal("@新疆检察 博乐市的工地拖欠我们工资两个月了，求助", account="@新疆检察")
    case_id = wait_for_case(appeal, state="dispatched", timeout=90)["case_id"]
    url = f"{tracker}/units/me/cases/{case_id}"
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {handler}"}) as api:
        signed = api.post(f"{url}/accept", json={})
        assert signed.status_code == 202, signed.text
        deadline = dt.datetime.fromisoformat(api.get(url).json()["deadline"])
        until = (deadline + dt.timedelta(days=7)).isoformat()
        body = {"requested_deadline": until, "note": "需调取工程账目"}
        asked = api.post(f"{url}/extension", json=body)
        assert asked.status_code == 202 and asked.json()["status"] == "applied", asked.text

    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log_in(page, base, lead, f"/cases/{case_id}")
    rulings = page.locator("#rulings")
    expect(rulings).to_contain_text("需调取工程账目")
    shot(page, "lead-1-extension-pending")
    form = page.locator("#form-extension-approve")
    form.locator("[name=note]").fill("同意延期七天")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#message")).to_contain_text("批准延期")
    expect(page.locator("#rulings")).to_have_count(0)  # nothing pending any more
    expect(page.locator("#timeline")).to_contain_text(f"local:{lead}")
    shot(page, "lead-2-extension-approved")
    context.close()
    with httpx.Client(timeout=30, headers={"authorization": f"Bearer {handler}"}) as http:
        case = http.get(url).json()
    assert case["extension"] is None and case["extensions"] == 1
    assert dt.datetime.fromisoformat(case["deadline"]) == dt.datetime.fromisoformat(until)
