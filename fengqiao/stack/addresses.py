"""Where the local stack listens: from `FENGQIAO_KAFKA_BOOTSTRAP` and `FENGQIAO_MONGO_URI`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from fengqiao.stack.errors import StackError

KAFKA_ENV = "FENGQIAO_KAFKA_BOOTSTRAP"
MONGO_ENV = "FENGQIAO_MONGO_URI"
EXTERNAL_ENV = "FENGQIAO_EXTERNAL"
DEFAULT_MONGO_PORT = 27017

# Names that mean "this machine"; the local stack cannot listen anywhere else.
_LOCAL_NAMES = {"localhost", "localhost.localdomain"}


@dataclass(frozen=True)
class HostPort:
    """A TCP address the stack binds; `host` is an IP literal or `localhost`."""

    host: str
    port: int

    @property
    def bind_host(self) -> str:
        """The IP literal to bind: `localhost` binds IPv4 loopback, like the default settings."""
        return "127.0.0.1" if self.host.lower() in _LOCAL_NAMES else self.host

    def __str__(self) -> str:
        return format_hostport(self.host, self.port)


def format_hostport(host: str, port: int) -> str:
    """`host:port`, with brackets around an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    """True when `host` names this machine's loopback interface."""
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _external_hint(env: str, value: str) -> str:
    return (
        f"{env}={value!r} is not one address on this machine, so the local stack cannot serve it: "
        f"use one loopback host:port (e.g. 127.0.0.1:<port>), or set {EXTERNAL_ENV}=true "
        "if someone else runs that cluster"
    )


def _checked(host: str, port: int, env: str, value: str, max_port: int = 65535) -> HostPort:
    if not host or not is_loopback(host):
        raise StackError(_external_hint(env, value))
    if not 0 < port <= max_port:
        raise StackError(f"{env}={value!r} needs a port between 1 and {max_port}")
    return HostPort(host, port)


def parse_kafka_bootstrap(value: str) -> HostPort:
    """The broker address of the local stack from a bootstrap string such as `127.0.0.1:19092`.

    The KRaft controller listens on the next port up, so the port must leave room for it.
    """
    text = value.strip().removeprefix("PLAINTEXT://")
    if not text or "," in text or "//" in text:
        raise StackError(_external_hint(KAFKA_ENV, value))
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError as exc:
        raise StackError(f"{KAFKA_ENV}={value!r} is not host:port ({exc})") from None
    if port is None:
        raise StackError(f"{KAFKA_ENV}={value!r} is not host:port (no port)")
    # The controller takes port + 1, which must exist too.
    return _checked(parts.hostname or "", port, KAFKA_ENV, value, max_port=65534)


def parse_mongo_uri(uri: str) -> HostPort:
    """The FerretDB address of the local stack from a URI such as `mongodb://127.0.0.1:27117/`."""
    try:
        parts = urlsplit(uri.strip())
        if parts.scheme != "mongodb" or "," in parts.netloc:
            raise StackError(_external_hint(MONGO_ENV, uri))
        port = parts.port if parts.port is not None else DEFAULT_MONGO_PORT
    except ValueError as exc:
        raise StackError(f"{MONGO_ENV}={uri!r} is not a mongodb:// URI ({exc})") from None
    return _checked(parts.hostname or "", port, MONGO_ENV, uri)


def redact_uri(uri: str) -> str:
    """`uri` without its password, for status output."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
