"""The identity of a caller: a person of a unit, with roles (issue 19, deliver 1).

Every way in (a local account's session or API token, an OIDC bearer JWT) yields the same
`Identity`; nothing downstream knows which one it was except through `via`, which the audit
trail records. `person` is namespaced by the way in (`local:wang.li`, `oidc:<issuer
alias>:<sub>`), so a local account and an SSO subject of the same name never meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    HANDLER = "handler"  # works the unit's cases
    UNIT_LEAD = "unit_lead"  # also approves extensions and rules on returns in the subtree
    DISPATCHER = "dispatcher"  # the triage queue, reassign and merge within the subtree
    REVIEWER = "reviewer"  # held public replies
    OPS = "ops"  # dead letters, metrics, topics
    AUDITOR = "auditor"  # reads, never changes


Via = Literal["session", "token", "oidc"]


class Unauthenticated(Exception):
    """Credentials were given but do not hold (expired, revoked, forged, unknown): 401."""


@dataclass(frozen=True)
class Identity:
    person: str  # namespaced, stable: what the audit trail names
    name: str  # for people to read (a display name)
    unit_id: str  # the unit the person belongs to (a directory unit id)
    roles: frozenset[Role]
    via: Via

    def has(self, *roles: Role) -> bool:
        """True when the person holds any of `roles`."""
        return not self.roles.isdisjoint(roles)
