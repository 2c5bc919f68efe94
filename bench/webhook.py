"""Benchmark intake's generic webhook: the real service process, the real Kafka (acks=all), wrk.

    FENGQIAO_KAFKA_BOOTSTRAP=... FENGQIAO_MONGO_URI=... python bench/webhook.py --duration 15

Every accepted post stays in that stack's `posts.raw`: a normalizer started later (the demo, the
services) first works through the whole backlog. Run it against a throwaway stack, e.g.
`FENGQIAO_CACHE_DIR=/tmp/bench-stack FENGQIAO_KAFKA_BOOTSTRAP=127.0.0.1:19792
FENGQIAO_MONGO_URI=mongodb://127.0.0.1:27817/ fengqiao stack up`, then the same env here.

Needs a running stack (`fengqiao stack up`, or the env pointing at one) and `wrk`
(`apt-get install -y wrk`). Starts `python -m fengqiao.cli run intake` on 127.0.0.1 only,
pre-signs `--posts` distinct bodies (timestamps valid for the 5-minute window), runs wrk for
`--duration` seconds with `bench/webhook.lua`, prints requests/s, p50/p99 latency, errors and the
machine, and stops the intake process it started, whatever happens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from fengqiao.signing import sign

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret"
SOURCE = "bench"


def machine() -> str:
    """CPU model, cores, Python."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0]
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load:.2f} at start"
    )


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
        "FENGQIAO_INTAKE_GENERIC_SECRETS": json.dumps({SOURCE: SECRET}),
        "FENGQIAO_INTAKE_HTTP_HOST": "127.0.0.1",
    }
    if workers > 1:
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "services.intake.app:create_app",
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


def run_wrk(args: argparse.Namespace, bodies: Path) -> str:
    cmd = [
        "wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
        "--timeout", "5s", "--latency", "-s", str(HERE / "webhook.lua"),
        f"http://127.0.0.1:{args.port}/webhooks/generic/{SOURCE}", "--", str(bodies),
        str(args.threads),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    return done.stdout + done.stderr


def summary(out: str) -> str:
    def find(pattern: str) -> str:
        m = re.search(pattern, out)
        return m.group(1) if m else "?"

    non2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    sockets = find(r"Socket errors: (.*)")
    rate, total = find(r"Requests/sec:\s+([\d.]+)"), find(r"(\d+) requests in")
    p50, p99 = find(r"50%\s+(\S+)"), find(r"99%\s+(\S+)")
    non2xx = non2xx if non2xx != "?" else "0"
    sockets = sockets if sockets != "?" else "0"
    return (
        f"requests/s {rate}, p50 {p50}, p99 {p99}, requests {total}, "
        f"non-2xx {non2xx}, socket errors {sockets}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18181)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load (max 120)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--posts", type=int, default=100_000, help="distinct pre-signed posts")
    args = parser.parse_args()
    args.duration = min(args.duration, 120)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    print("machine:", machine())
    with tempfile.TemporaryDirectory(prefix="fengqiao-bench-") as tmp:
        bodies = Path(tmp) / "bodies.tsv"
        write_bodies(bodies, args.posts)
        proc = start_intake(args.port, args.workers)
        try:
            wait_ready(args.port, proc)
            out = run_wrk(args, bodies)
        finally:
            stop(proc)
    print(out)
    print(
        f"intake ({args.workers} worker(s)), {args.connections} connections, {args.duration} s:",
        summary(out),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
