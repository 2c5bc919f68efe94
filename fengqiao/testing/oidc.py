"""A real OpenID Connect provider for tests: NAV's mock-oauth2-server, run like the stack's Kafka.

Its jars are fetched once by Maven (deploy/oidc/pom.xml) into `<cache>/oidc/libs` (the stack's
cache, FENGQIAO_CACHE_DIR) and it runs as one JVM on a loopback port. It serves discovery, JWKS,
the authorization endpoint (non-interactive: it signs anyone in at once) and the token endpoint,
and signs its tokens with the RSA key the test gives it; the claims come from its JSON config
(`token_callbacks`), matched on the token request's form parameters.

    provider = OidcProvider(cache_dir, port)
    provider.start(provider_config(signing_jwk))
    token = provider.token(person="wang.li", unit="xj.aksu", group="handler")
    provider.stop()
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from fengqiao.stack import jars, process, tools
from fengqiao.stack.component import DEPLOY_DIR, Progress
from fengqiao.stack.errors import StackError

POM = DEPLOY_DIR / "oidc" / "pom.xml"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
ISSUER_ID = "fengqiao"  # the issuer's path on the server, and its key id (kid)
AUDIENCE = "fengqiao"
CLIENT_ID = "fengqiao-workbench"
HEAP = "-Xmx160m"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def new_signing_jwk() -> dict[str, Any]:
    """A fresh private RSA key as a JWK (the provider signs with it; tests rotate it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return RSAAlgorithm.to_jwk(key, as_dict=True)


# A token that holds in every way but one, for the `scenario=...` requests.
_VALID: dict[str, Any] = {"sub": "scenario", "aud": [AUDIENCE], "unit": "xj.aksu", "groups": ["x"]}
_SCENARIOS: dict[str, dict[str, Any]] = {
    "expired": {"exp": 1_000_000_000},  # 2001
    "not_yet": {"nbf": 4_000_000_000},  # 2096
    "foreign_issuer": {"iss": "https://sso.elsewhere.example/realms/other"},
}
_PERSON: dict[str, Any] = {
    "sub": "${person}",
    "aud": ["${audience}"],
    "name": "${display}",
    "unit": "${unit}",
    "groups": ["${group}", "${group2}"],
}
_BROWSER_LOGIN: dict[str, Any] = {
    "sub": "chen.jing",
    # as from Keycloak with an audience mapper: the workbench (azp) and the API
    "aud": ["${client_id}", AUDIENCE],
    "azp": "${client_id}",
    "name": "陈静",
    "unit": "652701",  # 博乐市院, where the test cases are dispatched
    "groups": ["handler", "unit_lead"],
}


def provider_config(signing_jwk: dict[str, Any], token_expiry: int = 300) -> dict[str, Any]:
    """mock-oauth2-server's JSON config: tokens of issuer `fengqiao` signed with `signing_jwk`
    (a private RSA JWK), with claims chosen by the token request's form parameters:

    - `scenario=expired` / `not_yet` / `foreign_issuer`: a token whose exp is long past / whose
      nbf is far ahead / whose iss names another IdP, otherwise valid (sub `scenario`);
    - `person=...`: sub `person`, aud `audience`, name `display`, unit `unit`, groups
      [`group`, `group2`] (each parameter must be sent);
    - an authorization code (the browser login): 陈静 (sub `chen.jing`), unit `652701` (博乐市),
      groups handler and unit_lead.
    """
    mappings: list[dict[str, Any]] = [
        {"requestParam": "scenario", "match": name, "claims": {**_VALID, **changed}}
        for name, changed in _SCENARIOS.items()
    ]
    mappings.append({"requestParam": "person", "match": "*", "claims": _PERSON})
    mappings.append({"requestParam": "code", "match": "*", "claims": _BROWSER_LOGIN})
    return {
        "interactiveLogin": False,
        "httpServer": "MockWebServerWrapper",
        "tokenProvider": {
            "keyProvider": {"initialKeys": json.dumps(signing_jwk), "algorithm": "RS256"}
        },
        "tokenCallbacks": [
            {"issuerId": ISSUER_ID, "tokenExpiry": token_expiry, "requestMappings": mappings}
        ],
    }


class OidcProvider:
    """mock-oauth2-server on `127.0.0.1:<port>`, its files under `<cache>/oidc/`."""

    def __init__(self, cache_dir: Path, port: int) -> None:
        self.home = cache_dir / "oidc"
        self.libs = self.home / "libs"
        self.port = port
        self.run_dir = self.home / f"run-{port}"
        self.config_path = self.run_dir / "config.json"
        self.log_path = self.run_dir / "stdout.log"
        self.pid: int | None = None

    @property
    def issuer(self) -> str:
        """The issuer URL, as in its tokens' `iss`."""
        return f"http://127.0.0.1:{self.port}/{ISSUER_ID}"

    @property
    def markers(self) -> tuple[str, ...]:
        """How our JVM is told from any other: its main class and this run's config file."""
        return (MAIN_CLASS, f"-Dfengqiao.oidc.config={self.config_path}")

    def prepare(self, progress: Progress = lambda _line: None) -> None:
        """Fetch the jars unless they are cached (needs mvn the first time)."""
        if not jars.jars_ready(self.libs, POM):
            jars.fetch_jars(POM, self.home, "oidc provider", progress)

    def start(self, config: dict[str, Any], timeout: float = 60.0) -> None:
        """Start the JVM with `config` and wait until discovery answers."""
        if self.pid is not None:
            raise StackError(f"the OIDC provider on port {self.port} already runs")
        self.prepare()
        java = tools.require_java()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(config, ensure_ascii=False))
        self.log_path.write_bytes(b"")
        argv = [java, HEAP, "-XX:+ExitOnOutOfMemoryError", self.markers[1]]
        argv += ["-cp", f"{self.libs}/*", MAIN_CLASS]
        env = {
            "PATH": "/usr/bin:/bin",
            "SERVER_HOSTNAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "JSON_CONFIG_PATH": str(self.config_path),
        }
        self.pid = process.spawn(argv, self.log_path, env)
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        assert self.pid is not None
        deadline = time.monotonic() + timeout
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            if not process.child_running(self.pid):
                self.pid = None
                raise StackError(
                    f"the OIDC provider exited at start; see {self.log_path}",
                    process.tail(self.log_path),
                )
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise StackError(
            f"the OIDC provider did not answer on {url} within {timeout:.0f} s",
            process.tail(self.log_path),
        )

    def stop(self) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL) and collect it."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        process.send_signal(pid, signal.SIGTERM)
        if not process.wait_gone(pid, self.markers, timeout=15.0):
            process.send_signal(pid, signal.SIGKILL)
            process.wait_gone(pid, self.markers, timeout=5.0)

    def restart(self, config: dict[str, Any]) -> None:
        """Stop and start again on the same port (the same issuer) with `config`."""
        self.stop()
        self.start(config)

    def token(self, **params: str) -> str:
        """An access token from the token endpoint (client credentials grant); `params` are
        sent as form parameters and choose the claims (see provider_config)."""
        form = {"grant_type": "client_credentials", "client_id": "api-client"}
        form["client_secret"] = "not-checked"
        response = httpx.post(f"{self.issuer}/token", data={**form, **params}, timeout=10.0)
        response.raise_for_status()
        token = response.json()["access_token"]
        assert isinstance(token, str)
        return token
