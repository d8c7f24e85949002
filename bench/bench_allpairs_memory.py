"""Peak memory of `rm_demo pairs --strategy all-pairs` on one question with many answers.

Each size runs as its own process (the whole CLI, as a user runs it); peak RSS from getrusage.

    python bench/bench_allpairs_memory.py [--answers 3000 6000 12000]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_file(path: Path, answers: int) -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(1, 6, answers)
    lines = ["question,answer,score"] + [f"One question?,answer number {i},{s}" for i, s in enumerate(scores)]
    path.write_text("\n".join(lines) + "\n")


def run(path: Path, out: Path) -> tuple[float, float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rm_demo", "pairs", str(path), "-o", str(out), "--strategy", "all-pairs"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    note = next((line for line in proc.stderr.splitlines() if "not taken" in line), "")
    return seconds, peak_mb, note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--answers", type=int, nargs="+", default=[3000, 6000, 12000])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'answers':>8} {'possible pairs':>15} {'seconds':>8} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.answers):  # ascending: RUSAGE_CHILDREN keeps the maximum so far
            path = Path(tmp) / f"q{n}.csv"
            make_file(path, n)
            seconds, peak, note = run(path, Path(tmp) / "pairs.jsonl")
            print(f"{n:8d} {n * (n - 1) // 2:15,d} {seconds:8.2f} {peak:8.0f}   {note[:90]}")


if __name__ == "__main__":
    main()
