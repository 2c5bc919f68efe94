"""Routing: where an appeal's matter is, which unit must act, and the hops down the tiers.

Evidence, strongest first: a place named in the text; the account the post was sent to; the
author's stated residence. No usable evidence → the region unit keeps the case (兜底).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from contracts import (
    AppealNormalized,
    DispatchMode,
    DispatchOrdered,
    Evidence,
    Urgency,
    derived_event_id,
)
from services.router.classify import Classification, Rules
from services.router.directory import Directory
from services.router.places import PlaceIndex, PlaceMention

Policy = Literal["chain", "direct"]

# Words right before a place that make it an origin or a former place, not where the matter is.
_ORIGIN_BEFORE = ("从", "来自", "以前在", "原来在", "老家", "户籍")
_ORIGIN_AFTER = ("来的", "人,", "人，", "籍")
# @-mentions name accounts, not places ("@新疆检察" is not a place where something happened).
_MENTION = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")


@dataclass(frozen=True)
class Jurisdiction:
    unit_id: str
    evidence: tuple[Evidence, ...]
    confidence: float


@dataclass(frozen=True)
class Router:
    """Everything routing needs, loaded once at start."""

    directory: Directory
    places: PlaceIndex
    rules: Rules
    policy: Policy = "chain"
    mode: DispatchMode = DispatchMode.PUBLIC_MENTION

    def locate(self, appeal: AppealNormalized) -> Jurisdiction:
        """The unit whose jurisdiction the matter falls in, with the evidence."""
        evidence: list[Evidence] = []
        text = _MENTION.sub(lambda m: " " * len(m.group()), appeal.text)
        where = [m for m in self.places.find(text) if not _is_origin(text, m)]
        for m in where:
            evidence.append(
                Evidence(kind="text_place", value=m.name, unit_id=m.unit_id, weight=m.weight)
            )
        if where:
            # The most specific place wins; among equally specific ones, the last named: people
            # say where they are first and where the matter is after ("喀什买不到，伽师县还有").
            best = max(
                reversed(where), key=lambda m: (len(self.directory.chain(m.unit_id)), m.weight)
            )
            return Jurisdiction(best.unit_id, tuple(evidence), best.weight)
        account_unit = self.directory.by_handle(appeal.account)
        if account_unit is not None and account_unit.id != self.directory.region.id:
            evidence.append(
                Evidence(kind="account", value=appeal.account, unit_id=account_unit.id, weight=0.6)
            )
            return Jurisdiction(account_unit.id, tuple(evidence), 0.6)
        residence = appeal.author.stated_residence
        if residence:
            found = self.places.find(residence)
            if found:
                m = found[-1]
                evidence.append(
                    Evidence(kind="residence", value=m.name, unit_id=m.unit_id, weight=0.4)
                )
                return Jurisdiction(m.unit_id, tuple(evidence), 0.4)
        region = self.directory.region
        evidence.append(
            Evidence(kind="fallback", value="no place found", unit_id=region.id, weight=0.1)
        )
        return Jurisdiction(region.id, tuple(evidence), 0.1)

    def classify(self, appeal: AppealNormalized) -> Classification:
        return self.rules.classify(appeal.text)

    def dispatch(self, appeal: AppealNormalized, *, producer: str) -> list[DispatchOrdered]:
        """One order per hop, top to bottom; ids derived from the appeal so replays repeat them."""
        where = self.locate(appeal)
        what = self.classify(appeal)
        chain = [u.id for u in self.directory.chain(where.unit_id)]
        target = chain[-1]
        evidence = list(where.evidence) + [
            Evidence(kind="rule", value=rule, weight=1.0) for rule in what.rules_fired
        ]
        urgency = Urgency.URGENT if what.urgent else Urgency.GENERAL
        if len(chain) == 1:
            hops = [(chain[0], chain[0], [])]  # the region unit keeps it (兜底)
        elif self.policy == "direct":
            hops = [(chain[0], target, chain[1:-1])]
        else:
            hops = [(chain[i], chain[i + 1], []) for i in range(len(chain) - 1)]
        orders = []
        for number, (src, dst, cc) in enumerate(hops, start=1):
            unit = self.directory[dst]
            orders.append(
                DispatchOrdered(
                    event_id=derived_event_id("dispatch", appeal.event_id, str(number)),
                    occurred_at=appeal.occurred_at,
                    producer=producer,
                    case_id=appeal.case_id,
                    hop=number,
                    from_unit=src,
                    to_unit=dst,
                    to_tier=unit.tier,
                    final=dst == target,
                    chain=chain,
                    mode=DispatchMode.PRIVATE_MESSAGE if appeal.pii_kinds else self.mode,
                    to_handle=unit.handle,
                    lead_unit=target,
                    cc_units=cc,
                    category=what.category,
                    urgency=urgency,
                    evidence=evidence,
                    confidence=where.confidence,
                )
            )
        return orders


def _is_origin(text: str, m: PlaceMention) -> bool:
    before = text[max(0, m.start - 6) : m.start]
    # "老家在喀什", "户籍是伽师县": the origin word may be linked to the place by 在 or 是.
    linked = before.removesuffix("在").removesuffix("是")
    after = text[m.start + len(m.name) : m.start + len(m.name) + 2]
    return any(b.endswith(w) for b in (before, linked) for w in _ORIGIN_BEFORE) or any(
        after.startswith(w) for w in _ORIGIN_AFTER
    )
