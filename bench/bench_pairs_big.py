"""Benchmark: `rm_demo pairs` on feedback logs of 10M and 100M rows, whole processes, time and peak memory.

Generates a feedback CSV of N rows a chunk at a time (5 rated answers per question, the questions shuffled over
the whole file as a production log interleaves them; short answers of 2 to 12 words so that 100M rows fit on a
laptop's disk: about 8 GB), then runs, as a user would from the shell,

    python -m rm_demo pairs FILE -o pairs.jsonl --report report.json --max-input-mb 1e9 --engine ENGINE

for each engine asked (`out-of-core`: DuckDB within its memory limit; `memory`: the whole file read, where it
fits), reporting wall time, peak resident memory of the process (bench/peak_memory.py), the most disk its
temporary folder held, and the report's counts (every row accounted for: used + dropped = read). The pairs of
both engines are compared where both ran.

    python bench/bench_pairs_big.py --rows 10000000 --engines out-of-core memory
    python bench/bench_pairs_big.py --rows 100000000 --engines out-of-core --folder /big/disk
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from peak_memory import run_measured

WORDS = (
    "the a it is to of and you can try this that water back arms answer because first then also "
    "maybe sure sorry know think would should could help question good idea simple way people time"
).split()
CHUNK_ROWS = 2_000_000


def make_big_csv(path: Path, rows: int, answers_per_question: int = 5, seed: int = 0) -> None:
    """A feedback CSV written a chunk at a time: the generator never holds more than a chunk's texts."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    qids = np.repeat(np.arange(rows // answers_per_question + 1, dtype=np.int64), answers_per_question)[:rows]
    rng.shuffle(qids)
    words = np.array(WORDS, dtype=object)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("question,answer,feedback\n")
        for start in range(0, rows, CHUNK_ROWS):
            q = qids[start : start + CHUNK_ROWS]
            lengths = rng.integers(2, 13, size=q.size)
            picked = words[rng.integers(0, len(words), size=int(lengths.sum()))]
            ends = np.cumsum(lengths)
            answers = [" ".join(picked[e - n : e]) for n, e in zip(lengths, ends)]
            frame = pd.DataFrame(
                {
                    "question": [f"Question {x}: how about topic {x % 977}?" for x in q],
                    "answer": [f"A{start + i}: {a}." for i, a in enumerate(answers)],
                    "feedback": rng.integers(1, 6, size=q.size),
                }
            )
            frame.to_csv(out, index=False, header=False)


class DiskWatch:
    """The largest size a folder reached while the block ran (sampled every 0.2 s)."""

    def __init__(self, folder: Path):
        self.folder, self.peak, self._stop = folder, 0, threading.Event()

    def _size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(root, name)).st_blocks * 512
        return total

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self._size())

    def __enter__(self):
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(engine: str, path: Path, folder: Path) -> dict:
    out, report = folder / f"pairs-{engine}.jsonl", folder / f"report-{engine}.json"
    command = [sys.executable, "-m", "rm_demo", "pairs", str(path), "-o", str(out), "--report", str(report)]
    command += ["--max-input-mb", "1e9", "--engine", engine]
    scratch = folder / f"tmp-{engine}"  # the command's TMPDIR: DuckDB's spill and database files go here
    scratch.mkdir(exist_ok=True)
    disk = DiskWatch(scratch)
    env = {**os.environ, "TMPDIR": str(scratch)}
    with disk:
        code, wall, peak, done = run_measured(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
    if code:
        return {"engine": engine, "failed": done.stderr.strip().splitlines()[-3:], "wall_s": round(wall, 1)}
    counts = json.loads(report.read_text())
    digest = hashlib.sha256()
    with out.open("rb") as lines:  # the pairs themselves, in order, independent of number formatting
        for line in lines:
            r = json.loads(line)
            digest.update(f"{r['prompt']}\x00{r['chosen']}\x00{r['rejected']}\x00{r['chosen_row']}\n".encode())
    result = {
        "engine": engine,
        "wall_s": round(wall, 1),
        "peak_mib": round(peak / 2**20),
        "temp_disk_peak_mib": round(disk.peak / 2**20),
        "rows_read": counts["rows_read"],
        "rows_used": counts["rows_used"],
        "rows_dropped": counts["rows_dropped"],
        "pairs": counts["pairs"],
        "accounted": counts["rows_used"] + counts["rows_dropped"] == counts["rows_read"],
        "pairs_sha256": digest.hexdigest()[:16],
    }
    out.unlink()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--engines", nargs="+", default=["out-of-core", "memory"], choices=["out-of-core", "memory"])
    parser.add_argument("--folder", type=Path, help="where the file and outputs go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated file for the next run")
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)  # (the generator's own process)
    args = parser.parse_args()
    if args.generate:
        make_big_csv(args.generate, args.rows)
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="rm_demo-bench-big-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"feedback-{args.rows}.csv"
    try:
        if not path.exists():
            start = time.perf_counter()
            # in a child: a command forked from this process would count the generator's memory in its own peak
            subprocess.run([sys.executable, __file__, "--generate", str(path), "--rows", str(args.rows)], check=True)
            print(f"generated {path.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - start:.0f} s", flush=True)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
            f"input: {args.rows:,} rows, {path.stat().st_size / 1e9:.2f} GB",
            flush=True,
        )
        results = [run(engine, path, folder) for engine in args.engines]
        for result in results:
            print(json.dumps(result), flush=True)
        digests = {r["pairs_sha256"] for r in results if "pairs_sha256" in r}
        if len(digests) > 1:
            print("engines DISAGREE on the pairs")
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
        if args.folder is None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
