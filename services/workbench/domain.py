"""What the workbench decides without I/O: the inbox's order, filters and pages, the clocks'
remaining time, the CSRF token of a session, and the login attempts' limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

PAGE_SIZE = 20
LOCAL = ZoneInfo("Asia/Shanghai")  # the offices' clock
URGENT = frozenset({"urgent", "possibly_urgent"})
# What the inbox shows by default: the cases still to be worked (`state=all`: every case).
DONE_STATES = frozenset({"resolved", "callback_pending", "closed", "merged"})
STATES = ("dispatched", "accepted", "in_progress", "extended", "returned", "coordinating",
          "reopened", "received", "acknowledged", *sorted(DONE_STATES), "all")  # fmt: skip


def parse_at(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def remaining(due: str | None, now: dt.datetime) -> tuple[float, bool] | None:
    """Hours left until `due` (negative: past it) and whether it is past; None without one."""
    at = parse_at(due)
    if at is None:
        return None
    hours = (at - now).total_seconds() / 3600
    return hours, hours < 0


def duration(hours: float, lang: str) -> str:
    """A length of time as people say it: '3 天 4 小时' / '3 d 4 h', under a day with its
    minutes: '2 小时 5 分' / '2 h 5 min' (negative hours count as none)."""
    hours = max(hours, 0.0)
    days, rest = divmod(int(hours), 24)
    minutes = int((hours % 1) * 60)
    if lang == "en":
        return f"{days} d {rest} h" if days else f"{rest} h {minutes} min"
    return f"{days} 天 {rest} 小时" if days else f"{rest} 小时 {minutes} 分"


def describe_hours(hours: float, lang: str) -> str:
    """'还剩 3 小时 0 分' / '超期 2 天 4 小时', or in English."""
    text = duration(abs(hours), lang)
    if lang == "en":
        return f"{text} overdue" if hours < 0 else f"{text} left"
    return f"超期 {text}" if hours < 0 else f"还剩 {text}"


def describe_working_hours(hours: float, lang: str) -> str:
    """'还剩 12.5 个工作小时' / '超期 3 个工作小时': office hours on working days."""
    left = f"{abs(hours):.1f}".removesuffix(".0")
    if lang == "en":
        return f"{left} working hours {'overdue' if hours < 0 else 'left'}"
    return f"超期 {left} 个工作小时" if hours < 0 else f"还剩 {left} 个工作小时"


def inbox_order(case: dict[str, Any], now: dt.datetime) -> tuple[int, int, float]:
    """Overdue first, then urgent, then the nearest deadline (none, or done: last)."""
    left = None if case.get("state") in DONE_STATES else remaining(case.get("deadline"), now)
    overdue = bool(case.get("overdue")) or (left is not None and left[1])
    urgent = case.get("urgency") in URGENT
    return (0 if overdue else 1, 0 if urgent else 1, left[0] if left else math.inf)


def local_day(value: str | None) -> dt.date | None:
    """A day as a date input sends it (YYYY-MM-DD); None when empty or not a day."""
    try:
        return dt.date.fromisoformat((value or "").strip()[:10]) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Filters:
    state: str | None = None
    category: str | None = None
    urgency: str | None = None
    page: int = 1
    since: dt.date | None = None  # received on or after this day (Beijing time)
    until: dt.date | None = None  # received on or before this day

    @classmethod
    def of(cls, query: dict[str, str]) -> Filters:
        def pick(name: str) -> str | None:
            value = (query.get(name) or "").strip()
            return value[:64] or None

        try:
            page = max(1, min(int(query.get("page") or 1), 10_000))
        except ValueError:
            page = 1
        since, until = local_day(query.get("since")), local_day(query.get("until"))
        return cls(pick("state"), pick("category"), pick("urgency"), page, since, until)

    @property
    def asked_state(self) -> str | None:
        """The state to ask the API for (None: any)."""
        return None if self.state in (None, "all") else self.state

    def keeps(self, case: dict[str, Any]) -> bool:
        if self.state is None and case.get("state") in DONE_STATES:
            return False
        if (self.since or self.until) and not self._received_within(case):
            return False
        return all(
            wanted is None or case.get(name) == wanted
            for name, wanted in (("category", self.category), ("urgency", self.urgency))
        )

    def _received_within(self, case: dict[str, Any]) -> bool:
        at = parse_at(case.get("received_at"))
        if at is None:
            return False
        day = at.astimezone(LOCAL).date()
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )


@dataclass(frozen=True)
class Page:
    cases: list[dict[str, Any]]
    number: int
    pages: int
    total: int


def inbox(cases: Iterable[dict[str, Any]], filters: Filters, now: dt.datetime) -> Page:
    """The cases the filters keep, in inbox order, on the filters' page."""
    kept = sorted((c for c in cases if filters.keeps(c)), key=lambda c: inbox_order(c, now))
    pages = max(1, math.ceil(len(kept) / PAGE_SIZE))
    number = min(filters.page, pages)
    start = (number - 1) * PAGE_SIZE
    return Page(kept[start : start + PAGE_SIZE], number, pages, len(kept))


def csrf_token(key: bytes, session: str) -> str:
    """The CSRF token of a session: an HMAC of the session cookie under the workbench's key."""
    return hmac.new(key, b"csrf:" + session.encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, session: str, given: str) -> bool:
    return hmac.compare_digest(csrf_token(key, session).encode(), given.encode())


@dataclass
class LoginLimiter:
    """Failed logins per username and per client address in a sliding window: past `per_user`
    (or `per_address`) failures in `window` seconds, further attempts wait (429)."""

    per_user: int = 5
    per_address: int = 20
    window: float = 300.0
    clock: Callable[[], float] = field(default=lambda: 0.0)
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def retry_after(self, username: str, address: str) -> int:
        """Seconds to wait before trying again, 0 when an attempt may be made now."""
        waits = [
            self._wait(f"user:{username}", self.per_user),
            self._wait(f"addr:{address}", self.per_address),
        ]
        return max(waits)

    def failed(self, username: str, address: str) -> None:
        now = self.clock()
        for key in (f"user:{username}", f"addr:{address}"):
            self.failures.setdefault(key, deque()).append(now)
        if len(self.failures) > 100_000:  # a flood of names: forget the oldest half
            for key in list(self.failures)[: len(self.failures) // 2]:
                del self.failures[key]

    def succeeded(self, username: str) -> None:
        self.failures.pop(f"user:{username}", None)

    def _wait(self, key: str, limit: int) -> int:
        now = self.clock()
        seen = self.failures.get(key)
        if not seen:
            return 0
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) < limit:
            return 0
        return max(1, math.ceil(seen[0] + self.window - now))
