"""fengqiao as a pytest plugin: drive the whole system from your own tests.

Installed with the package (entry point `pytest11`: `fengqiao`), so `pip install fengqiao`
makes these fixtures available to every test run in that environment:

- `fengqiao_stack` (session): a real Kafka and MongoDB: `FENGQIAO_EXTERNAL=1` with
  `FENGQIAO_KAFKA_BOOTSTRAP`/`FENGQIAO_MONGO_URI` names a running cluster; else testcontainers
  when Docker answers; else the native local stack (left running if it was running).
- `fengqiao_services` (session, or module with ini `fengqiao_services_scope = module`): the
  services (the workbench too) and the platform simulator as processes on free ports, ready
  (`/readyz`) before the first test. Override the `fengqiao_service_env` fixture to give them
  settings (e.g. shorter time limits for the tracker).
- `platform`: the simulator — what it received (`received()`, `replies_to(post_id)`), faults.
- `post_appeal(text, ...)`: posts a Weibo-shaped appeal through intake's signed webhook and
  returns a `PostedAppeal` (post id, author id, account).
- `wait_for_case(appeal_or_case_id, state=..., where=..., timeout=...)`: the tracker's case
  (`GET /ops/cases/{case_id}`, with `state` and `timeline`) once it reached `state` / satisfies
  `where`; an AssertionError telling where it stands when it does not in time. It reads as a
  region-wide auditor the harness makes (the services check every caller: issue 19).
- `fengqiao_services.token_for(unit_id, *roles)`: an API token of a new person of that unit
  with those roles (`handler`, `unit_lead`, `dispatcher`, `reviewer`, `ops`, `auditor`), for
  calling the unit API, the triage queue or the operators' routes as someone
  (`Authorization: Bearer <token>`).

Time limits: `--fengqiao-ready-timeout` / ini `fengqiao_ready_timeout` (seconds for the
services to become ready, default 120) and `--fengqiao-case-timeout` / ini
`fengqiao_case_timeout` (default `wait_for_case` timeout, 60).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fengqiao.testing import StackEndpoints
    from fengqiao.watch import TopicWatcher

SOURCE = "harness"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fengqiao", "fengqiao end-to-end harness")
    group.addoption(
        "--fengqiao-ready-timeout",
        type=float,
        default=None,
        help="seconds for fengqiao's services to become ready (ini fengqiao_ready_timeout)",
    )
    group.addoption(
        "--fengqiao-case-timeout",
        type=float,
        default=None,
        help="default seconds wait_for_case waits (ini fengqiao_case_timeout)",
    )
    parser.addini("fengqiao_ready_timeout", "seconds for the services to be ready", default="120")
    parser.addini(
        "fengqiao_services_scope",
        "scope of fengqiao_services: session (default) or module, when other tests of the "
        "session run fengqiao's services themselves (they would share its consumer groups)",
        default="session",
    )
    parser.addini("fengqiao_case_timeout", "default wait_for_case timeout, seconds", default="60")


def _setting(config: pytest.Config, name: str) -> float:
    given = config.getoption(f"--{name.replace('_', '-')}")
    return float(given if given is not None else config.getini(name))


@dataclass(frozen=True)
class PostedAppeal:
    """What identifies a post sent through `post_appeal`."""

    post_id: str
    author_id: str
    account: str
    platform: str
    text: str


class Platform:
    """The platform simulator the notifier posts replies to."""

    def __init__(self, url: str) -> None:
        self.url = url

    def received(self) -> list[dict[str, Any]]:
        """Every reply and message the simulator accepted, in order."""
        import httpx

        response = httpx.get(f"{self.url}/_sim/received", timeout=5)
        response.raise_for_status()
        return list(response.json())

    def replies_to(self, post_id: str) -> list[dict[str, Any]]:
        """What was posted on the citizen's post `post_id`."""
        return [r for r in self.received() if r.get("target", {}).get("id") == post_id]

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` posts with HTTP `status`."""
        import httpx

        httpx.post(
            f"{self.url}/_sim/faults", json={"fail_next": count, "status": status}, timeout=5
        ).raise_for_status()


class BackgroundWatcher:
    """A TopicWatcher on its own event loop in a thread, so that sync and async tests alike
    can ask it what the topics carried."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        from fengqiao.runtime.messaging import ensure_topics
        from fengqiao.runtime.settings import StackSettings
        from fengqiao.watch import TopicWatcher

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fengqiao-watcher", daemon=True
        )
        self._thread.start()
        since = int(time.time() * 1000) - 1000
        stack = StackSettings()
        security = stack.kafka_security()
        self.watcher = TopicWatcher(bootstrap, topics, since_ms=since, security=security)
        try:
            # On a fresh cluster the services have not created the topics yet; watching starts
            # first, so create them as the services would (with the same settings).
            self._run(ensure_topics(bootstrap, replication=stack.topic_replication,
                                    min_insync=stack.topic_min_insync_replicas,
                                    security=security))  # fmt: skip
            self._run(self.watcher.__aenter__())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, step: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(step, self._loop).result(60)

    def close(self) -> None:
        try:
            self._run(self.watcher.__aexit__())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@dataclass
class FengqiaoServices:
    """The running services: their URLs, the webhook's source and secret, what was published."""

    stack: StackEndpoints
    urls: dict[str, str]
    source: str
    secret: str
    log_dir: Path
    case_timeout: float
    background: BackgroundWatcher
    _reader: str | None = None

    def url(self, name: str) -> str:
        return self.urls[name]

    def token_for(self, unit_id: str, *roles: str, name: str | None = None) -> str:
        """An API token of a new person of `unit_id` with `roles` (local accounts)."""
        from fengqiao.auth.seed import person_token

        username = f"harness-{uuid.uuid4().hex[:12]}"
        return person_token(
            self.stack.mongo_uri, username, name=name or username, unit_id=unit_id,
            roles=roles or ("handler",),
        )  # fmt: skip

    @property
    def reader_token(self) -> str:
        """The harness's own caller: an auditor of the region, who sees every case."""
        if self._reader is None:
            self._reader = self.token_for("xj", "auditor", "ops", name="fengqiao harness")
        return self._reader

    @property
    def watcher(self) -> TopicWatcher:
        """What the case topics (`appeals`, `dispatch.orders`, `case.events`,
        `replies.requested`, `replies.sent`) carried since the services started."""
        return self.background.watcher

    def post_appeal(
        self,
        text: str,
        *,
        account: str = "@新疆检察",
        author_id: str | None = None,
        author_name: str | None = None,
        post_id: str | None = None,
        platform: str = "weibo",
        geo: tuple[float, float] | None = None,
    ) -> PostedAppeal:
        """POST a platform-shaped post to intake's signed generic webhook (202 expected)."""
        import httpx

        from fengqiao.runtime.signing import signed_headers

        run = uuid.uuid4().hex[:10]
        posted = PostedAppeal(
            post_id=post_id or f"post-{run}",
            author_id=author_id or f"citizen-{run}",
            account=account,
            platform=platform,
            text=text,
        )
        body: dict[str, Any] = {
            "id": posted.post_id,
            "platform": platform,
            "account": account,
            "author": {"id": posted.author_id} | ({"name": author_name} if author_name else {}),
            "text": text,
        }
        if geo is not None:
            body["geo"] = {"lat": geo[0], "lon": geo[1]}
        raw = json.dumps(body, ensure_ascii=False).encode()
        response = httpx.post(
            f"{self.url('intake')}/webhooks/generic/{self.source}",
            content=raw,
            headers=signed_headers(self.secret, raw),
            timeout=10,
        )
        if response.status_code != 202:
            raise AssertionError(
                f"intake refused the post: HTTP {response.status_code} {response.text[:300]}"
            )
        return posted

    def case_id(self, appeal: PostedAppeal, *, timeout: float | None = None) -> str:
        """The case intake gave `appeal` (read from the `appeals` topic)."""
        from fengqiao.contracts import APPEALS

        limit = timeout if timeout is not None else self.case_timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = self.watcher.of(
                APPEALS.name,
                lambda a: a.reply_to.post_id == appeal.post_id and a.account == appeal.account,
            )
            if found:
                return str(found[0].case_id)
            time.sleep(0.1)
        raise AssertionError(
            f"no appeal for post {appeal.post_id} on `appeals` after {limit:g} s "
            f"(see `fengqiao ops dlq list` and the logs in {self.log_dir})"
        )

    def wait_for_case(
        self,
        case: PostedAppeal | str,
        *,
        state: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The tracker's case document once it is in (or went through) `state` and `where(doc)`
        holds; without either, once the tracker knows the case."""
        import httpx

        timeout = timeout if timeout is not None else self.case_timeout
        deadline = time.monotonic() + timeout
        case_id = case if isinstance(case, str) else self.case_id(case, timeout=timeout)
        doc: dict[str, Any] = {}
        headers = {"Authorization": f"Bearer {self.reader_token}"}
        with httpx.Client(base_url=self.url("tracker"), timeout=5, headers=headers) as http:
            while True:
                response = http.get(f"/ops/cases/{case_id}")
                doc = response.json() if response.status_code == 200 else {}
                if doc and _reached(doc, state) and (where is None or where(doc)):
                    return doc
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        wanted = " and ".join(
            w for w in (f"state {state!r}" if state else "", "the condition" if where else "") if w
        )
        events = ", ".join(f"{e['event']}→{e['state']}" for e in doc.get("timeline", ()))
        raise AssertionError(
            f"case {case_id} did not reach {wanted or 'the tracker'} in {timeout:g} s: "
            f"state {doc.get('state', 'unknown to the tracker')!r}; timeline: {events or '-'} "
            f"(logs in {self.log_dir})"
        )


def _reached(doc: Mapping[str, Any], state: str | None) -> bool:
    if state is None:
        return True
    state = str(getattr(state, "value", state))
    return doc.get("state") == state or any(e.get("state") == state for e in doc["timeline"])


@pytest.fixture(scope="session")
def fengqiao_stack() -> Iterator[StackEndpoints]:
    """A real Kafka and MongoDB for the whole session (see `fengqiao.testing.real_stack`)."""
    from fengqiao.testing import real_stack

    with real_stack() as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def fengqiao_service_env() -> dict[str, str]:
    """Extra environment for the service processes; override it in your conftest.py."""
    return {}


def _services_scope(fixture_name: str, config: pytest.Config) -> Any:
    scope = str(config.getini("fengqiao_services_scope"))
    if scope not in ("session", "package", "module"):
        raise pytest.UsageError(f"fengqiao_services_scope must be session or module, not {scope}")
    return scope


@pytest.fixture(scope=_services_scope)
def fengqiao_services(
    fengqiao_stack: StackEndpoints,
    fengqiao_service_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[FengqiaoServices]:
    """The simulator and the services (the workbench too) as processes on free ports, ready."""
    from fengqiao import processes
    from fengqiao.contracts import (
        APPEALS,
        CASE_EVENTS,
        DISPATCH_ORDERS,
        REPLIES_REQUESTED,
        REPLIES_SENT,
    )
    from fengqiao.runtime.signing import generic_source_env

    secret = "harness-" + uuid.uuid4().hex
    ports = processes.free_ports()
    env = {
        **fengqiao_stack.env(),
        **generic_source_env(SOURCE, secret),
        **processes.simulator_env(ports["simulator"]),
        **fengqiao_service_env,
    }
    log_dir = tmp_path_factory.mktemp("fengqiao-logs")
    topics = [APPEALS, DISPATCH_ORDERS, CASE_EVENTS, REPLIES_REQUESTED, REPLIES_SENT]
    watcher = BackgroundWatcher(fengqiao_stack.kafka_bootstrap, [t.name for t in topics])
    try:
        with processes.running(
            env,
            log_dir=log_dir,
            ports=ports,
            ready_timeout=_setting(pytestconfig, "fengqiao_ready_timeout"),
        ) as fleet:
            yield FengqiaoServices(
                stack=fengqiao_stack,
                urls={name: fleet.url(name) for name in fleet.members},
                source=SOURCE,
                secret=secret,
                log_dir=log_dir,
                case_timeout=_setting(pytestconfig, "fengqiao_case_timeout"),
                background=watcher,
            )
    finally:
        watcher.close()


@pytest.fixture
def platform(fengqiao_services: FengqiaoServices) -> Platform:
    """The platform simulator the services post replies to."""
    return Platform(fengqiao_services.url("simulator"))


@pytest.fixture
def post_appeal(fengqiao_services: FengqiaoServices) -> Callable[..., PostedAppeal]:
    """`post_appeal(text, account="@新疆检察", author_id=None, author_name=None, post_id=None,
    platform="weibo", geo=None)`: post through intake's signed webhook (unique post and author
    ids unless given)."""
    return fengqiao_services.post_appeal


@pytest.fixture
def wait_for_case(fengqiao_services: FengqiaoServices) -> Callable[..., dict[str, Any]]:
    """`wait_for_case(appeal_or_case_id, state=None, where=None, timeout=None)`: the tracker's
    case document once it reached `state` and satisfies `where`."""
    return fengqiao_services.wait_for_case
