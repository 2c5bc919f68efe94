"""One change per case at a time in this process, in the order the turns were taken (the
subscribers of different topics run concurrently). Across replicas the store's compare-and-set
decides (adapters/cases.py)."""

from __future__ import annotations

import asyncio
import contextvars

_holding: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "fengqiao_tracker_cases_held", default=frozenset()
)


class Turns:
    """Each case's queue of turns: case → the end of its last turn. A case leaves the map with
    its last turn."""

    def __init__(self) -> None:
        self.queue: dict[str, asyncio.Future[None]] = {}

    def take(self, case_id: str) -> Turn:
        """A place in the case's queue, taken now; `async with` it to wait for the turns before."""
        return Turn(self.queue, case_id)


class Turn:
    """A change's turn at a case. The place in the case's queue is taken when the turn is made,
    and `async with` waits for the turns made before it: a batch takes its turns at all its cases
    before anything is awaited, so the changes of a batch begun later (the next poll, while this
    one is still written) come after its own."""

    __slots__ = ("_before", "_case_id", "_done", "_queue", "_token")

    def __init__(self, queue: dict[str, asyncio.Future[None]], case_id: str) -> None:
        self._queue, self._case_id = queue, case_id
        self._token: contextvars.Token[frozenset[str]] | None = None
        self._before: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None  # None: re-entered, the turn is ours
        if case_id in _holding.get():
            # Re-entered from our own publish (an in-memory test broker delivers synchronously,
            # e.g. a supervision order to our own subscriber): the case is ours already.
            return
        self._before = queue.get(case_id)  # the turn made before (None: nobody's)
        self._done = queue[case_id] = asyncio.get_running_loop().create_future()

    async def __aenter__(self) -> None:
        if self._done is None:
            return
        before = self._before
        if before is not None and not before.done():
            try:
                await asyncio.shield(before)
            except BaseException:  # cancelled while waiting: the next turn still waits for it
                self.release()
                raise
        self._token = _holding.set(_holding.get() | {self._case_id})

    async def __aexit__(self, *_: object) -> None:
        if self._token is not None:
            _holding.reset(self._token)
            self._token = None
        self.release()

    def release(self) -> None:
        """Hand the case to the next turn: now, or when the turns before end (a turn that was
        never taken, e.g. its batch was cancelled). Does nothing the second time."""
        done = self._done
        if done is None or done.done():
            return
        before = self._before
        if before is not None and not before.done():
            before.add_done_callback(lambda _: self.release())
            return
        self._before = None
        done.set_result(None)
        if self._queue.get(self._case_id) is done:
            del self._queue[self._case_id]
