"""Workbench's settings (env prefix `FENGQIAO_WORKBENCH_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.runtime.settings import StackSettings


class WorkbenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FENGQIAO_WORKBENCH_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8085, ge=0, le=65535)
    tracker_url: str = Field(
        default="http://127.0.0.1:8083", description="The tracker's unit API (/units/me/...)."
    )
    router_url: str = Field(
        default="http://127.0.0.1:8082", description="The router's triage queue and reassign."
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8084", description="The notifier's held replies."
    )
    cookie_secure: bool = Field(
        default=False, description="Mark the session cookie Secure (set it behind HTTPS)."
    )
    csrf_key: SecretStr | None = Field(
        default=None,
        description="Key of the forms' CSRF tokens; random per process when unset (replicas "
        "behind one address need the same).",
    )
    login_failures_per_user: int = Field(default=5, ge=1, description="In the window.")
    login_failures_per_address: int = Field(default=20, ge=1, description="In the window.")
    login_window_seconds: float = Field(default=300, gt=0)
    api_timeout_seconds: float = Field(default=10, gt=0)
    stack: StackSettings = Field(default_factory=StackSettings)
