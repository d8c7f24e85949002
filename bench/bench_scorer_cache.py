"""Benchmark: Compare clicks in a workshop where every visitor compares their own run with the base.

Each visitor has a finished run (saved as training saves one: `bench_load.own_runs`) and clicks
Compare with "before/after" on: the base model and their run score the same two answers,
as `compare_tab.compare` does. Visitors click in turn, for several rounds. The same clicks run
against two scorer caches in one process: one that holds three models (what the app held before)
and the memory-budgeted one (`RM_DEMO_SCORER_CACHE_MB`, 1 GB by default).

    python bench/bench_scorer_cache.py [--visitors 6] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_load import own_runs  # runs as training saves them (the embedded folder itself is no run)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def clicks(cache, runs: list[str], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        for run in runs:
            start = time.perf_counter()
            for model in ("default", run):
                cache.get(model).compare("What is a cactus?", "A plant that stores water.", "A fish.")
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    from rm_demo.score import ScorerCache

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = own_runs(Path(tmp), args.visitors)
        probe = ScorerCache(budget_bytes=float("inf"))
        probe.get("default")
        model_bytes = probe.bytes_held()
        caches = {
            "three models (before)": ScorerCache(budget_bytes=3 * model_bytes),
            "1 GB budget (now)": ScorerCache(budget_bytes=1024 * 2**20),
        }
        print(f"{args.visitors} visitors, {args.rounds} rounds, each click scores with the base and the visitor's run")
        print(f"{'cache':24} {'p50 s':>7} {'p95 s':>7} {'loads':>6} {'held MB':>8}")
        for name, cache in caches.items():
            seconds = clicks(cache, runs, args.rounds)
            print(
                f"{name:24} {np.percentile(seconds, 50):7.3f} {np.percentile(seconds, 95):7.3f} "
                f"{cache.misses:6d} {cache.bytes_held() / 2**20:8.0f}"
            )


if __name__ == "__main__":
    main()
