"""How fengqiao's Kafka clients authenticate and encrypt: SASL/SCRAM, TLS and mutual TLS.

The settings (`FENGQIAO_KAFKA_SECURITY_PROTOCOL`, `FENGQIAO_KAFKA_SASL_*`, `FENGQIAO_KAFKA_SSL_*`,
part of `StackSettings`) are checked when they are read, so a service with settings that cannot
work stops at start with a message naming the setting. `broker_security` turns them into
FastStream's security object (what `KafkaBroker(security=...)` takes); `kafka_options` turns that
into the keyword arguments of aiokafka's producers, consumers and admin clients, through
FastStream's own translation, so the broker and every raw client connect alike.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any, Literal

from aiokafka.conn import create_conn
from aiokafka.errors import AuthenticationFailedError, KafkaError, SaslAuthenticationFailed
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
SaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512"]
_SCRAM = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


class KafkaSecurityError(Exception):
    """Kafka security settings that cannot work; the message names the setting and the fix.
    Not a ValueError on purpose: pydantic would wrap it with the settings given, password too."""


class KafkaAccessRefused(Exception):
    """The brokers answer but refuse these credentials or this TLS setup: waiting will not help
    (unlike an outage), so a service stops at start with this message."""


class KafkaSecuritySettings(BaseSettings):
    """The Kafka client security settings (in `StackSettings`, env prefix `FENGQIAO_`)."""

    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="PLAINTEXT, SASL_PLAINTEXT (SCRAM), SASL_SSL (SCRAM over TLS) or SSL (TLS, "
        "with a client certificate: mutual TLS).",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512", description="SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SCRAM user.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SCRAM password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the brokers' certificates."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="PEM client certificate (mutual TLS; with the key file)."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="PEM private key of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of the private key, if it is encrypted."
    )

    @model_validator(mode="after")
    def _security_that_works(self) -> KafkaSecuritySettings:
        check_security(self)
        if self.uses_tls:
            self.ssl_context()  # unreadable files or a key that does not match fail now
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: the brokers' CA, and the client certificate for mutual TLS."""
        try:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(
                f"FENGQIAO_KAFKA_SSL_CAFILE={self.kafka_ssl_cafile} cannot be used: {exc}"
            ) from None
        if self.kafka_ssl_certfile is not None:
            password = self.kafka_ssl_key_password
            try:
                context.load_cert_chain(
                    self.kafka_ssl_certfile,
                    self.kafka_ssl_keyfile,
                    password.get_secret_value() if password else None,
                )
            except (OSError, ssl.SSLError) as exc:
                raise KafkaSecurityError(
                    f"FENGQIAO_KAFKA_SSL_CERTFILE={self.kafka_ssl_certfile} and "
                    f"FENGQIAO_KAFKA_SSL_KEYFILE={self.kafka_ssl_keyfile} cannot be used "
                    f"(a wrong key password, a key of another certificate?): {exc}"
                ) from None
        return context


def check_security(s: KafkaSecuritySettings) -> None:
    """Raise KafkaSecurityError for settings that contradict each other or miss a part."""
    protocol = f"FENGQIAO_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}"
    credentials = s.kafka_sasl_username is not None or s.kafka_sasl_password is not None
    if s.uses_sasl and not (s.kafka_sasl_username and s.kafka_sasl_password):
        raise KafkaSecurityError(
            f"{protocol} needs FENGQIAO_KAFKA_SASL_USERNAME and FENGQIAO_KAFKA_SASL_PASSWORD"
        )
    if credentials and not s.uses_sasl:
        raise KafkaSecurityError(
            f"FENGQIAO_KAFKA_SASL_USERNAME/_PASSWORD are set but {protocol} would not send "
            "them: use SASL_SSL (or SASL_PLAINTEXT inside a trusted network)"
        )
    if s.uses_tls and s.kafka_ssl_cafile is None:
        raise KafkaSecurityError(
            f"{protocol} needs FENGQIAO_KAFKA_SSL_CAFILE, the CA that signed the brokers' "
            "certificates (without it no broker can be verified)"
        )
    files = (s.kafka_ssl_cafile, s.kafka_ssl_certfile, s.kafka_ssl_keyfile)
    if not s.uses_tls and any(f is not None for f in files):
        raise KafkaSecurityError(
            f"FENGQIAO_KAFKA_SSL_* files are set but {protocol} does not use TLS: "
            "use SSL or SASL_SSL"
        )
    if (s.kafka_ssl_certfile is None) != (s.kafka_ssl_keyfile is None):
        raise KafkaSecurityError(
            "mutual TLS needs both FENGQIAO_KAFKA_SSL_CERTFILE and FENGQIAO_KAFKA_SSL_KEYFILE"
        )


def broker_security(s: KafkaSecuritySettings) -> BaseSecurity | None:
    """FastStream's security object for these settings (None: PLAINTEXT)."""
    if s.kafka_security_protocol == "PLAINTEXT":
        return None
    context = s.ssl_context() if s.uses_tls else None
    if not s.uses_sasl:
        return BaseSecurity(ssl_context=context, use_ssl=True)
    assert s.kafka_sasl_username is not None and s.kafka_sasl_password is not None  # checked
    scram = _SCRAM[s.kafka_sasl_mechanism]
    return scram(
        s.kafka_sasl_username,
        s.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=s.uses_tls,
    )


def kafka_options(bootstrap: str, security: BaseSecurity | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments (`AIOKafkaProducer`, `AIOKafkaConsumer`,
    `AIOKafkaAdminClient`) for `bootstrap` with `security` (from `broker_security`)."""
    return {"bootstrap_servers": bootstrap, **parse_security(security)}


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    found = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        found.append((host.strip("[]"), int(port)))
    return found


async def check_access(
    bootstrap: str, security: BaseSecurity | None, *, timeout: float = 10.0
) -> None:
    """Raise KafkaAccessRefused when a broker of `bootstrap` refuses `security`'s credentials or
    its certificate fails verification. aiokafka's clients only log that and then report an
    unreachable cluster; here it is an error that says which setting to fix. Brokers that do not
    answer are left to the caller's retries (an outage is waited out)."""
    if security is None:
        return
    options = parse_security(security)
    who = (
        f"SASL {options['sasl_mechanism']} user {options['sasl_plain_username']!r} "
        "(FENGQIAO_KAFKA_SASL_USERNAME, FENGQIAO_KAFKA_SASL_PASSWORD)"
        if "sasl_mechanism" in options
        else "the client certificate (FENGQIAO_KAFKA_SSL_CERTFILE)"
    )
    for host, port in _hosts(bootstrap):
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(host, port, client_id="fengqiao-check", **options)
        except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
            raise KafkaAccessRefused(f"Kafka at {host}:{port} refused {who}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise KafkaAccessRefused(
                f"Kafka at {host}:{port}: its certificate is not trusted by "
                f"FENGQIAO_KAFKA_SSL_CAFILE ({exc.verify_message})"
            ) from None
        except (OSError, TimeoutError, KafkaError):
            continue  # not answering (or not yet): the caller's outage handling decides
        conn.close()
        return
