"""The workbench's pages in its header, each shown to the roles its API lets in (the services
check again: a link hidden here is a convenience, not the check)."""

from __future__ import annotations

from dataclasses import dataclass

from fengqiao.auth import Identity
from fengqiao.auth.policy import (
    CASE_READERS,
    FIGURES,
    OPERATORS,
    REPLY_READERS,
    TRIAGE_READERS,
    Rule,
)


@dataclass(frozen=True)
class Link:
    path: str
    label: str  # a key of labels.LABELS
    rule: Rule


# One line per page; a page module adds its own (in the order of the header).
NAV: list[Link] = [
    Link("/", "inbox", CASE_READERS),
    Link("/triage", "triage", TRIAGE_READERS),
    Link("/replies", "review", REPLY_READERS),
    Link("/supervise", "supervise", FIGURES),
    Link("/stats", "stats", FIGURES),
    Link("/ops", "ops", OPERATORS),
]


def links_for(who: Identity | None) -> list[Link]:
    return [link for link in NAV if who is not None and link.rule.allows(who)]
