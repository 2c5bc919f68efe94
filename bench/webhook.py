"""Benchmark intake's generic webhook: the real service process, the real Kafka (acks=all), wrk.

    FENGQIAO_KAFKA_BOOTSTRAP=... FENGQIAO_MONGO_URI=... FENGQIAO_INTAKE_CONSUMERS=false \
        python bench/webhook.py          # 1 worker, 8 connections, 5 runs of 10 s

Every accepted post stays in that stack's `posts.raw`: a normalizer started later (the demo, the
services) first works through the whole backlog. Run it against a throwaway stack, e.g.
`FENGQIAO_CACHE_DIR=/tmp/bench-stack FENGQIAO_KAFKA_BOOTSTRAP=127.0.0.1:19792
FENGQIAO_MONGO_URI=mongodb://127.0.0.1:27817/ fengqiao stack up`, then the same env here.

Needs a running stack (`fengqiao stack up`, or the env pointing at one) and `wrk`
(`apt-get install -y wrk`). Starts intake on 127.0.0.1 only (`--workers` uvicorn processes; one
by default: on 2 cores shared with Kafka and wrk, a second worker cost ~40 % more CPU per request
and gave no more requests/s), warms it up with `--warmup` seconds of load that are not reported
(the first seconds after a start are the slowest: new connections, Kafka's producer metadata),
then runs wrk `--runs` times for `--duration` seconds each with `bench/webhook.lua` on freshly
pre-signed distinct bodies (timestamps valid for the 5-minute window). It prints one line per run
with the load average before it, then one summary line: the median and the worst run, and in how
many runs the target (>= 2,000 requests/s with p99 < 50 ms, no errors) held. It stops the intake
process it started, whatever happens.

Beside the rates it prints the CPU time the intake processes spent per request (user + system,
from /proc): on a machine shared with other work the rates vary with the load, while the CPU per
request shows what the code costs (one worker at ~300 µs per request can serve ~3,300 req/s on
the core it gets; Kafka and wrk use the other).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from fengqiao.runtime.signing import generic_source_env, sign

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-0123456"
SOURCE = "bench"
TARGET_RATE = 2000.0
TARGET_P99_MS = 50.0


def machine() -> str:
    """CPU model, cores, Python."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def write_bodies(path: Path, count: int) -> None:
    run = uuid.uuid4().hex[:8]
    ts = str(int(time.time()))
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            body = json.dumps(
                {
                    "id": f"{run}-{i}",
                    "account": "@新疆检察",
                    "author": {"id": f"u{i % 97}"},
                    "text": f"博乐市工地拖欠工资，求助 {run}-{i}",
                },
                ensure_ascii=False,
            )
            out.write(f"{ts}\t{sign(SECRET, ts, body.encode())}\t{body}\n")


def wait_ready(port: int, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"intake exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("intake did not become ready")


def start_intake(port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **generic_source_env(SOURCE, SECRET, platforms=["generic"], accounts=["@新疆检察"]),
        "FENGQIAO_INTAKE_HTTP_HOST": "127.0.0.1",
    }
    if workers > 1:
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "fengqiao.services.intake.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning",
        ]  # fmt: skip
    else:
        cmd = [sys.executable, "-m", "fengqiao.cli", "run", "intake", "--port", str(port)]
    return subprocess.Popen(cmd, env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds of process `root` and its descendants (uvicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; fields 14, 15 = utime, stime
        total += (int(fields[11]) + int(fields[12])) / tick
        stack.extend(int(c) for c in children)
    return total


def run_wrk(args: argparse.Namespace, bodies: Path, duration: int) -> str:
    cmd = [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{duration}s",
        "--timeout", "5s", "--latency", "-s", str(HERE / "webhook.lua"),
        f"http://127.0.0.1:{args.port}/webhooks/generic/{SOURCE}", "--", str(bodies),
        str(args.threads),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    return done.stdout + done.stderr


@dataclass(frozen=True)
class Run:
    rate: float  # requests/s
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers, socket errors and timeouts
    load: str  # load average before the run
    cpu_us: float  # intake's CPU time per request, microseconds

    @property
    def met(self) -> bool:
        return self.rate >= TARGET_RATE and self.p99_ms < TARGET_P99_MS and self.errors == 0

    def line(self) -> str:
        return (
            f"{self.rate:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, "
            f"{self.requests} requests, {self.errors} errors, "
            f"intake CPU {self.cpu_us:.0f} µs/request, load before {self.load}"
            f"{'' if self.met else '  (target missed)'}"
        )


def _ms(value: str) -> float:
    """wrk's latency ("812.00us", "3.54ms", "1.02s") in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", value)
    if m is None:
        raise ValueError(f"not a wrk latency: {value!r}")
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def parse(out: str, load_before: str, cpu: float) -> Run:
    def find(pattern: str) -> str | None:
        m = re.search(pattern, out)
        return m.group(1) if m else None

    rate, total = find(r"Requests/sec:\s+([\d.]+)"), find(r"(\d+) requests in")
    p50, p99 = find(r"\s50%\s+(\S+)"), find(r"\s99%\s+(\S+)")
    if rate is None or total is None or p50 is None or p99 is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    sockets = find(r"Socket errors: (.*)") or ""
    errors = int(find(r"Non-2xx or 3xx responses: (\d+)") or 0)
    errors += sum(int(n) for n in re.findall(r"\d+", sockets))
    cpu_us = cpu / max(int(total), 1) * 1e6
    return Run(float(rate), _ms(p50), _ms(p99), int(total), errors, load_before, cpu_us)


def summary(runs: list[Run], args: argparse.Namespace) -> str:
    rates = [r.rate for r in runs]
    p99s = [r.p99_ms for r in runs]
    met = sum(r.met for r in runs)
    return (
        f"webhook accept, {args.workers} worker(s), {args.connections} connections, "
        f"{len(runs)} runs of {args.duration} s after {args.warmup} s warm-up: "
        f"median {statistics.median(rates):,.0f} req/s p99 {statistics.median(p99s):.1f} ms; "
        f"worst {min(rates):,.0f} req/s p99 {max(p99s):.1f} ms; "
        f"errors {sum(r.errors for r in runs)}; "
        f"intake CPU {statistics.median(r.cpu_us for r in runs):.0f} µs/request (median); "
        f"target (>= {TARGET_RATE:,.0f} req/s, p99 < {TARGET_P99_MS:.0f} ms) met in "
        f"{met} of {len(runs)} runs; load {load()} after; {machine()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (max 120)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of unreported load first")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--posts", type=int, default=60_000, help="distinct posts per run")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output too")
    args = parser.parse_args()
    args.duration = min(args.duration, 120)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    if os.environ.get("FENGQIAO_INTAKE_CONSUMERS", "").lower() not in ("false", "0"):
        print("note: the normalizer runs in the same processes; FENGQIAO_INTAKE_CONSUMERS=false")
        print("      measures webhook-only replicas, as deployed for throughput")
    print(f"machine: {machine()}; load average {load()} (1, 5, 15 min)")
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="fengqiao-bench-") as tmp:
        bodies = Path(tmp) / "bodies.tsv"
        proc = start_intake(args.port, args.workers)
        try:
            wait_ready(args.port, proc)
            if args.warmup > 0:
                write_bodies(bodies, args.posts)
                run_wrk(args, bodies, args.warmup)
            for n in range(1, args.runs + 1):
                write_bodies(bodies, args.posts)  # fresh timestamps, posts never seen before
                before, cpu_before = load(), cpu_seconds(proc.pid)
                out = run_wrk(args, bodies, args.duration)
                cpu = cpu_seconds(proc.pid) - cpu_before
                if args.verbose:
                    print(out)
                runs.append(parse(out, before, cpu))
                print(f"run {n}: {runs[-1].line()}", flush=True)
        finally:
            stop(proc)
    print(summary(runs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
