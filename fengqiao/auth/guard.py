"""The one FastAPI dependency that turns a request's credentials into an `Identity` and applies
the policy's rule of its route (issue 19, deliver 2).

    guard = Guard("tracker", [LocalTokens(accounts), LocalSessions(accounts)])
    http_app(runtime, ..., guard=guard)              # every route: its rule, checked first
    async def endpoint(..., who: Identity = guard.caller) -> ...

Credentials: `Authorization: Bearer <token>`, or the session cookie (`fengqiao_session`). Each
authenticator in turn is shown them: it answers an `Identity`, None when they are not its kind
(a local token is not a JWT), or raises `Unauthenticated` when they are its kind but do not
hold. More ways in are one more authenticator (`guard.authenticators.append(oidc)`).

- no credentials → 401 with `WWW-Authenticate: Bearer realm="fengqiao"`;
- credentials nobody accepts (unknown, expired, revoked, a disabled person) → 401;
- a role the route's rule does not list → 403; a route the policy does not name → 403;
- the accounts store does not answer → its error, which the services answer 503 with
  Retry-After (never a 500, and never "let in").
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.openapi.utils import get_openapi

from fengqiao.auth import policy
from fengqiao.auth.accounts import TOKEN_PREFIX, Accounts, AccountSettings
from fengqiao.auth.identity import Identity, Unauthenticated
from fengqiao.auth.oidc import OidcVerifier
from fengqiao.auth.settings import OidcSettings
from fengqiao.auth.store import MongoAuthStore
from fengqiao.runtime.service import Runtime
from fengqiao.runtime.store.metrics import store_client

SESSION_COOKIE = "fengqiao_session"
# A change (POST, PUT, ...) authenticated by the session cookie alone must carry this header:
# a page of another site (or of another port of this host, which browsers count as the same
# site, so SameSite does not help) can make a browser send the cookie with a form, never with a
# header of its own (that needs a CORS preflight, which no service answers). The workbench's
# client sends it; the workbench's own forms carry its CSRF token instead (`forms_checked`).
CLIENT_HEADER = "x-fengqiao-client"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = 'Bearer realm="fengqiao"'


@dataclass(frozen=True)
class Credentials:
    bearer: str | None = None
    session: str | None = None

    @classmethod
    def of(cls, request: Request) -> Credentials:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        bearer = value.strip() if scheme.lower() == "bearer" and value.strip() else None
        return cls(bearer=bearer, session=request.cookies.get(SESSION_COOKIE) or None)

    def __bool__(self) -> bool:
        return self.bearer is not None or self.session is not None


class Authenticator(Protocol):
    """Credentials → the Identity they prove, None when not its kind; Unauthenticated."""

    async def __call__(self, credentials: Credentials) -> Identity | None: ...


class LocalTokens:
    """Per-person API tokens of local accounts (`fq_…`)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def __call__(self, credentials: Credentials) -> Identity | None:
        token = credentials.bearer
        if token is None or not token.startswith(TOKEN_PREFIX):
            return None
        return await self.accounts.verify_token(token)


class LocalSessions:
    """The workbench's sessions of local accounts (the session cookie)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def __call__(self, credentials: Credentials) -> Identity | None:
        if credentials.session is None:
            return None
        return await self.accounts.session(credentials.session)


class FixedTokens:
    """Tokens fixed in memory, each naming one identity: for tests and embedded tools only.
    Compared with every token in constant time (no early exit that times a guess)."""

    def __init__(self, tokens: Mapping[str, Identity]) -> None:
        self.known = [(t.encode(), who) for t, who in tokens.items()]

    async def __call__(self, credentials: Credentials) -> Identity | None:
        if credentials.bearer is None:
            return None
        given = credentials.bearer.encode()
        found = [who for token, who in self.known if hmac.compare_digest(given, token)]
        return found[0] if len(found) == 1 else None


class OidcBearer:
    """Bearer JWTs of the deployment's OIDC provider (`fengqiao.auth.oidc`). A local token
    (`fq_…`) or anything that is not a JWT's three parts is not its kind."""

    def __init__(self, verifier: OidcVerifier) -> None:
        self.verifier = verifier

    async def __call__(self, credentials: Credentials) -> Identity | None:
        token = credentials.bearer
        if token is None or token.startswith(TOKEN_PREFIX) or token.count(".") != 2:
            return None
        return await self.verifier.identity(token)


class Unpoliced(RuntimeError):
    """A service has routes the policy does not name."""


class Guard:
    """The policy of one service, applied to each of its requests."""

    def __init__(
        self,
        service: str,
        authenticators: Iterable[Authenticator] = (),
        *,
        forms_checked: bool = False,
    ) -> None:
        self.service = service
        self.forms_checked = forms_checked  # the service checks a CSRF token on every change
        self.authenticators: list[Authenticator] = list(authenticators)
        check = self.check
        self.dependency: Any = Depends(check)  # every route gets it (http_app)

        async def caller(found: Identity | None = Depends(check)) -> Identity:  # noqa: B008
            if found is None:  # a public route asked for a caller: a mistake in the policy
                raise HTTPException(403, "this route is public: it has no caller")
            return found

        self.caller: Any = Depends(caller)  # what an endpoint asks for (one check a request)

    async def authenticate(self, request: Request) -> Identity:
        credentials = Credentials.of(request)
        if not credentials:
            raise HTTPException(401, "authentication required", {"WWW-Authenticate": _CHALLENGE})
        if (
            credentials.bearer is None
            and request.method not in SAFE_METHODS
            and not self.forms_checked
            and CLIENT_HEADER not in request.headers
        ):
            raise HTTPException(
                403,
                f"a change by session cookie needs the {CLIENT_HEADER} header (a cross-site "
                "form cannot send one): use the workbench, or a bearer token",
            )
        for authenticator in self.authenticators:
            try:
                found = await authenticator(credentials)
            except Unauthenticated as exc:
                raise _invalid(str(exc)) from exc
            if found is not None:
                return found
        raise _invalid("unknown credentials")

    async def check(self, request: Request) -> Identity | None:
        """The route's rule: None for a public route, else the caller (401/403 otherwise)."""
        route = request.scope.get("route")
        path = getattr(route, "path", None) or request.url.path
        rule = policy.rule_for(self.service, request.method, path)
        if rule is None:
            raise HTTPException(403, f"{request.method} {path}: no policy names this route")
        if rule.public is not None:
            return None
        identity = await self.authenticate(request)
        # Known even when refused: a refusal's page says who is logged in (and lets them out).
        request.state.identity = identity
        if not rule.allows(identity):
            wanted = ", ".join(sorted(rule.roles))
            raise HTTPException(403, f"{identity.person} lacks a role for this ({wanted})")
        return identity

    def refusals(self, method: str, path: str) -> tuple[int, ...]:
        """What `check` may answer on a route (declared in the app's OpenAPI): nothing on a
        public route, else 401 and 403."""
        rule = policy.rule_for(self.service, method, path)
        return () if rule is not None and rule.public is not None else (401, 403)

    def audit(self, app: FastAPI) -> None:
        """Refuse an app with a route the policy does not name (its OpenAPI, fresh)."""
        missing = policy.unpoliced(self.service, routes_of(app))
        if missing:
            raise Unpoliced(
                f"{self.service}: no policy for {', '.join(missing)} (fengqiao/auth/policy.py)"
            )


def routes_of(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of an app's OpenAPI, computed anew (not the cached document)."""
    document = get_openapi(title=app.title, version=app.version, routes=app.routes)
    return [(m.upper(), p) for p, ops in document.get("paths", {}).items() for m in ops]


def _invalid(why: str) -> HTTPException:
    return HTTPException(
        401,
        f"invalid credentials: {why}",
        {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
    )


def authenticators_for(accounts: Accounts, *more: Authenticator) -> Sequence[Authenticator]:
    """The local ways in, then any more (OIDC)."""
    return [LocalTokens(accounts), LocalSessions(accounts), *more]


def service_guard(runtime: Runtime, *more: Authenticator) -> Guard:
    """A service's guard: local accounts in the shared auth database (on the service's store
    client, or a client of its own), the OIDC provider's JWTs when FENGQIAO_OIDC_ISSUER is set,
    then `more` ways in."""
    oidc = OidcSettings()
    if oidc.enabled:
        verifier = OidcVerifier(oidc)
        runtime.on_stop.append(verifier.aclose)
        more = (OidcBearer(verifier), *more)
    mongo = runtime.mongo
    if mongo is None:
        counted = runtime.registry if runtime.stack.store_metrics else None
        mongo = store_client(runtime.stack.mongo_uri, service=runtime.name, registry=counted)
        runtime.on_stop.append(mongo.close)
    settings = AccountSettings()
    accounts = Accounts(MongoAuthStore(mongo, settings.database), settings)
    return Guard(runtime.name, authenticators_for(accounts, *more))
