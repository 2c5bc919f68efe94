"""Router's settings (env prefix `FENGQIAO_ROUTER_`).

Dispatchers (the triage queue's users) are people with the `dispatcher` role (local accounts,
`fengqiao users`; fengqiao/auth): `FENGQIAO_ROUTER_DISPATCHERS(_FILE)` is gone, refused at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.contracts import DispatchMode
from fengqiao.runtime.settings import StackSettings

GONE = (
    "FENGQIAO_ROUTER_DISPATCHERS(_FILE) is no longer read: dispatchers are people with the "
    "dispatcher role: `fengqiao users add <name> --unit <unit id> --roles dispatcher` and "
    "`fengqiao users token <name>` (README: People and access)."
)


class RouterSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FENGQIAO_ROUTER_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8082, ge=0, le=65535)
    policy: Literal["chain", "direct"] = Field(
        default="chain",
        description="chain: each tier forwards (as in the article); direct: to the county at "
        "once, the prefecture copied.",
    )
    mode: DispatchMode = Field(
        default=DispatchMode.PUBLIC_MENTION, description="How orders are sent by default."
    )
    directory_file: Path | None = Field(default=None, description="Directory YAML to use.")
    places_file: Path | None = Field(default=None, description="Place lexicon YAML to use.")
    review_below: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Jurisdiction confidence below which a dispatcher confirms the place; the "
        "case opens meanwhile at the prefecture of the best guess.",
    )
    group_id: str = "router"
    triage_depth_seconds: float = Field(
        default=30.0, gt=0, description="How often the triage queue's depth (a gauge) is counted."
    )
    database: str = Field(default="fengqiao_router", description="The router's own database.")
    # Gone (issue 19): dispatchers' tokens from settings. Set, they stop the router at start.
    dispatchers: dict[str, Any] = Field(default_factory=dict, description=GONE)
    dispatchers_file: Path | None = Field(default=None, description=GONE)
    stack: StackSettings = Field(default_factory=StackSettings)

    @model_validator(mode="after")
    def _no_dispatchers(self) -> RouterSettings:
        if self.dispatchers or self.dispatchers_file is not None:
            raise ValueError(GONE)
        return self
