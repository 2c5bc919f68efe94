"""`make demo`: the whole system on the article's five cases, then everything stopped.

Starts the local stack (unless FENGQIAO_EXTERNAL is set), the platform simulator and the four
services as processes; posts the five cases to intake's signed webhook; waits for each case's
dispatch chain and its public acknowledgment; prints both and what the simulator received.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from contracts import APPEALS, DISPATCH_ORDERS, REPLIES_SENT
from fengqiao import processes, stack
from fengqiao.settings import StackSettings
from fengqiao.signing import signed_headers
from fengqiao.watch import TopicWatcher

SCENARIO = Path(__file__).parent / "scenarios" / "article.yaml"
SOURCE = "demo"
SECRET = "demo-secret-" + uuid.uuid4().hex[:8]  # per run; never a real secret


def demo_env(
    secret: str, simulator_port: int = processes.DEFAULT_PORTS["simulator"]
) -> dict[str, str]:
    """Settings of the services for a local run against the simulator."""
    return {
        "FENGQIAO_INTAKE_GENERIC_SECRETS": json.dumps({SOURCE: secret}),
        "FENGQIAO_NOTIFIER_WEIBO_API_BASE": f"http://127.0.0.1:{simulator_port}",
        "FENGQIAO_NOTIFIER_DEFAULT_ACCESS_TOKEN": "simulator-token",
    }


def load_posts(run_id: str) -> list[dict[str, Any]]:
    """The scenario's posts, made unique to this run: post ids, and author ids too — intake
    merges an author's repeated appeals into one case (7 days), so a second demo on the same
    stack would otherwise find every case already open."""
    posts: list[dict[str, Any]] = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))["posts"]
    for post in posts:
        post["id"] = f"{post['id']}-{run_id}"
        post["author"] = {**post["author"], "id": f"{post['author']['id']}-{run_id}"}
        post["text"] = " ".join(post["text"].split())
    return posts


async def feed_and_watch(
    kafka_bootstrap: str,
    intake_url: str,
    posts: list[dict[str, Any]],
    *,
    secret: str,
    timeout: float = 60.0,
) -> TopicWatcher:
    """POST `posts` to intake's generic webhook and wait until each case is dispatched to its
    final unit and acknowledged; return what the topics carried meanwhile."""
    async with (
        TopicWatcher(
            kafka_bootstrap,
            [APPEALS.name, DISPATCH_ORDERS.name, REPLIES_SENT.name],
            since_ms=int(time.time() * 1000) - 1000,
        ) as watcher,
        httpx.AsyncClient(base_url=intake_url, timeout=10) as http,
    ):
        for post in posts:
            body = {k: post[k] for k in ("id", "account", "author", "text")}
            body["platform"] = "weibo"
            raw = json.dumps(body, ensure_ascii=False).encode()
            response = await http.post(
                f"/webhooks/generic/{SOURCE}", content=raw, headers=signed_headers(secret, raw)
            )
            print(f"  posted {post['id']}: HTTP {response.status_code}")
            response.raise_for_status()
        ids = {p["id"] for p in posts}

        def complete(w: TopicWatcher) -> bool:
            cases = {a.case_id for a in w.of(APPEALS.name, lambda a: a.reply_to.post_id in ids)}
            finals = {o.case_id for o in w.of(DISPATCH_ORDERS.name, lambda o: o.final)}
            acks = {r.case_id for r in w.of(REPLIES_SENT.name)}
            return len(cases) == len(ids) and cases <= finals and cases <= acks

        await watcher.wait_for(
            complete, timeout=timeout, what="every case dispatched and acknowledged"
        )
        return watcher


def _post_is(post_id: str) -> Callable[[Any], bool]:
    return lambda appeal: bool(appeal.reply_to.post_id == post_id)


def _case_is(case_id: str) -> Callable[[Any], bool]:
    return lambda message: bool(message.case_id == case_id)


def report(
    watcher: TopicWatcher, posts: list[dict[str, Any]], received: list[dict[str, Any]]
) -> bool:
    ok = True
    for post in posts:
        [appeal] = watcher.of(APPEALS.name, _post_is(post["id"]))
        orders = sorted(
            watcher.of(DISPATCH_ORDERS.name, _case_is(appeal.case_id)),
            key=lambda o: o.hop,
        )
        final = orders[-1]
        handles = " → ".join(
            [o.from_unit for o in orders[:1]]
            + [f"{o.to_unit} {o.to_handle or ''}".strip() for o in orders]
        )
        expect = post["expect"]
        good = (
            final.chain == expect["chain"]
            and final.category == expect["category"]
            and ((final.urgency.value == "urgent") == expect["urgent"])
        )
        ok &= good
        print(f"\n{'✓' if good else '✗'} {post['title']}")
        print(f"  case {appeal.case_id}: {appeal.masked_text[:60]}…")
        print(f"  dispatch: {handles}")
        places = ", ".join(e.value for e in final.evidence if e.kind == "text_place")
        print(
            f"  category {final.category}, {final.urgency.value}, "
            f"confidence {final.confidence:.2f}, places named: {places}"
        )
        if not good:
            print(
                f"  expected chain {expect['chain']}, category {expect['category']}, "
                f"urgent {expect['urgent']}"
            )
        for sent in watcher.of(REPLIES_SENT.name, _case_is(appeal.case_id)):
            print(f"  reply ({sent.purpose.value}, {sent.status}): {sent.text}")
    print(f"\nThe simulator received {len(received)} replies:")
    for item in received:
        print(f"  [{item['kind']} on post {item['target'].get('id')}] {item['text']}")
    return ok


def main(*, keep_stack: bool = False) -> int:
    settings = StackSettings()
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    try:
        if not settings.external:
            stack.up(settings)
        posts = load_posts(run_id)
        log_dir = settings.cache_dir / "logs" / "demo"
        print(f"Starting the simulator and the four services (logs in {log_dir})…")
        with processes.running(demo_env(SECRET), log_dir=log_dir) as fleet:
            print("Feeding the article's five cases to intake:")
            watcher = asyncio.run(
                feed_and_watch(settings.kafka_bootstrap, fleet.url("intake"), posts, secret=SECRET)
            )
            received = httpx.get(fleet.url("simulator") + "/_sim/received", timeout=5).json()
            ok = report(watcher, posts, received)
    except (stack.StackError, processes.ProcessError, TimeoutError, httpx.HTTPError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not settings.external and not keep_stack:
            stack.down(settings)
    outcome = "passed" if ok else "FAILED"
    print(f"\nDemo {outcome} in {time.monotonic() - started:.1f} s; everything stopped.")
    return 0 if ok else 1
