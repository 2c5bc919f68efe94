"""Appeals as Weibo pushes them, under load: signed as intake verifies them, sent open-loop at a
given rate, and re-sent as a platform re-sends (fault drills in `tests/faults/`, `bench/e2e.py`).

A push goes to intake's `POST /webhooks/weibo/<account>?signature=&timestamp=&nonce=`. Every
`private_every`-th appeal is a private message (push type `text`: the reply must come back as a
private message to its sender); the others @-mention the account in a status (type `mention`,
subtype `status`: the reply is a comment on that status). Each appeal has its own sender, so
intake never links two of them as repeats of one matter, and its own text.

A 2xx is an accepted appeal. A 503 is re-sent after its `Retry-After`; a refused connection or a
timeout (intake down, or slow) after a second, each time signed anew, with the same body: a
re-send of one push, which intake must not turn into a second appeal. Any other answer is a
refusal and is not re-sent. `deliver` gives up after `retry_for` seconds.

    load = PushLoad(intake_url, secret="...", run="a1b2c3")
    deliveries = await load.send(count=200, rate=20.0)
    accepted = [d for d in deliveries if d.accepted]
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import Literal

import httpx

from fengqiao.services.intake.weibo import push_signature

Channel = Literal["comment", "private_message"]

ACCOUNT = "xinjiang"
HANDLE = "@新疆检察"
RECEIVER_ID = "5000000001"

# What citizens write: each an appeal that triage is sure of (`fengqiao route` says is_appeal,
# no review, not for the triage queue, where a case waits for a dispatcher), in different places
# and categories so the router spreads them over the matrix. Eight: every fifth appeal, a private
# message, takes each of them in turn.
TEXTS = (
    "@新疆检察 求助：我在博乐市的工地干了半年活，包工头拖欠工资三万多元一直不给，请帮忙讨薪",
    "@新疆检察 我母亲在伊宁市务工时摔伤，官司赢了可对方不执行赔偿，家里很困难，求帮助",
    "@新疆检察 求助：塔城市的包工头欠我们十几个农民工的工钱，过年都回不了家",
    "您好，我父亲在喀什市被人打伤住院，打人者不愿承担医药费，请问该怎么维权",
    "你好，我在库尔勒市打工，老板拖欠我两个月工资不发，请问检察院能帮忙吗",
    "@新疆检察 阿克苏市的一家工厂拖欠我们二十多个工人半年工资，老板跑了，求帮助",
    "@新疆检察 求助：哈密市有人打伤了我弟弟，对方至今不赔医药费，请问该怎么办",
    "@新疆检察 求助：我在石河子市打工受伤，老板不给工伤赔偿也不给工资，求帮忙维权",
)
# Appeals in danger (`fengqiao route` says urgent for each): `urgent_every` mixes them into a load,
# to measure how long an urgent appeal waits behind a burst of ordinary ones (bench/e2e.py).
URGENT_TEXTS = (
    "@新疆检察 救命！我在博乐市被人持刀威胁，现在还被关在屋里，求求你们快来救救我",
    "@新疆检察 紧急求助：我女儿在伊宁市被人拐走了，已经一天没消息，求帮助",
    "@新疆检察 求助：库尔勒市有人扬言要杀了我全家，他现在就在我家门口砸门",
    "@新疆检察 我丈夫在喀什市天天家暴我，今天又拿刀要砍我，我躲在邻居家不敢回去，求救",
)
CONNECTIONS = 256  # to intake at once, at most
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def weibo_time(at: float) -> str:
    """`at` (Unix seconds) as Weibo writes times: `Mon Nov 27 21:00:00 +0800 2026`."""
    t = time.gmtime(at + 8 * 3600)
    clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} {clock} +0800 {t.tm_year}"


@dataclass(frozen=True)
class Push:
    """One citizen's appeal as a push, and where its acknowledgment must appear."""

    index: int
    channel: Channel
    sender_id: str
    post_id: str | None  # the status that mentions the account (comment channel)
    body: bytes
    urgent: bool = False  # one of URGENT_TEXTS


@dataclass
class Delivery:
    """What became of one push: when it was first sent and accepted (Unix seconds), the tries."""

    push: Push
    sent_at: float
    accepted_at: float | None = None
    tries: int = 0
    answers: list[str] = field(default_factory=list)  # every non-2xx answer, in order

    @property
    def accepted(self) -> bool:
        return self.accepted_at is not None


class PushLoad:
    """Pushes of one run (`run`: distinct ids for each run) to intake at `intake_url`."""

    def __init__(
        self,
        intake_url: str,
        *,
        secret: str,
        run: str | None = None,
        private_every: int = 5,
        urgent_every: int = 0,
        retry_for: float = 300.0,
        timeout: float = 10.0,
    ) -> None:
        self.url = f"{intake_url}/webhooks/weibo/{ACCOUNT}"
        self.secret = secret
        self.run = run or secrets.token_hex(4)
        self.private_every = private_every
        self.urgent_every = urgent_every
        self.retry_for = retry_for
        self.timeout = timeout
        # Senders and statuses are numbers on Weibo: this run's own range of them.
        self._base = 10**11 + (zlib.crc32(self.run.encode()) % 10**6) * 10**5
        self.next_index = 0

    def make(self, index: int) -> Push:
        """The `index`-th appeal of the run."""
        private = self.private_every > 0 and index % self.private_every == self.private_every - 1
        sender = str(self._base + index)
        urgent = self.urgent_every > 0 and index % self.urgent_every == self.urgent_every - 1
        texts = URGENT_TEXTS if urgent else TEXTS
        text = f"{texts[index % len(texts)]}（{self.run}-{index}）"
        payload: dict[str, object] = {
            "type": "text" if private else "mention",
            "receiver_id": RECEIVER_ID,
            "sender_id": sender,
            "created_at": weibo_time(time.time()),
            "text": text,
        }
        post_id = None if private else str(7 * 10**15 + self._base + index)
        if post_id is not None:
            payload["data"] = {"subtype": "status", "key": post_id}
        body = json.dumps(payload, ensure_ascii=False).encode()
        channel: Channel = "private_message" if private else "comment"
        return Push(index, channel, sender, post_id, body, urgent)

    def signed_query(self) -> dict[str, str]:
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(8)
        signature = push_signature(self.secret, timestamp, nonce)
        return {"signature": signature, "timestamp": timestamp, "nonce": nonce}

    async def deliver(self, client: httpx.AsyncClient, push: Push) -> Delivery:
        """Send `push` until it is accepted, refused, or `retry_for` seconds have passed."""
        delivery = Delivery(push, sent_at=time.time())
        give_up = time.monotonic() + self.retry_for
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < give_up:
            delivery.tries += 1
            try:
                answer = await client.post(
                    self.url, params=self.signed_query(), content=push.body, headers=headers
                )
            except httpx.TransportError as exc:  # refused, reset, timed out: send it again
                delivery.answers.append(type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if answer.is_success:
                delivery.accepted_at = time.time()
                return delivery
            delivery.answers.append(f"{answer.status_code} {answer.text[:200]}")
            if answer.status_code != 503:
                return delivery  # refused: a platform does not send it again
            await asyncio.sleep(_retry_after(answer))
        return delivery

    async def send(self, count: int, rate: float) -> list[Delivery]:
        """`count` new appeals at `rate` a second, open-loop (each on its own schedule, however
        long the earlier ones take), every one delivered or given up on."""
        pushes = [self.make(self.next_index + i) for i in range(count)]
        self.next_index += count
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=64)
        # At most as many pushes in flight as connections: thousands waiting in httpcore's pool
        # cost it time quadratic in their number (a 10,000-push burst stalled the load, at 100 %
        # of a core, not intake). A platform's pushes wait their turn the same way.
        slots = asyncio.Semaphore(CONNECTIONS)

        async def deliver(push: Push) -> Delivery:
            async with slots:
                return await self.deliver(client, push)

        async with httpx.AsyncClient(timeout=self.timeout, limits=limits) as client:
            started = time.monotonic()
            tasks = []
            for i, push in enumerate(pushes):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(deliver(push)))
            return list(await asyncio.gather(*tasks))


def _retry_after(answer: httpx.Response) -> float:
    try:
        return max(0.1, float(answer.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def intake_env(secret: str) -> dict[str, str]:
    """Intake's settings for the pushes of `PushLoad` with `secret`."""
    accounts = {ACCOUNT: {"handle": HANDLE, "app_secret": secret}}
    return {"FENGQIAO_INTAKE_WEIBO_ACCOUNTS": json.dumps(accounts, ensure_ascii=False)}
