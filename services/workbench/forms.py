"""The case actions' forms and the unit API bodies made of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fengqiao.auth import Identity, Role
from fengqiao.services.workbench.domain import DONE_STATES

Form = Mapping[str, Any]
LOCAL = ZoneInfo("Asia/Shanghai")


class FormError(ValueError):
    """A field the person must correct (the message names it)."""


def text(form: Form, name: str, *, required: bool = True, limit: int = 2000) -> str | None:
    value = str(form.get(name) or "").strip()
    if not value:
        if required:
            raise FormError(f"{name} is required")
        return None
    if len(value) > limit:
        raise FormError(f"{name}: at most {limit} characters")
    return value


def amount(form: Form) -> float | None:
    raw = str(form.get("amount_recovered") or "").strip().replace(",", "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise FormError(f"amount_recovered: {raw!r} is not a number") from None
    if value < 0 or value != value or value == float("inf"):
        raise FormError("amount_recovered: not negative")
    return value


def local_deadline(form: Form) -> str:
    """`<input type=datetime-local>` (office time, Asia/Shanghai) as an aware ISO time."""
    raw = str(form.get("requested_deadline") or "").strip()
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise FormError("requested_deadline: a date and time") from None
    return (at if at.tzinfo else at.replace(tzinfo=LOCAL)).isoformat()


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class Action:
    label: str  # the key of its name in labels.py
    body: Callable[[Form], dict[str, Any]]
    fields: tuple[str, ...] = ()  # what its form asks (case.html.j2)
    service: str = "tracker"  # whose API does it, and where:
    api: str = "/units/me/cases/{case_id}/{name}"


ACTIONS: dict[str, Action] = {
    "accept": Action("accept", lambda f: _drop_none({"note": text(f, "note", required=False)})),
    "progress": Action("progress", lambda f: {"note": text(f, "note")}, ("note",)),
    "resolve": Action(
        "resolve",
        lambda f: _drop_none(
            {
                "outcome": text(f, "outcome"),
                "amount_recovered": amount(f),
                "note": text(f, "note", required=False),
            }
        ),
        ("outcome", "amount_recovered"),
    ),
    "return": Action(
        "return",
        lambda f: _drop_none(
            {
                "reason_code": text(f, "reason_code", limit=64),
                "note": text(f, "note", required=False),
            }
        ),
        ("reason_code", "note"),
    ),
    "extension": Action(
        "extend",
        lambda f: _drop_none(
            {"requested_deadline": local_deadline(f), "note": text(f, "note", required=False)}
        ),
        ("requested_deadline", "note"),
    ),
    "ask-citizen": Action("ask", lambda f: {"note": text(f, "note")}, ("note",)),
    "notes": Action("note", lambda f: {"note": text(f, "note")}, ("note",)),
}


# Unit leads' rulings (组长裁决, case.html.j2's #rulings): on the extension a unit below asks
# for, and on a return their unit now holds (the 终审 kept it): sent on to a unit below.
RULINGS: dict[str, Action] = {
    "extension/approve": Action(
        "approve_extension",
        lambda f: _drop_none({"note": text(f, "note", required=False)}),
        ("note",),
    ),
    "extension/refuse": Action("refuse_extension", lambda f: {"note": text(f, "note")}, ("note",)),
    "reassign": Action(
        "send_on",
        lambda f: _drop_none(
            {"to_unit": text(f, "to_unit", limit=64), "note": text(f, "note", required=False)}
        ),
        ("to_unit", "note"),
        service="router",
        api="/ops/cases/{case_id}/reassign",
    ),
}


def rulings_for(who: Identity | None, case: Mapping[str, Any]) -> dict[str, Action]:
    """The rulings a unit lead may make on `case` now (the services check again): on a pending
    extension when their unit is above the lead unit; on a return their unit holds."""
    if who is None or not who.has(Role.UNIT_LEAD) or case.get("state") in DONE_STATES:
        return {}
    chain = list(case.get("chain") or ())
    found: dict[str, Action] = {}
    if case.get("extension") and who.unit_id in chain[:-1]:
        found |= {k: RULINGS[k] for k in ("extension/approve", "extension/refuse")}
    if case.get("returns") and case.get("assigned_unit") == who.unit_id:
        found["reassign"] = RULINGS["reassign"]
    return found
