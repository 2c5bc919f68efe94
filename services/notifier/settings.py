"""Notifier's settings (env prefix `FENGQIAO_NOTIFIER_`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.settings import StackSettings


class NotifierSettings(BaseSettings):
    """Access tokens per matrix account come from the environment, never from the repo:
    `FENGQIAO_NOTIFIER_ACCESS_TOKENS='{"@新疆检察": "2.00abc..."}'`."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_NOTIFIER_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8084, ge=0, le=65535)
    database: str = Field(default="fengqiao_notifier", description="The notifier's own database.")
    weibo_api_base: str = Field(
        default="http://127.0.0.1:8090",
        description="Weibo open API base URL (https://api.weibo.com in production; the platform "
        "simulator locally).",
    )
    access_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    default_access_token: SecretStr | None = Field(
        default=None, description="Token for accounts not in access_tokens (simulator use)."
    )
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=4, ge=1)
    group_id: str = "notifier"
    stack: StackSettings = Field(default_factory=StackSettings)

    def token_for(self, account: str) -> str | None:
        secret = self.access_tokens.get(account) or self.default_access_token
        return secret.get_secret_value() if secret else None
