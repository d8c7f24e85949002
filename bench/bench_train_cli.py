"""Benchmark: `rm_demo train` as a whole process, as a user runs it from the shell, two or more settings in turns.

Times `python -m rm_demo train FILE -o DIR [flags]` once per variant per round, the variants in
turns, so that the machine's drift falls on all of them alike. The file is what a user brings:

* scored: the scored feedback CSV of `bench/scored_set.py` (question, answer, score; 1,658 questions,
  4,241 rows), all of it; the CLI holds out 20% of the questions as it does by default;
* hh: the 2,312 HH-RLHF pairs as a pairs JSONL (`chosen`, `rejected` transcripts).

Prints each run's wall time and final held-out accuracy (from run.json), then per variant the min
and median wall time. A variant is a string of extra flags; "" is the defaults.

    python bench/bench_train_cli.py --data scored --variants "--attention sdpa" "" --rounds 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import emit
from scored_set import DATA, build_scored_set

ROOT = Path(__file__).resolve().parents[1]


def user_file(data: str, hh_file: Path, out_dir: Path) -> Path:
    if data == "scored":
        path = out_dir / "scored_feedback.csv"
        build_scored_set(hh_file).drop(columns="kind").to_csv(path, index=False)
        return path
    path = out_dir / "hh.jsonl"
    with gzip.open(hh_file, "rt", encoding="utf-8") as fh:
        path.write_text(fh.read(), encoding="utf-8")
    return path


def run_once(file: Path, flags: str, run_dir: Path) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "rm_demo", "train", str(file), "-o", str(run_dir), *shlex.split(flags)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    run = json.loads((run_dir / "run.json").read_text())
    return {
        "flags": flags,
        "wall_s": round(wall, 2),
        "train_runtime_s": run["final_metrics"].get("train_runtime_s"),
        "eval_accuracy": run["final_metrics"].get("eval_accuracy"),
        "attention": run.get("attention"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("scored", "hh"), default="scored")
    parser.add_argument("--hh-file", type=Path, default=DATA)
    parser.add_argument("--variants", nargs="+", default=["--attention sdpa", ""], help='extra flags; "" = defaults')
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="append each run's result as a JSON line here")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; data: {args.data}", flush=True)

    results: dict[str, list[dict]] = {flags: [] for flags in args.variants}
    with tempfile.TemporaryDirectory() as tmp:
        file = user_file(args.data, args.hh_file, Path(tmp))
        for round_no in range(args.rounds):
            for flags in args.variants:
                result = run_once(file, flags, Path(tmp) / "run")
                result.update(round=round_no, data=args.data)
                results[flags].append(result)
                emit(result, args.out)

    print(f"\n`rm_demo train` on {args.data}, whole processes, {args.rounds} rounds in turns")
    print(f"{'flags':24} {'min s':>7} {'median s':>9} {'accuracy':>9}")
    for flags, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        accuracies = ", ".join(f"{r['eval_accuracy']:.3f}" for r in runs)
        print(f"{flags or '(the defaults)':24} {min(walls):7.1f} {statistics.median(walls):9.1f}   {accuracies}")


if __name__ == "__main__":
    main()
