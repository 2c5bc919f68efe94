"""Notifier's settings (env prefix `FENGQIAO_NOTIFIER_`)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.runtime.settings import StackSettings, check_secret_lengths
from fengqiao.services.notifier.domain import ContentPolicy
from fengqiao.services.notifier.limits import Budget, RateLimiter
from fengqiao.services.notifier.queue import Queueing


class Webhook(BaseModel):
    """A platform reached through the generic webhook adapter."""

    url: str = Field(min_length=1, description="Where replies are POSTed as signed JSON.")
    secret: SecretStr = Field(description="HMAC-SHA256 key of the signature header.")


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
    accounts: list[str] = Field(
        default_factory=list,
        description="The matrix accounts replies are posted for (besides the keys of "
        "access_tokens): /readyz is not ready while one has no token.",
    )
    default_access_token: SecretStr | None = Field(
        default=None, description="Token for accounts not in access_tokens (simulator use)."
    )
    webhooks: dict[str, Webhook] = Field(
        default_factory=dict,
        description="Platforms other than weibo, by the name in ReplyTarget.platform.",
    )
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    http_lanes: int = Field(default=8, ge=1, le=64, description="HTTP clients to the platform.")
    http_connections_per_lane: int = Field(default=2, ge=1, le=64)
    max_attempts: int = Field(default=4, ge=1)
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(
        default=500, ge=1, le=10000, description="Reply requests read and claimed at once."
    )
    concurrency: int = Field(default=16, ge=1, le=1024, description="Posts in flight at once.")
    # Rate limits: the platform's published normal tier is about 60 comments and 30 posts an
    # hour per account.
    rate_limits: bool = Field(default=True, description="False: no buckets (benchmarks only).")
    comments_per_hour: float = Field(default=60, gt=0)
    statuses_per_hour: float = Field(default=30, gt=0)
    messages_per_hour: float = Field(default=300, gt=0)
    app_per_hour: float = Field(default=5000, gt=0, description="Every account of the app.")
    burst: int = Field(default=5, ge=1, description="Messages a bucket may send at once.")
    # The queues of replies waiting for their rate limit (services/notifier/queue.py).
    queue_limit: int = Field(
        default=500,
        ge=1,
        description="Replies held in memory per account and kind (over 8 hours of comments); "
        "more wait parked in the store, lowest rank first, and come back when there is room.",
    )
    parked_sweep_seconds: float = Field(
        default=10.0, gt=0, description="How often parked replies are looked at."
    )
    parked_retry_base_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A queued reply whose send failed is tried again after "
        "this, doubling per failure.",
    )
    parked_retry_max_seconds: float = Field(default=300.0, gt=0)
    # The content gate.
    sensitive_words: list[str] = Field(default_factory=list)
    hold_categories: list[str] = Field(
        default_factory=list, description="Category codes whose replies wait for approval."
    )
    hold_urgent: bool = Field(default=False, description="Urgent cases' replies wait too.")
    hold_below_confidence: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Replies of a case routed with less confidence than this wait too "
        "(0: none wait for that reason).",
    )
    safe_domain: str = Field(
        default="", description="The app's registered safe domain (links, statuses/share)."
    )
    case_link: str = Field(
        default="",
        description="Link to a case's public page, `{case_ref}` filled in (statuses/share), "
        "e.g. https://fengqiao.example.gov.cn/c/{case_ref}.",
    )
    group_id: str = "notifier"
    stack: StackSettings = Field(default_factory=StackSettings)

    @model_validator(mode="after")
    def _check_secrets(self) -> NotifierSettings:
        """A short webhook secret refuses the start, naming the setting (issue 19)."""
        check_secret_lengths(
            [
                (f"FENGQIAO_NOTIFIER_WEBHOOKS[{name!r}].secret", hook.secret)
                for name, hook in self.webhooks.items()
            ]
        )
        return self

    def token_for(self, account: str) -> str | None:
        secret = self.access_tokens.get(account) or self.default_access_token
        return secret.get_secret_value() if secret else None

    def policy(self) -> ContentPolicy:
        return ContentPolicy(
            sensitive_words=tuple(self.sensitive_words),
            hold_categories=frozenset(self.hold_categories),
            hold_urgent=self.hold_urgent,
            hold_below_confidence=self.hold_below_confidence,
            safe_domain=self.safe_domain.lower(),
        )

    def queueing(self) -> Queueing:
        return Queueing(
            limit=self.queue_limit,
            sweep_seconds=self.parked_sweep_seconds,
            retry_base_seconds=self.parked_retry_base_seconds,
            retry_max_seconds=self.parked_retry_max_seconds,
            partitioned=True,
        )

    def limiter(self) -> RateLimiter:
        return RateLimiter(
            per_account={
                "comments": Budget(self.comments_per_hour, self.burst),
                "statuses": Budget(self.statuses_per_hour, self.burst),
                "messages": Budget(self.messages_per_hour, self.burst),
            },
            per_app=Budget(self.app_per_hour, self.burst),
            enabled=self.rate_limits,
        )
