"""Every service of the fleet (`fengqiao.runner.SERVICES`, which the demo and the harness start)
can be run from the command line and has a port of its own."""

from __future__ import annotations

import pytest

from fengqiao.cli import build_parser
from fengqiao.processes import DEFAULT_PORTS
from fengqiao.runner import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_of_the_fleet_runs_from_the_command_line(service: str) -> None:
    args = build_parser().parse_args(["run", service, "--port", "1"])
    assert (args.command, args.service) == ("run", service)


def test_every_process_of_the_fleet_has_its_own_port() -> None:
    assert set(SERVICES) | {"simulator"} == set(DEFAULT_PORTS)
    assert len(set(DEFAULT_PORTS.values())) == len(DEFAULT_PORTS)


def test_a_fleet_without_a_tracker_needs_no_tracker_port() -> None:
    from fengqiao.processes import workbench_env

    assert workbench_env({"simulator": 2}) == {}
    assert workbench_env({"tracker": 7}) == {"FENGQIAO_WORKBENCH_TRACKER_URL": "http://127.0.0.1:7"}


def test_the_fleets_workbench_calls_the_fleets_router_and_notifier() -> None:
    from fengqiao.processes import workbench_env

    assert workbench_env({"tracker": 7, "router": 8, "notifier": 9}) == {
        "FENGQIAO_WORKBENCH_TRACKER_URL": "http://127.0.0.1:7",
        "FENGQIAO_WORKBENCH_ROUTER_URL": "http://127.0.0.1:8",
        "FENGQIAO_WORKBENCH_NOTIFIER_URL": "http://127.0.0.1:9",
    }
