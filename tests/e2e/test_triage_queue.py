"""The triage queue end to end: a post whose place is unsure opens its case at once at the
prefecture; a dispatcher finds it in the router's queue, corrects it over HTTP with their own
token, and the case moves to the county with the corrected category, on the real stack."""

from __future__ import annotations

import time
from typing import Any

import httpx

# 116 km from 皮山县's seat, the nearest: a weak clue (weight 0.42), so the place is unsure.
FAR_FROM_PISHAN = (38.5, 79.0)


def queued(router: str, case_id: str, token: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        items = httpx.get(f"{router}/triage/queue", headers=headers, timeout=5).json()["items"]
        for item in items:
            if item["case_id"] == case_id:
                return item  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"case {case_id} never reached the triage queue")


def test_a_dispatcher_corrects_an_unsure_post_and_the_case_follows(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any
) -> None:
    appeal = post_appeal(
        "老板拖欠我们十几个人的工资三个月了，一分钱没给，天天推，求求你们帮帮忙",
        geo=FAR_FROM_PISHAN,
    )
    case = wait_for_case(appeal, where=lambda c: c.get("assigned_unit") == "653200", timeout=90)
    router = fengqiao_services.url("router")
    assert httpx.get(f"{router}/triage/queue", timeout=5).status_code == 401
    token = fengqiao_services.token_for("xj", "dispatcher", name="李伟")
    item = queued(router, case["case_id"], token)
    assert "uncertain_place" in item["review"]
    assert (item["suggested_unit"], item["opened_at_unit"]) == ("653223", "653200")
    response = httpx.post(
        f"{router}/triage/queue/{item['id']}/correct",
        headers={"Authorization": f"Bearer {token}"},
        json={"category": "judicial_aid", "note": "皮山县的事，问过本人"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["ruling"]["person"].startswith("local:harness-")
    moved = wait_for_case(
        appeal,
        where=lambda c: c.get("assigned_unit") == "653223" and c.get("category") == "judicial_aid",
        timeout=90,
    )
    assert moved["chain"][-1] == "653223"
