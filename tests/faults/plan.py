"""The fault drill's plan (issue 18, deliver 7).

Two forms, chosen with `--faults short|long` or `FENGQIAO_FAULTS` (default short):

- **short** (part of `make test`): `kill -9` of the tracker, the broker down 20 s and the store
  down 30 s, one each, 150 appeals in all;
- **long** (`make test-faults`): `kill -9` of each service, the broker down 20 s, the store down
  30 s and a service started while the broker is down, every fault twice, 1,000 appeals.

Sizes from the environment: `FENGQIAO_FAULTS_APPEALS` (appeals in all, spread over the phases
at one steady rate), `FENGQIAO_FAULTS_ROUNDS` (how often each fault comes), `FENGQIAO_FAULTS_ONLY`
(a comma-separated part of the fault names to keep, e.g. `store,broker`),
`FENGQIAO_FAULTS_DEADLINE` (seconds a phase may take to drain, default 180).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from fengqiao.testing.drill import Fault, kill_service, server_down, started_while_broker_down

LEAD_IN = 3.0  # seconds of load before a fault strikes
LEAD_OUT = 4.0  # seconds of load after it is planned to end
REPORT = pytest.StashKey[str]()


@dataclass(frozen=True)
class Plan:
    form: str
    phases: list[tuple[Fault, int]]  # each fault, with its share of the appeals
    rate: float  # appeals a second, steady over every phase
    deadline: float  # seconds a phase may take to drain

    @property
    def seconds(self) -> float:
        """What the plan should take at most: the load, and each phase's drain deadline."""
        return sum(n / self.rate + self.deadline + 60 for _, n in self.phases)


def form_of(config: pytest.Config) -> str:
    # --faults is declared in tests/conftest.py (options come from the first conftest only).
    form = config.getoption("--faults", None) or os.environ.get("FENGQIAO_FAULTS", "short")
    if form not in ("short", "long"):
        raise pytest.UsageError(f"FENGQIAO_FAULTS must be short or long, not {form!r}")
    return str(form)


def _round(form: str, number: int) -> list[Fault]:
    if form == "short":
        return [kill_service("tracker"), server_down("kafka", 20), server_down("ferretdb", 30)]
    kills = [kill_service(s) for s in ("intake", "router", "tracker", "notifier")]
    late = ("tracker", "notifier")[number % 2]  # each round starts another one late
    return [
        *kills,
        server_down("kafka", 20),
        server_down("ferretdb", 30),
        started_while_broker_down(late, 20),
    ]


def _shares(appeals: int, windows: list[float]) -> list[int]:
    """`appeals` split in proportion to the windows, summing to exactly `appeals` (largest
    remainders get the odd ones), at least one each."""
    exact = [appeals * w / sum(windows) for w in windows]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: shares[i] - exact[i])
    for i in by_remainder[: appeals - sum(shares)]:
        shares[i] += 1
    return [max(1, s) for s in shares]


def make_plan(form: str) -> Plan:
    appeals = int(os.environ.get("FENGQIAO_FAULTS_APPEALS", 1000 if form == "long" else 150))
    rounds = int(os.environ.get("FENGQIAO_FAULTS_ROUNDS", 2 if form == "long" else 1))
    only = [w.strip() for w in os.environ.get("FENGQIAO_FAULTS_ONLY", "").split(",") if w.strip()]
    faults = [f for n in range(rounds) for f in _round(form, n)]
    faults = [f for f in faults if not only or any(w in f.name for w in only)]
    if not faults:
        raise pytest.UsageError(f"FENGQIAO_FAULTS_ONLY={only} leaves no fault to run")
    windows = [LEAD_IN + f.planned + LEAD_OUT for f in faults]
    rate = appeals / sum(windows)
    shares = _shares(appeals, windows)
    deadline = float(os.environ.get("FENGQIAO_FAULTS_DEADLINE", 180))
    return Plan(form, list(zip(faults, shares, strict=True)), rate, deadline)
