"""OIDC: a bearer JWT from the IdP (Keycloak, the government's SSO) becomes an Identity.

    identity = await identity_from_bearer(token)   # Unauthenticated (401) when it does not hold

What is checked, in order: the token is a JWS whose header names an accepted asymmetric
algorithm (never `none`, never HMAC) and a key id; the key is one the IdP lists in its JWKS
(found through discovery, cached, refetched on an unknown key id at most once per
`jwks_min_refetch_seconds`); the signature; `iss` is the configured issuer, `aud` names our
audience, `exp`, `nbf` and `iat` hold within `leeway_seconds`; `sub` is there. The person's unit
and roles come from claims, mapped by the settings (fengqiao.auth.settings.OidcSettings). Every
failure is `Unauthenticated` with a reason a person can act on; never anything else.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx
import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWTError,
)

from fengqiao.auth.identity import Identity, Role, Unauthenticated
from fengqiao.auth.jwks import Clock, Discovery, KeyCache, SigningKey
from fengqiao.auth.settings import OidcSettings

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")
_REASONS: tuple[tuple[type[PyJWTError], str], ...] = (
    (ExpiredSignatureError, "the token has expired"),
    (ImmatureSignatureError, "the token is not valid yet (nbf)"),
    (InvalidIssuedAtError, "the token was issued in the future (iat)"),
    (InvalidAudienceError, "the token is not meant for this service (aud)"),
    (InvalidIssuerError, "the token was issued by another issuer (iss)"),
    (InvalidSignatureError, "the token's signature does not verify"),
    (DecodeError, "the token is not a well-formed JWT"),
)


def reason(exc: PyJWTError) -> str:
    """Why PyJWT refused a token, in words for the 401."""
    if isinstance(exc, MissingRequiredClaimError):
        return f"the token lacks the {exc.claim!r} claim"
    for kind, text in _REASONS:
        if isinstance(exc, kind):
            return text
    return f"the token is not valid: {exc}"


class OidcVerifier:
    """Checks JWTs of one issuer. One per process; safe for concurrent use on one event loop."""

    def __init__(
        self,
        settings: OidcSettings,
        http: httpx.AsyncClient | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.settings = settings
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=settings.http_timeout_seconds, follow_redirects=False
        )
        self.keys = KeyCache(settings, self.http, clock)

    async def aclose(self) -> None:
        """Close the HTTP client, if it is ours."""
        if self._owns_http:
            await self.http.aclose()

    async def discovery(self) -> Discovery:
        """The IdP's endpoints."""
        self._require_enabled()
        return await self.keys.discovery()

    async def identity(self, token: str) -> Identity:
        """The Identity of an API client's bearer access token (aud: `settings.audience`)."""
        claims = await self.verify(token, audience=self.settings.audience)
        return identity_from_claims(claims, self.settings)

    async def verify(self, token: str, *, audience: str) -> dict[str, Any]:
        """The claims of `token` once its signature and registered claims hold."""
        self._require_enabled()
        kid, alg = self._header(token)
        key = await self.keys.key(kid)
        try:
            return self._decode(token, key, alg, audience)
        except InvalidSignatureError:
            pass
        # The IdP may have replaced the key under the same id: one look at a fresher key set.
        fresher = await self.keys.key(kid, stale=key)
        try:
            if fresher is not key:
                return self._decode(token, fresher, alg, audience)
        except InvalidSignatureError:
            pass
        raise Unauthenticated("the token's signature does not verify")

    def _require_enabled(self) -> None:
        if not self.settings.enabled:
            raise Unauthenticated("OIDC sign-in is not configured (FENGQIAO_OIDC_ISSUER is empty)")

    def _header(self, token: str) -> tuple[str, str]:
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise Unauthenticated("the bearer token is not a well-formed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self.settings.algorithms:
            raise Unauthenticated(
                f"the token's signature algorithm {alg!r} is not accepted "
                f"(accepted: {', '.join(self.settings.algorithms)})"
            )
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token's header names no key id (kid)")
        return kid, alg

    def _decode(self, token: str, key: SigningKey, alg: str, audience: str) -> dict[str, Any]:
        if key.alg is not None and key.alg != alg:
            raise Unauthenticated(
                f"the token says {alg} but the IdP publishes key {key.kid!r} for {key.alg}"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except InvalidSignatureError:
            raise  # the caller looks for a fresher key first
        except (InvalidTokenError, PyJWTError) as exc:
            raise Unauthenticated(reason(exc)) from None
        except (TypeError, ValueError) as exc:  # a key that does not fit the algorithm
            why = f"the token cannot be checked with key {key.kid!r}: {exc}"
            raise Unauthenticated(why) from None
        return claims


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted `path` (`realm_access.roles`), or None. A claim whose own name has
    dots (`https://example.org/unit`) is found as it is first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def roles_from_claims(claims: dict[str, Any], settings: OidcSettings) -> frozenset[Role]:
    """Our roles for the IdP's group/role names (names not mapped are no role of ours)."""
    mapping = settings.role_map
    return frozenset(
        mapping[name] for name in _names(claim_at(claims, settings.roles_claim)) if name in mapping
    )


def unit_from_claims(claims: dict[str, Any], settings: OidcSettings) -> str:
    """The directory unit id the token names; Unauthenticated when it names none we know."""
    raw = claim_at(claims, settings.unit_claim)
    if not isinstance(raw, str) or not raw:
        raise Unauthenticated(f"the token names no unit (claim {settings.unit_claim!r})")
    if not settings.unit_map:
        return raw
    if raw not in settings.unit_map:
        raise Unauthenticated(f"the token's unit {raw!r} is not one FENGQIAO_OIDC_UNIT_MAP maps")
    return settings.unit_map[raw]


def identity_from_claims(claims: dict[str, Any], settings: OidcSettings) -> Identity:
    """The Identity of verified claims: `oidc:<alias>:<sub>` of the unit and roles they name."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("the token names no subject (sub)")
    names = (claims.get(name) for name in settings.name_claims)
    display = next((n for n in names if isinstance(n, str) and n.strip()), sub)
    return Identity(
        person=f"oidc:{settings.issuer_alias}:{sub}",
        name=display,
        unit_id=unit_from_claims(claims, settings),
        roles=roles_from_claims(claims, settings),
        via="oidc",
    )


_default: OidcVerifier | None = None


def default_verifier() -> OidcVerifier:
    """The process's verifier, made from the environment (FENGQIAO_OIDC_*) on first use."""
    global _default
    if _default is None:
        _default = OidcVerifier(OidcSettings())
    return _default


def use_verifier(verifier: OidcVerifier | None) -> None:
    """Make `verifier` the process's (a service at start, a test); None: from the environment."""
    global _default
    _default = verifier


async def identity_from_bearer(token: str) -> Identity:
    """The Identity of `Authorization: Bearer <token>`; Unauthenticated when it does not hold."""
    return await default_verifier().identity(token)
