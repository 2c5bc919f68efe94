"""Event ids: fresh ones, and ids derived from their cause.

A handler derives the ids of the messages it emits from the id of the message it consumes (plus
what tells the outputs apart), so a re-delivered cause yields the same ids and consumers
downstream ignore the repeat. A recipe two services share is named here, once.
"""

from __future__ import annotations

import hashlib
import uuid


def new_event_id() -> str:
    """A fresh event id (UUID4, hex)."""
    return uuid.uuid4().hex


def derived_event_id(*parts: str) -> str:
    """An event id determined by what caused it, so a re-delivered cause yields the same id.

    Handlers derive the ids of the messages they emit from the id of the message they consume
    (plus what distinguishes the outputs, e.g. the hop); consumers downstream then ignore the
    duplicate a re-delivery produces.
    """
    # SHA-1 over a fixed namespace and the parts, as a name-based UUID would be, without
    # building UUID objects: this runs for every message a handler emits.
    return hashlib.sha1(_NAMESPACE + "\x1f".join(parts).encode()).hexdigest()[:32]


def redispatch_event_id(action_event_id: str, hop: int) -> str:
    """The event id of hop `hop` of a re-dispatch the router orders on a unit's action (a return
    it ruled on, a reassignment).

    Two services use it: the router gives its orders these ids, and the tracker looks them up to
    tell whether a return's re-dispatch, read first from another topic, is already recorded."""
    return derived_event_id("redispatch", action_event_id, str(hop))


_NAMESPACE = uuid.UUID("6b0e5f3c-2a59-4a57-9d0c-6ad1c7e2f6a1").bytes
