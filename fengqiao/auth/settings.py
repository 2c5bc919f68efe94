"""Settings of the ways in: OIDC single sign-on (issue 19, deliver 1).

All read from the environment with the prefix `FENGQIAO_OIDC_` (dicts and lists as JSON), e.g.

    FENGQIAO_OIDC_ISSUER=https://sso.example.gov.cn/realms/procuratorate
    FENGQIAO_OIDC_AUDIENCE=fengqiao
    FENGQIAO_OIDC_ROLES_CLAIM=realm_access.roles
    FENGQIAO_OIDC_ROLE_MAP='{"fq-handler": "handler", "fq-dispatch": "dispatcher"}'

OIDC is off while `FENGQIAO_OIDC_ISSUER` is empty: every bearer JWT is then refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.auth.identity import Role

# Asymmetric signatures only: an HMAC key would have to be shared with every verifier (and a
# verifier that accepts HS256 with the public key as secret is forgeable), and "none" is no
# signature at all.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def _default_role_map() -> dict[str, Role]:
    # An IdP group or role named like one of ours ("handler", "ops", ...) means that role.
    return {role.value: role for role in Role}


class OidcSettings(BaseSettings):
    """How bearer JWTs and SSO logins are checked, and how their claims map to an Identity."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_OIDC_", extra="ignore")

    issuer: str = Field(
        default="",
        description="The IdP's issuer URL, exactly as in its tokens' `iss` (discovery is read "
        "from <issuer>/.well-known/openid-configuration). Empty: OIDC is off.",
    )
    issuer_alias: str = Field(
        default="sso",
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$",
        description="A short stable name of the IdP: persons are `oidc:<alias>:<sub>`.",
    )
    audience: str = Field(
        default="fengqiao",
        description="What an API client's access token must name in `aud`.",
    )
    client_id: str = Field(
        default="",
        description="The workbench's client id at the IdP (the browser login; the id_token's aud).",
    )
    client_secret: SecretStr | None = Field(
        default=None, description="The workbench's client secret, for a confidential client."
    )
    redirect_uri: str = Field(default="", description="Where the IdP sends the browser back.")
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile"],
        description="Scopes asked for at login.",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "ES256", "PS256"],
        description="Signature algorithms accepted (asymmetric ones only).",
    )
    leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed on exp, nbf and iat."
    )
    jwks_max_age_seconds: float = Field(
        default=3600.0, gt=0, description="How long fetched signing keys are used before a refetch."
    )
    jwks_min_refetch_seconds: float = Field(
        default=30.0,
        ge=0,
        description="An unknown key id refetches the keys at most this often (forged kids "
        "cannot make us hammer the IdP).",
    )
    http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Per request to the IdP (discovery, keys, token)."
    )
    unit_claim: str = Field(
        default="unit",
        description="The claim naming the person's unit (a dotted path reaches into objects).",
    )
    unit_map: dict[str, str] = Field(
        default_factory=dict,
        description="IdP unit values → directory unit ids; empty: the claim is the unit id. "
        "When set, a unit not in the map is refused.",
    )
    roles_claim: str = Field(
        default="groups",
        description="The claim listing the person's groups or roles; a dotted path reaches "
        "into objects (Keycloak: `realm_access.roles`).",
    )
    role_map: dict[str, Role] = Field(
        default_factory=_default_role_map,
        description="IdP group/role names → our roles; names not in the map are ignored.",
    )
    name_claims: list[str] = Field(
        default_factory=lambda: ["name", "preferred_username"],
        description="Claims tried in turn for the display name (then `sub`).",
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = sorted(set(value) - ASYMMETRIC_ALGORITHMS)
        if refused:
            raise ValueError(
                f"algorithms {refused} are not accepted: only {sorted(ASYMMETRIC_ALGORITHMS)}"
            )
        if not value:
            raise ValueError("at least one signature algorithm must be accepted")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer_url(cls, value: str) -> str:
        if not value:
            return value
        url = urlsplit(value)
        # Keys and tokens travel from the IdP: https, except to a provider on this machine.
        loopback = url.scheme == "http" and url.hostname in _LOOPBACK
        if not (url.scheme == "https" or loopback) or not url.hostname:
            raise ValueError(
                f"the issuer must be an https URL (http only on loopback), not {value!r}"
            )
        return value

    @property
    def enabled(self) -> bool:
        """True when an issuer is configured."""
        return bool(self.issuer)

    @property
    def discovery_url(self) -> str:
        """<issuer>/.well-known/openid-configuration."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"
