"""What became of each accepted appeal, counted where it shows (fault drills in `tests/faults/`,
`bench/e2e.py`):

- **its case**: the case ids intake gave it (its sender's appeals on `appeals`; every appeal of a
  `PushLoad` has its own sender) that the tracker opened (version 1 in `case_versions`, the
  truth, not the views that trail it). Exactly one is right;
- **its acknowledgment on the platform**: the simulator's record of what the accounts posted
  (`/_sim/received`): a post whose text says it was received (`ACK_PHRASE`, in both
  acknowledgment templates and in no other) that is for this appeal (on its status, to its
  sender, or naming one of its cases' references). Exactly one is right, on the citizen's
  channel: a comment on the status for a mention, a private message to the sender for a
  private message;
- **dead letters**: what the `*.dlq` topics gained meanwhile (end offsets), with their errors;
- **consumer lag**: of every consumer group of the services (`<group>.<topic>`).

`Audit.drain` waits until every appeal has its case and acknowledgment and the lag is zero, or
nothing has changed for `settle` seconds with no lag left, or the deadline passes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from fengqiao.contracts import APPEALS, TOPICS, AppealNormalized
from fengqiao.ops.kafka import connect, decode
from fengqiao.services.tracker.adapters.case_codec import version_id
from fengqiao.services.tracker.adapters.cases import VERSIONS
from fengqiao.testing.pushes import Delivery
from fengqiao.watch import TopicWatcher

ACK_PHRASE = "已收到"  # services/notifier/templates/acknowledgment.*.j2, and no other template
FLEET_GROUPS = frozenset({"intake-normalizer", "intake-open311", "router", "tracker", "notifier"})
COMMENT_KINDS = frozenset({"comment", "comment_reply"})
CASE_REF = re.compile(r"编号([A-Za-z0-9_.:-]{8})")  # the templates' `编号{{ case_ref }}`


@dataclass
class Outcome:
    """One accepted appeal: its cases, and the acknowledgments posted for it."""

    delivery: Delivery
    cases: set[str] = field(default_factory=set)  # opened by the tracker
    assigned: set[str] = field(default_factory=set)  # given by intake (on `appeals`)
    acks: list[dict[str, Any]] = field(default_factory=list)  # on the right channel
    elsewhere: list[dict[str, Any]] = field(default_factory=list)  # on another channel
    first_ack_at: float | None = None  # Unix seconds the platform took the first one

    @property
    def complete(self) -> bool:
        return len(self.cases) == 1 and len(self.acks) == 1 and not self.elsewhere

    def problem(self) -> str | None:
        """What is wrong with it, in a few words, or None."""
        push = self.delivery.push
        where = f"appeal {push.index} ({push.channel}, sender {push.sender_id})"
        if not self.assigned:
            return f"{where}: no appeal on `appeals` (intake)"
        if not self.cases:
            return f"{where}: case {sorted(self.assigned)} never opened (tracker)"
        if len(self.cases) > 1:
            return f"{where}: {len(self.cases)} cases {sorted(self.cases)}"
        if self.elsewhere:
            kinds = sorted({r["kind"] for r in self.elsewhere})
            return f"{where}: acknowledged on the wrong channel ({', '.join(kinds)})"
        if not self.acks:
            return f"{where}: case {next(iter(self.cases))} never acknowledged (notifier)"
        if len(self.acks) > 1:
            return f"{where}: acknowledged {len(self.acks)} times"
        return None


@dataclass(frozen=True)
class Drained:
    outcomes: list[Outcome]
    seconds: float  # from the call until complete (or until it gave up)
    complete: bool
    lag: dict[str, int]


class Audit:
    """Counts per accepted appeal on a running fleet (enter it before the load starts)."""

    def __init__(
        self,
        bootstrap: str,
        mongo_uri: str,
        simulator_url: str,
        *,
        tracker_database: str = "fengqiao_tracker",
    ) -> None:
        self.bootstrap, self.simulator_url = bootstrap, simulator_url
        self._mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
        self._versions = self._mongo[tracker_database][VERSIONS]
        self._watcher = TopicWatcher(bootstrap, [APPEALS.name], since_ms=_now_ms() - 1000)
        self._opened: set[str] = set()
        self._received: list[dict[str, Any]] = []

    async def __aenter__(self) -> Audit:
        await self._watcher.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._watcher.__aexit__()
        await self._mongo.close()

    def assigned(self) -> dict[str, set[str]]:
        """Case ids given by intake, by sender."""
        found: dict[str, set[str]] = defaultdict(set)
        for appeal in self._watcher.of(APPEALS.name):
            assert isinstance(appeal, AppealNormalized)
            found[appeal.author.id].add(appeal.case_id)
        return found

    async def opened(self, case_ids: Iterable[str]) -> set[str]:
        """Those of `case_ids` the tracker has opened (remembered once seen)."""
        asked = set(case_ids)
        wanted = [c for c in asked if c not in self._opened]
        for start in range(0, len(wanted), 500):
            ids = [version_id(c, 1) for c in wanted[start : start + 500]]
            async for doc in self._versions.find({"_id": {"$in": ids}}, {"case_id": 1}):
                self._opened.add(str(doc["case_id"]))
        return self._opened & asked

    async def received(self) -> list[dict[str, Any]]:
        """Everything the accounts posted on the platform (the simulator's record; what is new
        since the last call is fetched)."""
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(
                f"{self.simulator_url}/_sim/received", params={"since": len(self._received)}
            )
            answer.raise_for_status()
        self._received.extend(answer.json())
        return self._received

    async def outcomes(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """The outcome of each accepted delivery, as things stand."""
        accepted = [d for d in deliveries if d.accepted]
        assigned = self.assigned()
        outcomes = [Outcome(d, assigned=set(assigned.get(d.push.sender_id, ()))) for d in accepted]
        opened = await self.opened(c for o in outcomes for c in o.assigned)
        for o in outcomes:
            o.cases = o.assigned & opened
        acks = [r for r in await self.received() if ACK_PHRASE in str(r.get("text", ""))]
        attribute(outcomes, acks)
        return outcomes

    async def dead_letter_ends(self) -> dict[str, int]:
        """The end offset of each dead-letter topic (summed over its partitions)."""
        async with connect(self.bootstrap) as cluster:
            names = await cluster.existing([t.dlq for t in TOPICS])
            ends = await cluster.end_offsets(await cluster.partitions(names))
        totals = dict.fromkeys(names, 0)
        for tp, end in ends.items():
            totals[tp.topic] += end
        return totals

    async def dead_letters_since(self, before: Mapping[str, int], since_ms: int) -> list[str]:
        """One line per dead letter written since `before` (from `dead_letter_ends`)."""
        after = await self.dead_letter_ends()
        grown = [t for t, end in after.items() if end > before.get(t, 0)]
        if not grown:
            return []
        lines = []
        async with connect(self.bootstrap) as cluster:
            async for record in cluster.read(grown, since_ms=since_ms):
                letter = decode(record)
                what = f"{letter.error_type}: {letter.error[:160]}" if letter else "unreadable"
                lines.append(f"{record.topic}: {what}")
        total = sum(after[t] - before.get(t, 0) for t in grown)
        lines += ["(more, written before the window)"] * max(0, total - len(lines))
        return lines

    async def lag(self) -> dict[str, int]:
        """The lag of each consumer group of the services."""
        async with connect(self.bootstrap) as cluster:
            groups = await cluster.group_lags()
        return {g.group: g.total for g in groups if g.service in FLEET_GROUPS}

    async def drain(
        self,
        deliveries: Sequence[Delivery],
        *,
        deadline: float,
        settle: float = 20.0,
        interval: float = 1.0,
    ) -> Drained:
        """Wait until every accepted delivery is complete and the lag is zero; or until, with no
        lag, nothing changed for `settle` seconds; or for at most `deadline` seconds. Counts
        every `interval` seconds."""
        started = time.monotonic()
        last, changed = None, started
        while True:
            outcomes = await self.outcomes(deliveries)
            lag = await _lag_or_unknown(self)
            done = all(o.complete for o in outcomes) and not any(lag.values())
            now = time.monotonic()
            if done:
                return Drained(outcomes, now - started, True, lag)
            state = (_fingerprint(outcomes), tuple(sorted(lag.items())))
            if state != last:
                last, changed = state, now
            idle = not any(lag.values()) and now - changed >= settle
            if idle or now - started >= deadline:
                return Drained(outcomes, now - started, False, lag)
            await asyncio.sleep(interval)


async def _lag_or_unknown(audit: Audit) -> dict[str, int]:
    try:
        return await audit.lag()
    except Exception as exc:  # Kafka not back yet: counts as lag, and the wait goes on
        return {f"unknown ({type(exc).__name__})": 1}


def _fingerprint(outcomes: Sequence[Outcome]) -> tuple[int, ...]:
    return (
        sum(len(o.assigned) for o in outcomes),
        sum(len(o.cases) for o in outcomes),
        sum(len(o.acks) + len(o.elsewhere) for o in outcomes),
    )


def attribute(outcomes: Sequence[Outcome], acks: Sequence[dict[str, Any]]) -> None:
    """Give each acknowledgment to the appeal it answers, on the right channel or not."""
    by_post = {str(o.delivery.push.post_id): o for o in outcomes if o.delivery.push.post_id}
    by_sender = {o.delivery.push.sender_id: o for o in outcomes}
    by_ref = {c[-8:]: o for o in outcomes for c in o.assigned}  # case_ref: the id's end
    for record in acks:
        target, text = record.get("target") or {}, str(record.get("text", ""))
        found = by_post.get(str(target.get("id"))) or by_sender.get(str(target.get("uid")))
        refs = (by_ref.get(m) for m in CASE_REF.findall(text))
        found = found or next((o for o in refs if o is not None), None)
        if found is None:
            continue
        push = found.delivery.push
        right = (
            record["kind"] in COMMENT_KINDS and target.get("id") == push.post_id
            if push.channel == "comment"
            else record["kind"] == "private_message" and target.get("uid") == push.sender_id
        )
        (found.acks if right else found.elsewhere).append(record)
        at = _unix(record.get("received_at"))
        if right and at is not None and (found.first_ack_at is None or at < found.first_ack_at):
            found.first_ack_at = at


def _unix(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _now_ms() -> int:
    return int(time.time() * 1000)
