"""A case through the domain, step by step: the rules, the messages and the helpers the tracker's
domain tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fengqiao.contracts import (
    CaseState,
    DispatchMode,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    UnitActed,
    UnitActionKind,
    Urgency,
)
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.calendar_file import load_calendar
from fengqiao.services.tracker.domain import (
    Case,
    Rules,
    TimerFired,
)
from fengqiao.services.tracker.timelimits import load_time_limits
from fengqiao.testing.factories import appeal_message, dispatch_message

A = UnitActionKind
S = CaseState
T0 = datetime(2026, 12, 1, 2, tzinfo=UTC)  # Tuesday 10:00 in Asia/Shanghai, a working day
CASE = "c-1"

# Calendar-time limits, notices at any hour: the arithmetic of the tests is plain.
PLAIN = Rules(
    load_time_limits(
        overrides=[
            {
                "defaults": {
                    "acknowledgment": "2 hours",
                    "signing": "1 hours",
                    "first_progress": "4 hours",
                    "feedback": "10 hours",
                    "callback_ask": "1 hours",
                    "callback_answer": "3 hours",
                    "reminders": [0.5, 0.8],
                    "escalation_grace": "2 hours",
                    "notify_off_hours": True,
                },
                "classes": {
                    "urgent": {
                        "signing": "1 hours",
                        "first_progress": "4 hours",
                        "feedback": "10 hours",
                        "escalation_grace": "2 hours",
                    },
                    "complex": {
                        "signing": "1 hours",
                        "first_progress": "4 hours",
                        "feedback": "10 hours",
                        "escalation_grace": "2 hours",
                    },
                    "timely": {
                        "signing": "1 hours",
                        "first_progress": "4 hours",
                        "feedback": "10 hours",
                        "escalation_grace": "2 hours",
                    },
                },
                "categories": {},
            }
        ]
    ),
    load_calendar(),
    "tracker",
)


def opened(at: datetime = T0, rules: Rules = PLAIN) -> Case:
    appeal = appeal_message(case_id=CASE, occurred_at=at, author=appeal_message().author)
    return domain.open_case(domain.new_case(CASE), appeal, rules=rules)


def dispatched(rules: Rules = PLAIN, urgency: Urgency = Urgency.GENERAL) -> Case:
    case = opened(rules=rules)
    for hop, src, dst in ((1, "xj", "652700"), (2, "652700", "652701")):
        order = dispatch_message(
            event_id=f"order-{hop}",
            case_id=CASE,
            occurred_at=T0 + timedelta(minutes=hop),
            hop=hop,
            from_unit=src,
            to_unit=dst,
            to_tier="prefecture" if hop == 1 else "county",
            final=hop == 2,
            to_handle="@博乐检察" if hop == 2 else "@博州检察",
            mode=DispatchMode.PUBLIC_MENTION,
            urgency=urgency,
        )
        case = domain.record_dispatch(case, order, rules=rules)
    return case


def action(
    kind: UnitActionKind, unit: str = "652701", minutes: float = 30, **fields: Any
) -> UnitActed:
    return UnitActed(
        event_id=f"act-{kind.value}-{unit}-{minutes}",
        occurred_at=T0 + timedelta(minutes=minutes),
        producer="tracker",
        case_id=CASE,
        unit_id=unit,
        action=kind,
        **fields,
    )


def timer(case: Case, clock: str) -> dict[str, Any]:
    """The clock's timer as the case last asked for it, as it is stored."""
    return case.effects[f"timer:{clock}"].value()


def fire(case: Case, clock: str, rules: Rules = PLAIN) -> Case:
    effect = case.effects[f"timer:{clock}"]
    assert isinstance(effect, domain.ScheduleTimer)
    return domain.on_timer(case, TimerFired(effect.step, effect.step.due), rules)


def at(case: Case, clock: str) -> datetime:
    return datetime.fromisoformat(timer(case, clock)["due_at"])


def events(case: Case) -> list[str]:
    return [e.event for e in case.timeline]


def sent(case: Case, kind: type) -> list[Any]:
    return [o.message for o in case.outbox if isinstance(o.message, kind)]


def resolved() -> Case:
    case = domain.act(dispatched(), action(A.ACCEPT), rules=PLAIN)
    case = domain.act(case, action(A.PROGRESS, minutes=60, note="已联系用人单位"), rules=PLAIN)
    return domain.act(
        case,
        action(A.RESOLVE, minutes=120, outcome="工资已发放", amount_recovered=3000),
        rules=PLAIN,
    )


def asked() -> Case:
    case = fire(resolved(), "callback")
    assert case.state is S.CALLBACK_PENDING
    [question] = [
        r for r in sent(case, ReplyRequested) if r.purpose is ReplyPurpose.CALLBACK_QUESTION
    ]
    assert question.channel is ReplyChannel.PRIVATE_MESSAGE
    assert case.effects["await:weibo:u1"] == domain.AwaitCitizen("weibo", "u1", CASE)
    return case


def answer(case: Case, text: str) -> Case | None:
    message = appeal_message(
        text,
        event_id=f"answer-{text}",
        case_id="c-other",
        is_appeal=False,
        occurred_at=T0 + timedelta(hours=4),
    )
    return domain.record_citizen_reply(case, message, rules=PLAIN)
