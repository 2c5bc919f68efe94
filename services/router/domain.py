"""Routing: where an appeal's matter is, which unit must act, and the hops down the tiers.

Evidence, strongest first, each with its weight (`Evidence.weight`):

- text_place: a place named in the text as where the matter is — full name 1.0, short 0.9,
  alias 0.85, former name or context-refined name 0.8, landmark 0.75, ambiguous name 0.6.
  Origins, denied places and brand/street words are listed with weight 0 (kinds text_origin,
  text_negated, text_not_place) and never decide; a name of the region itself decides nothing.
- geo: the nearest county seat of the post's point, 0.65 at the seat down to 0.35 at 150 km.
- account: the county or prefecture account the post was sent to, 0.6.
- residence: the author's stated residence, 0.4.
- fallback: nothing usable → the region unit keeps the case (兜底), 0.1.

The most specific text place wins, supported by the other text places above it (喀什 + 伽师县 →
伽师县); among equals the last named. A text place above county level is refined by a weaker
clue inside it (text 喀什 + account @伽师检察 → 伽师县). Without a text place, each clue scores its
own weight plus the weight of clues naming a unit above it, and the best score wins.

What the appeal is (appeal or not, urgency, category) is intake's triage, carried on the appeal:
the router only reads it. When the place is uncertain (confidence below `Router.review_below`)
the case opens at once at the prefecture of the best guess, the most specific unit that is
certain, and a dispatcher confirms the place in the triage queue (`Decision.review`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fengqiao.contracts import (
    AppealNormalized,
    DispatchMode,
    DispatchOrdered,
    Evidence,
    Urgency,
    derived_event_id,
)
from fengqiao.services.router.directory import Directory
from fengqiao.services.router.geo import SeatIndex
from fengqiao.services.router.places import PlaceIndex, PlaceMention

Policy = Literal["chain", "direct"]

ACCOUNT_WEIGHT = 0.6
RESIDENCE_WEIGHT = 0.4
FALLBACK_WEIGHT = 0.1
NOT_APPEAL = "not_appeal"
DEFAULT_CATEGORY = "legal_consultation"  # for appeals from a producer that does not triage
# @-mentions name accounts, not places ("@新疆检察" is not a place where something happened).
_MENTION = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")


@dataclass(frozen=True)
class Jurisdiction:
    unit_id: str
    evidence: tuple[Evidence, ...]
    confidence: float


@dataclass(frozen=True)
class Classification:
    """What the appeal is, as intake's triage decided it."""

    category: str
    urgent: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """Everything the router decides about one appeal."""

    where: Jurisdiction
    what: Classification
    chain: tuple[str, ...]  # down to the unit the evidence points to
    is_appeal: bool
    opens_at: str = ""  # where the case goes now: that unit, or its prefecture when unsure
    review: tuple[str, ...] = ()  # why a dispatcher should look: triage's, and the place's

    @property
    def dispatch_chain(self) -> tuple[str, ...]:
        """The chain down to `opens_at`."""
        if not self.opens_at or self.opens_at == self.chain[-1]:
            return self.chain
        return self.chain[: self.chain.index(self.opens_at) + 1]


@dataclass(frozen=True)
class Router:
    """Everything routing needs, loaded once at start."""

    directory: Directory
    places: PlaceIndex
    policy: Policy = "chain"
    mode: DispatchMode = DispatchMode.PUBLIC_MENTION
    seats: SeatIndex | None = None
    review_below: float = 0.5
    _chains: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The tree does not change: every unit's chain, computed once.
        chains = {u.id: tuple(c.id for c in self.directory.chain(u.id)) for u in self.directory}
        object.__setattr__(self, "_chains", chains)

    # ------------------------------------------------------------------ where

    def locate(self, appeal: AppealNormalized) -> Jurisdiction:
        """The unit whose jurisdiction the matter falls in, with the evidence."""
        text = _MENTION.sub(lambda m: " " * len(m.group()), appeal.text)
        evidence: list[Evidence] = []
        where: list[PlaceMention] = []
        for m in self.places.find(text):
            if m.role != "where":
                evidence.append(_ev(f"text_{m.role}", m.name, m.unit_id, 0.0))
            elif self.directory[m.unit_id].tier != "region":
                where.append(m)
                evidence.append(_ev("text_place", m.name, m.unit_id, m.weight))
        clues = self._clues(appeal)
        evidence.extend(clues)
        if where:
            return self._from_text(where, clues, evidence)
        if clues:
            return self._from_clues(clues, evidence)
        region = self.directory.region
        evidence.append(_ev("fallback", "no place found", region.id, FALLBACK_WEIGHT))
        return Jurisdiction(region.id, tuple(evidence), FALLBACK_WEIGHT)

    def _clues(self, appeal: AppealNormalized) -> list[Evidence]:
        """Evidence from outside the text: geo point, account, stated residence."""
        clues: list[Evidence] = []
        if appeal.geo is not None and self.seats is not None:
            hit = self.seats.nearest(appeal.geo.lat, appeal.geo.lon)
            if hit is not None:
                point = f"{appeal.geo.lat:.3f},{appeal.geo.lon:.3f} ({hit.km} km from seat)"
                clues.append(_ev("geo", point, hit.unit_id, hit.weight))
        account = self.directory.by_handle(appeal.account)
        if account is not None and account.id != self.directory.region.id:
            clues.append(_ev("account", appeal.account, account.id, ACCOUNT_WEIGHT))
        residence = appeal.author.stated_residence
        if residence:
            found = [m for m in self.places.find(residence) if m.role == "where"]
            found = [m for m in found if self.directory[m.unit_id].tier != "region"]
            if found:
                m = self._most_specific(found)
                clues.append(_ev("residence", m.name, m.unit_id, RESIDENCE_WEIGHT))
        return clues

    def _from_text(
        self, where: list[PlaceMention], clues: list[Evidence], evidence: list[Evidence]
    ) -> Jurisdiction:
        best = self._most_specific(where)
        confidence = best.weight
        target = best.unit_id
        if self.directory[target].tier != "county":
            inside = [c for c in clues if c.unit_id and self._is_below(c.unit_id, target)]
            if inside:
                clue = max(inside, key=lambda c: c.weight)
                target, confidence = clue.unit_id or target, min(best.weight, clue.weight) + 0.1
        if any(c.unit_id and self._is_below(target, c.unit_id, or_same=True) for c in clues):
            confidence += 0.1  # a clue outside the text agrees
        return Jurisdiction(target, tuple(evidence), round(min(confidence, 1.0), 3))

    def _from_clues(self, clues: list[Evidence], evidence: list[Evidence]) -> Jurisdiction:
        def score(clue: Evidence) -> tuple[float, int]:
            unit = clue.unit_id or ""
            support = sum(
                c.weight for c in clues if c is not clue and self._is_below(unit, c.unit_id or "")
            )
            return clue.weight + support, len(self._chains[unit])

        best = max(clues, key=score)
        return Jurisdiction(best.unit_id or "", tuple(evidence), round(min(score(best)[0], 1.0), 3))

    def _most_specific(self, where: list[PlaceMention]) -> PlaceMention:
        # The most specific place wins, supported by named places above it; among equals, the
        # last named: people say where they are first and where the matter is after.
        def key(m: PlaceMention) -> tuple[int, float]:
            chain = self._chains[m.unit_id]
            return len(chain), sum(o.weight for o in where if o.unit_id in chain)

        return max(reversed(where), key=key)

    def chain_of(self, unit_id: str) -> tuple[str, ...]:
        """The units from the root down to `unit_id` (KeyError for an unknown unit)."""
        return self._chains[unit_id]

    def _is_below(self, unit_id: str, ancestor_id: str, *, or_same: bool = False) -> bool:
        if unit_id == ancestor_id:
            return or_same
        return ancestor_id in self._chains.get(unit_id, ())

    # ------------------------------------------------------------------ what

    def classify(self, appeal: AppealNormalized) -> Classification:
        """Intake's triage of the appeal (the default category if it carries none)."""
        triage = appeal.triage
        if triage is None:
            return Classification(DEFAULT_CATEGORY, False, ())
        return Classification(triage.category, triage.urgent, tuple(triage.reasons))

    def decide(self, appeal: AppealNormalized) -> Decision:
        """Where, what, the chain of units, where the case opens, and what a person checks."""
        where = self.locate(appeal)
        what = self.classify(appeal)
        chain = self._chains[where.unit_id]
        review = list(appeal.triage.review) if appeal.triage else ["no_triage"]
        opens_at = where.unit_id
        fallback = where.evidence[-1].kind == "fallback" if where.evidence else True
        if appeal.is_appeal and not fallback and where.confidence < self.review_below:
            review.append("uncertain_place")
            prefecture = self.directory.prefecture_of(where.unit_id)
            if prefecture is not None:
                opens_at = prefecture.id
        if appeal.is_appeal and fallback and what.urgent:
            review.append("no_place")
        if appeal.triage is not None and appeal.triage.suggested_case:
            review.append("suggested_link")
        return Decision(
            where, what, chain, appeal.is_appeal, opens_at, tuple(dict.fromkeys(review))
        )

    # ------------------------------------------------------------------ orders

    def dispatch(
        self, appeal: AppealNormalized, *, producer: str, decision: Decision | None = None
    ) -> list[DispatchOrdered]:
        """One order per hop, top to bottom; ids derived from the appeal so replays repeat them.
        Pass the `decision` if you already made it."""
        decision = decision or self.decide(appeal)
        where, what, chain = decision.where, decision.what, list(decision.dispatch_chain)
        target = chain[-1]
        evidence = list(where.evidence) + [
            Evidence(kind="triage", value=reason[:200], weight=1.0) for reason in what.reasons
        ]
        urgency = Urgency.URGENT if what.urgent else Urgency.GENERAL
        hops: list[tuple[str, str, list[str]]]
        if len(chain) == 1:
            hops = [(chain[0], chain[0], [])]  # the region unit keeps it (兜底)
        elif self.policy == "direct":
            hops = [(chain[0], target, chain[1:-1])]
        else:
            hops = [(chain[i], chain[i + 1], []) for i in range(len(chain) - 1)]
        orders: list[DispatchOrdered] = []
        for number, (src, dst, cc) in enumerate(hops, start=1):
            unit = self.directory[dst]
            event_id = derived_event_id("dispatch", appeal.event_id, str(number))
            if orders:
                # The next hop differs from the first only in these fields, all produced here
                # from validated data: a copy, not a second validation of the whole order.
                hop = {"event_id": event_id, "hop": number, "from_unit": src, "to_unit": dst}
                hop |= {"to_tier": unit.tier, "final": dst == target, "to_handle": unit.handle}
                orders.append(orders[0].model_copy(update=hop | {"cc_units": cc}))
                continue
            orders.append(
                DispatchOrdered(
                    event_id=event_id,
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


def _ev(kind: str, value: str, unit_id: str | None, weight: float) -> Evidence:
    return Evidence(kind=kind, value=value[:200], unit_id=unit_id, weight=weight)
