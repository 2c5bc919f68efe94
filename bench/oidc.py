"""What OIDC costs a request: a bearer JWT checked against a real provider's keys.

    .venv/bin/python bench/oidc.py [--tokens 2000]

Starts mock-oauth2-server (fengqiao.testing.oidc; java, and mvn the first time) on a free
loopback port, then verifies one RS256 access token `--tokens` times with the keys cached
(signature, iss, aud, exp/nbf/iat, claims to Identity) and reports the time per token and how
often the keys were fetched (once). The provider's start time is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fengqiao.auth.oidc import OidcVerifier
from fengqiao.auth.settings import OidcSettings
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing.oidc import (
    AUDIENCE,
    OidcProvider,
    free_port,
    new_signing_jwk,
    provider_config,
)


async def measure(provider: OidcProvider, count: int) -> None:
    verifier = OidcVerifier(OidcSettings(issuer=provider.issuer, audience=AUDIENCE))
    params = {"person": "wang.li", "audience": AUDIENCE, "display": "王力", "unit": "xj"}
    token = provider.token(**params, group="handler", group2="fq-staff")
    try:
        await verifier.identity(token)  # discovery and keys fetched here
        started = time.perf_counter()
        for _ in range(count):
            await verifier.identity(token)
        per_token = (time.perf_counter() - started) / count
    finally:
        await verifier.aclose()
    print(f"verify, keys cached: {per_token * 1e6:.0f} µs per token over {count} tokens")
    print(f"key set fetched: {verifier.keys.fetches} time(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args()
    provider = OidcProvider(StackSettings().cache_dir, free_port())
    started = time.monotonic()
    provider.start(provider_config(new_signing_jwk()))
    print(f"provider started in {time.monotonic() - started:.1f} s")
    try:
        asyncio.run(measure(provider, args.tokens))
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
