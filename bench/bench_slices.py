"""Benchmark: a run in time slices against the same run in one go, as whole `rm_demo train` processes.

Trains the workshop sample (assets/workshop_feedback.csv, 578 rows) with the defaults, once in one go
and once with `--slice-seconds S`, in turns for `--rounds` rounds, and reports per run its wall time,
training seconds, slices, held-out accuracy, and for each sliced run the largest difference from the
unsliced run of its round in any held-out reward (eval.json, every held-out pair) and in any weight.
Issue #28's bar: accuracy and rewards the same within 1e-3.

    python bench/bench_slices.py --slice-seconds 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import emit

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "workshop_feedback.csv"


def train(run_dir: Path, flags: list[str]) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    command = [sys.executable, "-m", "rm_demo", "train", str(SAMPLE), "-o", str(run_dir), *flags]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    record = json.loads((run_dir / "run.json").read_text())
    final = record["final_metrics"]
    return {
        "wall_s": round(wall, 2),
        "train_s": round(record.get("train_seconds") or 0.0, 2),
        "slices": record.get("slices"),
        "eval_pairs": final["eval_pairs"],
        "eval_accuracy": final["eval_accuracy"],
        "eval_margin": final["eval_margin"],
    }


def differences(sliced: Path, whole: Path) -> dict:
    from safetensors.torch import load_file

    a, b = (json.loads((run / "eval.json").read_text())["rewards"] for run in (sliced, whole))
    rewards = max(abs(x - y) for side in ("chosen", "rejected") for x, y in zip(a[side], b[side]))
    wa, wb = (load_file(run / "model" / "model.safetensors") for run in (sliced, whole))
    weights = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    return {"max_reward_diff": rewards, "max_weight_diff": weights}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice-seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="append the JSON lines to this file too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_slices_"))
    machine = {"machine": platform.machine(), "cpus": __import__("os").cpu_count()}
    try:
        for round_ in range(1, args.rounds + 1):
            whole = train(work / "whole", [])
            emit({"round": round_, "run": "one go", **whole, **machine}, args.out)
            sliced = train(work / "sliced", ["--slice-seconds", f"{args.slice_seconds:g}"])
            diff = differences(work / "sliced", work / "whole")
            same = abs(sliced["eval_accuracy"] - whole["eval_accuracy"]) <= 1e-3 and diff["max_reward_diff"] <= 1e-3
            label = f"slices of {args.slice_seconds:g} s"
            emit({"round": round_, "run": label, **sliced, **diff, "same": same}, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
