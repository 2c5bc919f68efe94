"""Router's settings (env prefix `FENGQIAO_ROUTER_`).

Dispatchers (the triage queue's users) come from the environment or a secrets file, never from
the repo: `FENGQIAO_ROUTER_DISPATCHERS='{"li.wei": {"unit": "xj", "token": "<16+ characters>"}}'`,
or a YAML/JSON file of the same shape named by `FENGQIAO_ROUTER_DISPATCHERS_FILE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.contracts import DispatchMode
from fengqiao.runtime.settings import StackSettings, read_settings_file

MIN_TOKEN_LENGTH = 16


class Dispatcher(BaseModel):
    """One person who works the triage queue: their unit (they see its subtree) and token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unit: str = Field(min_length=1, max_length=64)
    token: SecretStr = Field(min_length=MIN_TOKEN_LENGTH)


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
    database: str = Field(default="fengqiao_router", description="The router's own database.")
    dispatchers: dict[str, Dispatcher] = Field(
        default_factory=dict, description="Person → their unit and API token (the triage queue)."
    )
    dispatchers_file: Path | None = Field(
        default=None, description="YAML or JSON file of dispatchers, laid over `dispatchers`."
    )
    stack: StackSettings = Field(default_factory=StackSettings)

    @model_validator(mode="after")
    def _read_dispatchers_file(self) -> RouterSettings:
        if self.dispatchers_file is None:
            return self
        data = read_settings_file(self.dispatchers_file, "dispatchers file")
        if not isinstance(data, dict):
            raise ValueError(f"dispatchers file {self.dispatchers_file}: expected a mapping")
        for person, entry in data.items():
            self.dispatchers[str(person)] = Dispatcher.model_validate(entry)
        return self
