"""The lives of closed cases, lived by the services' own code in memory, and the documents they
leave in the store (for `bench/seed.py`).

A case's life: an appeal naming a county (intake's triage: one of the domain's categories) is
routed by the router's domain (`Router.decide`, `dispatch`: the real directory); the tracker's
`UnitOfWork` applies each message with the domain's changes, over in-memory repositories that
keep what the Mongo ones would write (versions by `stored`, compacted to stubs when the case
ends; the views by `view`; the timers' versions by the timer algorithm itself); the notifier's
`Sender` posts each reply the tracker asks for (to a platform that takes everything) and its
`ReplySent` goes back to the tracker. Before each step, the clocks due by then fire, as the
tracker's sweep fires them. The lead unit accepts, reports progress and resolves; the callback
question is asked when its clock fires; the citizen answers 满意 and the case closes.

Documents come out per collection, in the form each Mongo adapter writes them.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fengqiao.contracts import (
    CATEGORIES,
    REPLIES_REQUESTED,
    AppealNormalized,
    Author,
    Outgoing,
    ReplyChannel,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.store import ShardedCollection, Versions
from fengqiao.services.notifier.adapters.outbox import InMemoryOutbox, _packed
from fengqiao.services.notifier.domain import Renderer
from fengqiao.services.notifier.sender import Origin, Sender
from fengqiao.services.router.adapters.records import VERSIONS as ROUTING
from fengqiao.services.router.adapters.records import InMemoryRecordStore
from fengqiao.services.router.app import build_router
from fengqiao.services.router.returns import record_dispatch
from fengqiao.services.router.settings import RouterSettings
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.case_view import CASES, view
from fengqiao.services.tracker.adapters.cases import (
    ENDED,
    VERSIONS,
    stored,
    version_id,
)
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.projections import (
    BUILT,
    OPEN_CASES,
    SUMMARIES,
    month_of,
    open_case,
    summary,
)
from fengqiao.services.tracker.adapters.timers import VERSIONS as TIMERS
from fengqiao.services.tracker.adapters.timers import MemoryStore, StoredTimers, Timer, fire_due
from fengqiao.services.tracker.unit_of_work import UnitOfWork
from fengqiao.testing.factories import appeal_message, triage_message

ACCOUNT = "@新疆检察"
APPEALS = [c for c in CATEGORIES if c not in ("not_appeal", "other_agency")]
WORDS = {
    "wage_arrears": "我在{}的工地干了半年活，包工头拖欠工资一直不给，请帮忙讨薪",
    "judicial_aid": "我母亲在{}务工时摔伤，官司赢了可对方不执行赔偿，家里很困难，求帮助",
    "personal_injury": "我父亲在{}被人打伤住院，打人者不愿承担医药费，请问该怎么维权",
    "urgent_assistance": "{}有人一直威胁我和孩子，我们很害怕，求求检察院帮帮我们",
    "complaint_appeal": "{}法院的判决明显不公，我想申诉，请问检察院怎么受理",
    "crime_report": "举报{}有人非法集资，很多老人的养老钱被骗走了",
    "public_interest": "{}的河边有工厂偷偷排污，河水都变黑了，请检察院管一管",
    "legal_consultation": "请问在{}打工被拖欠工资，应该先找劳动监察还是直接起诉",
    "minors": "{}有网吧长期让未成年人通宵上网，家长管不住，请检察院关注",
}
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)


class Now:
    """The instant the life is at (the unit of work's, the sender's and the sweep's clock)."""

    def __init__(self) -> None:
        self.at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.at


class TakesAll:
    """A platform that takes every reply."""

    def __init__(self) -> None:
        self.posted = 0

    async def send(
        self, channel: ReplyChannel, target: ReplyTarget, text: str, *, token: str
    ) -> str:
        self.posted += 1
        return f"seed-m{self.posted}"


@dataclass
class Published:
    """The tracker's outbox and the notifier's results: what each would publish."""

    requests: list[ReplyRequested] = field(default_factory=list)
    results: list[ReplySent] = field(default_factory=list)

    async def send_all(self, messages: Iterable[Outgoing]) -> None:
        for outgoing in messages:
            if outgoing.topic == REPLIES_REQUESTED.name:
                assert isinstance(outgoing.message, ReplyRequested)
                self.requests.append(outgoing.message)

    async def sent(self, result: ReplySent) -> None:
        self.results.append(result)

    async def sent_many(self, results: Sequence[ReplySent]) -> None:
        self.results.extend(results)

    async def dead_letter(self, request: ReplyRequested, origin: Origin | None, error: str) -> None:
        raise RuntimeError(f"reply {request.idempotency_key} dead-lettered: {error}")


class Kept(MemoryStore):
    """The timers' store (and the versions' records) in memory, without the fakes' copies:
    nothing here changes a document once written."""

    async def insert(self, collection: str, doc: dict[str, Any]) -> bool:
        docs = self.collections.setdefault(collection, {})
        if doc["_id"] in docs:
            return False
        docs[doc["_id"]] = doc
        return True

    async def get(self, collection: str, doc_id: str) -> dict[str, Any] | None:
        return self.collections.get(collection, {}).get(doc_id)


class KeptCases:
    """The tracker's case repository in memory, keeping every version as `MongoCaseRepository`
    stores it (`stored`; the older versions of an ended case compacted to stubs) and the latest
    case (for its view). Only what the unit of work asks of a repository."""

    def __init__(self) -> None:
        self.records = Kept()
        self.versions = Versions(
            self.records, VERSIONS, id_of=version_id, key_field="case_id", remember=1 << 20
        )
        self.latest: dict[str, domain.Case] = {}

    async def get(self, case_id: str) -> domain.Case | None:
        return self.latest.get(case_id)

    async def get_many(self, case_ids: Sequence[str]) -> dict[str, domain.Case | None]:
        return {case_id: self.latest.get(case_id) for case_id in case_ids}

    async def save(self, case: domain.Case, *, expected_version: int) -> bool:
        if not await self.versions.insert(case.case_id, case.version, stored(case)):
            return False
        if case.state in ENDED and not case.outbox and not case.effects:
            await self.versions.compact(case.case_id, case.version)
        self.latest[case.case_id] = case
        return True


class Lives:
    """Lives cases through the services' code, side by side; then hands over their documents."""

    def __init__(self) -> None:
        self.now, self.published = Now(), Published()
        self.rules = domain.Rules.default("tracker")
        self.router = build_router(RouterSettings())
        self.routing = InMemoryRecordStore()
        self.timer_store = Kept()
        self.cases, self.indexes = KeptCases(), InMemoryIndexes()
        self.timers = StoredTimers(self.timer_store)
        self.work = UnitOfWork(
            self.cases, self.published, self.indexes, self.timers, clock=self.now.now
        )
        self.outbox = InMemoryOutbox()
        self.sender = Sender(
            outbox=self.outbox,
            platform=TakesAll(),
            renderer=Renderer(),
            tokens=lambda account: "seed-token",
            clock=self.now,
            results=self.published,
            producer="notifier",
            sleep=_no_sleep,
        )

    async def at(self, when: dt.datetime) -> None:
        """Move the clock on to `when`: the clocks due by then fire first (as the sweep fires
        them), and the replies they ask for are posted."""
        self.now.at = when
        while await fire_due(self.timers, when, self._fire, limit=10_000):
            self.now.at = when
            await self.replies()
        self.now.at = when

    async def _fire(self, timer: Timer) -> None:
        """As the sweep fires a clock, at its due instant (a live sweep runs every second)."""
        self.now.at = timer.due_at
        fired = domain.TimerFired(
            step=domain.TimerStep.from_payload(timer.payload), occurred_at=timer.due_at
        )
        await self.work.apply(fired.case_id, lambda c: domain.on_timer(c, fired, self.rules))
        await self.replies()

    async def replies(self) -> None:
        """Post the replies the tracker asked for; hand their results back to it."""
        while self.published.requests:
            requests, self.published.requests = self.published.requests, []
            await self.sender.handle_many([(r, None) for r in requests])
            results, self.published.results = self.published.results, []
            await self.work.apply_many(
                [(r.case_id, _change(domain.record_reply, r, self.rules)) for r in results]
            )

    async def apply(self, messages: Sequence[Any], change: Any) -> None:
        await self.work.apply_many([(m.case_id, _change(change, m, self.rules)) for m in messages])
        await self.replies()


async def _no_sleep(seconds: float) -> None:
    return None


def _change(change: Any, message: Any, rules: domain.Rules) -> Any:
    return lambda case: change(case, message, rules=rules)


@dataclass(frozen=True)
class Plan:
    """One case's life: who, where, what, when."""

    case_id: str
    index: int
    received_at: dt.datetime
    place: str
    category: str
    days_to_resolve: float

    def appeal(self) -> AppealNormalized:
        text = f"{ACCOUNT} {WORDS[self.category].format(self.place)}"
        author = f"seed-u{self.index}"
        return appeal_message(
            text,
            event_id=f"{self.case_id}-appeal",
            case_id=self.case_id,
            occurred_at=self.received_at,
            posted_at=self.received_at,
            post_event_id=f"{self.case_id}-post",
            author=Author(id=author),
            reply_to=ReplyTarget(
                platform="weibo", account=ACCOUNT, user_id=author, post_id=f"seed-p{self.index}"
            ),
            triage=triage_message(self.category, urgent=self.category == "urgent_assistance"),
        )


def plan(
    case_id: str,
    index: int,
    seed: int,
    places: Sequence[str],
    since: float,
    days: float,
    anchor: dt.datetime,
) -> Plan:
    """The life of case `index`: deterministic from the seed (a re-run makes the same cases)."""
    rng = random.Random(seed * 1_000_003 + index)
    ago = rng.uniform(since, days)
    return Plan(
        case_id=case_id,
        index=index,
        received_at=anchor - dt.timedelta(days=ago, seconds=rng.randrange(86_400)),
        place=rng.choice(places),
        category=rng.choice(APPEALS),
        days_to_resolve=rng.uniform(0.5, min(10.0, ago - 12)),
    )


def acted(plan: Plan, unit: str, kind: UnitActionKind, at: dt.datetime, **fields: Any) -> UnitActed:
    return UnitActed(
        event_id=f"{plan.case_id}-{kind.value}",
        occurred_at=at,
        producer="tracker-api",
        case_id=plan.case_id,
        unit_id=unit,
        person=f"local:seed.{unit}",
        action=kind,
        **fields,
    )


async def live(lives: Lives, plan: Plan) -> domain.Case:
    """One case from its appeal to its close (see the module docstring); the closed case."""
    rng = random.Random(plan.index)
    appeal, t = plan.appeal(), plan.received_at
    await lives.at(t)
    await lives.apply([appeal], domain.open_case)
    t += rng.uniform(2, 30) * MINUTE
    await lives.at(t)
    hops = [
        o.model_copy(update={"occurred_at": t})
        for o in lives.router.dispatch(appeal, producer="router")
    ]
    await lives.routing.save(record_dispatch(hops, appeal.event_id), hops)
    await lives.apply(hops, domain.record_dispatch)
    lead = hops[-1].lead_unit
    steps = [
        (rng.uniform(0.2, 8) * HOUR, UnitActionKind.ACCEPT, {}),
        (rng.uniform(0.5, 2) * DAY, UnitActionKind.PROGRESS, {"note": "已联系相关单位，正在核实"}),
    ]
    for delay, kind, fields in steps:
        t += delay
        await lives.at(t)
        await lives.apply([acted(plan, lead, kind, t, **fields)], domain.act)
    t = max(t + HOUR, plan.received_at + plan.days_to_resolve * DAY)
    await lives.at(t)
    resolve = {"outcome": "已依法处理并答复", "amount_recovered": float(rng.randrange(0, 50_000))}
    await lives.apply([acted(plan, lead, UnitActionKind.RESOLVE, t, **resolve)], domain.act)
    case = lives.cases.latest[plan.case_id]
    ask = case.clocks.get("callback")
    t = dt.datetime.fromisoformat(ask) if ask else t + DAY
    await lives.at(t)  # the callback question is asked
    t += rng.uniform(1, 48) * HOUR
    await lives.at(t)
    answer = plan.appeal().model_copy(
        update={
            "event_id": f"{plan.case_id}-answer",
            "occurred_at": t,
            "text": "满意",
            "original_text": "满意",
            "masked_text": "满意",
            "case_id": plan.case_id,
        }
    )
    await lives.apply([answer], _answer)
    case = lives.cases.latest[plan.case_id]
    if case.state is not domain.S.CLOSED:
        raise RuntimeError(f"case {plan.case_id} ended {case.state.value}, not closed")
    return case


def _answer(case: domain.Case, appeal: AppealNormalized, *, rules: domain.Rules) -> domain.Case:
    return domain.record_citizen_reply(case, appeal, rules=rules) or case


Docs = dict[str, dict[str, list[dict[str, Any]]]]  # database part → collection → documents


def documents(lives: Lives, unit_shards: ShardedCollection) -> Docs:
    """Every document the lives left, by part (tracker, notifier, router) and collection, in
    the form the Mongo adapters write them."""
    cases = lives.cases
    units: dict[str, list[dict[str, Any]]] = {}
    for unit, case_ids in lives.indexes.units.items():
        units.setdefault(unit_shards.name(unit), []).extend(
            {"_id": f"{unit}|{c}", "unit": unit, "case_id": c} for c in case_ids
        )
    views = [view(case) for case in cases.latest.values()]
    summaries: dict[str, list[dict[str, Any]]] = {}
    for s in filter(None, map(summary, views)):  # the months' (adapters/projections.py)
        summaries.setdefault(month_of(s["received_at"]), []).append(s)
    tracker = {
        VERSIONS: list(cases.records.collections.get(VERSIONS, {}).values()),
        TIMERS: list(lives.timer_store.collections.get(TIMERS, {}).values()),
        **units,
        # The views' projections, as the views' writer leaves them (adapters/projections.py).
        OPEN_CASES: [d for d in map(open_case, views) if d is not None],
        **summaries,  # case_summaries_<YYYYMM>
        BUILT: [{"_id": OPEN_CASES}, {"_id": SUMMARIES}],  # a duplicate after the first chunk
        CASES: views,  # last: it marks a chunk done
    }
    notifier = {
        "outbox": [
            {**_packed({k: v for k, v in c.items() if k != "_id"}), "_id": key}
            for key, c in lives.outbox.claims.items()
        ],
        "results": list(lives.outbox.results.values()),
    }
    return {
        "tracker": tracker,
        "notifier": notifier,
        "router": {ROUTING: list(lives.routing.docs.values())},
    }


def places(router: Any) -> list[str]:
    """The counties' names of the real directory (an appeal names one)."""
    return [u.names.full[0] for u in router.directory.units if u.tier == "county" and u.names.full]
