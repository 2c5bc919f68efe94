"""Triage: is a post an appeal, is it urgent, and which category, with confidences and reasons.

`decide.Triager` combines the learned models (`model`, over the features of `features`) with the
danger lexicon (`danger`). The models are trained by `fengqiao triage train` from the corpus in
`data/triage/`; the artifact in use is `services/intake/data/triage/`.
"""

from fengqiao.services.intake.triage.decide import NOT_APPEAL, Triage, Triager, load_triager

__all__ = ["NOT_APPEAL", "Triage", "Triager", "load_triager"]
