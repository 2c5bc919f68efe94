"""Cases as documents, and the store that applies a change, writes it and flushes its outbox."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from fengqiao.contracts import (
    AppealNormalized,
    Author,
    CaseEventRecorded,
    DispatchOrdered,
    Envelope,
    ReplyPurpose,
    ReplyRequested,
    ReplySent,
    ReplyTarget,
    UnitActed,
    UnitActionKind,
)
from fengqiao.runtime.messaging import DeclaredPublishers
from fengqiao.services.tracker import domain
from fengqiao.services.tracker.adapters.cases import (
    PACKED,
    InMemoryCaseRepository,
    from_document,
    stored,
    to_document,
    unpacked,
)
from fengqiao.services.tracker.adapters.indexes import InMemoryIndexes
from fengqiao.services.tracker.adapters.timers import InMemoryTimers
from fengqiao.services.tracker.unit_of_work import MAX_ATTEMPTS, ConcurrentWriteError, UnitOfWork
from fengqiao.testing.factories import dispatch_message, final_hop_message

RULES = domain.Rules.default()
AT = datetime(2026, 8, 1, 10, tzinfo=UTC)
CASE = "c-1"


def appeal(event_id: str = "appeal-1") -> AppealNormalized:
    return AppealNormalized(
        event_id=event_id,
        occurred_at=AT,
        producer="intake",
        case_id=CASE,
        post_event_id="raw-1",
        platform="weibo",
        channel="webhook",
        account="@新疆检察",
        author=Author(id="u1"),
        posted_at=AT,
        original_text="博乐市拖欠工资",
        text="博乐市拖欠工资",
        masked_text="博乐市拖欠工资",
        lang="zh",
        is_appeal=True,
        reply_to=ReplyTarget(platform="weibo", account="@新疆检察", user_id="u1", post_id="p1"),
    )


def order() -> DispatchOrdered:
    return dispatch_message(event_id="order-1", occurred_at=AT, case_id=CASE)


def failed_reply() -> ReplySent:
    return ReplySent(
        event_id="sent-1",
        occurred_at=AT,
        producer="notifier",
        case_id=CASE,
        request_event_id="req-1",
        idempotency_key=f"{CASE}:acknowledgment:0",
        purpose=ReplyPurpose.ACKNOWLEDGMENT,
        status="failed",
        error="403",
    )


def final_order() -> DispatchOrdered:
    return final_hop_message(event_id="order-2", occurred_at=AT, case_id=CASE)


def accept() -> UnitActed:
    return UnitActed(
        event_id="accept-1",
        occurred_at=AT,
        producer="tracker-api",
        case_id=CASE,
        unit_id="652701",
        action=UnitActionKind.ACCEPT,
    )


def busy_case() -> domain.Case:
    case = domain.open_case(domain.new_case(CASE), appeal(), rules=RULES)
    case = domain.record_dispatch(case, order(), rules=RULES)
    return domain.record_reply(case, failed_reply(), rules=RULES)


class RecordingPublisher:
    """Stands in for a FastStream publisher: keeps what was published, with its key."""

    def __init__(self) -> None:
        self.published: list[tuple[Envelope, bytes | None]] = []

    async def publish(
        self, message: Envelope, *, key: bytes | None = None, no_confirm: bool = False
    ) -> None:
        self.published.append((message, key))


class ConflictOnceRepository(InMemoryCaseRepository):
    """Another replica writes the case between our read and our first save."""

    def __init__(self) -> None:
        super().__init__()
        self.save_attempts = 0

    async def save(self, case: domain.Case, *, expected_version: int) -> bool:
        self.save_attempts += 1
        if self.save_attempts == 1:
            return False
        return await super().save(case, expected_version=expected_version)


class AlwaysConflictRepository(InMemoryCaseRepository):
    async def save(self, case: domain.Case, *, expected_version: int) -> bool:
        return False


@pytest.fixture
def publishers() -> dict[str, RecordingPublisher]:
    return {"case.events": RecordingPublisher(), "replies.requested": RecordingPublisher()}


def topics(publishers: dict[str, RecordingPublisher]) -> dict[str, list[str]]:
    return {t: [type(m).__name__ for m, _ in p.published] for t, p in publishers.items()}


# --------------------------------------------------------------------------- documents


def test_a_case_round_trips_through_its_document() -> None:
    case = busy_case()
    assert from_document(to_document(case)) == case


def test_the_outbox_round_trips_with_its_message_types() -> None:
    case = busy_case()
    back = from_document(copy.deepcopy(to_document(case)))
    assert [type(o.message) for o in back.outbox] == [
        CaseEventRecorded,
        ReplyRequested,
        CaseEventRecorded,
        CaseEventRecorded,
    ]
    assert back.outbox == case.outbox


def test_the_document_is_plain_data_keyed_by_case_and_version() -> None:
    doc = to_document(busy_case())
    assert doc["_id"] == f"{CASE}:{busy_case().version:08d}"
    assert doc["case_id"] == CASE
    assert doc["state"] == "dispatched"
    assert doc["processed"] == ["appeal-1", "order-1", "sent-1"]
    assert list(doc["outbox"]) == [o.message.event_id for o in busy_case().outbox]
    first = next(iter(doc["outbox"].values()))
    assert first["topic"] == "case.events"
    assert first["body"]["occurred_at"] == "2026-08-01T10:00:00Z"
    assert doc["timeline"][0]["event"] == "case.opened"


def test_a_new_case_round_trips() -> None:
    case = domain.new_case(CASE)
    assert from_document(to_document(case)) == case


def hostile_case() -> domain.Case:
    """A busy case whose texts need escaping in JSON, with an extra version after it."""
    case = busy_case()
    entry = replace(case.timeline[-1], detail='引号 " 反斜杠 \\ 换行\n\u0000 </script>')
    return replace(case, timeline=(*case.timeline, entry), version=case.version + 1)


@pytest.mark.parametrize(
    "case", [busy_case(), hostile_case(), domain.new_case(CASE)], ids=["busy", "hostile", "new"]
)
def test_a_case_round_trips_through_its_stored_form(case: domain.Case) -> None:
    document = stored(case)
    assert not set(PACKED) & set(document) and isinstance(document["packed"], str)
    assert document["state"] == case.state.value and document["version"] == case.version
    assert unpacked(document) == to_document(case)
    assert from_document(unpacked(document)) == case


def test_entries_and_messages_are_made_json_once_for_every_version() -> None:
    case = busy_case()
    stored(case)
    made = [e.json for e in case.timeline], [o.body for o in case.outbox]
    later = replace(case, version=case.version + 1)
    assert unpacked(stored(later)) == to_document(later)
    assert all(e.json is j for e, j in zip(later.timeline, made[0], strict=True))
    assert all(o.body is b for o, b in zip(later.outbox, made[1], strict=True))


# --------------------------------------------------------------------------- the store


async def test_applying_a_change_saves_the_case_and_flushes_its_outbox(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = InMemoryCaseRepository()
    store = UnitOfWork(repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers())
    case = await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    assert topics(publishers) == {
        "case.events": ["CaseEventRecorded"],
        "replies.requested": ["ReplyRequested"],
    }
    # A case's events by its id; its reply requests by the account that posts them.
    keys = {topic: {key for _, key in p.published} for topic, p in publishers.items()}
    assert keys["case.events"] == {CASE.encode()}
    assert keys["replies.requested"] == {f"weibo:{case.account}".encode()}
    stored = repo.docs[CASE]
    assert stored["outbox"] == {}
    assert stored["opened"] is True
    assert stored["processed"] == ["appeal-1"]
    # Clearing the outbox is a version of its own (versions are never edited in place).
    assert (case.version, stored["version"]) == (1, 2)


async def test_redelivering_a_message_writes_and_publishes_nothing(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = InMemoryCaseRepository()
    store = UnitOfWork(repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers())
    change = lambda c: domain.open_case(c, appeal(), rules=RULES)  # noqa: E731
    await store.apply(CASE, change)
    before = copy.deepcopy(repo.docs[CASE])
    await store.apply(CASE, change)
    assert repo.docs[CASE] == before
    assert topics(publishers) == {
        "case.events": ["CaseEventRecorded"],
        "replies.requested": ["ReplyRequested"],
    }


async def test_a_left_over_outbox_is_published_again_on_the_next_delivery(
    publishers: dict[str, RecordingPublisher],
) -> None:
    # A crash between the save and the flush leaves the outbox in the document.
    repo = InMemoryCaseRepository()
    case = domain.open_case(domain.new_case(CASE), appeal(), rules=RULES)
    assert await repo.save(case, expected_version=0)
    store = UnitOfWork(repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers())
    await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    assert topics(publishers) == {
        "case.events": ["CaseEventRecorded"],
        "replies.requested": ["ReplyRequested"],
    }
    assert repo.docs[CASE]["outbox"] == {}


async def test_a_conflicting_concurrent_write_is_retried(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = ConflictOnceRepository()
    store = UnitOfWork(repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers())
    await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    assert repo.save_attempts == 3  # the conflict, the retry, and the cleared outbox
    assert repo.docs[CASE]["opened"] is True
    assert repo.docs[CASE]["outbox"] == {}
    # Published once: the first, refused attempt published nothing.
    assert topics(publishers)["replies.requested"] == ["ReplyRequested"]


async def test_a_write_that_keeps_conflicting_gives_up_naming_the_case(
    publishers: dict[str, RecordingPublisher],
) -> None:
    store = UnitOfWork(
        AlwaysConflictRepository(),
        DeclaredPublishers(publishers),
        InMemoryIndexes(),
        InMemoryTimers(),
    )
    with pytest.raises(ConcurrentWriteError, match=f"case {CASE}: {MAX_ATTEMPTS} conflicting"):
        await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    assert topics(publishers) == {"case.events": [], "replies.requested": []}


class CountingRepository(InMemoryCaseRepository):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[tuple[str, int]] = []

    async def save(self, case: domain.Case, *, expected_version: int) -> bool:
        self.saved.append((case.case_id, case.version))
        return await super().save(case, expected_version=expected_version)


async def test_a_batch_writes_each_case_once_in_order_and_leaves_out_a_change_that_raises(
    publishers: dict[str, RecordingPublisher],
) -> None:
    repo = CountingRepository()
    store = UnitOfWork(
        repo, DeclaredPublishers(publishers), InMemoryIndexes(), InMemoryTimers(), settle_after=60
    )

    def boom(case: domain.Case) -> domain.Case:
        raise ValueError("cannot take this one")

    other = "c-2"
    opened_other = lambda c: domain.open_case(  # noqa: E731
        c, appeal("appeal-2").model_copy(update={"case_id": other}), rules=RULES
    )
    results = await store.apply_many(
        [
            (CASE, lambda c: domain.open_case(c, appeal(), rules=RULES)),
            (other, opened_other),
            (CASE, boom),
            (CASE, lambda c: domain.record_dispatch(c, order(), rules=RULES)),
        ]
    )
    case, second, failed, dispatched = results
    assert isinstance(failed, ValueError) and str(failed) == "cannot take this one"
    assert isinstance(case, domain.Case) and case is dispatched  # one version for both changes
    assert case.version == 1 and case.processed == {"appeal-1", "order-1"}
    assert [e.event for e in case.timeline] == ["case.opened", "case.dispatched"]
    assert isinstance(second, domain.Case) and second.case_id == other
    assert sorted(repo.saved) == [(CASE, 1), (other, 1)]
    # The outbox of both changes of the case, in their order, published once.
    events = [m for m, _ in publishers["case.events"].published if m.case_id == CASE]
    assert [e.event for e in events] == ["case.opened", "case.dispatched"]


async def test_a_clock_started_and_stopped_in_one_batch_never_reaches_the_timers(
    publishers: dict[str, RecordingPublisher],
) -> None:
    timers = InMemoryTimers()
    store = UnitOfWork(
        InMemoryCaseRepository(), DeclaredPublishers(publishers), InMemoryIndexes(), timers
    )
    await store.apply(CASE, lambda c: domain.open_case(c, appeal(), rules=RULES))
    ack = [k for k in timers.store.collections.get("timer_versions", {}) if ":ack#" in k]
    assert ack, "the appeal started its acknowledgment clock"
    sent = failed_reply().model_copy(update={"status": "sent", "error": None})
    # The acknowledgment (stops "ack", which ran before) and a second appeal copy in one poll.
    results = await store.apply_many(
        [
            (CASE, lambda c: domain.record_reply(c, sent, rules=RULES)),
            (CASE, lambda c: domain.open_case(c, appeal(), rules=RULES)),
        ]
    )
    assert all(isinstance(r, domain.Case) for r in results)
    versions = timers.store.collections["timer_versions"]
    assert any(
        k.startswith(f"{CASE}:ack#") and v["state"] == "cancelled" for k, v in versions.items()
    )

    # A dispatch starts "sign"; its acceptance in the same poll stops it again: nothing written.
    before, looked_up, get = set(versions), [], timers.store.get

    async def counted_get(collection: str, doc_id: str) -> dict[str, Any] | None:
        looked_up.append(doc_id)
        return await get(collection, doc_id)

    timers.store.get = counted_get  # type: ignore[method-assign]
    [_, accepted] = await store.apply_many(
        [
            (CASE, lambda c: domain.record_dispatch(c, final_order(), rules=RULES)),
            (CASE, lambda c: domain.act(c, accept(), rules=RULES)),
        ]
    )
    assert isinstance(accepted, domain.Case) and accepted.state is domain.S.ACCEPTED
    written = {k.split("#")[0] for k in set(versions) - before}
    assert f"{CASE}:sign" not in written and f"{CASE}:progress" in written
    assert not [k for k in looked_up if k.startswith(f"{CASE}:sign#")]  # not even asked about


async def test_the_in_memory_repository_refuses_a_stale_version() -> None:
    repo = InMemoryCaseRepository()
    case = domain.open_case(domain.new_case(CASE), appeal(), rules=RULES)
    assert await repo.save(case, expected_version=0)
    assert not await repo.save(case, expected_version=0)
    assert await repo.get(CASE) == case
    assert await repo.get("c-unknown") is None
