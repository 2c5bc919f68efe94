"""Waiting for the citizen: the callback after resolution (回访: ask, then wait for the answer),
and an office's question to the citizen (the feedback clock stands still until they answer).
While a case waits, the citizen's next message is routed to it (`AwaitCitizen`)."""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum

from fengqiao.contracts import AppealNormalized, ReplyChannel, ReplyPurpose
from fengqiao.services.tracker.domain.case import (
    WORKING,
    Case,
    Rules,
    S,
    check,
    done,
    evolve,
    instant,
    iso,
    with_effects,
)
from fengqiao.services.tracker.domain.clocks import TimerFired, cancel, schedule, start_feedback
from fengqiao.services.tracker.domain.effects import AwaitCitizen, Clock, Step
from fengqiao.services.tracker.domain.outgoing import record, reply, supervise
from fengqiao.services.tracker.timelimits import Kind


class Satisfaction(StrEnum):
    """The citizen's answer to the callback (回访)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    NO_ANSWER = "no_answer"  # no answer within the window (counted apart)


# Checked in order: the longer phrase first ("不满意" contains "满意").
_ANSWERS: tuple[tuple[re.Pattern[str], Satisfaction], ...] = (
    (re.compile(r"^\s*[3３③]\s*[.。!！]?\s*$"), Satisfaction.DISSATISFIED),
    (re.compile(r"^\s*[2２②]\s*[.。!！]?\s*$"), Satisfaction.BASICALLY),
    (re.compile(r"^\s*[1１①]\s*[.。!！]?\s*$"), Satisfaction.SATISFIED),
    (re.compile(r"不满意|不太满意|很不满|没有?解决|没人管|敷衍|不认可"), Satisfaction.DISSATISFIED),
    (re.compile(r"基本满意|还行|还可以|一般|凑合"), Satisfaction.BASICALLY),
    (re.compile(r"满意|解决了|已解决|谢谢|感谢|点赞"), Satisfaction.SATISFIED),
)


def parse_satisfaction(text: str) -> Satisfaction | None:
    """The citizen's answer: 满意 / 基本满意 / 不满意, 1 / 2 / 3, or free text; None if unclear."""
    for pattern, answer in _ANSWERS:
        if pattern.search(text):
            return answer
    return None


def await_citizen(case: Case, waiting: bool) -> Case:
    """Route the citizen's next message to this case (or no longer)."""
    platform = case.platform or "weibo"
    return with_effects(
        case, AwaitCitizen(platform, case.author_id, case.case_id if waiting else None)
    )


def callback_fired(case: Case, fired: TimerFired, rules: Rules) -> Case:
    """The callback clock ran out: time to ask the citizen, or their time to answer is over."""
    step = fired.step.step
    if step is Step.ASK and case.state is S.RESOLVED:
        state = check(case, "ask_callback")
        case = record(case, fired, "case.callback_asked", state, rules)
        case = reply(
            case,
            fired,
            ReplyPurpose.CALLBACK_QUESTION,
            rules,
            channel=ReplyChannel.PRIVATE_MESSAGE,
            hop=case.reopened,
        )
        case = await_citizen(case, True)
        due = rules.limits.deadline(
            Kind.CALLBACK_ANSWER,
            case.urgency_class,
            case.category,
            fired.occurred_at,
            rules.calendar,
        )
        return schedule(case, Clock.CALLBACK, due, Step.ANSWER)
    if step is Step.ANSWER and case.state is S.CALLBACK_PENDING:
        case = evolve(
            case, satisfaction=Satisfaction.NO_ANSWER.value, closed_at=iso(fired.occurred_at)
        )
        case = record(
            case,
            fired,
            "case.closed",
            check(case, "close"),
            rules,
            detail="no answer to the callback",
        )
        return await_citizen(case, False)
    return case


def resume(case: Case, message: AppealNormalized, rules: Rules) -> Case:
    """The citizen answered the office: the feedback clock runs again, its deadline moved by
    the time it stood still (working time for working-time limits)."""
    assert case.paused_since is not None
    since, now = instant(case.paused_since), message.occurred_at
    case = evolve(case, paused_since=None)
    case = record(
        case,
        message,
        "case.resumed",
        case.state,
        rules,
        unit_id=case.assigned_unit,
        detail=f"the citizen answered: {message.masked_text}",
    )
    case = await_citizen(case, False)
    if case.deadline is None:
        return case
    limit = rules.limits.limits(case.urgency_class, case.category).durations[Kind.FEEDBACK]
    old, cal = instant(case.deadline), rules.calendar
    if limit.working:
        moved = cal.add_working(old, cal.working_between(since, max(now, since)))
    else:
        moved = old + max(now - since, dt.timedelta(0))
    return start_feedback(case, rules, now, moved)


def record_citizen_reply(case: Case, message: AppealNormalized, *, rules: Rules) -> Case | None:
    """The citizen wrote while the case waits for them: the answer to the office's question
    (the clock runs again), or to the callback question if it reads as one. None when the case
    is not waiting for it (the message is then an ordinary post)."""
    if case.has_processed(message.event_id):
        return case
    if case.paused_since is not None and case.state in WORKING:
        return done(resume(case, message, rules), message)
    if case.state is not S.CALLBACK_PENDING:
        return None
    answer = parse_satisfaction(message.text)
    if answer is None:
        return None
    case = evolve(case, satisfaction=answer.value)
    case = await_citizen(case, False)
    case = cancel(case, Clock.CALLBACK)
    if answer is Satisfaction.DISSATISFIED:
        return done(_reopen(case, message, rules), message)
    case = evolve(case, closed_at=iso(message.occurred_at))
    case = record(
        case,
        message,
        "case.closed",
        check(case, "close"),
        rules,
        detail=f"callback: {answer.value}",
    )
    return done(case, message)


def _reopen(case: Case, message: AppealNormalized, rules: Rules) -> Case:
    """不满意: the case is worked on again, with a new feedback deadline and supervision."""
    case = evolve(case, reopened=case.reopened + 1, resolved_at=None, closed_at=None)
    case = record(
        case,
        message,
        "case.reopened",
        check(case, "reopen"),
        rules,
        unit_id=case.assigned_unit,
        detail=f"不满意: {message.masked_text}",
    )
    deadline = rules.limits.deadline(
        Kind.FEEDBACK, case.urgency_class, case.category, message.occurred_at, rules.calendar
    )
    case = start_feedback(case, rules, message.occurred_at, deadline)
    return supervise(case, message, rules, 1, "回访不满意，重新办理")
