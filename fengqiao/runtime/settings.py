"""Where Kafka and MongoDB are: the settings every service and every test share.

By default they point at the native local stack (`fengqiao stack up`). Production, Docker users
and anyone with a cluster set `FENGQIAO_KAFKA_BOOTSTRAP` and `FENGQIAO_MONGO_URI` instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from faststream.security import BaseSecurity
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from fengqiao.runtime.kafka_security import KafkaSecuritySettings, broker_security

DEFAULT_KAFKA_PORT = 19092
DEFAULT_KAFKA_CONTROLLER_PORT = 19093
DEFAULT_MONGO_PORT = 27117


def _repo_cache() -> Path:
    return Path.cwd() / ".cache"


class StackSettings(KafkaSecuritySettings):
    """The Kafka cluster and MongoDB that services and tests use (env prefix `FENGQIAO_`); how
    Kafka clients authenticate: `fengqiao.runtime.kafka_security`."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_", extra="ignore")

    kafka_bootstrap: str = Field(
        default=f"127.0.0.1:{DEFAULT_KAFKA_PORT}", description="Kafka bootstrap servers."
    )
    mongo_uri: str = Field(
        default=f"mongodb://127.0.0.1:{DEFAULT_MONGO_PORT}/", description="MongoDB connection URI."
    )
    external: bool = Field(
        default=False,
        description="True when Kafka and MongoDB are run by someone else: tests then use them "
        "instead of starting anything.",
    )
    topic_replication: int = Field(default=1, ge=1, description="Replication factor of topics.")
    topic_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        description="min.insync.replicas of the topics fengqiao creates (with acks=all, a write "
        "waits for this many replicas); unset: the broker's default. At most the replication.",
    )
    store_metrics: bool = Field(
        default=True,
        description="Count every store command on the services' /metrics "
        "(`fengqiao.runtime.store.metrics`); off only to measure what the counting costs.",
    )
    cache_dir: Path = Field(
        default_factory=_repo_cache,
        description="Where the native stack keeps its jars, binaries, data, logs and pid files.",
    )

    @model_validator(mode="after")
    def _insync_within_replication(self) -> StackSettings:
        wanted = self.topic_min_insync_replicas
        if wanted is not None and wanted > self.topic_replication:
            raise ValueError(
                f"FENGQIAO_TOPIC_MIN_INSYNC_REPLICAS={wanted} exceeds "
                f"FENGQIAO_TOPIC_REPLICATION={self.topic_replication}: every acks=all write "
                "would be refused"
            )
        return self

    def kafka_security(self) -> BaseSecurity | None:
        """What every Kafka client of fengqiao connects with (None: PLAINTEXT)."""
        return broker_security(self)


def read_settings_file(path: Path, what: str) -> Any:
    """A deployment's JSON (by suffix) or YAML file of settings or secrets; ValueError names
    `what` and the file when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{what} {path}: {exc}") from exc


MIN_SECRET_LENGTH = 16
"""The shortest webhook secret, app secret or api key a service starts with (a guessable secret
is no signature)."""


class UnsafeSettings(Exception):
    """A service's settings would open a hole (a short secret, an unbound source); the message
    says which setting and how to fix it. Not a ValueError on purpose: pydantic would wrap it in a
    ValidationError that prints the settings given, secrets included."""


def check_secret_lengths(secrets: list[tuple[str, SecretStr]]) -> None:
    """Raise UnsafeSettings for the first (setting, secret) shorter than MIN_SECRET_LENGTH,
    naming the setting and never the secret."""
    for setting, secret in secrets:
        length = len(secret.get_secret_value())
        if length < MIN_SECRET_LENGTH:
            raise UnsafeSettings(
                f"{setting} is {length} characters long; a secret needs at least "
                f"{MIN_SECRET_LENGTH} (make one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe(24))'`)"
            )
