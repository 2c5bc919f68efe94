"""回复审核 in a real browser (issue 19, deliver 7: "A reviewer approves a held reply"): with the
notifier holding the replies of minors cases, a minors appeal's acknowledgment waits; a reviewer
logs in to the workbench, finds it as it would be posted, types a text too long for a comment
(refused by the notifier's rules, the page says so in Chinese, nothing posted), then an edited
text within them and approves it. Exactly one reply reaches the platform: the edited text with
the reply's receipt code (the dispatch notice, held too and not approved, never goes out).
Screenshots under `test-artifacts/workbench/` (review-docs.png is docs/workbench-review.png)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.e2e.browsing import log_in, person, shot

playwright_sync = pytest.importorskip("playwright.sync_api")

MINORS = (
    "我儿子今年13岁，在学校被几个高年级学生长期欺负殴打勒索零花钱，老师不管，"
    "请检察院帮帮我们未成年孩子"
)
EDIT = "您好，您反映的孩子在校被欺凌一事已收到，已转交属地检察院未检部门依法办理，会尽快与您联系。"


@pytest.fixture(scope="module")
def fengqiao_service_env() -> dict[str, str]:
    return {"FENGQIAO_NOTIFIER_HOLD_CATEGORIES": json.dumps(["minors"])}


def until(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_reviewer_edits_and_approves_a_held_reply_in_the_browser(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any, platform: Any, browser: Any
) -> None:
    expect = playwright_sync.expect
    base = fengqiao_services.url("workbench")
    reviewer, _ = person(fengqiao_services, "xj", "reviewer", name="顾敏")
    appeal = post_appeal(MINORS, account="@新疆检察")
    case = wait_for_case(
        appeal, where=lambda d: any(e["event"] == "reply.held" for e in d["timeline"])
    )
    key = f"{case['case_id']}:acknowledgment:0"
    assert platform.replies_to(appeal.post_id) == []

    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
    page = context.new_page()
    log_in(page, base, reviewer, "/replies")
    expect(page.locator("h1")).to_have_text("回复审核")
    held = page.locator(f'section[data-key="{key}"]')
    expect(held).to_contain_text("敏感类别")
    expect(held.locator(".as-posted")).to_contain_text("〔回执")
    marker = held.locator(".marker").inner_text()
    assert re.fullmatch(r"〔回执[0-9A-Z]{6}〕", marker), marker

    # The reviewer's text, counted as it is typed: the page as docs/workbench-review.png shows it.
    held.locator("textarea[name=text]").fill(EDIT)
    held.locator("input[name=note]").fill("措辞调整：说明转交未检部门")
    expect(held.locator(".count")).to_have_text(f"{len(EDIT)} / 130 字")
    shot(page, "review-1-held")
    held.evaluate("e => window.scrollTo(0, e.offsetTop - 8)")
    shot(page, "review-docs", full_page=False)  # docs/workbench-review.png

    # Too long for a comment with its receipt code: the notifier refuses, the page says why.
    held.locator("textarea[name=text]").fill("很" * 140)
    expect(held.locator(".count.overdue")).to_have_text("140 / 130 字")
    held.locator("form.approve button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#error")).to_contain_text("回复内容不符合平台规则")
    held = page.locator(f'section[data-key="{key}"]')
    expect(held.locator(".too-long")).to_contain_text("回复过长：140 字")
    shot(page, "review-2-refused")
    assert platform.replies_to(appeal.post_id) == []

    held.locator("textarea[name=text]").fill(EDIT)
    held.locator("input[name=note]").fill("措辞调整：说明转交未检部门")
    held.locator("form.approve button[type=submit]").click()
    page.wait_for_load_state()
    expect(page.locator("#message")).to_contain_text(f"已批准发布：案件 {case['case_id']}")
    expect(page.locator(f'section[data-key="{key}"]')).to_have_count(0)
    shot(page, "review-3-approved")
    context.close()

    replies = until("the approved reply", lambda: platform.replies_to(appeal.post_id))
    time.sleep(3)  # time for a second post, had there been one
    replies = platform.replies_to(appeal.post_id)
    assert [r["text"] for r in replies] == [EDIT + marker]
    wait_for_case(appeal, where=lambda d: d["acknowledged"])
