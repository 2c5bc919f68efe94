"""The browser's OIDC login, authorization code + PKCE, driven with httpx against a real
provider (mock-oauth2-server, non-interactive: it signs anyone in at once) (issue 19, deliver 1)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from fengqiao.auth import Role, Unauthenticated
from fengqiao.auth.oidc import OidcVerifier
from fengqiao.auth.oidc_login import (
    LoginStart,
    begin_login,
    code_challenge,
    complete_login,
    new_code_verifier,
)
from fengqiao.auth.settings import OidcSettings
from fengqiao.testing.oidc import AUDIENCE, CLIENT_ID, OidcProvider

REDIRECT = "http://127.0.0.1:8090/auth/callback"


@pytest.fixture
async def verifier(oidc_provider: OidcProvider) -> AsyncIterator[OidcVerifier]:
    settings = OidcSettings(
        issuer=oidc_provider.issuer,
        issuer_alias="test",
        audience=AUDIENCE,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT,
    )
    verifier = OidcVerifier(settings)
    yield verifier
    await verifier.aclose()


async def authorize(verifier: OidcVerifier, started: LoginStart) -> dict[str, str]:
    """What the browser does: follow the authorize URL; the IdP redirects back with a code."""
    response = await verifier.http.get(started.url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(started.redirect_uri + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def test_the_full_login_ends_in_the_person(verifier: OidcVerifier) -> None:
    started = await begin_login(verifier)
    query = parse_qs(urlsplit(started.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [code_challenge(started.code_verifier)]
    assert query["state"] == [started.state] and query["nonce"] == [started.nonce]
    assert "code_verifier" not in query  # it stays on our side until the code is exchanged

    callback = await authorize(verifier, started)
    assert callback["state"] == started.state
    result = await complete_login(verifier, started, callback)

    assert result.identity.person == "oidc:test:chen.jing"
    assert result.identity.name == "陈静"
    assert result.identity.unit_id == "652701"
    assert result.identity.roles == {Role.HANDLER, Role.UNIT_LEAD}
    assert result.identity.via == "oidc"
    assert result.claims["nonce"] == started.nonce
    assert result.claims["aud"] == [CLIENT_ID, AUDIENCE] and result.claims["azp"] == CLIENT_ID
    # The access token of the same login works as a bearer token for the API.
    assert result.access_token is not None
    api_identity = await verifier.identity(result.access_token)
    assert api_identity.person == result.identity.person


async def test_a_callback_for_another_login_is_refused(verifier: OidcVerifier) -> None:
    mine = await begin_login(verifier)
    theirs = await begin_login(verifier)
    callback = await authorize(verifier, theirs)
    with pytest.raises(Unauthenticated, match="state does not match"):
        await complete_login(verifier, mine, callback)


async def test_a_code_without_its_pkce_verifier_is_refused_by_the_idp(
    verifier: OidcVerifier,
) -> None:
    started = await begin_login(verifier)
    callback = await authorize(verifier, started)
    stolen = dataclasses.replace(started, code_verifier=new_code_verifier())
    with pytest.raises(Unauthenticated, match="refused the code"):
        await complete_login(verifier, stolen, callback)


async def test_an_id_token_for_another_nonce_is_refused(verifier: OidcVerifier) -> None:
    started = await begin_login(verifier)
    callback = await authorize(verifier, started)
    replayed = dataclasses.replace(started, nonce="a-nonce-this-login-never-sent")
    with pytest.raises(Unauthenticated, match="nonce"):
        await complete_login(verifier, replayed, callback)


async def test_an_error_from_the_idp_and_missing_settings_are_refusals(
    verifier: OidcVerifier, oidc_provider: OidcProvider
) -> None:
    started = await begin_login(verifier)
    params = {"error": "access_denied", "error_description": "user cancelled", "state": "x"}
    with pytest.raises(Unauthenticated, match="refused the login: access_denied user cancelled"):
        await complete_login(verifier, started, params)
    with pytest.raises(Unauthenticated, match="without a code"):
        await complete_login(verifier, started, {"state": started.state})
    no_client = OidcVerifier(OidcSettings(issuer=oidc_provider.issuer), verifier.http)
    with pytest.raises(Unauthenticated, match="FENGQIAO_OIDC_CLIENT_ID"):
        await begin_login(no_client)
