"""OIDC bearer JWTs against a real provider (mock-oauth2-server, started by the suite): the
tokens it issues map to the right Identity, and every forged, stale or misdirected one is
refused with a reason (issue 19, deliver 1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fengqiao.auth import Identity, Role, Unauthenticated
from fengqiao.auth.oidc import OidcVerifier, identity_from_bearer, use_verifier
from fengqiao.auth.settings import OidcSettings
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.oidc import (
    AUDIENCE,
    ISSUER_ID,
    OidcProvider,
    free_port,
    new_signing_jwk,
    provider_config,
)


def settings_for(issuer: str, **overrides: Any) -> OidcSettings:
    values: dict[str, Any] = {"issuer": issuer, "issuer_alias": "test", "audience": AUDIENCE}
    return OidcSettings(**{**values, **overrides})


class CountingClient:
    """An httpx client that counts its requests per URL path (real HTTP, counted on our side)."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.http = httpx.AsyncClient(timeout=5.0, event_hooks={"request": [self._seen]})

    async def _seen(self, request: httpx.Request) -> None:
        self.paths.append(request.url.path)

    def count(self, suffix: str) -> int:
        return sum(path.endswith(suffix) for path in self.paths)


@pytest.fixture
async def counting() -> AsyncIterator[CountingClient]:
    client = CountingClient()
    yield client
    await client.http.aclose()


@pytest.fixture
def verifier(oidc_provider: OidcProvider, counting: CountingClient) -> OidcVerifier:
    return OidcVerifier(settings_for(oidc_provider.issuer), counting.http)


def person_token(provider: OidcProvider, **overrides: str) -> str:
    params = {
        "person": "wang.li",
        "audience": AUDIENCE,
        "display": "王力",
        "unit": "xj.aksu.kuqa",
        "group": "handler",
        "group2": "fq-staff",
    }
    return provider.token(**{**params, **overrides})


def forged(issuer: str, kid: str, **overrides: Any) -> str:
    """A token like the provider's, signed with a key of our own."""
    now = int(time.time())
    claims = {"iss": issuer, "sub": "mallory", "aud": [AUDIENCE], "iat": now, "exp": now + 300}
    claims |= {"unit": "xj", "groups": ["ops", "dispatcher"], **overrides}
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_a_token_of_the_provider_is_the_person_of_its_unit_with_its_roles(
    oidc_provider: OidcProvider, verifier: OidcVerifier
) -> None:
    identity = await verifier.identity(person_token(oidc_provider))
    assert identity == Identity(
        person="oidc:test:wang.li",
        name="王力",
        unit_id="xj.aksu.kuqa",
        roles=frozenset({Role.HANDLER}),  # fq-staff is no role of ours
        via="oidc",
    )


async def test_the_settings_map_group_and_unit_names(
    oidc_provider: OidcProvider, counting: CountingClient
) -> None:
    settings = settings_for(
        oidc_provider.issuer,
        role_map={"fq-dispatch": "dispatcher", "fq-review": "reviewer"},
        unit_map={"AKSU-01": "xj.aksu"},
    )
    verifier = OidcVerifier(settings, counting.http)
    token = person_token(oidc_provider, unit="AKSU-01", group="fq-dispatch", group2="fq-review")
    identity = await verifier.identity(token)
    assert identity.unit_id == "xj.aksu"
    assert identity.roles == {Role.DISPATCHER, Role.REVIEWER}
    # "handler" is not in this deployment's map: no role; a unit the map lacks: refused.
    identity = await verifier.identity(person_token(oidc_provider, unit="AKSU-01"))
    assert identity.roles == frozenset()
    with pytest.raises(Unauthenticated, match="not one FENGQIAO_OIDC_UNIT_MAP maps"):
        await verifier.identity(person_token(oidc_provider, unit="KASHI-07"))


async def test_the_public_function_reads_the_environment(
    oidc_provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FENGQIAO_OIDC_ISSUER", oidc_provider.issuer)
    monkeypatch.setenv("FENGQIAO_OIDC_ISSUER_ALIAS", "xjsso")
    monkeypatch.setenv("FENGQIAO_OIDC_ROLE_MAP", '{"fq-ops": "ops"}')
    use_verifier(None)
    try:
        identity = await identity_from_bearer(person_token(oidc_provider, group="fq-ops"))
    finally:
        from fengqiao.auth.oidc import default_verifier

        await default_verifier().aclose()
        use_verifier(None)
    assert identity.person == "oidc:xjsso:wang.li"
    assert identity.roles == {Role.OPS}


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"audience": "another-service"}, "not meant for this service"),
        ({"scenario": "expired"}, "has expired"),
        ({"scenario": "not_yet"}, "not valid yet"),
        ({"scenario": "foreign_issuer"}, "another issuer"),
        ({"unit": ""}, "names no unit"),
    ],
)
async def test_a_token_that_does_not_hold_is_refused(
    oidc_provider: OidcProvider,
    verifier: OidcVerifier,
    params: dict[str, str],
    reason: str,
) -> None:
    token = (
        oidc_provider.token(**params)
        if "scenario" in params
        else person_token(oidc_provider, **params)
    )
    with pytest.raises(Unauthenticated, match=reason):
        await verifier.identity(token)


async def test_a_token_signed_with_another_key_is_refused(
    oidc_provider: OidcProvider, verifier: OidcVerifier, counting: CountingClient
) -> None:
    await verifier.identity(person_token(oidc_provider))  # the keys are cached
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        await verifier.identity(forged(oidc_provider.issuer, ISSUER_ID))
    with pytest.raises(Unauthenticated, match="does not list"):
        await verifier.identity(forged(oidc_provider.issuer, "a-key-never-published"))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("garbage", "not a well-formed JWT"),
        ("", "not a well-formed JWT"),
        ("a.b.c", "not a well-formed JWT"),
        (b64({"alg": "none", "kid": ISSUER_ID}) + "." + b64({"sub": "x"}) + ".", "'none'"),
        (b64({"alg": "RS256"}) + "." + b64({"sub": "x"}) + ".c2ln", "no key id"),
        (b64({"alg": "RS256", "kid": ISSUER_ID}) + ".bm90IGpzb24.c2ln", "does not verify"),
        ("W10.W10.c2ln", "not a well-formed JWT"),  # the header is a JSON list
        (b64({"alg": ["RS256"], "kid": ISSUER_ID}) + ".e30.c2ln", "not accepted"),
        (b64({"alg": "RS256", "kid": 7}) + ".e30.c2ln", "not a well-formed JWT"),
        # ES256 with the IdP's RSA key
        (b64({"alg": "ES256", "kid": ISSUER_ID}) + ".e30.c2ln", f"key '{ISSUER_ID}'"),
        ("." * 5000, "not a well-formed JWT"),
    ],
)
async def test_garbage_and_unsigned_tokens_are_refused(
    verifier: OidcVerifier, token: str, reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        await verifier.identity(token)


async def test_an_hmac_token_keyed_with_the_public_key_is_refused(
    oidc_provider: OidcProvider, verifier: OidcVerifier
) -> None:
    # The classic confusion: HS256 with the IdP's RSA public key (PEM) as the shared secret.
    # PyJWT will not sign that, so the attacker's token is put together by hand.
    jwks = (await verifier.http.get(f"{oidc_provider.issuer}/jwks")).json()
    public = jwt.PyJWK(jwks["keys"][0]).key
    secret = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    claims = {"iss": oidc_provider.issuer, "sub": "m", "aud": AUDIENCE, "iat": now}
    signing_input = (
        b64({"alg": "HS256", "kid": ISSUER_ID})
        + "."
        + b64({**claims, "exp": now + 60, "unit": "xj", "groups": ["ops"]})
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="'HS256' is not accepted"):
        await verifier.identity(token)


async def test_the_keys_are_fetched_once_for_many_tokens(
    oidc_provider: OidcProvider, verifier: OidcVerifier, counting: CountingClient
) -> None:
    tokens = [person_token(oidc_provider, person=f"p{n}") for n in range(5)]
    for _ in range(4):
        for token in tokens:
            await verifier.identity(token)
    assert counting.count("/jwks") == 1
    assert counting.count("/.well-known/openid-configuration") == 1
    assert verifier.keys.fetches == 1


async def test_concurrent_first_requests_share_one_fetch(
    oidc_provider: OidcProvider, verifier: OidcVerifier, counting: CountingClient
) -> None:
    tokens = [person_token(oidc_provider, person=f"c{n}") for n in range(20)]
    identities = await asyncio.gather(*(verifier.identity(token) for token in tokens))
    assert [i.person for i in identities] == [f"oidc:test:c{n}" for n in range(20)]
    assert counting.count("/jwks") == 1
    assert counting.count("/.well-known/openid-configuration") == 1


async def test_unknown_key_ids_refetch_at_most_once_per_interval(
    oidc_provider: OidcProvider, counting: CountingClient
) -> None:
    now = [1000.0]
    settings = settings_for(oidc_provider.issuer, jwks_min_refetch_seconds=30)
    verifier = OidcVerifier(settings, counting.http, clock=lambda: now[0])
    await verifier.identity(person_token(oidc_provider))
    for n in range(10):
        with pytest.raises(Unauthenticated, match="does not list"):
            await verifier.identity(forged(oidc_provider.issuer, f"forged-{n}"))
    assert counting.count("/jwks") == 1
    now[0] += 31
    with pytest.raises(Unauthenticated, match="does not list"):
        await verifier.identity(forged(oidc_provider.issuer, "forged-later"))
    assert counting.count("/jwks") == 2


async def test_a_forged_signature_is_refused_also_when_the_keys_may_be_refetched(
    oidc_provider: OidcProvider, counting: CountingClient
) -> None:
    now = [1000.0]
    settings = settings_for(oidc_provider.issuer, jwks_min_refetch_seconds=30)
    verifier = OidcVerifier(settings, counting.http, clock=lambda: now[0])
    await verifier.identity(person_token(oidc_provider))
    now[0] += 31  # the failed signature refetches the keys; the fresh key fails it too
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        await verifier.identity(forged(oidc_provider.issuer, ISSUER_ID))
    assert counting.count("/jwks") == 2


@pytest.fixture
def own_provider() -> Iterator[OidcProvider]:
    provider = OidcProvider(StackSettings().cache_dir, free_port())
    try:
        yield provider
    finally:
        provider.stop()


async def test_a_rotated_key_is_picked_up(
    own_provider: OidcProvider, counting: CountingClient
) -> None:
    own_provider.start(provider_config(new_signing_jwk()))
    now = [1000.0]
    settings = settings_for(own_provider.issuer, jwks_min_refetch_seconds=30)
    verifier = OidcVerifier(settings, counting.http, clock=lambda: now[0])
    old = person_token(own_provider)
    await verifier.identity(old)
    own_provider.restart(provider_config(new_signing_jwk()))  # same issuer, a new key
    new = person_token(own_provider, person="after")
    now[0] += 31  # past the refetch interval (within it, the held key is all we try)
    identity = await verifier.identity(new)
    assert identity.person == "oidc:test:after"
    assert counting.count("/jwks") == 2
    # The IdP no longer lists the old key: tokens signed with it are refused.
    with pytest.raises(Unauthenticated, match="signature does not verify"):
        await verifier.identity(old)


async def test_an_unreachable_or_unconfigured_idp_is_a_refusal_not_an_error(
    counting: CountingClient,
) -> None:
    nowhere = OidcVerifier(settings_for(f"http://127.0.0.1:{free_port()}/x"), counting.http)
    with pytest.raises(Unauthenticated, match="could not be read"):
        await nowhere.identity(forged("http://127.0.0.1/x", "k"))
    off = OidcVerifier(OidcSettings(issuer=""), counting.http)
    with pytest.raises(Unauthenticated, match="not configured"):
        await off.identity(forged("http://127.0.0.1/x", "k"))


async def test_a_discovery_document_of_another_issuer_is_refused(
    oidc_provider: OidcProvider, counting: CountingClient
) -> None:
    # Configured with a trailing slash: the IdP's document names the issuer without one.
    verifier = OidcVerifier(settings_for(oidc_provider.issuer + "/"), counting.http)
    with pytest.raises(Unauthenticated, match="discovery document names issuer"):
        await verifier.identity(person_token(oidc_provider))
