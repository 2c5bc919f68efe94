"""Verifying the generic webhook's signature (the scheme: `fengqiao.runtime.signing`).

Binding the timestamp into the signed bytes means it cannot be changed without the secret, so a
captured request cannot be replayed outside the window.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from fengqiao.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SignatureError", "verify"]


class SignatureError(Exception):
    """The request is not signed by whom it claims; the message says why."""


def verify(
    secret: str,
    *,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    window_seconds: int,
) -> None:
    """Raise SignatureError unless the signature is right and the timestamp is recent."""
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    # isascii: str.isdigit() also accepts "²" and full-width digits, which int() then rejects
    # or reads as another number.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > window_seconds:
        raise SignatureError(
            f"stale timestamp: {int(skew)} s from now, window is {window_seconds} s"
        )
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not
    # a refusal), and header values may hold any latin-1 character.
    expected = sign(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace")):
        raise SignatureError("signature does not match")
