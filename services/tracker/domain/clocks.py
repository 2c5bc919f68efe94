"""Starting and stopping a case's clocks (see `effects` for what each clock is), and the
feedback clock's reminders. A clock runs as one timer per clock and case: scheduling it again
replaces its timer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fengqiao.contracts import derived_event_id
from fengqiao.services.tracker.domain.case import Case, Rules, evolve, instant, iso
from fengqiao.services.tracker.domain.effects import (
    CLOCK_NAMES,
    Clock,
    ScheduleTimer,
    Step,
    TimerStep,
    cancel_timer,
)
from fengqiao.services.tracker.timelimits import Kind


@dataclass(frozen=True)
class TimerFired:
    """A clock of a case ran out. Its event id is the same for every firing of one step, so a
    timer fired again (a lease ran out) changes the case once."""

    step: TimerStep
    occurred_at: dt.datetime

    @property
    def case_id(self) -> str:
        return self.step.case_id

    @property
    def clock(self) -> Clock:
        return self.step.clock

    @property
    def event_id(self) -> str:
        s = self.step
        level = "" if s.level is None else str(s.level)
        return derived_event_id("timer", s.case_id, s.clock.value, s.step.value, s.due_at, level)


def schedule(
    case: Case,
    clock: Clock,
    due_at: dt.datetime,
    step: Step,
    *,
    deadline: str | None = None,
    start: str | None = None,
    hop: int | None = None,
    level: int | None = None,
) -> Case:
    """Run `clock` until `due_at`, for `step`."""
    timer = TimerStep(case.case_id, clock, step, iso(due_at), deadline, start, hop, level)
    effect = ScheduleTimer(timer)
    return evolve(
        case,
        effects={**case.effects, effect.key: effect},
        clocks={**case.clocks, CLOCK_NAMES[clock]: timer.due_at},
    )


def cancel(case: Case, *clocks: Clock, always: bool = False) -> Case:
    """Stop those clocks: the ones the case has asked to run (each cancel costs the store a
    lookup), or all of them with `always`."""
    running = case.clocks
    if not always:
        clocks = tuple(c for c in clocks if c in running)
        if not clocks:
            return case
    effects = dict(case.effects)
    for clock in clocks:
        effect = cancel_timer(clock)
        effects[effect.key] = effect
    return evolve(
        case,
        effects=effects,
        clocks={k: v for k, v in running.items() if k not in clocks},
    )


def start_feedback(case: Case, rules: Rules, start: dt.datetime, deadline: dt.datetime) -> Case:
    """(Re)start the feedback clock: its first reminder still ahead, or the deadline itself."""
    reminders = feedback_reminders(case, rules, start, deadline, after=start)
    case = evolve(case, deadline=iso(deadline), overdue=False)
    if reminders:
        return schedule(
            case,
            Clock.FEEDBACK,
            reminders[0],
            Step.REMIND,
            deadline=iso(deadline),
            start=iso(start),
        )
    return schedule(case, Clock.FEEDBACK, deadline, Step.DUE, deadline=iso(deadline))


def feedback_reminders(
    case: Case, rules: Rules, start: dt.datetime, deadline: dt.datetime, *, after: dt.datetime
) -> list[dt.datetime]:
    """The reminders of a feedback clock that ran from `start` to `deadline`, later than `after`.
    The span is the one the limit gives; an extension's span runs from its approval to the new
    deadline, so its reminders are fractions of that."""
    span = deadline - start
    limits = rules.limits.limits(case.urgency_class, case.category)
    times = {
        rules.limits.notice_time(
            start + span * f, case.urgency_class, case.category, rules.calendar
        )
        for f in limits.reminders
    }
    return sorted(t for t in times if after < t < deadline)


def start_clocks_after_dispatch(case: Case, rules: Rules) -> Case:
    """The feedback clock runs from the receipt, in the class the router chose."""
    assert case.received_at is not None
    received = instant(case.received_at)
    deadline = rules.limits.deadline(
        Kind.FEEDBACK, case.urgency_class, case.category, received, rules.calendar
    )
    return start_feedback(case, rules, received, deadline)


def next_escalation(case: Case, rules: Rules, after: dt.datetime) -> dt.datetime:
    """When the next tier up is asked to supervise, after `after` (the grace period, at a time
    a notice may be sent)."""
    limits, cal, cls, cat = rules.limits, rules.calendar, case.urgency_class, case.category
    return limits.notice_time(limits.escalation_at(after, cls, cat, cal), cls, cat, cal)
