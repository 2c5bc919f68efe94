"""Effects and timer steps are typed in the domain and stored in the forms the store has always
kept (case documents' `effects`, timers' payloads): made and read in one module."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic_core import to_json

from fengqiao.services.tracker import domain
from fengqiao.services.tracker.domain.effects import parse_effect, parsed_effects, stored_effects

CASE = "case-1"
STEP = domain.TimerStep(
    CASE, domain.Clock.FEEDBACK, domain.Step.REMIND, "2026-12-01T02:00:00+00:00"
)

EFFECTS = [
    (
        domain.ScheduleTimer(
            domain.TimerStep(
                CASE,
                domain.Clock.FEEDBACK,
                domain.Step.REMIND,
                "2026-12-01T02:00:00+00:00",
                deadline="2026-12-02T10:00:00+00:00",
                start="2026-11-30T10:00:00+00:00",
            )
        ),
        "timer:feedback",
        b'{"due_at":"2026-12-01T02:00:00+00:00","payload":{"case_id":"case-1","clock":"feedback",'
        b'"step":"remind","due_at":"2026-12-01T02:00:00+00:00",'
        b'"deadline":"2026-12-02T10:00:00+00:00","start":"2026-11-30T10:00:00+00:00"}}',
    ),
    (
        domain.ScheduleTimer(
            domain.TimerStep(CASE, domain.Clock.SIGN, domain.Step.ESCALATE, "x", hop=2, level=1)
        ),
        "timer:sign",
        b'{"due_at":"x","payload":{"case_id":"case-1","clock":"sign","step":"escalate",'
        b'"due_at":"x","hop":2,"level":1}}',
    ),
    (domain.CancelTimer(domain.Clock.ACK), "timer:ack", b'{"due_at":null}'),
    (domain.ShowToUnit("652701"), "unit:652701", b'{"unit":"652701"}'),
    (domain.AwaitCitizen("weibo", "u.1:x", CASE), "await:weibo:u.1:x", b'{"case_id":"case-1"}'),
    (domain.AwaitCitizen("weibo", "u1", None), "await:weibo:u1", b'{"case_id":null}'),
]


@pytest.mark.parametrize(("effect", "key", "value"), EFFECTS)
def test_an_effect_is_stored_as_before_and_read_back(
    effect: domain.Effect, key: str, value: bytes
) -> None:
    assert effect.key == key
    assert to_json(effect.value()) == value
    assert parse_effect(key, effect.value()) == effect


def test_the_effects_of_a_case_are_stored_as_a_list_in_their_order() -> None:
    effects = {e.key: e for e, _, _ in EFFECTS}
    stored = stored_effects(effects)
    assert [s["key"] for s in stored] == list(effects)
    assert parsed_effects(stored) == effects


def test_an_unknown_effect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown effect"):
        parse_effect("mail:x", {})


def test_a_firing_has_one_event_id_per_step() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    fired = domain.TimerFired(STEP, at)
    assert fired.case_id == CASE and fired.clock is domain.Clock.FEEDBACK
    assert domain.TimerFired(STEP, at.replace(hour=5)).event_id == fired.event_id
    leveled = domain.TimerFired(domain.TimerStep.from_payload(STEP.payload() | {"level": 2}), at)
    assert leveled.event_id != fired.event_id
    assert domain.TimerStep.from_payload(STEP.payload()) == STEP
