"""The tracker's domain: a case, its state machine, its timeline, its clocks, and what it asks
others to do. Pure: every function takes the case, a message (or a timer's firing) and the
`Rules`, and returns the new case; what it wants done outside is kept in the case (`outbox`,
`effects`), written with the state in one document.

- `case`       the case, `TRANSITIONS`, `evolve`;
- `effects`    typed effects and timer steps (the clocks), shared with the store;
- `clocks`     starting and stopping clocks; `fired`: what each clock's firing does;
- `actions`    one handler per kind of unit action;
- `callbacks`  waiting for the citizen (回访, an office's question);
- `messages`   what the other services' messages do; `repeats`: repeats of an appeal counted;
- `outgoing`   timeline entries, case.events, replies, supervision orders.
"""

from fengqiao.services.tracker.domain.actions import act, authorize, validate_action
from fengqiao.services.tracker.domain.callbacks import (
    Satisfaction,
    parse_satisfaction,
    record_citizen_reply,
)
from fengqiao.services.tracker.domain.case import (
    OPEN_STATES,
    TRANSITIONS,
    WORKING,
    Bounds,
    Case,
    Cause,
    InvalidTransition,
    NotAllowed,
    Rules,
    S,
    TimelineEntry,
    check,
    evolve,
    new_case,
)
from fengqiao.services.tracker.domain.clocks import TimerFired
from fengqiao.services.tracker.domain.effects import (
    CLOCKS,
    AwaitCitizen,
    CancelTimer,
    Clock,
    Effect,
    ScheduleTimer,
    ShowToUnit,
    Step,
    TimerStep,
    awaiting_key,
)
from fengqiao.services.tracker.domain.fired import on_timer
from fengqiao.services.tracker.domain.messages import (
    open_case,
    record_coordination,
    record_dispatch,
    record_reply,
    record_supervision,
)

__all__ = [
    "CLOCKS",
    "OPEN_STATES",
    "TRANSITIONS",
    "WORKING",
    "AwaitCitizen",
    "Bounds",
    "CancelTimer",
    "Case",
    "Cause",
    "Clock",
    "Effect",
    "InvalidTransition",
    "NotAllowed",
    "Rules",
    "S",
    "Satisfaction",
    "ScheduleTimer",
    "ShowToUnit",
    "Step",
    "TimelineEntry",
    "TimerFired",
    "TimerStep",
    "act",
    "authorize",
    "awaiting_key",
    "check",
    "evolve",
    "new_case",
    "on_timer",
    "open_case",
    "parse_satisfaction",
    "record_citizen_reply",
    "record_coordination",
    "record_dispatch",
    "record_reply",
    "record_supervision",
    "validate_action",
]
