"""The generic webhook's signature, shared by intake (which verifies it) and clients (the demo,
tests, the harness) that sign: HMAC-SHA256 with the source's secret over `<timestamp>.<body>`.

    X-Fengqiao-Timestamp: 1795814962            (Unix seconds)
    X-Fengqiao-Signature: sha256=<hex digest>
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Fengqiao-Timestamp"
SIGNATURE_HEADER = "X-Fengqiao-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signed_headers(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """Headers for POSTing `body` to `/webhooks/generic/<source>`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign(secret, ts, body),
    }
