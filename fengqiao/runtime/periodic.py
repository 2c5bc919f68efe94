"""Work done again and again in the background while a service runs (counting a queue,
recomputing figures, pruning old records): one loop, and one way to start and stop it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fengqiao.runtime.service import Runtime

log = logging.getLogger("fengqiao.runtime")


async def every(
    interval: float,
    step: Callable[[], Awaitable[object]],
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """`step()` at once, then every `interval` seconds until cancelled. A failure (the store
    away, say) is logged and the step tried again at the next interval; nothing waits for it."""
    while True:
        try:
            await step()
        except Exception:  # (not CancelledError: a BaseException, it ends the loop)
            log.exception("%s failed; again in %.0f s", what, interval)
        await sleep(interval)


def while_serving(runtime: Runtime, *work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run each `work()` as a task once the service has started (its consumers joined), and
    cancel them first when it stops."""
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        tasks.extend(asyncio.create_task(w()) for w in work)

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    runtime.on_started.append(start)
    runtime.on_stop.insert(0, stop)
