"""fengqiao's message contracts: the one definition of every message and topic.

Services talk only through these. Import from here, not from the private modules.
"""

from fengqiao.contracts.envelope import (
    AwareDatetime,
    CaseMessage,
    Contract,
    Envelope,
)
from fengqiao.contracts.ids import derived_event_id, new_event_id, redispatch_event_id
from fengqiao.contracts.messages import *  # noqa: F403
from fengqiao.contracts.messages import __all__ as _messages_all
from fengqiao.contracts.topics import (
    APPEALS,
    CASE_EVENTS,
    CASE_TOPICS,
    COORDINATION_REQUESTS,
    DISPATCH_ORDERS,
    POSTS_RAW,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    SUPERVISION_ORDERS,
    TOPICS,
    UNIT_ACTIONS,
    Outgoing,
    Topic,
    all_topic_names,
    by_name,
    message_for,
    read,
)

__all__ = [
    *_messages_all,
    "APPEALS",
    "CASE_EVENTS",
    "COORDINATION_REQUESTS",
    "DISPATCH_ORDERS",
    "POSTS_RAW",
    "REPLIES_REQUESTED",
    "REPLIES_SENT",
    "SUPERVISION_ORDERS",
    "CASE_TOPICS",
    "TOPICS",
    "UNIT_ACTIONS",
    "AwareDatetime",
    "CaseMessage",
    "Contract",
    "Envelope",
    "Outgoing",
    "Topic",
    "all_topic_names",
    "derived_event_id",
    "by_name",
    "message_for",
    "new_event_id",
    "read",
    "redispatch_event_id",
]
