"""<topic>.dlq: a message a consumer could not process."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fengqiao.contracts.envelope import Envelope


class DeadLetter(Envelope):
    """A message a consumer could not process, with the error and where it came from."""

    type: Literal["dead_letter"] = "dead_letter"
    origin_topic: str = Field(max_length=200, description="Topic the message was read from.")
    origin_partition: int = Field(ge=0, description="Its partition.")
    origin_offset: int = Field(ge=0, description="Its offset.")
    origin_key: str | None = Field(default=None, max_length=400, description="Its key, if any.")
    consumer: str = Field(max_length=64, description="The consumer group that failed.")
    error_type: str = Field(max_length=200, description="Exception class.")
    error: str = Field(max_length=4000, description="Error message (no private data).")
    payload: str = Field(description="The message body as text (UTF-8, replaced if invalid).")

    def kafka_key(self) -> str:
        return (
            self.origin_key or f"{self.origin_topic}:{self.origin_partition}:{self.origin_offset}"
        )
