"""The decision thresholds of a triage model, chosen on its calibrated out-of-fold scores
(`train.train_model` computes the scores; `services.intake.triage.decide` applies the result)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from fengqiao.triage.corpus import Example

__all__ = ["Scored", "thresholds"]

URGENT_PRECISION_FLOOR = 0.86  # urgent_low goes down until precision would fall below this
URGENT_SURE_PRECISION = 0.95
ALARM_MARGIN = 0.8  # alarm_floor is this share of the lowest score of an urgent example caught
CATEGORY_RIGHT = 0.7
MISSED_APPEAL_COST = 3
APPEAL_REVIEW = 0.15


class Scored(NamedTuple):
    """One example's calibrated out-of-fold scores, and whether a live danger word fired."""

    appeal: float
    urgent: float
    category: str
    category_confidence: float
    alarm: bool
    inherits: bool = False  # a later post of a case whose first post is urgent


def thresholds(scored: Sequence[Scored], examples: Sequence[Example]) -> dict[str, float]:
    """The decision thresholds of `services.intake.triage.decide`, from out-of-fold scores.

    - `urgent_low`: as low as precision allows: the lowest threshold above which (with the posts
      a danger word catches, and the later posts of an urgent case, which linking makes
      possibly urgent: `services.intake.domain.with_case`) urgent examples stay at least
      `URGENT_PRECISION_FLOOR` of those said urgent. Recall is bought with all the precision
      there is to spare; a few urgent examples below it (the corpus has some a reader could
      not tell from the words alone, "在吗 急事") must not drag it to where nothing is sure.
    - `alarm_floor`: a live danger word counts unless the urgency model is surer than for any
      urgent example a danger word caught (with `ALARM_MARGIN`): a past or reported danger the
      lexicon's context missed, which the model reads right.
    - `urgent_high`: from here the urgency model is right `URGENT_SURE_PRECISION` of the time;
      between the two, a person confirms.
    - `appeal`: the cheapest, a missed appeal costing `MISSED_APPEAL_COST` extra cases (a
      person in need unanswered is worse than a case an office closes as no appeal); among
      equals the highest. `category_review`: where the category is right less than
      `CATEGORY_RIGHT` of the time."""
    urgent = np.array([e.urgent for e in examples])
    appeal = np.array([e.is_appeal for e in examples])
    floor, low, high, said_urgent = _urgency(scored, urgent)
    return {
        "alarm_floor": round(floor, 6),
        "urgent_low": round(low * 0.999, 6),
        "urgent_high": round(max(high, low), 6),
        "appeal": _appeal(scored, appeal, said_urgent),
        "appeal_review": APPEAL_REVIEW,
        "category_review": _category_review(scored, examples, appeal),
    }


def _urgency(
    scored: Sequence[Scored], urgent: npt.NDArray[np.bool_]
) -> tuple[float, float, float, npt.NDArray[np.bool_]]:
    """(alarm_floor, urgent_low, urgent_high, which examples are said urgent at those)."""
    p_urgent = np.array([s.urgent for s in scored])
    alarm = np.array([s.alarm for s in scored])
    caught = p_urgent[alarm & urgent]
    floor = float(caught.min()) * ALARM_MARGIN if len(caught) else 0.0
    alarm &= p_urgent >= floor
    alarm |= np.array([s.inherits for s in scored]) & urgent
    low = 1.0
    for t in sorted({float(p) for p in p_urgent}, reverse=True):
        said = (p_urgent >= t) | alarm
        if urgent[said].mean() < URGENT_PRECISION_FLOOR:
            break
        low = t
    high = 1.0
    for t in sorted({float(p) for p in p_urgent if p >= low}, reverse=True):
        if urgent[p_urgent >= t].mean() < URGENT_SURE_PRECISION:
            break
        high = t
    return floor, low, high, (p_urgent >= low) | alarm


def _appeal(
    scored: Sequence[Scored], appeal: npt.NDArray[np.bool_], said_urgent: npt.NDArray[np.bool_]
) -> float:
    p_appeal = np.array([s.appeal for s in scored])
    cost = {}
    for t in np.round(np.arange(0.05, 0.96, 0.01), 2):
        said = said_urgent | (p_appeal >= t - APPEAL_REVIEW)  # an unsure post opens its case
        cost[float(t)] = MISSED_APPEAL_COST * int((appeal & ~said).sum()) + int(
            (~appeal & said).sum()
        )
    return min(cost, key=lambda t: (cost[t], -t))


def _category_review(
    scored: Sequence[Scored], examples: Sequence[Example], appeal: npt.NDArray[np.bool_]
) -> float:
    confidence = np.array([s.category_confidence for s in scored])
    right = np.array([s.category == e.category for s, e in zip(scored, examples, strict=True)])
    review = 0.0
    for c in np.round(np.arange(0.2, 0.95, 0.05), 2):
        below = appeal & (confidence < c)
        if below.sum() >= 10 and right[below].mean() < CATEGORY_RIGHT:
            review = float(c)
    return review
