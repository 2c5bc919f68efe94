"""The envelope every fengqiao message carries, and the base classes of all contracts.

Messages are immutable and strict: unknown fields are refused, so a producer that drifts from the
contract is caught at the first consumer instead of silently losing data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fengqiao.contracts.ids import new_event_id


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a timezone")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
"""A datetime with a timezone; naive datetimes are refused."""

CaseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
UnitId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]


class Contract(BaseModel):
    """Base of every message and every value inside one: frozen, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Envelope(Contract):
    """Fields every message on every topic carries."""

    event_id: str = Field(
        default_factory=new_event_id,
        min_length=1,
        max_length=64,
        description="Unique id of this message; consumers use it to ignore re-deliveries.",
    )
    schema_version: int = Field(default=1, ge=1, description="Version of this message's schema.")
    occurred_at: AwareDatetime = Field(description="When the fact this message records happened.")
    producer: str = Field(
        min_length=1, max_length=64, description="The service (and instance) that wrote it."
    )

    def kafka_key(self) -> str:
        """The partition key: the case id on case topics."""
        raise NotImplementedError


class CaseMessage(Envelope):
    """A message about one case; keyed by case id so a case's messages stay in order."""

    case_id: CaseId = Field(description="The case this message belongs to; the Kafka key.")

    def kafka_key(self) -> str:
        return self.case_id
