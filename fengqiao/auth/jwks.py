"""The IdP's discovery document and its signing keys, fetched over HTTP and cached.

The keys are fetched once and used for `jwks_max_age_seconds`. A token signed with a key id we
do not hold (the IdP rotated its keys), or whose signature fails under the key we hold for its
id (a key replaced under the same id), makes us refetch, but at most once per
`jwks_min_refetch_seconds`: a flood of forged key ids costs the IdP one request per interval.
Concurrent callers share one fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from jwt import PyJWK
from jwt.exceptions import PyJWKError, PyJWTError

from fengqiao.auth.identity import Unauthenticated
from fengqiao.auth.settings import OidcSettings

Clock = Callable[[], float]


@dataclass(frozen=True)
class Discovery:
    """The parts of the IdP's openid-configuration we use."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None = None

    @classmethod
    def from_document(cls, doc: dict[str, Any], expected_issuer: str) -> Discovery:
        """Checked: the document must name the configured issuer (OIDC Discovery 1.0 §4.3)."""
        issuer = doc.get("issuer")
        if issuer != expected_issuer:
            raise Unauthenticated(
                f"the IdP's discovery document names issuer {issuer!r}, "
                f"not the configured {expected_issuer!r}"
            )
        try:
            return cls(
                issuer=issuer,
                jwks_uri=_url(doc, "jwks_uri"),
                authorization_endpoint=_url(doc, "authorization_endpoint"),
                token_endpoint=_url(doc, "token_endpoint"),
                end_session_endpoint=doc.get("end_session_endpoint"),
            )
        except (KeyError, TypeError) as exc:
            raise Unauthenticated(f"the IdP's discovery document lacks {exc}") from None


def _url(doc: dict[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise TypeError(f"a URL in {key!r}")
    return value


async def get_json(http: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
    """GET `url` as a JSON object; any failure is Unauthenticated naming `what`."""
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise Unauthenticated(f"the IdP's {what} could not be read from {url}: {exc}") from None
    if not isinstance(body, dict):
        raise Unauthenticated(f"the IdP's {what} at {url} is not a JSON object")
    return body


@dataclass(frozen=True)
class SigningKey:
    """One of the IdP's public keys, and the algorithm it is published for (if it says)."""

    kid: str
    jwk: PyJWK
    alg: str | None


def parse_jwks(doc: dict[str, Any]) -> dict[str, SigningKey]:
    """Signing keys by key id; keys without a kid, for encryption or of unknown types are left
    out (an IdP may publish those next to its signing keys)."""
    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise Unauthenticated("the IdP's key set has no `keys` list")
    usable: dict[str, SigningKey] = {}
    for data in keys:
        if not isinstance(data, dict) or not isinstance(data.get("kid"), str):
            continue
        if data.get("use", "sig") != "sig":
            continue
        alg = data.get("alg")
        try:
            usable[data["kid"]] = SigningKey(
                data["kid"], PyJWK(data), alg if isinstance(alg, str) else None
            )
        except (PyJWKError, PyJWTError):
            continue
    return usable


class KeyCache:
    """The discovery document and signing keys of one issuer."""

    def __init__(
        self, settings: OidcSettings, http: httpx.AsyncClient, clock: Clock = time.monotonic
    ) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._discovery: Discovery | None = None
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # when the keys we hold were fetched
        self._tried_at: float | None = None  # the last fetch, whether it worked or not
        self._lock = asyncio.Lock()  # one key fetch at a time
        self._discovery_lock = asyncio.Lock()  # taken inside _lock: a lock of its own
        self.fetches = 0  # how many times the key set was fetched (for tests and metrics)

    async def discovery(self) -> Discovery:
        """The discovery document, fetched once."""
        if self._discovery is None:
            async with self._discovery_lock:
                if self._discovery is None:
                    doc = await get_json(
                        self._http, self._settings.discovery_url, "discovery document"
                    )
                    self._discovery = Discovery.from_document(doc, self._settings.issuer)
        return self._discovery

    async def key(self, kid: str, *, stale: SigningKey | None = None) -> SigningKey:
        """The signing key `kid`. `stale` is a key of that id that just failed to verify: a
        fresher key set is then fetched, as for an unknown id (within the rate limit)."""
        held = self._keys.get(kid) if self._fresh() else None
        if held is not None and held is not stale:
            return held
        async with self._lock:
            held = self._keys.get(kid) if self._fresh() else None
            if held is not None and held is not stale:
                return held  # another caller refetched while we waited
            if self._may_refetch():
                await self._refetch()
            held = self._keys.get(kid)
        if held is None:
            raise Unauthenticated(
                f"the token is signed with key {kid!r}, which the IdP does not list"
            )
        return held

    def _fresh(self) -> bool:
        return (
            self._fetched_at is not None
            and self._clock() - self._fetched_at < self._settings.jwks_max_age_seconds
        )

    def _may_refetch(self) -> bool:
        return (
            self._tried_at is None
            or self._clock() - self._tried_at >= self._settings.jwks_min_refetch_seconds
        )

    async def _refetch(self) -> None:
        # An IdP that cannot be reached leaves us with the keys we hold (tokens signed with them
        # still verify); with none held, the caller is refused.
        self._tried_at = self._clock()
        try:
            discovery = await self.discovery()
            doc = await get_json(self._http, discovery.jwks_uri, "key set (JWKS)")
            keys = parse_jwks(doc)
        except Unauthenticated:
            if not self._keys:
                raise
            return
        self.fetches += 1
        self._keys = keys
        self._fetched_at = self._clock()
