"""Many visitors on one app: latency of Compare and of the training poll, errors, app memory.

Starts the app as a workshop would (`python app.py`, a facilitator secret set), then N simulated
visitors (gradio_client, one session each) load the workshop sample; visitor 0 starts a training run
and polls it every second; every visitor compares two answers (before/after: base and chosen model)
`--compares` times. Reports p50/p95 of Compare and of the poll, errors, and the app process's peak
memory (VmHWM; the training runs in its own process).

    python bench/bench_load.py [--visitors 30] [--compares 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("auto", "auto", "(auto)", "(auto)", "(auto)", "best-worst", "", "", "")
FORM = ("embedded default", "", 3, 5e-5, 16, 128, 0.2, False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        RM_DEMO_RUNS=str(runs),
        RM_DEMO_FACILITATOR_SECRET="bench",
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def wait_until_warm(url: str) -> float:
    """What the first visitor waits: one Compare as soon as the page answers (the default scorer loads
    in the background from start-up)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    start = time.perf_counter()
    client.predict("default", "q", "a", "b", False, api_name="/compare")
    return time.perf_counter() - start


def visitor(url: str, index: int, args, results: dict, stop: threading.Event) -> None:
    from gradio_client import Client

    rng = random.Random(index)
    try:
        client = Client(url, verbose=False)
        client.predict(f"bench-visitor-{index:04d}-{os.getpid()}", api_name="/load")  # as a page load: its id
        client.predict(*SETTINGS, api_name="/use_workshop_sample")
        if index == 0 and not args.no_training:
            client.predict(*FORM, api_name="/start_training")
            threading.Thread(target=poller, args=(client, results, stop), daemon=True).start()
        for i in range(args.compares):
            time.sleep(rng.uniform(*args.think))  # a person reads the result before the next click
            start = time.perf_counter()
            question = f"How do I water a cactus? ({index}.{i})"
            client.predict(
                "default", question, "Sparingly, when the soil is dry.", "Every hour.", True, api_name="/compare"
            )
            results["compare"].append(time.perf_counter() - start)
    except Exception as exc:  # counted, not raised: the benchmark reports errors
        results["errors"].append(f"visitor {index}: {type(exc).__name__}: {exc}")


def poller(client, results: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            client.predict(api_name="/poll")
            results["poll"].append(time.perf_counter() - start)
        except Exception as exc:
            results["errors"].append(f"poll: {type(exc).__name__}: {exc}")
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--compares", type=int, default=5)
    parser.add_argument("--no-training", action="store_true", help="compare only, no run training meanwhile")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(2.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds a visitor waits before each click, uniform in [MIN, MAX] (0 0: a burst)",
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_app(Path(tmp) / "runs")
        first = wait_until_warm(url)
        started = time.time()
        results: dict = {"compare": [], "poll": [], "errors": []}
        stop = threading.Event()
        threads = [threading.Thread(target=visitor, args=(url, i, args, results, stop)) for i in range(args.visitors)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(3)  # a few more polls with the room quiet
        stop.set()
        memory = peak_memory_mb(proc.pid)
        proc.terminate()
        proc.wait(timeout=30)
    c, p = results["compare"], results["poll"]
    pace = f"{args.think[0]:g}-{args.think[1]:g} s before each click" if args.think[1] else "all at once"
    training = "no training" if args.no_training else "one run training meanwhile"
    print(f"{args.visitors} visitors x {args.compares} compares ({pace}), {training}; {time.time() - started:.0f} s")
    print(f"first compare after the page was ready: {first:.2f} s")
    print(f"compare: n={len(c)} p50 {statistics.median(c):.3f} s, p95 {percentile(c, 0.95):.3f} s, max {max(c):.3f} s")
    if p:
        print(f"poll:    n={len(p)} p50 {statistics.median(p):.3f} s, p95 {percentile(p, 0.95):.3f} s")
    print(f"errors: {len(results['errors'])}" + "".join(f"\n  {e}" for e in results["errors"][:5]))
    print(f"app peak memory (VmHWM): {memory:.0f} MB")


if __name__ == "__main__":
    main()
