"""Intake's settings (env prefix `FENGQIAO_INTAKE_`)."""

# MIN_SECRET_LENGTH and UnsafeSettings live in fengqiao.runtime.settings (the notifier checks its
# secrets too); re-exported here for intake's readers.

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.runtime.settings import (
    MIN_SECRET_LENGTH,
    StackSettings,
    UnsafeSettings,
    check_secret_lengths,
    read_settings_file,
)

ANY_ACCOUNT = "*"


class GenericSource(BaseModel):
    """What a generic webhook source may speak for: a post claiming another platform or account
    is refused (403). Its authors are always `<source>:<id>`, whatever platform it names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    platforms: list[Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]] = Field(
        min_length=1, description='Platforms its posts may name, e.g. ["wechat"].'
    )
    accounts: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1,
        description=f"Matrix accounts its posts may be sent to; {ANY_ACCOUNT!r} for every one.",
    )

    def allows(self, platform: str, account: str) -> bool:
        return platform in self.platforms and (
            account in self.accounts or ANY_ACCOUNT in self.accounts
        )


class WeiboAccount(BaseModel):
    """A matrix account on Weibo, as intake reaches it: by message push, by polling, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handle: str = Field(min_length=1, max_length=64, description="Its handle, e.g. @新疆检察.")
    app_secret: SecretStr | None = Field(
        default=None,
        description="The app secret that signs its message push (粉丝服务平台 developer mode); "
        "without one its push URL answers 404.",
    )
    access_token: SecretStr | None = Field(
        default=None,
        description="Open API token; with one (and pollers_enabled) its mentions and comments "
        "are polled.",
    )


class IntakeSettings(BaseSettings):
    """Where intake listens and which sources it trusts.

    Secrets never live in the repository: give them as JSON in `FENGQIAO_INTAKE_GENERIC_SECRETS`
    (`{"webform": "s3cret"}`) or in a YAML/JSON file named by `FENGQIAO_INTAKE_SECRETS_FILE`
    (`generic: {webform: s3cret}`); the file's entries win. Open311 clients' api_keys likewise:
    `FENGQIAO_INTAKE_OPEN311_API_KEYS` (`{"city-app": "k3y"}`) or the file's `open311:` section.
    Weibo accounts: `FENGQIAO_INTAKE_WEIBO_ACCOUNTS` (`{"xinjiang": {"handle": "@新疆检察"}}`) and
    the file's `weibo:` section (`weibo: {xinjiang: {app_secret: ..., access_token: ...}}`), whose
    fields are laid over the environment's.
    """

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_INTAKE_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8081, ge=0, le=65535)
    generic_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="Per-source HMAC secrets of the generic JSON webhook."
    )
    generic_sources: dict[str, GenericSource] = Field(
        default_factory=dict,
        description="What each generic source may speak for (every source with a secret needs "
        'one): {"webform": {"platforms": ["webform"], "accounts": ["@新疆检察"]}}.',
    )
    secrets_file: Path | None = Field(default=None, description="YAML or JSON file of secrets.")
    replay_window_seconds: int = Field(default=300, ge=1, description="Accepted clock skew.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest body taken.")
    group_id: str = Field(default="intake-normalizer", description="Normalizer consumer group.")
    open311_api_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Open311 api_key of each client, by client name."
    )
    open311_account: str = Field(
        default="@新疆检察", description="The matrix account Open311 requests are taken for."
    )
    open311_group_id: str = Field(
        default="intake-open311", description="Consumer group of the Open311 read model."
    )
    weibo_accounts: dict[str, WeiboAccount] = Field(
        default_factory=dict,
        description="Weibo matrix accounts by the name in their push URL /webhooks/weibo/<name>.",
    )
    weibo_push_content_types: list[str] = Field(
        default=["application/json"], description="Content types a Weibo push may carry."
    )
    weibo_api_base: str = Field(
        default="http://127.0.0.1:8090",
        description="Weibo open API base URL the pollers read (https://api.weibo.com in "
        "production; the platform simulator locally).",
    )
    pollers_enabled: bool = Field(
        default=False, description="Poll the accounts that have an access token (one replica)."
    )
    poll_interval_seconds: float = Field(
        default=180, ge=1, description="Pause between polls; Weibo suggests 3-5 minutes."
    )
    poll_calls_per_hour: int = Field(
        default=120, ge=1, description="Open API calls each polled account may spend per hour."
    )
    poll_page_size: int = Field(default=50, ge=1, le=200, description="`count` per call.")
    poll_max_pages: int = Field(
        default=5, ge=1, description="Pages per endpoint per poll; a deeper backlog resumes later."
    )
    poll_timeout_seconds: float = Field(default=10.0, gt=0, description="Per open API call.")
    database: str = Field(default="fengqiao_intake", description="Intake's own database.")
    consumers: bool = Field(
        default=True,
        description="Run the posts.raw normalizer and the Open311 read model in this process. "
        "False makes a webhook-only replica, so HTTP intake scales apart from normalizing.",
    )
    duplicate_threshold: float = Field(
        default=0.5, gt=0, le=1, description="Resemblance from which a post repeats an appeal."
    )
    duplicate_window_days: float = Field(
        default=7, gt=0, description="How far apart a repeat may be posted to join a case."
    )
    follow_up_window_days: float = Field(
        default=60, gt=0, description="How long after an appeal a follow-up still attaches to it."
    )
    triage_model_dir: Path | None = Field(
        default=None,
        description="The triage model artifact in use (model.json + model.npz); default the one "
        "shipped in services/intake/data/triage, made by `fengqiao triage train`.",
    )
    recent_prune_interval_seconds: float = Field(
        default=3600,
        gt=0,
        description="How often the normalizer forgets recent appeals older than twice the "
        "longest matching window (FerretDB has no TTL indexes).",
    )
    stack: StackSettings = Field(default_factory=StackSettings)

    @model_validator(mode="after")
    def _read_secrets_file(self) -> IntakeSettings:
        if self.secrets_file is not None:
            data = read_settings_file(self.secrets_file, "secrets file")
            self.generic_secrets.update(_section(data, "generic", self.secrets_file))
            self.open311_api_keys.update(_section(data, "open311", self.secrets_file))
            self.weibo_accounts.update(_weibo_section(data, self.weibo_accounts, self.secrets_file))
        _check_secret_lengths(self)
        _check_generic_sources(self)
        return self


def _check_secret_lengths(settings: IntakeSettings) -> None:
    """Refuse to start with a short secret, naming the setting (never the secret)."""
    secrets: list[tuple[str, SecretStr]] = [
        (f"FENGQIAO_INTAKE_GENERIC_SECRETS[{name!r}] (or the secrets file's generic:)", secret)
        for name, secret in settings.generic_secrets.items()
    ]
    secrets += [
        (f"FENGQIAO_INTAKE_OPEN311_API_KEYS[{name!r}] (or the secrets file's open311:)", key)
        for name, key in settings.open311_api_keys.items()
    ]
    secrets += [
        (f"FENGQIAO_INTAKE_WEIBO_ACCOUNTS[{name!r}].app_secret (or the secrets file's weibo:)", a)
        for name, account in settings.weibo_accounts.items()
        if (a := account.app_secret) is not None
    ]
    check_secret_lengths(secrets)


def _check_generic_sources(settings: IntakeSettings) -> None:
    """Every generic source with a secret says what it may speak for (new in issue 19: before,
    a source could name any platform and account)."""
    unbound = sorted(set(settings.generic_secrets) - set(settings.generic_sources))
    if unbound:
        example = {
            name: {"platforms": ["<platform>"], "accounts": ["@新疆检察"]} for name in unbound
        }
        raise UnsafeSettings(
            f"generic source(s) {', '.join(unbound)} have a secret but no binding: name the "
            "platforms and matrix accounts each may post for in FENGQIAO_INTAKE_GENERIC_SOURCES, "
            f"e.g. '{json.dumps(example, ensure_ascii=False)}' (\"*\" for every account); posts "
            "claiming anything else are refused"
        )


def _section(data: object, name: str, path: Path) -> dict[str, SecretStr]:
    """The `name` section of a secrets file: names mapped to secret strings."""
    section = data.get(name, {}) if isinstance(data, dict) else {}
    if not isinstance(section, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in section.items()
    ):
        raise ValueError(f"secrets file {path}: {name!r} must map names to strings")
    return {k: SecretStr(v) for k, v in section.items()}


def _weibo_section(
    data: object, accounts: dict[str, WeiboAccount], path: Path
) -> dict[str, WeiboAccount]:
    """The `weibo` section of a secrets file, each entry laid over the account already set."""
    section = data.get("weibo", {}) if isinstance(data, dict) else {}
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise ValueError(f"secrets file {path}: 'weibo' must map account names to mappings")
    merged: dict[str, WeiboAccount] = {}
    for name, entry in section.items():
        known = accounts.get(name)
        try:
            merged[str(name)] = WeiboAccount.model_validate(
                {**(known.model_dump() if known else {}), **entry}
            )
        except ValidationError as exc:
            raise ValueError(f"secrets file {path}: weibo.{name}: {exc}") from exc
    return merged


__all__ = [
    "ANY_ACCOUNT",
    "MIN_SECRET_LENGTH",
    "GenericSource",
    "IntakeSettings",
    "UnsafeSettings",
    "WeiboAccount",
]
