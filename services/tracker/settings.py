"""Tracker's settings (env prefix `FENGQIAO_TRACKER_`).

The unit API's callers are people (local accounts, `fengqiao users`; fengqiao/auth): the
static unit tokens (`FENGQIAO_TRACKER_UNIT_TOKENS`) are gone, and refused at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.tracker.calendar_file import DEFAULT_CALENDAR_FILE, load_calendar
from fengqiao.services.tracker.domain import Bounds, Rules
from fengqiao.services.tracker.timelimits import DEFAULT_TIME_LIMITS_FILE, load_time_limits

GONE = (
    "Add people with `fengqiao users add <name> --unit <unit id> --roles handler,unit_lead` and "
    "give each a token with `fengqiao users token <name>` (README: People and access)."
)


class TrackerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FENGQIAO_TRACKER_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8083, ge=0, le=65535)
    database: str = Field(default="fengqiao_tracker", description="The tracker's own database.")
    group_id: str = "tracker"
    time_limits_file: Path = Field(
        default=DEFAULT_TIME_LIMITS_FILE, description="The time limits (YAML, see its header)."
    )
    time_limits_overrides: list[Path] = Field(
        default_factory=list, description="Deployment files merged over the time limits, in order."
    )
    time_limits: dict[str, Any] = Field(
        default_factory=dict,
        description='Overrides merged last, e.g. \'{"defaults": {"signing": "30 seconds"}}\' '
        "(tests use short limits).",
    )
    calendar_file: Path = Field(
        default=DEFAULT_CALENDAR_FILE, description="Office hours, time zone, holiday overrides."
    )
    sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often due clocks are looked for."
    )
    figures_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often the assessment figures and SLA breaches served on /metrics are "
        "computed again (from the cases received in the last figures_days).",
    )
    figures_days: int = Field(
        default=30, ge=1, le=366, description="The window of the figures served on /metrics."
    )
    settle_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long after its outbox is published a case's version records it as done "
        "(a change of the case meanwhile records it anyway); 0: at once.",
    )
    case_timeline_kb: int = Field(
        default=64,
        ge=4,
        le=4096,
        description="The most a case's timeline takes (KB of JSON): beyond it the oldest entries "
        "after the first are left out of the case (counted; each stays on case.events). With the "
        "repeats counted apart, a case's version stays under about this plus 40 KB.",
    )
    repeats_on_timeline: int = Field(
        default=10,
        ge=0,
        description="Repeats of an appeal (duplicates, reposts, follow-ups) that go on the "
        "case's timeline; all are counted on the case.",
    )
    # Gone (issue 19): one token shared by an office. Set, they stop the tracker at start.
    unit_tokens: dict[str, Any] = Field(default_factory=dict, description=f"Gone: {GONE}")
    unit_tokens_file: Path | None = Field(default=None, description=f"Gone: {GONE}")
    stack: StackSettings = Field(default_factory=StackSettings)

    @model_validator(mode="after")
    def _no_unit_tokens(self) -> TrackerSettings:
        if self.unit_tokens or self.unit_tokens_file is not None:
            raise ValueError(
                "FENGQIAO_TRACKER_UNIT_TOKENS(_FILE) is no longer read: offices' people each "
                f"have an account and their own API token. {GONE}"
            )
        return self

    def rules(self, producer: str) -> Rules:
        """The time limits and calendar these settings name (errors name the file and entry)."""
        limits = load_time_limits(
            self.time_limits_file, [*self.time_limits_overrides, self.time_limits]
        )
        bounds = Bounds(
            repeats_on_timeline=self.repeats_on_timeline,
            timeline_bytes=self.case_timeline_kb * 1024,
        )
        return Rules(limits, load_calendar(self.calendar_file), producer, bounds)
