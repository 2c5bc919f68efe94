"""The static credentials of before people (one token per office, dispatchers' tokens in
settings) are gone: set, they stop the service at start with what to do instead, rather than
being ignored while every office's calls are refused."""

from __future__ import annotations

import pytest

from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.tracker.settings import TrackerSettings


def test_unit_tokens_stop_the_tracker_naming_the_way_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FENGQIAO_TRACKER_UNIT_TOKENS", '{"652701": "a-shared-token"}')
    with pytest.raises(ValueError, match="fengqiao users add"):
        TrackerSettings()


def test_dispatchers_in_settings_stop_the_router_naming_the_way_forward(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "FENGQIAO_ROUTER_DISPATCHERS", '{"li.wei": {"unit": "xj", "token": "0123456789abcdef"}}'
    )
    with pytest.raises(ValueError, match="--roles dispatcher"):
        RouterSettings()


def test_without_them_both_start() -> None:
    assert TrackerSettings().unit_tokens == {} and RouterSettings().dispatchers == {}
