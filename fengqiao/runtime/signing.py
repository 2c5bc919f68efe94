"""The generic webhook's signature, shared by intake (which verifies it) and clients (the demo,
tests, the harness) that sign: HMAC-SHA256 with the source's secret over `<timestamp>.<body>`.

    X-Fengqiao-Timestamp: 1795814962            (Unix seconds)
    X-Fengqiao-Signature: sha256=<hex digest>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence

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


def generic_source_env(
    source: str,
    secret: str,
    *,
    platforms: Sequence[str] = ("weibo",),
    accounts: Sequence[str] = ("*",),
) -> dict[str, str]:
    """Intake's settings for one generic source (the demo, tests, the harness): its secret and
    what it may speak for (by default a Weibo relay for every account, as the simulator plays)."""
    binding = {source: {"platforms": list(platforms), "accounts": list(accounts)}}
    return {
        "FENGQIAO_INTAKE_GENERIC_SECRETS": json.dumps({source: secret}),
        "FENGQIAO_INTAKE_GENERIC_SOURCES": json.dumps(binding, ensure_ascii=False),
    }
