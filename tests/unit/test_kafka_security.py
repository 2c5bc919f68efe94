"""Kafka security settings (fengqiao.runtime.kafka_security): what each protocol needs, the
clear errors at start, and the client options and TLS contexts built from them. mTLS is tested
with a real TLS handshake against a local server that requires a client certificate."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faststream.security import BaseSecurity, SASLScram256, SASLScram512

from fengqiao.cli import main
from fengqiao.runtime.kafka_security import KafkaSecurityError, kafka_options
from fengqiao.runtime.settings import StackSettings

PASSWORD = "s3cret-scram-password"


def settings(**given: Any) -> StackSettings:
    return StackSettings(kafka_bootstrap="broker-1:9093,broker-2:9093", **given)


def test_plaintext_by_default_adds_nothing() -> None:
    stack = settings()
    assert stack.kafka_security() is None
    assert kafka_options(stack.kafka_bootstrap, None) == {
        "bootstrap_servers": "broker-1:9093,broker-2:9093"
    }


@pytest.mark.parametrize(
    ("mechanism", "kind"), [("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)]
)
def test_scram_reaches_every_client_alike(mechanism: str, kind: type[BaseSecurity]) -> None:
    stack = settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="fengqiao",
        kafka_sasl_password=PASSWORD,
    )
    security = stack.kafka_security()
    assert isinstance(security, kind)
    options = kafka_options(stack.kafka_bootstrap, security)
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == mechanism
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "fengqiao",
        PASSWORD,
    )
    assert options["ssl_context"] is None


def test_settings_come_from_the_environment_and_hide_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("FENGQIAO_KAFKA_SASL_USERNAME", "fengqiao")
    monkeypatch.setenv("FENGQIAO_KAFKA_SASL_PASSWORD", PASSWORD)
    stack = StackSettings()
    assert stack.kafka_sasl_mechanism == "SCRAM-SHA-512"  # the default
    assert PASSWORD not in repr(stack) and PASSWORD not in str(stack.model_dump())


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "FENGQIAO_KAFKA_SASL_PASSWORD"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "fengqiao"},
            "FENGQIAO_KAFKA_SASL_PASSWORD",
        ),
        (
            {"kafka_sasl_username": "fengqiao", "kafka_sasl_password": PASSWORD},
            "would not send them",
        ),
        ({"kafka_security_protocol": "SSL"}, "needs FENGQIAO_KAFKA_SSL_CAFILE"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "fengqiao",
                "kafka_sasl_password": PASSWORD,
            },
            "needs FENGQIAO_KAFKA_SSL_CAFILE",
        ),
        ({"kafka_ssl_cafile": "/etc/ssl/ca.pem"}, "does not use TLS"),
    ],
)
def test_settings_that_cannot_work_stop_the_start_naming_the_setting(
    given: dict[str, Any], named: str
) -> None:
    with pytest.raises(KafkaSecurityError, match=named) as refused:
        settings(**given)
    assert PASSWORD not in str(refused.value)


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(KafkaSecurityError, match=f"FENGQIAO_KAFKA_SSL_CAFILE={missing}"):
        settings(kafka_security_protocol="SSL", kafka_ssl_cafile=missing)


class Pki:
    """A CA, a server certificate for localhost and client certificates, as PEM files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fengqiao test CA")])
        self.ca_cert = self._sign(self.ca_name, self.ca_key.public_key(), ca=True)
        self.ca_file = self._write("ca.pem", self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, *, server: bool = False) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = self._sign(subject, key.public_key(), ca=False, server=server)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        pem = cert.public_bytes(serialization.Encoding.PEM)
        return self._write(f"{name}.pem", pem), self._write(f"{name}.key", key_pem)

    def _sign(
        self, subject: x509.Name, public: Any, *, ca: bool, server: bool = False
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if server:
            names = [x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256())

    def _write(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


async def peer_of(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> str:
    """The common name of the client certificate a TLS server on loopback receives."""
    seen: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cert = writer.get_extra_info("peercert")
        seen.set_result(dict(x[0] for x in cert["subject"])["commonName"])
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_context, server_hostname="localhost"
        )
        name = await asyncio.wait_for(seen, 10)
        writer.close()
    return name


async def test_mutual_tls_presents_the_client_certificate_and_verifies_the_broker(
    tmp_path: Path,
) -> None:
    pki = Pki(tmp_path)
    server_cert, server_key = pki.issue("broker", server=True)
    client_cert, client_key = pki.issue("fengqiao-svc")
    stack = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki.ca_file,
        kafka_ssl_certfile=client_cert,
        kafka_ssl_keyfile=client_key,
    )
    security = stack.kafka_security()
    assert security is not None and security.use_ssl and security.ssl_context is not None
    options = kafka_options(stack.kafka_bootstrap, security)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname

    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki.ca_file)
    server.load_cert_chain(server_cert, server_key)
    server.verify_mode = ssl.CERT_REQUIRED  # the broker's ssl.client.auth=required
    assert await peer_of(server, context) == "fengqiao-svc"


def test_a_key_of_another_certificate_or_half_of_a_pair_is_refused(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    client_cert, _ = pki.issue("fengqiao-svc")
    _, other_key = pki.issue("someone-else")
    tls = {"kafka_security_protocol": "SSL", "kafka_ssl_cafile": pki.ca_file}
    with pytest.raises(KafkaSecurityError, match="FENGQIAO_KAFKA_SSL_CERTFILE"):
        settings(**tls, kafka_ssl_certfile=client_cert, kafka_ssl_keyfile=other_key)
    with pytest.raises(KafkaSecurityError, match="needs both"):
        settings(**tls, kafka_ssl_certfile=client_cert)


def test_the_command_line_says_what_to_fix_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FENGQIAO_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert main(["ops", "topics"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fengqiao: FENGQIAO_KAFKA_SECURITY_PROTOCOL=SSL needs FENGQIAO_KAFKA_SSL")
