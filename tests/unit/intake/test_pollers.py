"""The Weibo pollers with fakes: cursors, pages, the call budget, failures; and reading what
they store."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fengqiao.contracts import RawPostReceived, ReplyTarget
from fengqiao.runtime.clock import FakeClock
from fengqiao.services.intake.adapters.cursors import Cursor, InMemoryCursorStore
from fengqiao.services.intake.adapters.sink import InMemoryPostSink, PostSink
from fengqiao.services.intake.domain import UnreadablePost, read_post
from fengqiao.services.intake.pollers import (
    ENDPOINTS,
    CallBudget,
    Endpoint,
    PolledAccount,
    Poller,
    PollError,
    build_poller,
)
from fengqiao.services.intake.settings import IntakeSettings, WeiboAccount

START = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ACCOUNT = PolledAccount("xinjiang", "@新疆检察", "token-1")
MENTIONS, COMMENT_MENTIONS, TO_ME = ENDPOINTS
_ids = itertools.count(4_900_000_000_000_000)


def status(text: str = "求助", **extra: Any) -> dict[str, Any]:
    item_id = next(_ids)
    return {
        "id": item_id,
        "idstr": str(item_id),
        "created_at": "Fri Nov 27 17:00:00 +0800 2026",
        "text": text,
        "user": {"id": 1000000001, "idstr": "1000000001", "screen_name": "网友", "location": ""},
        **extra,
    }


def comment(on: str = "4800000000000000", text: str = "@新疆检察 求助") -> dict[str, Any]:
    return status(text, status={"id": int(on), "idstr": on, "text": ""})


class FakeApi:
    """The open API: per endpoint a list of items; answers like Weibo, newest first."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {e.name: [] for e in ENDPOINTS}
        self.calls: list[tuple[str, int, int | None]] = []
        self.failing: set[str] = set()
        self.ignores_since_id = False
        self.closed = False

    async def page(
        self, endpoint: Endpoint, *, token: str, since_id: int, max_id: int | None, count: int
    ) -> list[dict[str, Any]]:
        assert token == ACCOUNT.access_token
        self.calls.append((endpoint.name, since_id, max_id))
        if endpoint.name in self.failing:
            raise PollError(f"{endpoint.name}: HTTP 503")
        if self.ignores_since_id:
            return list(reversed(self.items[endpoint.name]))[:count]
        found = [
            i
            for i in self.items[endpoint.name]
            if since_id < i["id"] <= (max_id if max_id is not None else 2**63)
        ]
        return sorted(found, key=lambda i: i["id"], reverse=True)[:count]

    async def aclose(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []


def poller(
    api: FakeApi,
    cursors: InMemoryCursorStore,
    sink: PostSink,
    clock: FakeClock | None = None,
    *,
    per_hour: int = 1000,
    page_size: int = 50,
    max_pages: int = 5,
    **kwargs: Any,
) -> Poller:
    clock = clock or FakeClock(START)
    return Poller(
        [ACCOUNT],
        api,
        cursors,
        sink,
        clock,
        producer="intake",
        budget=CallBudget(per_hour, clock),
        page_size=page_size,
        max_pages=max_pages,
        **kwargs,
    )


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cursors() -> InMemoryCursorStore:
    return InMemoryCursorStore()


@pytest.fixture
def sink() -> InMemoryPostSink:
    return InMemoryPostSink()


def source_ids(sink: InMemoryPostSink) -> list[str]:
    return [p.source_id for p in sink.posts]


# --------------------------------------------------------------------------- cursors


async def test_new_items_are_stored_oldest_first_and_the_cursor_moves_past_them(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    mentions = [status(f"求助 {n}") for n in range(5)]
    api.items[MENTIONS.name] = mentions
    assert await poller(api, cursors, sink).poll_once() == 5
    assert source_ids(sink) == [f"status:{m['idstr']}" for m in mentions]
    first = sink.posts[0]
    assert (first.platform, first.channel, first.account) == ("weibo", "poll", "@新疆检察")
    assert first.payload == mentions[0]
    assert first.producer == "intake" and first.occurred_at == START
    newest = mentions[-1]["id"]
    assert cursors.cursors["xinjiang", MENTIONS.name] == Cursor(since_id=newest)
    assert ("xinjiang", COMMENT_MENTIONS.name) not in cursors.cursors  # nothing to move


async def test_a_second_poll_stores_nothing_and_asks_once_per_endpoint(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status() for _ in range(5)]
    pollers = poller(api, cursors, sink)
    await pollers.poll_once()
    api.calls.clear()
    assert await pollers.poll_once() == 0
    assert len(sink.posts) == 5
    newest = api.items[MENTIONS.name][-1]["id"]
    assert api.calls == [(MENTIONS.name, newest, None), (COMMENT_MENTIONS.name, 0, None),
                         (TO_ME.name, 0, None)]  # fmt: skip


async def test_later_items_are_stored_once_more_and_a_new_poller_keeps_the_cursor(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status() for _ in range(5)]
    await poller(api, cursors, sink).poll_once()
    api.items[MENTIONS.name] += [status() for _ in range(2)]
    assert await poller(api, cursors, sink).poll_once() == 2
    assert await poller(api, cursors, sink).poll_once() == 0
    assert len(set(source_ids(sink))) == len(sink.posts) == 7


async def test_a_backlog_deeper_than_a_poll_is_read_over_several_polls_without_a_gap(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    backlog = [status() for _ in range(23)]
    api.items[MENTIONS.name] = list(backlog)
    pollers = poller(api, cursors, sink, page_size=5, max_pages=2)
    assert await pollers.poll_once() == 10  # the newest ten
    cursor = cursors.cursors["xinjiang", MENTIONS.name]
    assert cursor == Cursor(since_id=0, max_id=backlog[13]["id"] - 1, top_id=backlog[22]["id"])
    api.items[MENTIONS.name].append(newer := status("新的求助"))  # arrives meanwhile
    assert await pollers.poll_once() == 10
    assert await pollers.poll_once() == 3  # the backlog's bottom reached: since_id = its top
    assert cursors.cursors["xinjiang", MENTIONS.name] == Cursor(since_id=backlog[22]["id"])
    assert await pollers.poll_once() == 1  # then what came meanwhile
    assert sorted(source_ids(sink)) == sorted(f"status:{i['idstr']}" for i in [*backlog, newer])


async def test_a_platform_that_ignores_since_id_repeats_nothing(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status() for _ in range(3)]
    pollers = poller(api, cursors, sink)
    await pollers.poll_once()
    api.ignores_since_id = True
    assert await pollers.poll_once() == 0
    assert len(sink.posts) == 3


async def test_a_comment_found_by_two_endpoints_is_one_post(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    both = comment()
    api.items[COMMENT_MENTIONS.name] = [both]
    api.items[TO_ME.name] = [both]
    await poller(api, cursors, sink).poll_once()
    assert source_ids(sink) == [f"comment:{both['idstr']}"] * 2  # one case downstream


# --------------------------------------------------------------------------- failures


async def test_when_the_sink_fails_the_cursor_stays_and_the_next_poll_brings_everything(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status() for _ in range(4)]
    sink.fail = True
    pollers = poller(api, cursors, sink)
    assert await pollers.poll_once() == 0
    assert cursors.cursors == {}
    sink.fail = False
    assert await pollers.poll_once() == 4
    assert len(sink.posts) == 4


async def test_when_the_cursor_cannot_be_saved_the_items_come_again(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status() for _ in range(2)]
    cursors.fail = True
    pollers = poller(api, cursors, sink)
    await pollers.poll_once()  # stored, cursor lost: at least once, never lost
    cursors.fail = False
    await pollers.poll_once()
    assert len(sink.posts) == 4 and len(set(source_ids(sink))) == 2


async def test_a_failing_endpoint_is_tried_again_and_the_others_go_on(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    api.items[MENTIONS.name] = [status()]
    api.items[TO_ME.name] = [comment()]
    api.failing = {MENTIONS.name}
    pollers = poller(api, cursors, sink)
    assert await pollers.poll_once() == 1
    assert ("xinjiang", MENTIONS.name) not in cursors.cursors
    api.failing = set()
    assert await pollers.poll_once() == 1


# --------------------------------------------------------------------------- budget


def test_the_budget_allows_so_many_calls_in_any_hour() -> None:
    clock = FakeClock(START)
    budget = CallBudget(2, clock)
    assert budget.take("a") and budget.take("a")
    assert not budget.take("a")
    assert budget.take("b")  # per account
    clock.advance(timedelta(minutes=59))
    assert not budget.take("a")
    clock.advance(timedelta(minutes=1))
    assert budget.take("a")


async def test_a_spent_budget_skips_the_account_with_a_log_line(
    api: FakeApi,
    cursors: InMemoryCursorStore,
    sink: InMemoryPostSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(START)
    api.items[TO_ME.name] = [comment()]
    pollers = poller(api, cursors, sink, clock, per_hour=2)
    with caplog.at_level(logging.WARNING, "fengqiao.intake.pollers"):
        assert await pollers.poll_once() == 0  # two calls, both on empty endpoints
    assert [name for name, *_ in api.calls] == [MENTIONS.name, COMMENT_MENTIONS.name]
    assert [r.getMessage() for r in caplog.records] == [
        "@新疆检察: call budget spent (2 calls/hour); skipped until calls age out"
    ]
    assert await pollers.poll_once() == 0  # still spent: no call at all
    assert len(api.calls) == 2
    clock.advance(timedelta(hours=1))
    # The next hour starts where the budget ran out, so no endpoint starves.
    assert await pollers.poll_once() == 1
    assert [name for name, *_ in api.calls[2:]] == [TO_ME.name, TO_ME.name]


# --------------------------------------------------------------------------- running


async def test_it_polls_then_sleeps_the_interval_until_stopped(
    api: FakeApi, cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    sleeps: list[float] = []
    slept = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            slept.set()
        await asyncio.sleep(0)

    api.items[MENTIONS.name] = [status()]
    pollers = poller(api, cursors, sink, interval_seconds=180, sleep=sleep)
    await pollers.start()
    await asyncio.wait_for(slept.wait(), 5)
    await pollers.stop()
    assert sleeps[:3] == [180, 180, 180]
    assert len(sink.posts) == 1
    assert api.closed


def test_only_accounts_with_a_token_are_polled(
    cursors: InMemoryCursorStore, sink: InMemoryPostSink
) -> None:
    settings = IntakeSettings(
        weibo_accounts={
            "xinjiang": WeiboAccount(handle="@新疆检察", access_token="token-1"),
            "bozhou": WeiboAccount(handle="@博州检察", app_secret="pushed-0123456789ab"),
        }
    )
    built = build_poller(
        settings, sink, FakeClock(START), cursors, producer="intake", api=FakeApi()
    )
    assert built.accounts == [ACCOUNT]


# --------------------------------------------------------------------------- reading


def polled(item: dict[str, Any], kind: str) -> RawPostReceived:
    return RawPostReceived(
        occurred_at=START,
        producer="t",
        platform="weibo",
        channel="poll",
        account="@新疆检察",
        source_id=f"{kind}:{item['idstr']}",
        delivery_id="d",
        payload=item,
    )


def test_a_polled_status_is_answered_on_that_status() -> None:
    item = status("伊宁县 求助", geo={"type": "Point", "coordinates": [43.9, 81.3]})
    item["user"] = {"id": 5, "idstr": "5", "screen_name": "伊宁网友", "location": "新疆 伊犁"}
    post = read_post(polled(item, "status"))
    assert (post.author.id, post.author.name, post.author.stated_residence) == (
        "5",
        "伊宁网友",
        "新疆 伊犁",
    )
    assert post.geo is not None and (post.geo.lat, post.geo.lon) == (43.9, 81.3)
    assert post.reply_to == ReplyTarget(
        platform="weibo", account="@新疆检察", user_id="5", post_id=item["idstr"]
    )
    assert post.posted_at == datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert (post.channel, post.text) == ("poll", "伊宁县 求助")


def test_a_polled_comment_is_answered_on_that_comment() -> None:
    item = comment(on="4800000000000007")
    post = read_post(polled(item, "comment"))
    assert post.reply_to.post_id == "4800000000000007"
    assert post.reply_to.comment_id == item["idstr"]
    assert post.author.stated_residence is None  # an empty location is no residence
    assert post.geo is None


def test_a_polled_item_off_its_shape_is_unreadable() -> None:
    with pytest.raises(UnreadablePost, match="user"):
        read_post(polled({"id": 1, "idstr": "1", "text": "x"}, "status"))
    with pytest.raises(UnreadablePost, match="neither a status nor a comment"):
        read_post(polled(status(), "repost"))
