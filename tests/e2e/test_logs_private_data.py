"""Private data never reaches a log line (issue 20, deliver 2): the whole fleet, logging at
DEBUG (the most it writes), takes posts carrying a phone number, a resident ID number and a bank
card number, each written plainly and spaced; once their appeals are acknowledged, no log file of
the run holds any of those numbers, every line is one JSON object, and the lines logged while
the appeals were handled carry their `case_id`."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from fengqiao.runtime.pii import luhn

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def phone() -> str:
    return "1" + random.choice("3589") + "".join(random.choices("0123456789", k=9))


def id_number() -> str:
    """A resident ID number with a right check digit (born in 1987 in 乌鲁木齐)."""
    body = "650102" + "19870315" + "".join(random.choices("0123456789", k=3))
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def card() -> str:
    """A 19-digit bank card number passing the Luhn check."""
    body = "622202" + "".join(random.choices("0123456789", k=12))
    return next(body + d for d in "0123456789" if luhn(body + d))


@pytest.fixture(scope="module")
def fengqiao_service_env() -> dict[str, str]:
    return {"FENGQIAO_LOG_LEVEL": "DEBUG", "FENGQIAO_LOG_FORMAT": "json"}


def spaced(number: str, sep: str = " ") -> str:
    """A phone number as people write it (138 1234 5678), a card in groups of four."""
    cuts = (3, 7) if len(number) == 11 else range(4, len(number), 4)
    bounds = [0, *cuts, len(number)]
    return sep.join(number[a:b] for a, b in itertools.pairwise(bounds))


def test_no_log_line_of_the_run_holds_the_posted_private_numbers(
    fengqiao_services: Any, post_appeal: Any, wait_for_case: Any
) -> None:
    numbers = {"phone": phone(), "id": id_number(), "card": card()}
    texts = [
        f"博乐市的工地老板拖欠我们工资三个月了，求助，我的电话{numbers['phone']}，"
        f"身份证号{numbers['id']}，工资卡{numbers['card']}",
        f"伊宁市小区门口的路灯坏了半个月，晚上很危险，联系电话 {spaced(numbers['phone'])} 或 "
        f"{spaced(numbers['phone'], '-')}，"
        f"卡号 {spaced(numbers['card'])}",
    ]
    cases = []
    for text in texts:
        posted = post_appeal(text)
        case_id = fengqiao_services.case_id(posted, timeout=90)
        cases.append(case_id)
    for case_id in cases:
        wait_for_case(
            case_id,
            where=lambda c: any(e["event"] == "case.acknowledged" for e in c["timeline"]),
            timeout=90,
        )

    logs = sorted(Path(fengqiao_services.log_dir).glob("*.log"))
    assert {p.stem for p in logs} >= {"intake", "router", "tracker", "notifier", "simulator"}
    lines: list[dict[str, Any]] = []
    for path in logs:
        text = path.read_text(encoding="utf-8", errors="replace")
        for n, line in enumerate(text.splitlines(), 1):
            digits = "".join(ch for ch in line if ch.isdigit())  # spaced, dashed, escaped
            for kind, number in numbers.items():
                assert number.rstrip("X") not in digits, f"the {kind} number is in {path.name}:{n}"
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line) | {"file": path.name})
            except ValueError:
                pytest.fail(f"{path.name}:{n} is not a JSON line: {line[:300]}")
    assert lines, "the run logged nothing"
    assert all({"time", "level", "service", "logger", "message"} <= set(x) for x in lines)
    for case_id in cases:
        handled = [x for x in lines if x.get("case_id") == case_id]
        # The router logs each dispatch while handling the appeal from `appeals`.
        assert any(x["file"] == "router.log" and x.get("topic") == "appeals" for x in handled), (
            case_id,
            [x["message"] for x in lines if x["file"] == "router.log"][-20:],
        )
        routed = [x for x in handled if x["file"] == "router.log" and "topic" in x]
        assert all("event_id" in x and "partition" in x and "offset" in x for x in routed)
        # The tracker applies a poll's cases side by side: each case's lines (its store's
        # commands, at DEBUG) carry its case_id, and the poll's topic.
        assert any(x["file"] == "tracker.log" and "topic" in x for x in handled), case_id
        # The notifier posts a poll's replies case by case: each case's lines carry it.
        assert any(x["file"] == "notifier.log" for x in handled), case_id
