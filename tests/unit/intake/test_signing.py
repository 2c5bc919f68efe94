"""Verifying the generic webhook's HMAC signature and timestamp."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fengqiao.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signed_headers
from fengqiao.services.intake.signing import SignatureError, verify

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
TS = str(int(NOW.timestamp()))
BODY = b'{"id": "p1"}'


def check(
    *,
    secret: str = "k",
    timestamp: str | None = TS,
    signature: str | None = None,
    body: bytes = BODY,
    window: int = 300,
) -> None:
    if signature is None and timestamp is not None:
        signature = sign("k", timestamp, BODY)
    verify(
        secret, timestamp=timestamp, signature=signature, body=body, now=NOW, window_seconds=window
    )


def test_a_good_signature_passes() -> None:
    check()


def test_signed_headers_verify() -> None:
    headers = signed_headers("k", BODY, timestamp=int(NOW.timestamp()))
    assert headers["Content-Type"] == "application/json"
    verify(
        "k",
        timestamp=headers[TIMESTAMP_HEADER],
        signature=headers[SIGNATURE_HEADER],
        body=BODY,
        now=NOW,
        window_seconds=300,
    )


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", TS.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    assert sign("k", TS, BODY) == f"sha256={expected}"


def test_surrounding_whitespace_in_the_signature_is_ignored() -> None:
    check(signature=f" {sign('k', TS, BODY)} ")


def test_another_secret_fails() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        check(secret="other")


def test_a_changed_body_fails() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        check(body=b'{"id": "p2"}')


def test_a_changed_timestamp_fails() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        check(timestamp=str(int(TS) + 1), signature=sign("k", TS, BODY))


def test_a_garbage_signature_fails() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        check(signature="sha256=00")


def test_a_non_ascii_signature_fails_cleanly() -> None:
    # Header values arrive decoded as latin-1; a stray byte must be a refusal, not a crash.
    with pytest.raises(SignatureError, match="signature does not match"):
        check(signature="sha256=\xe9")


@pytest.mark.parametrize(
    ("timestamp", "signature", "missing"),
    [
        (None, "sha256=x", TIMESTAMP_HEADER),
        ("", "sha256=x", TIMESTAMP_HEADER),
        (TS, "", SIGNATURE_HEADER),
    ],
)
def test_missing_headers_fail(timestamp: str | None, signature: str, missing: str) -> None:
    with pytest.raises(SignatureError, match=f"missing {missing} header"):
        check(timestamp=timestamp, signature=signature)


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5", "1e9", "\xb2", "１２３", "9" * 13])
def test_a_timestamp_that_is_not_unix_seconds_fails(timestamp: str) -> None:
    with pytest.raises(SignatureError, match="must be Unix seconds"):
        check(timestamp=timestamp, signature="sha256=x")


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_a_stale_timestamp_fails_even_when_correctly_signed(offset: int) -> None:
    timestamp = str(int(TS) + offset)
    with pytest.raises(SignatureError, match=r"stale timestamp: \d+ s from now, window is 300 s"):
        check(timestamp=timestamp, signature=sign("k", timestamp, BODY))


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_a_timestamp_within_the_window_passes(offset: int) -> None:
    timestamp = str(int(TS) + offset)
    check(timestamp=timestamp, signature=sign("k", timestamp, BODY))
