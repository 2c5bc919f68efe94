"""Router's settings (env prefix `FENGQIAO_ROUTER_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts import DispatchMode
from fengqiao.settings import StackSettings


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
    rules_file: Path | None = Field(default=None, description="Category/urgency rules YAML.")
    group_id: str = "router"
    database: str = Field(default="fengqiao_router", description="The router's own database.")
    stack: StackSettings = Field(default_factory=StackSettings)
