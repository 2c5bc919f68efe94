"""OIDC settings and the claims → Identity mapping, without a provider (issue 19, deliver 1);
tests/integration/test_oidc_*.py check the same against a real one."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fengqiao.auth import Role, Unauthenticated
from fengqiao.auth.oidc import claim_at, identity_from_claims
from fengqiao.auth.oidc_login import code_challenge, new_code_verifier
from fengqiao.auth.settings import OidcSettings

KEYCLOAK_LIKE: dict[str, Any] = {
    "sub": "8f2c-77",
    "preferred_username": "li.na",
    "realm_access": {"roles": ["fq-review", "offline_access"]},
    "https://fengqiao.example/unit": "aksu",
}


def test_pkce_s256_is_the_rfc_7636_example() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    fresh = new_code_verifier()
    assert 43 <= len(fresh) <= 128 and fresh != new_code_verifier()


@pytest.mark.parametrize("algorithms", [["none"], ["HS256"], ["RS256", "HS512"], []])
def test_only_asymmetric_algorithms_can_be_configured(algorithms: list[str]) -> None:
    with pytest.raises(ValidationError, match="algorithm"):
        OidcSettings(issuer="https://sso.example", algorithms=algorithms)


@pytest.mark.parametrize(
    "issuer", ["http://sso.example/realms/p", "sso.example", "ftp://sso.example", "https://"]
)
def test_the_issuer_is_https_unless_on_loopback(issuer: str) -> None:
    with pytest.raises(ValidationError, match="https URL"):
        OidcSettings(issuer=issuer)
    assert OidcSettings(issuer="http://127.0.0.1:8080/default").enabled
    assert OidcSettings(issuer="http://[::1]:8080/default").enabled
    assert not OidcSettings(issuer="").enabled


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FENGQIAO_OIDC_ISSUER", "https://sso.example/realms/p")
    monkeypatch.setenv("FENGQIAO_OIDC_ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("FENGQIAO_OIDC_ROLE_MAP", '{"fq-review": "reviewer"}')
    monkeypatch.setenv("FENGQIAO_OIDC_UNIT_MAP", '{"aksu": "xj.aksu"}')
    settings = OidcSettings()
    assert settings.enabled
    assert settings.discovery_url == "https://sso.example/realms/p/.well-known/openid-configuration"
    assert settings.role_map == {"fq-review": Role.REVIEWER}
    monkeypatch.setenv("FENGQIAO_OIDC_ROLE_MAP", '{"fq-review": "superuser"}')
    with pytest.raises(ValidationError):
        OidcSettings()


def test_claims_are_found_by_dotted_path_or_by_their_own_dotted_name() -> None:
    assert claim_at(KEYCLOAK_LIKE, "realm_access.roles") == ["fq-review", "offline_access"]
    assert claim_at(KEYCLOAK_LIKE, "https://fengqiao.example/unit") == "aksu"
    assert claim_at(KEYCLOAK_LIKE, "realm_access.missing") is None
    assert claim_at(KEYCLOAK_LIKE, "sub.deeper") is None


def test_a_keycloak_shaped_token_maps_to_an_identity() -> None:
    settings = OidcSettings(
        issuer="https://sso.example",
        issuer_alias="xjsso",
        roles_claim="realm_access.roles",
        role_map={"fq-review": Role.REVIEWER},
        unit_claim="https://fengqiao.example/unit",
        unit_map={"aksu": "xj.aksu"},
    )
    identity = identity_from_claims(KEYCLOAK_LIKE, settings)
    assert identity.person == "oidc:xjsso:8f2c-77"
    assert identity.name == "li.na"  # no `name`: the next of name_claims
    assert identity.unit_id == "xj.aksu"
    assert identity.roles == {Role.REVIEWER}
    assert identity.via == "oidc"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"unit": "xj"}, "no subject"),
        ({"sub": "", "unit": "xj"}, "no subject"),
        ({"sub": "a"}, "names no unit"),
        ({"sub": "a", "unit": ["xj"]}, "names no unit"),
    ],
)
def test_claims_without_subject_or_unit_are_refused(claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        identity_from_claims(claims, OidcSettings(issuer="https://sso.example"))


def test_a_single_group_string_and_unknown_names_map_sensibly() -> None:
    settings = OidcSettings(issuer="https://sso.example")
    identity = identity_from_claims({"sub": "a", "unit": "xj", "groups": "ops"}, settings)
    assert identity.roles == {Role.OPS} and identity.name == "a"
    identity = identity_from_claims({"sub": "a", "unit": "xj", "groups": ["root", 7]}, settings)
    assert identity.roles == frozenset()
