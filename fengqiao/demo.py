"""`make demo`: the whole system on the article's five cases, then everything stopped.

Starts the local stack (unless FENGQIAO_EXTERNAL is set), the platform simulator and the
services (the workbench too) as processes; posts the five cases to intake's signed webhook; waits
for each case's dispatch chain and its public acknowledgment; prints both and what the simulator
received. Then the 博乐 procuratorate takes case 1 through its life on the unit API: signed,
progress, resolved, called back (seconds later instead of the next working day), answered 满意,
closed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml

from fengqiao import processes, stack
from fengqiao.auth.seed import person_token
from fengqiao.contracts import APPEALS, DISPATCH_ORDERS, REPLIES_SENT
from fengqiao.runtime.settings import StackSettings
from fengqiao.runtime.signing import generic_source_env, signed_headers
from fengqiao.watch import TopicWatcher

SCENARIO = Path(__file__).parent / "scenarios" / "article.yaml"
SOURCE = "demo"
SECRET = "demo-secret-" + uuid.uuid4().hex[:8]  # per run; never a real secret


# The office that takes case 1 through its whole life in the demo (博乐市人民检察院), and a
# callback asked seconds (not the next working day) after the resolution.
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_UNIT = "652701"
# The demo's people (local accounts in the stack's auth database): a handler and lead of
# 博乐市, who works case 1, and an operator of the region, who watches every case. Their
# password is made per run and printed, with their API tokens.
DEMO_PEOPLE: dict[str, dict[str, Any]] = {
    "demo.bole": {"name": "王力（博乐市院）", "unit_id": DEMO_UNIT,
                  "roles": ["handler", "unit_lead"]},
    "demo.region": {"name": "李伟（自治区院）", "unit_id": "xj",
                    "roles": ["dispatcher", "reviewer", "ops", "auditor"]},
}  # fmt: skip
DEMO_PASSWORD = "demo-" + uuid.uuid4().hex[:12]
DEMO_TIME_LIMITS = {"defaults": {"callback_ask": "3 seconds"}}


def demo_env(
    secret: str, simulator_port: int = processes.DEFAULT_PORTS["simulator"]
) -> dict[str, str]:
    """Settings of the services for a local run against the simulator."""
    return {
        **generic_source_env(SOURCE, secret),
        **processes.simulator_env(simulator_port),
        "FENGQIAO_TRACKER_TIME_LIMITS": json.dumps(DEMO_TIME_LIMITS),
        "FENGQIAO_TRACKER_SWEEP_INTERVAL_SECONDS": "0.5",
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


class CaseTimeout(TimeoutError):
    """A case did not reach the awaited point in time; the message shows where it stood."""


async def post_as_citizen(
    http: httpx.AsyncClient, intake_url: str, post: dict[str, Any], text: str, *, secret: str
) -> None:
    """The citizen of `post` writes again (e.g. the answer to the callback question)."""
    body = {
        "id": f"{post['id']}-{uuid.uuid4().hex[:6]}",
        "account": post["account"],
        "author": post["author"],
        "text": text,
        "platform": "weibo",
    }
    raw = json.dumps(body, ensure_ascii=False).encode()
    response = await http.post(
        f"{intake_url}/webhooks/generic/{SOURCE}", content=raw, headers=signed_headers(secret, raw)
    )
    response.raise_for_status()


async def unit_acts(
    http: httpx.AsyncClient,
    tracker_url: str,
    token: str,
    case_id: str,
    action: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An office acts on a case through the unit API; the tracker's answer (status, state)."""
    response = await http.post(
        f"{tracker_url}/units/me/cases/{case_id}/{action}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    if response.status_code != 202:
        raise httpx.HTTPStatusError(
            f"{action} on {case_id}: HTTP {response.status_code} {response.text}",
            request=response.request,
            response=response,
        )
    return dict(response.json())


def demo_people(mongo_uri: str) -> dict[str, str]:
    """The demo's people, each with a new API token (username → token)."""
    return {
        username: person_token(mongo_uri, username, password=DEMO_PASSWORD, **person)
        for username, person in DEMO_PEOPLE.items()
    }


async def wait_for_case(
    http: httpx.AsyncClient,
    tracker_url: str,
    case_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    what: str,
    token: str,
    timeout: float = 45.0,
) -> dict[str, Any]:
    """The tracker's view of the case (`GET /ops/cases/{id}`, as `token`'s person) once
    `until` holds."""
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        response = await http.get(f"{tracker_url}/ops/cases/{case_id}", headers=headers)
        doc = response.json() if response.status_code == 200 else {}
        if doc and until(doc):
            return doc
        await asyncio.sleep(0.3)
    events = [e["event"] for e in doc.get("timeline", ())]
    raise CaseTimeout(f"case {case_id} never {what}: state {doc.get('state')}, events {events}")


def asked_back(doc: dict[str, Any]) -> bool:
    """The callback question went out (or failed): only then can the citizen answer it."""
    return doc["state"] == "callback_pending" and any(
        r["purpose"] == "callback_question" for r in doc["replies"].values()
    )


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
    ours = {p["id"] for p in posts}
    received = [r for r in received if r["target"].get("id") in ours]
    print(f"\nThe simulator received {len(received)} replies to these posts:")
    for item in received:
        print(f"  [{item['kind']} on post {item['target'].get('id')}] {item['text']}")
    return ok


async def live_one_case(
    fleet: processes.Fleet, post: dict[str, Any], case_id: str, tokens: dict[str, str]
) -> bool:
    """Case 1 from the office's side: signed, worked on, resolved, called back, closed."""
    tracker, intake = fleet.url("tracker"), fleet.url("intake")
    office, region = tokens["demo.bole"], tokens["demo.region"]
    print(f"\n{DEMO_UNIT} (@博乐检察) takes case {case_id} through the unit API, as demo.bole:")
    async with httpx.AsyncClient(timeout=10) as http:
        # The tracker reads the dispatch orders at its own pace: the case reaches the office
        # once the tracker has recorded its final hop.
        await wait_for_case(
            http, tracker, case_id, lambda d: d["assigned_unit"] == DEMO_UNIT,
            what="assigned", token=office,
        )  # fmt: skip
        steps: list[tuple[str, dict[str, Any] | None]] = [
            ("accept", None),
            ("progress", {"note": "经审查，申请人符合国家司法救助条件"}),
            ("resolve", {"outcome": "会同法院发放司法救助金", "amount_recovered": 100000}),
        ]
        for action, body in steps:
            answer = await unit_acts(http, tracker, office, case_id, action, body)
            print(f"  {action}: {answer['status']}, case {answer.get('state') or '…'}")
        await wait_for_case(http, tracker, case_id, asked_back, what="asked back", token=office)
        print("  回访: the citizen is asked by private message whether they are satisfied")
        await post_as_citizen(http, intake, post, "满意，谢谢检察官！", secret=SECRET)
        doc = await wait_for_case(
            http, tracker, case_id, lambda d: d["state"] == "closed", what="closed", token=office
        )
        print(f"  the citizen answered 满意: case {doc['state']} ({doc['satisfaction']})")
        print("  timeline (Asia/Shanghai):")
        for entry in doc["timeline"]:
            at = datetime.fromisoformat(entry["at"]).astimezone(SHANGHAI)
            unit = f" [{entry['unit_id']}]" if entry["unit_id"] else ""
            unit += f" {entry['person']}" if entry.get("person") else ""
            detail = f" {entry['detail'][:50]}" if entry["detail"] else ""
            print(f"    {at:%H:%M:%S} {entry['event']}{unit}{detail}")
        as_region = {"Authorization": f"Bearer {region}"}
        # The statistics read every case of the period: a store full of other runs takes a while.
        figures = await http.get(f"{tracker}/ops/stats", headers=as_region, timeout=60)
        stats = figures.json()["total"]
        print(
            f"  statistics of the last 30 days (`fengqiao stats`): {stats['volume']} cases, "
            f"resolved {stats['resolution_rate'] or 0:.0%}, satisfied "
            f"{stats['satisfaction_rate'] or 0:.0%}, ¥{stats['amount_recovered']:,.0f} recovered"
        )
    return bool(doc["satisfaction"] == "satisfied")


def print_logins(fleet: processes.Fleet, tokens: dict[str, str]) -> None:
    """The demo's people: how to call the services as each (until the stack is stopped)."""
    print(f"\nDemo logins (local accounts; password {DEMO_PASSWORD}, this run only):")
    for username, person in DEMO_PEOPLE.items():
        print(f"  {username:<12} {person['name']}, unit {person['unit_id']}, "
              f"roles {', '.join(person['roles'])}")  # fmt: skip
        print(f"    API token: {tokens[username]}")
    tracker = fleet.url("tracker")
    print(f"  with the services up: curl -H 'Authorization: Bearer <token>' {tracker}/units/me")
    print(f"\nThe workbench (工作台): {fleet.url('workbench')}/login")
    print(f"  log in as demo.bole, password {DEMO_PASSWORD} (its inbox: 博乐市's cases), or as")
    print("  demo.region (分诊, 回复审核, 督办, 统计, 运维); `make demo-serve` keeps them running")


def serve_until_interrupted(fleet: processes.Fleet) -> None:
    """`fengqiao demo --serve`: the services stay up for a newcomer to click through the
    workbench, until Ctrl-C."""
    print(f"\nServing: open {fleet.url('workbench')}/login (Ctrl-C stops everything).", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nStopping…")


def main(*, keep_stack: bool = False, serve: bool = False) -> int:
    settings = StackSettings()
    run_id = uuid.uuid4().hex[:6]
    started = time.monotonic()
    try:
        if not settings.external:
            stack.up(settings)
        posts = load_posts(run_id)
        tokens = demo_people(settings.mongo_uri)
        log_dir = settings.cache_dir / "logs" / "demo"
        print(f"Starting the simulator and the services (logs in {log_dir})…")
        with processes.running(demo_env(SECRET), log_dir=log_dir) as fleet:
            print("Feeding the article's five cases to intake:")
            watcher = asyncio.run(
                feed_and_watch(settings.kafka_bootstrap, fleet.url("intake"), posts, secret=SECRET)
            )
            received = httpx.get(fleet.url("simulator") + "/_sim/received", timeout=5).json()
            ok = report(watcher, posts, received)
            [first] = watcher.of(APPEALS.name, _post_is(posts[0]["id"]))
            ok &= asyncio.run(live_one_case(fleet, posts[0], first.case_id, tokens))
            print_logins(fleet, tokens)
            if serve:
                serve_until_interrupted(fleet)
    except (stack.StackError, processes.ProcessError, TimeoutError, httpx.HTTPError) as exc:
        # TimeoutError covers CaseTimeout: the message says where the case stood.
        print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if not settings.external and not keep_stack:
            stack.down(settings)
    outcome = "passed" if ok else "FAILED"
    print(f"\nDemo {outcome} in {time.monotonic() - started:.1f} s; everything stopped.")
    return 0 if ok else 1
