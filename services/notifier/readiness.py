"""The access tokens of the matrix accounts, and the notifier's readiness check over them.

The notifier knows an account when its settings name it (`FENGQIAO_NOTIFIER_ACCOUNTS`, or a key of
`FENGQIAO_NOTIFIER_ACCESS_TOKENS`) or when a reply asked for it. `/readyz` is 503, naming them,
while a known account has no token (none of its own, and no default), or while no token is
configured at all: the replies of such an account fail as not sendable (counted, alerted,
dead-lettered; `fengqiao ops replies retry` sends them once a token is set and the notifier
restarted)."""

from __future__ import annotations

from fengqiao.services.notifier.settings import NotifierSettings

SETTING = "FENGQIAO_NOTIFIER_ACCESS_TOKENS"


class Tokens:
    """`tokens(account)`: the account's token, or None (and the account is remembered)."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.known: set[str] = set(settings.accounts) | set(settings.access_tokens)
        self.missing: set[str] = set()

    def __call__(self, account: str) -> str | None:
        self.known.add(account)
        token = self.settings.token_for(account)
        if token is None:
            self.missing.add(account)
        return token

    def without_token(self) -> list[str]:
        """The known accounts that have no token, in order."""
        known = self.known | self.missing
        return sorted(a for a in known if self.settings.token_for(a) is None)

    async def readiness(self) -> str:
        """ "ok", or which accounts cannot be replied for and the setting that fixes it."""
        missing = self.without_token()
        if missing:
            return f"no access token for {', '.join(missing)}: set {SETTING}"
        if not self.settings.access_tokens and self.settings.default_access_token is None:
            return f"no access token configured: set {SETTING}"
        return "ok"
