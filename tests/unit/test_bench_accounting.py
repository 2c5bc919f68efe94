"""bench/e2e.py's accounting: what each service's counters moved by between two scrapes, per
appeal, by collection family and by topic."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_accounting() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_accounting", BENCH / "accounting.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


accounting = load_accounting()


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def store(name: str, collection: str, command: str, **more: str) -> tuple[str, frozenset]:  # type: ignore[type-arg]
    return key(name, service="tracker", collection=collection, command=command, **more)


def test_costs_per_appeal_by_collection_and_topic() -> None:
    before = {
        "tracker": {
            store("fengqiao_store_commands_total", "cases", "insert"): 10.0,
            store("fengqiao_store_documents_total", "cases", "insert", direction="written"): 30.0,
            key("fengqiao_direct_published_total", topic="case.events", result="ok"): 100.0,
        },
    }
    after = {
        "tracker": {
            store("fengqiao_store_commands_total", "cases", "insert"): 30.0,
            store("fengqiao_store_commands_total", "cases", "find"): 10.0,
            store("fengqiao_store_documents_total", "cases", "insert", direction="written"): 70.0,
            store("fengqiao_store_documents_total", "cases", "find", direction="read"): 5.0,
            store("fengqiao_store_command_seconds_total", "cases", "find"): 0.5,
            store("fengqiao_store_commands_total", "unit_cases_*", "insert"): 4.0,
            key("fengqiao_direct_published_total", topic="case.events", result="ok"): 140.0,
            key("fengqiao_direct_published_total", topic="case.events", result="error"): 3.0,
            key("fengqiao_messages_processed_total", service="tracker", topic="appeals"): 10.0,
        },
        "router": {
            key(
                "faststream_published_messages_total",
                app_name="router",
                broker="kafka",
                destination="dispatch.orders",
                status="success",
            ): 20.0,
        },
    }
    costs = accounting.costs(before, after, appeals=10)
    [cases, units] = costs.store
    assert (cases.service, cases.collection) == ("tracker", "cases")
    assert (cases.commands, cases.written, cases.read) == (3.0, 4.0, 0.5)
    assert cases.by_command == {"insert": 2.0, "find": 1.0}
    assert cases.ms == 50.0
    assert (units.collection, units.commands) == ("unit_cases_*", 0.4)
    totals = {t.service: t for t in costs.totals()}
    assert totals["tracker"].commands == totals["fleet"].commands == 3.4
    topics = {(t.service, t.topic): (t.produced, t.handled) for t in costs.topics}
    assert topics == {
        ("tracker", "case.events"): (4.0, 0.0),
        ("tracker", "appeals"): (0.0, 1.0),
        ("router", "dispatch.orders"): (2.0, 0.0),
    }
    assert costs.as_json()["store"][0]["by_command"] == {"insert": 2.0, "find": 1.0}
    assert any("unit_cases_*" in line for line in costs.lines())
