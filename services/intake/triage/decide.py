"""Triage: appeal or not, urgency and category of a post, with confidences and reasons.

The learned models (`model.Model`) give calibrated probabilities; the danger lexicon
(`danger.Danger`) is the safety layer beside them. The rules, with the thresholds of the model
in use (chosen out of fold on the training and dev splits by `fengqiao triage train`):

- **urgent** when the urgency model is sure (`urgent_high`); **possibly urgent** when it is less
  sure but above `urgent_low`, or when a live danger word is found (unless the model is surer it
  is not than it ever was for a real alarm: `alarm_floor`). A possibly urgent post is treated as
  urgent and goes to a person to confirm; it is never dropped.
- **appeal** when urgent, or when the appeal model's probability reaches `appeal`. A probability
  within `appeal_review` of that threshold goes to a person, and its case opens meanwhile
  whichever side it falls (the person rules it out if it is none).
- **category**: the most likely appeal category; below `category_review` a person confirms.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from fengqiao.services.intake.triage.danger import DANGER_FILE, Danger, Hit, load_danger
from fengqiao.services.intake.triage.features import cosine, prepare
from fengqiao.services.intake.triage.model import MODEL_DIR, Model, Scores, load_model

__all__ = ["NOT_APPEAL", "Triage", "Triager", "load_triager"]

NOT_APPEAL = "not_appeal"


@dataclass(frozen=True, slots=True)
class Triage:
    """What triage decided about one post, and why."""

    is_appeal: bool
    urgent: bool  # treated as urgent: certain, or possible (then `possibly_urgent` too)
    possibly_urgent: bool
    category: str  # NOT_APPEAL when not an appeal
    scores: Scores
    danger: tuple[Hit, ...]
    review: tuple[str, ...]  # why a person should look; empty when nobody needs to
    model_version: str
    escalation: str | None = None  # made urgent by what lies outside its text

    def escalated(self, why: str) -> Triage:
        """This triage made possibly urgent (so an appeal) for a reason outside its text."""
        category = self.category if self.is_appeal else self.scores.category
        review = ("possibly_urgent", *(r for r in self.review if r != "possibly_urgent"))
        return replace(
            self,
            is_appeal=True,
            urgent=True,
            possibly_urgent=True,
            category=category,
            review=review,
            escalation=why,
        )

    @property
    def reasons(self) -> list[str]:
        """Why, in a few words each: the model's figures, then the live danger words."""
        s = self.scores
        reasons = [
            f"appeal {s.appeal:.2f}",
            f"urgent {s.urgent:.2f}",
            f"category {s.category} {s.category_confidence:.2f}",
        ]
        reasons += [f"danger word {h.word} ({h.kind})" for h in self.danger if h.live]
        reasons += [f"quiet {h.word} ({h.state})" for h in self.danger if not h.live]
        if self.escalation:
            reasons.append(f"urgent: {self.escalation}")
        return reasons


@dataclass(frozen=True)
class Triager:
    """The model in use and the danger lexicon, loaded once at start."""

    model: Model
    danger: Danger

    def triage(self, text: str) -> Triage:
        """Triage a normalized text (`services.intake.text.normalize_text`)."""
        hits, markers = self.danger.markers(text)
        return self.decide(self.model.score(prepare(text), markers), hits)

    def similarity(self) -> Callable[[str, str], float]:
        """Content similarity of two texts (cosine of their TF-IDF vectors: shared rare words,
        such as the names of places, firms and people, count most); vectors are kept per call."""
        vector = cache(lambda words: self.model.featurizer.transform(prepare(words)))
        return lambda a, b: cosine(vector(a), vector(b))

    def decide(self, scores: Scores, hits: list[Hit]) -> Triage:
        t = self.model.thresholds
        alarm = [h for h in hits if h.live and h.kind != "signal"]
        if scores.urgent < t.get("alarm_floor", 0.0):
            alarm = []  # the model is surer than ever for a real alarm: a danger told of
        sure = scores.urgent >= t["urgent_high"]
        possible = not sure and (scores.urgent >= t["urgent_low"] or bool(alarm))
        urgent = sure or possible
        unsure = abs(scores.appeal - t["appeal"]) < t["appeal_review"]
        # Unsure either way, the case opens (a person rules it out if need be): a person in need
        # left unanswered costs more than a case closed as no appeal.
        is_appeal = urgent or unsure or scores.appeal >= t["appeal"]
        review = []
        if possible:
            review.append("possibly_urgent")
        if not urgent and unsure:
            review.append("uncertain_appeal")
        if is_appeal and scores.category_confidence < t["category_review"]:
            review.append("uncertain_category")
        return Triage(
            is_appeal=is_appeal,
            urgent=urgent,
            possibly_urgent=possible,
            category=scores.category if is_appeal else NOT_APPEAL,
            scores=scores,
            danger=tuple(h for h in hits if h.kind != "signal"),
            review=tuple(review),
            model_version=self.model.version,
        )


@cache
def load_triager(model_dir: Path = MODEL_DIR, danger_file: Path = DANGER_FILE) -> Triager:
    """The model in `model_dir` and the danger lexicon, loaded once per process."""
    return Triager(load_model(model_dir), load_danger(danger_file))
