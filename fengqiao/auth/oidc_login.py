"""OIDC in the browser: authorization code with PKCE (RFC 7636), for the workbench's login.

    started = await begin_login(verifier)     # keep `started` in the server-side session
    redirect(started.url)                     # the IdP signs the person in, sends them back
    result = await complete_login(verifier, started, request.query_params)
    result.identity                           # the person, their unit and roles

`state` ties the callback to the login this browser began (no login CSRF), `nonce` ties the
id_token to it (no replayed id_token), and the PKCE verifier ties the code to it (a code that
leaks on the way back is useless without it). All three stay on the server, in the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from fengqiao.auth.identity import Identity, Unauthenticated
from fengqiao.auth.oidc import OidcVerifier, identity_from_claims


def code_challenge(code_verifier: str) -> str:
    """PKCE S256: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_code_verifier() -> str:
    """43 to 128 unreserved characters (RFC 7636 §4.1): 64 random bytes make 86."""
    return secrets.token_urlsafe(64)


@dataclass(frozen=True)
class LoginStart:
    """A login under way: where to send the browser, and what to keep until it comes back."""

    url: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str


@dataclass(frozen=True)
class LoginResult:
    """A completed login: the person, and the IdP's tokens (for logout or calling on)."""

    identity: Identity
    id_token: str
    claims: dict[str, Any]
    access_token: str | None
    expires_in: int | None


def _client_settings(verifier: OidcVerifier, redirect_uri: str | None) -> tuple[str, str]:
    settings = verifier.settings
    redirect = redirect_uri or settings.redirect_uri
    if not settings.client_id or not redirect:
        raise Unauthenticated(
            "OIDC browser login needs FENGQIAO_OIDC_CLIENT_ID and FENGQIAO_OIDC_REDIRECT_URI"
        )
    return settings.client_id, redirect


async def begin_login(
    verifier: OidcVerifier,
    *,
    redirect_uri: str | None = None,
    extra_params: Mapping[str, str] | None = None,
) -> LoginStart:
    """A fresh state, nonce and PKCE verifier, and the IdP's authorize URL that carries them."""
    client_id, redirect = _client_settings(verifier, redirect_uri)
    discovery = await verifier.discovery()
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    code_verifier = new_code_verifier()
    params = {
        **(extra_params or {}),
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": " ".join(verifier.settings.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    endpoint = discovery.authorization_endpoint
    joiner = "&" if "?" in endpoint else "?"
    return LoginStart(endpoint + joiner + urlencode(params), state, nonce, code_verifier, redirect)


def _callback_code(started: LoginStart, params: Mapping[str, str]) -> str:
    error = params.get("error")
    if error:
        detail = params.get("error_description") or ""
        raise Unauthenticated(f"the IdP refused the login: {error} {detail}".strip())
    if not hmac.compare_digest(params.get("state") or "", started.state):
        raise Unauthenticated("the login's state does not match the one this session began")
    code = params.get("code")
    if not code:
        raise Unauthenticated("the IdP sent the browser back without a code")
    return code


async def _exchange(verifier: OidcVerifier, started: LoginStart, code: str) -> dict[str, Any]:
    settings = verifier.settings
    discovery = await verifier.discovery()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": started.redirect_uri,
        "code_verifier": started.code_verifier,
        "client_id": settings.client_id,
    }
    auth = httpx.Auth()  # a public client (PKCE alone)
    if settings.client_secret is not None:  # client_secret_basic
        auth = httpx.BasicAuth(settings.client_id, settings.client_secret.get_secret_value())
    try:
        response = await verifier.http.post(discovery.token_endpoint, data=form, auth=auth)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unauthenticated(f"the IdP's token endpoint could not be used: {exc}") from None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise Unauthenticated(
            f"the IdP refused the code (HTTP {response.status_code}, {error or 'no error code'})"
        )
    return body


async def complete_login(
    verifier: OidcVerifier, started: LoginStart, params: Mapping[str, str]
) -> LoginResult:
    """Check the IdP's callback (`params`: its query string) against the login `started`,
    exchange the code with the PKCE verifier, verify the id_token and its nonce."""
    code = _callback_code(started, params)
    tokens = await _exchange(verifier, started, code)
    id_token = tokens.get("id_token")
    if not isinstance(id_token, str):
        raise Unauthenticated("the IdP's token response has no id_token (is `openid` a scope?)")
    claims = await verifier.verify(id_token, audience=verifier.settings.client_id)
    if not hmac.compare_digest(str(claims.get("nonce") or ""), started.nonce):
        raise Unauthenticated("the id_token's nonce is not the one this login sent")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != verifier.settings.client_id:
        # OIDC Core 3.1.3.7: with several audiences, azp must name us.
        raise Unauthenticated("the id_token names several audiences but not us as its azp")
    access = tokens.get("access_token")
    expires = tokens.get("expires_in")
    return LoginResult(
        identity=identity_from_claims(claims, verifier.settings),
        id_token=id_token,
        claims=claims,
        access_token=access if isinstance(access, str) else None,
        expires_in=expires if isinstance(expires, int) else None,
    )
