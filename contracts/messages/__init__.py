"""One model per topic: what each message means and holds, a module per stage of the flow
(posts and appeals, dispatch, cases, replies, dead letters).

Names follow the usual convention: commands are imperative (`ReplyRequested` is the exception the
topic name forces), events past tense. Every field has a description; they become the AsyncAPI
documentation in `docs/asyncapi/`.
"""

from fengqiao.contracts.envelope import CaseId
from fengqiao.contracts.messages.cases import (
    CaseEventRecorded,
    CaseState,
    UnitActed,
    UnitActionKind,
)
from fengqiao.contracts.messages.dead_letters import DeadLetter
from fengqiao.contracts.messages.dispatch import (
    CoordinationRequested,
    DispatchMode,
    DispatchOrdered,
    Evidence,
    SupervisionOrdered,
    Urgency,
)
from fengqiao.contracts.messages.posts import (
    CATEGORIES,
    AppealNormalized,
    Author,
    GeoPoint,
    RawPostReceived,
    ReplyTarget,
    Triage,
)
from fengqiao.contracts.messages.replies import (
    STATUS_PLATFORMS,
    ReplyChannel,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    channel_for,
)

__all__ = [
    "CATEGORIES",
    "STATUS_PLATFORMS",
    "AppealNormalized",
    "Author",
    "CaseEventRecorded",
    "CaseId",
    "CaseState",
    "CoordinationRequested",
    "DeadLetter",
    "DispatchMode",
    "DispatchOrdered",
    "Evidence",
    "GeoPoint",
    "RawPostReceived",
    "ReplyChannel",
    "ReplyPurpose",
    "ReplyRequested",
    "ReplySent",
    "ReplyTarget",
    "SupervisionOrdered",
    "Triage",
    "UnitActed",
    "UnitActionKind",
    "Urgency",
    "channel_for",
]
