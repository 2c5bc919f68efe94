"""The fault drill's fleet, on the native local stack (the plan: plan.py).

The drill kills the local stack's servers, so it runs on the native stack only (not an external
cluster, not testcontainers): elsewhere it is skipped, saying why.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from fengqiao import processes, stack
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import StackEndpoints
from fengqiao.testing.drill import start_groups_at_end
from fengqiao.testing.pushes import intake_env
from tests.faults.plan import REPORT, Plan, form_of, make_plan


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent.name == "faults" and "drill" in item.name:
            item.add_marker(pytest.mark.timeout(make_plan(form_of(config)).seconds + 300))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report = terminalreporter.config.stash.get(REPORT, None)
    if report:
        terminalreporter.section("fault drill (tests/faults)")
        terminalreporter.write_line(report)


@pytest.fixture(scope="module")
def plan(pytestconfig: pytest.Config) -> Plan:
    return make_plan(form_of(pytestconfig))


@pytest.fixture(scope="module")
def native_stack(stack_endpoints: StackEndpoints) -> Iterator[StackSettings]:
    """The local stack's settings; skips unless its servers are ours to kill. Started again
    after the drill, whatever a fault left down."""
    if stack_endpoints.source != "native":
        pytest.skip(
            f"the fault drill kills the stack's Kafka and FerretDB: it needs the native local "
            f"stack, and this one is {stack_endpoints.source}"
        )
    settings = StackSettings()
    yield settings
    stack.up(settings, progress=lambda _: None)


@pytest.fixture(scope="module")
def drill_secret() -> str:
    return "drill-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def drill_fleet(
    native_stack: StackSettings,
    stack_endpoints: StackEndpoints,
    drill_secret: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[processes.Fleet]:
    """The simulator and the four services as processes, for the drill alone."""
    ports = processes.free_ports()
    env = {
        **stack_endpoints.env(),
        **processes.simulator_env(ports["simulator"]),
        **intake_env(drill_secret),
        "FENGQIAO_INTAKE_GENERIC_SECRETS": json.dumps({}),
    }
    log_dir = tmp_path_factory.mktemp("fault-drill-logs")
    # Earlier suites may have left messages on the topics: the drill counts only its own.
    asyncio.run(start_groups_at_end(stack_endpoints.kafka_bootstrap))
    with processes.running(env, log_dir=log_dir, ports=ports, ready_timeout=180) as fleet:
        yield fleet
