"""Nothing lost, nothing said twice, under crashes and outages (issue 18, deliver 7).

The whole fleet runs as processes on the local stack under a steady load of signed Weibo pushes
(mentions, and every fifth a private message); one fault after another strikes it (see
conftest.py for the short and the long form). After each, per accepted appeal: exactly one
case, exactly one acknowledgment on the platform on the citizen's channel; no dead letter; no
consumer lag once drained. The figures are printed as a table at the end of the run.
"""

from __future__ import annotations

import logging

import pytest

from fengqiao import processes
from fengqiao.runtime.settings import StackSettings
from fengqiao.testing import StackEndpoints
from fengqiao.testing.audit import Audit
from fengqiao.testing.drill import Drill, Row, run_phase, table
from fengqiao.testing.pushes import PushLoad
from tests.faults.plan import LEAD_IN, REPORT, Plan

PROBLEMS_SHOWN = 12  # per phase, in the failure message


def report(plan: Plan, rows: list[Row]) -> str:
    head = (
        f"{plan.form} form: {sum(n for _, n in plan.phases)} appeals at {plan.rate:.1f}/s "
        f"over {len(plan.phases)} phases (drain deadline {plan.deadline:.0f} s)"
    )
    return f"{head}\n{table(rows)}"


def failures(rows: list[Row]) -> str:
    lines = []
    for row in rows:
        if row.clean:
            continue
        lines.append(f"{row.fault}:")
        lines += [f"  {p}" for p in row.problems[:PROBLEMS_SHOWN]]
        if len(row.problems) > PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(row.problems) - PROBLEMS_SHOWN} more")
    return "\n".join(lines)


async def test_fault_drill_every_appeal_one_case_one_acknowledgment(
    plan: Plan,
    drill_fleet: processes.Fleet,
    native_stack: StackSettings,
    stack_endpoints: StackEndpoints,
    drill_secret: str,
    pytestconfig: pytest.Config,
) -> None:
    drill = Drill(drill_fleet, native_stack)
    load = PushLoad(drill_fleet.url("intake"), secret=drill_secret)
    rows: list[Row] = []
    async with Audit(
        stack_endpoints.kafka_bootstrap, stack_endpoints.mongo_uri, drill_fleet.url("simulator")
    ) as audit:
        for fault, count in plan.phases:
            row = await run_phase(
                drill,
                audit,
                load,
                fault,
                count=count,
                rate=plan.rate,
                lead_in=LEAD_IN,
                deadline=plan.deadline,
            )
            rows.append(row)
            logging.getLogger(__name__).warning("%s", report(plan, rows))
            pytestconfig.stash[REPORT] = report(plan, rows)
    assert all(r.clean for r in rows), f"{report(plan, rows)}\n\n{failures(rows)}"
