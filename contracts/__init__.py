"""fengqiao's message contracts: the one definition of every message and topic.

Services talk only through these. Import from here, not from the modules inside.

Compatibility rules (old and new versions of a service run side by side in a rolling deploy):

- Readers are tolerant, writers strict. Reading a message (`read`, `model_validate`,
  `model_validate_json`) ignores fields the contract does not know; constructing one refuses
  them. A missing or mistyped field fails either way.
- Adding an optional field (one with a default) breaks nobody.
- Removing a field, retyping one (its type, format, constraints or allowed values), or adding a
  required one is breaking: raise the message's `schema_version` in the same change, with
  `schema_version: int = schema_version_field(<n + 1>)` in its class, and deploy readers that
  handle both versions before the writers.
- Each topic's schema is committed under `contracts/schemas/`; a test refuses a breaking change
  whose version was not raised. After a change it accepts, refresh the committed schemas with
  `python -m fengqiao.contracts.schemas --write`.
"""

from fengqiao.contracts.envelope import (
    AwareDatetime,
    CaseMessage,
    Contract,
    Envelope,
    schema_version_field,
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
    LANES,
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
    lane_for,
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
    "LANES",
    "lane_for",
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
    "schema_version_field",
]
