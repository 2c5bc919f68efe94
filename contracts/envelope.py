"""The envelope every fengqiao message carries, and the base classes of all contracts.

Writers are strict, readers tolerant: constructing a message refuses unknown fields (a producer
that drifts from the contract fails in its own tests), while reading one (`model_validate`,
`model_validate_json`) ignores them, so a producer already deployed with a new optional field
does not send every message of an older consumer's to the dead-letter topics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import ExtraValues

from fengqiao.contracts.ids import new_event_id


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a timezone")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
"""A datetime with a timezone; naive datetimes are refused."""

CaseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
UnitId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]

READ_EXTRA: ExtraValues = "ignore"
"""What reading does with fields the contract does not know (nested values included)."""


class Contract(BaseModel):
    """Base of every message and every value inside one: frozen; unknown fields are refused
    when it is constructed, ignored when it is read (pass `extra="forbid"` to read strictly).

    A required field that is missing or of the wrong type fails either way."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    # pydantic's per-call `extra` overrides the config for this call and every nested value.
    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = READ_EXTRA,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate(
            obj,
            strict=strict,
            extra=extra,
            from_attributes=from_attributes,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = READ_EXTRA,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate_json(
            json_data,
            strict=strict,
            extra=extra,
            context=context,
            by_alias=by_alias,
            by_name=by_name,
        )

    @classmethod
    def model_validate_strings(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = READ_EXTRA,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        return super().model_validate_strings(
            obj, strict=strict, extra=extra, context=context, by_alias=by_alias, by_name=by_name
        )


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

    def is_urgent(self) -> bool:
        """Whether it travels in its topic's urgent lane (`topics.LANES`), ahead of a backlog."""
        return False


class CaseMessage(Envelope):
    """A message about one case; keyed by case id so a case's messages stay in order."""

    case_id: CaseId = Field(description="The case this message belongs to; the Kafka key.")

    def kafka_key(self) -> str:
        return self.case_id


def schema_version_field(version: int) -> Any:
    """The `schema_version` field of a message whose schema was raised to `version`: declare it
    as `schema_version: int = schema_version_field(2)` (see the package's compatibility rules)."""
    return Field(default=version, ge=1, description="Version of this message's schema.")
