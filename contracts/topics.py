"""Every topic, defined once: name, partitions, key and message type.

Services create these at start (idempotently); the broker never auto-creates topics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pydantic_core import to_json

from fengqiao.contracts.envelope import CaseMessage, Envelope
from fengqiao.contracts.messages import (
    AppealNormalized,
    CaseEventRecorded,
    CoordinationRequested,
    DeadLetter,
    DispatchOrdered,
    RawPostReceived,
    ReplyRequested,
    ReplySent,
    SupervisionOrdered,
    UnitActed,
)


@dataclass(frozen=True)
class Topic:
    """A Kafka topic of fengqiao's and the one message type it carries."""

    name: str
    partitions: int
    key: str
    message: type[Envelope]
    description: str

    @property
    def dlq(self) -> str:
        """Name of the dead-letter topic for this topic's consumers."""
        return f"{self.name}.dlq"


@dataclass(frozen=True)
class Outgoing:
    """A message to publish on a topic (by name)."""

    topic: str
    message: Envelope

    @cached_property
    def body(self) -> bytes:
        """The message as JSON, made once: as it is published, and as a case stores it with each
        of its versions until then."""
        return to_json(self.message)


POSTS_RAW = Topic(
    "posts.raw", 6, "platform:source_id", RawPostReceived, "Raw platform payloads, as received."
)
APPEALS = Topic("appeals", 6, "case_id", AppealNormalized, "Normalized posts, with their case id.")
DISPATCH_ORDERS = Topic(
    "dispatch.orders", 6, "case_id", DispatchOrdered, "One hop of a dispatch (派单) each."
)
COORDINATION_REQUESTS = Topic(
    "coordination.requests",
    6,
    "case_id",
    CoordinationRequested,
    "横协调: requests to agencies outside the procuratorate.",
)
SUPERVISION_ORDERS = Topic(
    "supervision.orders",
    6,
    "case_id",
    SupervisionOrdered,
    "纵督促: an upper tier's orders to a lower one.",
)
UNIT_ACTIONS = Topic("unit.actions", 6, "case_id", UnitActed, "What an office did on a case.")
CASE_EVENTS = Topic(
    "case.events", 6, "case_id", CaseEventRecorded, "Every change in a case's life."
)
REPLIES_REQUESTED = Topic(
    "replies.requested",
    6,
    "platform:account",
    ReplyRequested,
    "Replies the tracker wants posted, keyed by the account that posts them (one notifier "
    "replica holds an account's rate limit).",
)
REPLIES_SENT = Topic("replies.sent", 6, "case_id", ReplySent, "What the platform answered.")


def urgent_lane(topic: Topic) -> Topic:
    """The urgent lane of `topic`: a topic of its own (`<name>.urgent`), of the same messages,
    read by consumers of their own, so an urgent message never waits behind the topic's backlog."""
    return Topic(
        f"{topic.name}.urgent",
        topic.partitions,
        topic.key,
        topic.message,
        f"{topic.description} Urgent lane: the messages whose `is_urgent()` is true.",
    )


# Every hop that can hold a queue on an appeal's way to its acknowledgment and its dispatch
# has an urgent lane: the normalizer (posts.raw), the router and the tracker (appeals), the
# tracker (dispatch.orders), the notifier (replies.requested). A publisher puts a message in its
# topic's lane when `message.is_urgent()` (`lane_for`); a subscriber of a topic reads its lane
# too, through a consumer of its own (fengqiao.runtime.messaging). A case's messages keep their
# order within a lane; one that changes lanes (a later post makes the case urgent) may overtake
# the case's earlier messages, which consumers already tolerate across topics.
LANES: dict[str, Topic] = {
    topic.name: urgent_lane(topic)
    for topic in (POSTS_RAW, APPEALS, DISPATCH_ORDERS, REPLIES_REQUESTED)
}

TOPICS: tuple[Topic, ...] = (
    POSTS_RAW,
    APPEALS,
    DISPATCH_ORDERS,
    COORDINATION_REQUESTS,
    SUPERVISION_ORDERS,
    UNIT_ACTIONS,
    CASE_EVENTS,
    REPLIES_REQUESTED,
    REPLIES_SENT,
    *LANES.values(),
)
# The topics of a case's life: their messages name their case (keyed by it, but for
# replies.requested, keyed by the account that posts them).
CASE_TOPICS: tuple[Topic, ...] = tuple(t for t in TOPICS if issubclass(t.message, CaseMessage))

DLQ_MESSAGE = DeadLetter
DLQ_PARTITIONS = 1


def lane_for(name: str, message: Envelope) -> str:
    """The topic `message` goes to when published on `name`: its urgent lane if it has one and
    the message is urgent, else `name`."""
    lane = LANES.get(name)
    return lane.name if lane is not None and message.is_urgent() else name


def all_topic_names() -> list[str]:
    """Every topic fengqiao uses, dead-letter topics included."""
    return [name for t in TOPICS for name in (t.name, t.dlq)]


def by_name(name: str) -> Topic:
    """The topic called `name`; KeyError names the unknown topic."""
    for topic in TOPICS:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}")


def message_for(name: str) -> type[Envelope]:
    """The message type carried by topic `name`, dead-letter topics included."""
    if name.endswith(".dlq") and any(t.dlq == name for t in TOPICS):
        return DLQ_MESSAGE
    return by_name(name).message


def read(name: str, body: str | bytes | bytearray) -> Envelope:
    """The message a record of topic `name` carries (JSON), read as every reader reads: fields
    the contract does not know are ignored; a missing or mistyped one raises ValidationError."""
    return message_for(name).model_validate_json(body)
