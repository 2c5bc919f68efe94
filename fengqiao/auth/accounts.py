"""Local accounts: the embedded way in when no SSO is plugged in (issue 19, deliver 1).

A person has a username, a display name, a unit, roles, an argon2id-hashed password and a
disabled flag (`fengqiao users add|disable|enable|reset|list`). They get in two ways:

- **API tokens** (`fengqiao users token <username>`): random, shown once, stored only as their
  SHA-256, expiring, revocable (`fengqiao users revoke <token id>`). Each call checks the token;
  a process remembers a check for at most `cache_seconds` (5 s by default), so a revocation or
  a disabled person bites within that, everywhere.
- **Sessions** (the workbench): `login` checks the password and creates one, looked up by the
  SHA-256 of its cookie; it expires, and `logout` deletes it.

Both yield the same `Identity` (`person` = `local:<username>`). Credentials that do not hold
raise `Unauthenticated` (401); a store that does not answer raises its error (503).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import secrets
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.auth.identity import Identity, Role, Unauthenticated, Via
from fengqiao.auth.store import DEFAULT_DATABASE, PEOPLE, SESSIONS, TOKENS, AuthStore, Doc

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
TOKEN_PREFIX = "fq_"  # what tells a local API token from anything else (an OIDC JWT)
MIN_PASSWORD = 10
PASSWORDS = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's low-memory choice)
# Checked when the username is unknown, so that a guess takes as long either way.
_DUMMY_HASH = PASSWORDS.hash("not a password of anyone")


class AccountSettings(BaseSettings):
    """Where accounts live and how long credentials last (env prefix `FENGQIAO_AUTH_`)."""

    model_config = SettingsConfigDict(env_prefix="FENGQIAO_AUTH_", extra="ignore")

    database: str = Field(default=DEFAULT_DATABASE, description="The shared auth database.")
    token_days: int = Field(default=90, ge=1, le=730, description="An API token's default life.")
    session_hours: float = Field(default=12, gt=0, le=24 * 7, description="A session's life.")
    cache_seconds: float = Field(
        default=5, ge=0, le=10, description="How long a process trusts a checked credential."
    )


class AccountError(ValueError):
    """A request an admin made that cannot be carried out (exists, unknown, invalid)."""


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str  # shown once; only its hash is kept
    person: str
    expires_at: dt.datetime


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def identity_of(person: Doc, via: Via) -> Identity:
    return Identity(
        person=f"local:{person['_id']}",
        name=person.get("name") or person["_id"],
        unit_id=person["unit_id"],
        roles=frozenset(Role(r) for r in person.get("roles", ())),
        via=via,
    )


def parse_roles(roles: Iterable[str]) -> list[str]:
    try:
        parsed = sorted({Role(r.strip()).value for r in roles if r.strip()})
    except ValueError as exc:
        raise AccountError(f"{exc}; roles are {', '.join(r.value for r in Role)}") from exc
    if not parsed:
        raise AccountError("a person needs at least one role")
    return parsed


class Accounts:
    """People, their API tokens and sessions, over an `AuthStore`."""

    def __init__(
        self,
        store: AuthStore,
        settings: AccountSettings | None = None,
        *,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        self.store, self.settings, self.clock = store, settings or AccountSettings(), clock
        self._checked: dict[str, tuple[float, Identity]] = {}  # credential hash → (until, who)

    # ------------------------------------------------------------------ people (admins)

    async def add(
        self,
        username: str,
        *,
        name: str,
        unit_id: str,
        roles: Iterable[str],
        password: str,
        units: Container[str] | None = None,
    ) -> Doc:
        if not USERNAME.match(username):
            raise AccountError(f"username {username!r}: lowercase letters, digits, . _ - only")
        if units is not None and unit_id not in units:
            raise AccountError(f"unknown unit {unit_id!r} (not in the directory)")
        doc: Doc = {
            "_id": username,
            "name": name.strip() or username,
            "unit_id": unit_id,
            "roles": parse_roles(roles),
            "password": await _hash(password),
            "disabled": False,
            "created_at": self.clock(),
        }
        if not await self.store.insert(PEOPLE, doc):
            raise AccountError(f"{username!r} exists already")
        return _public(doc)

    async def ensure(
        self, username: str, *, name: str, unit_id: str, roles: Iterable[str], password: str
    ) -> Doc:
        """The person as given, added or brought to it (demo and test fixtures)."""
        try:
            return await self.add(
                username, name=name, unit_id=unit_id, roles=roles, password=password
            )
        except AccountError:
            if await self.store.get(PEOPLE, username) is None:
                raise
        fields = {"name": name, "unit_id": unit_id, "roles": parse_roles(roles),
                  "password": await _hash(password), "disabled": False}  # fmt: skip
        await self.store.update(PEOPLE, username, fields)
        self._checked.clear()
        return _public({"_id": username, **fields})

    async def set_disabled(self, username: str, disabled: bool) -> None:
        if not await self.store.update(PEOPLE, username, {"disabled": disabled}):
            raise AccountError(f"no person {username!r}")
        self._checked.clear()

    async def reset(self, username: str, password: str) -> None:
        hashed = await _hash(password)
        if not await self.store.update(PEOPLE, username, {"password": hashed}):
            raise AccountError(f"no person {username!r}")
        # A new password ends the person's sessions (whoever knew the old one is out).
        for session in await self.store.find(SESSIONS, {"person": username}):
            await self.store.delete(SESSIONS, session["_id"])
        self._checked.clear()

    async def people(self) -> list[Doc]:
        return [_public(doc) for doc in await self.store.find(PEOPLE, {})]

    # ------------------------------------------------------------------ API tokens

    async def issue_token(
        self, username: str, *, days: float | None = None, label: str = ""
    ) -> IssuedToken:
        person = await self.store.get(PEOPLE, username)
        if person is None:
            raise AccountError(f"no person {username!r}")
        if person.get("disabled"):
            raise AccountError(f"{username!r} is disabled")
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        expires = self.clock() + dt.timedelta(days=days or self.settings.token_days)
        doc = {"_id": digest(token), "token_id": token_id, "person": username,
               "label": label, "created_at": self.clock(), "expires_at": expires,
               "revoked_at": None}  # fmt: skip
        if not await self.store.insert(TOKENS, doc):  # pragma: no cover - 256 random bits
            raise AccountError("token collision; try again")
        return IssuedToken(token_id, token, username, expires)

    async def revoke(self, token_id: str) -> bool:
        found = await self.store.find(TOKENS, {"token_id": token_id})
        for doc in found:
            await self.store.update(TOKENS, doc["_id"], {"revoked_at": self.clock()})
            self._checked.pop(doc["_id"], None)
        return bool(found)

    async def tokens(self, username: str | None = None) -> list[Doc]:
        where = {} if username is None else {"person": username}
        return [
            {k: v for k, v in doc.items() if k != "_id"}
            for doc in await self.store.find(TOKENS, where)
        ]

    async def verify_token(self, token: str) -> Identity:
        """The person an API token names, or Unauthenticated (unknown, expired, revoked, or a
        disabled person)."""
        key = digest(token)
        cached = self._cached(key)
        if cached is not None:
            return cached
        doc = await self.store.get(TOKENS, key)
        if doc is None or doc.get("revoked_at") is not None:
            raise Unauthenticated("unknown or revoked token")
        expires = _aware(doc["expires_at"])
        if expires <= self.clock():
            raise Unauthenticated("expired token")
        identity = await self._person(doc["person"], "token")
        return self._remember(key, identity, expires)

    # ------------------------------------------------------------------ sessions

    async def login(self, username: str, password: str) -> tuple[str, Identity]:
        """A new session's cookie value and who it is; Unauthenticated when the password, the
        person or their state does not allow it (one message for all: no probing)."""
        person = await self.store.get(PEOPLE, username)
        stored = person["password"] if person else _DUMMY_HASH
        if not await _verify(stored, password) or person is None or person.get("disabled"):
            raise Unauthenticated("wrong username or password")
        cookie = secrets.token_urlsafe(32)
        expires = self.clock() + dt.timedelta(hours=self.settings.session_hours)
        doc = {"_id": digest(cookie), "person": username, "created_at": self.clock(),
               "expires_at": expires}  # fmt: skip
        if not await self.store.insert(SESSIONS, doc):  # pragma: no cover - 256 random bits
            raise Unauthenticated("session collision; log in again")
        return cookie, identity_of(person, "session")

    async def open_session(self, identity: Identity) -> str:
        """A session for a person signed in elsewhere (the workbench's OIDC login): the
        identity the IdP vouched for is kept with the session, which the services then accept
        like a local one until it expires or its person logs out. (A local account is looked
        up again at each check, so disabling it ends its sessions; for an IdP's person that is
        the IdP's business, at their next login.)"""
        cookie = secrets.token_urlsafe(32)
        expires = self.clock() + dt.timedelta(hours=self.settings.session_hours)
        kept = {"person": identity.person, "name": identity.name, "unit_id": identity.unit_id,
                "roles": sorted(r.value for r in identity.roles), "via": identity.via}  # fmt: skip
        doc = {"_id": digest(cookie), "person": identity.person, "identity": kept,
               "created_at": self.clock(), "expires_at": expires}  # fmt: skip
        if not await self.store.insert(SESSIONS, doc):  # pragma: no cover - 256 random bits
            raise Unauthenticated("session collision; log in again")
        return cookie

    async def session(self, cookie: str) -> Identity:
        key = digest(cookie)
        cached = self._cached(key)
        if cached is not None:
            return cached
        doc = await self.store.get(SESSIONS, key)
        if doc is None:
            raise Unauthenticated("no such session (logged out?)")
        expires = _aware(doc["expires_at"])
        if expires <= self.clock():
            await self.store.delete(SESSIONS, key)
            raise Unauthenticated("session expired")
        kept = doc.get("identity")
        identity = (
            _kept_identity(kept)
            if isinstance(kept, dict)
            else await self._person(doc["person"], "session")
        )
        return self._remember(key, identity, expires)

    async def logout(self, cookie: str) -> None:
        key = digest(cookie)
        self._checked.pop(key, None)
        await self.store.delete(SESSIONS, key)

    # ------------------------------------------------------------------ internals

    async def _person(self, username: str, via: Via) -> Identity:
        person = await self.store.get(PEOPLE, username)
        if person is None or person.get("disabled"):
            raise Unauthenticated(f"person {username!r} is disabled or gone")
        return identity_of(person, via)

    def _cached(self, key: str) -> Identity | None:
        hit = self._checked.get(key)
        if hit is None:
            return None
        if hit[0] <= time.monotonic():
            del self._checked[key]
            return None
        return hit[1]

    def _remember(self, key: str, identity: Identity, expires: dt.datetime) -> Identity:
        left = (expires - self.clock()).total_seconds()
        ttl = min(self.settings.cache_seconds, left)
        if ttl > 0:
            if len(self._checked) > 10_000:
                self._checked.clear()
            self._checked[key] = (time.monotonic() + ttl, identity)
        return identity


def _kept_identity(kept: Doc) -> Identity:
    try:
        roles = frozenset(Role(r) for r in kept["roles"])
        return Identity(str(kept["person"]), str(kept["name"]), str(kept["unit_id"]), roles,
                        "oidc")  # fmt: skip
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("a session whose identity cannot be read; log in again") from exc


def _public(doc: Doc) -> Doc:
    shown: dict[str, Any] = {k: v for k, v in doc.items() if k != "password"}
    shown["username"] = shown.pop("_id")
    return shown


async def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    return await asyncio.to_thread(PASSWORDS.hash, password)


async def _verify(hashed: str, password: str) -> bool:
    def check() -> bool:
        try:
            return PASSWORDS.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)
