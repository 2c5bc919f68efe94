"""Routing decisions per second per process (locate + read intake's triage + dispatch) on the
evaluation texts, normalized and triaged by intake first (not timed). Run:
.venv/bin/python bench/router.py [seconds]"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncio  # noqa: E402

from fengqiao.pipeline import route_pipeline  # noqa: E402
from fengqiao.services.router.cli import parse_post  # noqa: E402
from fengqiao.services.router.evaluate import DEFAULT_SET  # noqa: E402


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(seconds: float = 3.0) -> int:
    router, normalize = route_pipeline()
    lines = [line for line in DEFAULT_SET.read_text(encoding="utf-8").splitlines() if line.strip()]

    async def normalized() -> list[object]:
        return [(await normalize(parse_post(line), n))[0] for n, line in enumerate(lines, 1)]

    appeals = asyncio.run(normalized())
    for appeal in appeals:  # warm up
        router.dispatch(appeal, producer="bench")
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for appeal in appeals:
            router.dispatch(appeal, producer="bench")
        done += len(appeals)
    # The decision alone (locate, read the triage), without building the DispatchOrdered messages.
    decided, start = 0, time.perf_counter()
    while (decide_elapsed := time.perf_counter() - start) < seconds:
        for appeal in appeals:
            router.decide(appeal)
        decided += len(appeals)

    print(
        json.dumps(
            {
                "decisions_per_second": round(done / elapsed),
                "decide_only_per_second": round(decided / decide_elapsed),
                "decisions": done,
                "texts": len(appeals),
                "seconds": round(elapsed, 2),
                "cpu": cpu_model(),
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            },
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))
