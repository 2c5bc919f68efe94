"""What remembering Weibo push nonces costs: intake's push route in-process through ASGI, with an
in-memory sink, its nonces in memory or in the store (issue 19).

    source env.sh   # a running stack: fengqiao stack up
    python bench/push_nonces.py memory 3200
    python bench/push_nonces.py store 3200

Prints one line: pushes, pushes/s and intake's CPU time per push (the figure to compare on a
shared machine). Run the two modes alternately, a few times each. Each run uses and then drops a
database of its own.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
import uuid

import httpx

from fengqiao.runtime.settings import StackSettings
from fengqiao.services.intake.adapters.nonces import InMemoryPushNonces
from fengqiao.services.intake.adapters.sink import InMemoryPostSink
from fengqiao.services.intake.app import build
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount
from fengqiao.services.intake.weibo import push_signature

SECRET = "bench-nonces-0123456789"
CONCURRENCY = 32
BODY = json.dumps(
    {
        "type": "text",
        "receiver_id": 1,
        "sender_id": 2,
        "created_at": "Fri Nov 27 21:00:00 +0800 2026",
        "text": "求助",
    }
).encode()
_nonces = itertools.count(int(time.time()))


async def run(mode: str, count: int) -> None:
    database = f"bench_nonces_{uuid.uuid4().hex[:8]}"
    settings = IntakeSettings(
        stack=StackSettings(),
        database=database,
        weibo_accounts={"x": WeiboAccount(handle="@新疆检察", app_secret=SECRET)},
    )
    nonces = InMemoryPushNonces() if mode == "memory" else None
    runtime, app = build(settings, sink=InMemoryPostSink(), nonces=nonces)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:

        async def push() -> int:
            timestamp, nonce = str(int(time.time() * 1000)), str(next(_nonces))
            params = {
                "signature": push_signature(SECRET, timestamp, nonce),
                "timestamp": timestamp,
                "nonce": nonce,
            }
            headers = {"Content-Type": "application/json"}
            answer = await client.post(
                "/webhooks/weibo/x", params=params, content=BODY, headers=headers
            )
            return answer.status_code

        async def client_loop(pushes: int) -> list[int]:
            return [await push() for _ in range(pushes)]

        await asyncio.gather(*(client_loop(20) for _ in range(CONCURRENCY)))  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        answers = await asyncio.gather(
            *(client_loop(count // CONCURRENCY) for _ in range(CONCURRENCY))
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    codes = [code for answered in answers for code in answered]
    if set(codes) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(codes))}")
    print(
        f"{mode}: {len(codes)} pushes, {len(codes) / wall:.0f}/s, "
        f"{cpu / len(codes) * 1e6:.0f} µs CPU per push"
    )
    if runtime.mongo is not None:
        await runtime.mongo.drop_database(database)
        await runtime.mongo.close()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3200))
