"""Who is calling, and what they may do: people, not tokens (issue 19).

`identity.Identity` is what every authenticated route receives: one person, their unit, their
roles, and how they proved it. The ways in (local accounts and sessions, per-person API tokens,
OIDC bearer JWTs) each turn credentials into an `Identity`; the policy decides what it may do.
"""

from fengqiao.auth.identity import Identity, Role, Unauthenticated

__all__ = ["Identity", "Role", "Unauthenticated"]
