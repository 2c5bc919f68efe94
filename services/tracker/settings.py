"""Tracker's settings (env prefix `FENGQIAO_TRACKER_`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.settings import StackSettings


class TrackerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FENGQIAO_TRACKER_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8083, ge=0, le=65535)
    database: str = Field(default="fengqiao_tracker", description="The tracker's own database.")
    group_id: str = "tracker"
    stack: StackSettings = Field(default_factory=StackSettings)
