"""The one exception the local stack raises."""

from __future__ import annotations


class StackError(Exception):
    """The local stack cannot do what was asked; `str()` is one line that says why and what to do.

    `details` optionally carries more lines (typically the tail of a log file) for a human to
    read after the message.
    """

    def __init__(self, message: str, details: str = "") -> None:
        # Collapse whitespace so the message is always a single line, whatever built it.
        self.message = " ".join(message.split())
        self.details = details.rstrip()
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
