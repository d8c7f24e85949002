"""Benchmark: the seed article's pandas code vs `rm_demo pairs` (best-worst) on a synthetic file.

Builds a feedback CSV of N rows (default 1,000,000: 200,000 questions x 5 answers, scores 1-5),
then times both ways end to end:

* as whole processes, as a user runs them from the shell (what the user waits for):
  `python bench/seed_pairs_script.py FILE OUT` (the article's code as a script) against
  `python -m rm_demo pairs FILE -o OUT`, run in turns, min and median of `--repeat`;
* in one warm process: the article's code against `rm_demo.pairs.pairs_from_file`, the call
  behind the CLI (reading and pairing, no writing).

Checks that all four give the same pairs and prints the ratios.

    python bench/bench_pairs.py [--rows 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from peak_memory import run_measured  # a command's own peak, not this process's (which holds the file)
from seed_pairs_script import seed_pairs  # the article's code, shared with the whole-process run

from rm_demo.pairs import PairOptions, pairs_from_file

WORDS = (
    "the a it is to of and you can try this that water back arms answer because first then also "
    "maybe sure sorry know think would should could help question good idea simple way people time"
).split()


def make_feedback_csv(path: Path, rows: int, answers_per_question: int = 5, seed: int = 0) -> None:
    """Rated answers as a workshop collects them: 5 per question, free text of 5 to 60 words."""
    rng = np.random.default_rng(seed)
    questions = rows // answers_per_question
    qids = np.repeat(np.arange(questions), answers_per_question)
    rng.shuffle(qids)  # rated answers arrive in no particular order
    lengths = rng.integers(5, 61, size=len(qids))
    word_ids = rng.integers(0, len(WORDS), size=int(lengths.sum()))
    words = np.array(WORDS, dtype=object)[word_ids]
    ends = np.cumsum(lengths)
    answers = [f"Answer {i}: " + " ".join(words[e - n : e]) + "." for i, (n, e) in enumerate(zip(lengths, ends))]
    frame = pd.DataFrame(
        {
            "question": pd.Series(qids).map(lambda q: f"Question {q}: how would you explain topic {q % 977}?"),
            "answer": answers,
            "feedback": rng.integers(1, 6, size=len(qids)),
        }
    )
    frame.to_csv(path, index=False)


def rm_demo_pairs(path: Path) -> pd.DataFrame:
    return pairs_from_file(path, pair_options=PairOptions(strategy="best-worst")).pairs


def canonical(frame: pd.DataFrame, prompt: str, chosen: str, rejected: str) -> list[tuple]:
    return sorted(zip(frame[prompt], frame[chosen], frame[rejected]))


def timed(fn, path: Path, repeat: int) -> tuple[float, float, pd.DataFrame]:
    """(first call, best of `repeat` calls after it, result).

    The first call in a process also pays one-time costs (lazy imports, thread pools, memory the
    VM has not handed to the process yet); the best of the later calls is the steady state.
    """
    start = time.perf_counter()
    result = fn(path)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(path)
        times.append(time.perf_counter() - start)
    return first, min(times), result


HERE = Path(__file__).resolve().parent


def whole_process_times(
    path: Path, out_dir: Path, repeat: int, before: Path | None = None
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """The commands as fresh processes, in turns so that a slow spell of the machine hits each; their times and
    peak memory (max resident set, bytes). `before`: a checkout of earlier code, run the same way beside."""
    commands = {
        "seed": [sys.executable, str(HERE / "seed_pairs_script.py"), str(path), str(out_dir / "seed.jsonl")],
        "rm_demo": [sys.executable, "-m", "rm_demo", "pairs", str(path), "-o", str(out_dir / "rm_demo.jsonl")],
    }
    if before is not None:
        commands["before"] = [
            sys.executable, "-c", f"import sys; sys.path.insert(0, {str(before)!r}); "
            "from rm_demo.cli import main; sys.exit(main())", "pairs", str(path), "-o", str(out_dir / "before.jsonl"),
        ]  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    peak: dict[str, int] = dict.fromkeys(commands, 0)
    for _ in range(repeat):
        for name, command in commands.items():
            code, wall, used, _ = run_measured(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(wall)
            if code:
                raise SystemExit(f"{name} failed: {' '.join(command)}")
            peak[name] = max(peak[name], used)
    return times, peak


def jsonl_pairs(path: Path, prompt: str, chosen: str, rejected: str) -> list[tuple]:
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    return sorted((r[prompt], r[chosen], r[rejected]) for r in records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed calls after the first")
    parser.add_argument(
        "--before", type=Path, help="a checkout of earlier code (git worktree): its `rm_demo pairs` runs beside"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "feedback.csv"
        make_feedback_csv(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        processes, peak = whole_process_times(path, Path(tmp), args.repeat, args.before)
        seed_file = jsonl_pairs(Path(tmp) / "seed.jsonl", "instruction", "chosen_response", "rejected_response")
        ours_file = jsonl_pairs(Path(tmp) / "rm_demo.jsonl", "prompt", "chosen", "rejected")
        if args.before is not None:
            before_file = jsonl_pairs(Path(tmp) / "before.jsonl", "prompt", "chosen", "rejected")
            same_before = before_file == ours_file
        seed_first, seed_s, seed_out = timed(seed_pairs, path, args.repeat)
        ours_first, ours_s, ours_out = timed(rm_demo_pairs, path, args.repeat)

    seed_pairs_ = canonical(seed_out, "instruction", "chosen_response", "rejected_response")
    same = seed_pairs_ == canonical(ours_out, "prompt", "chosen", "rejected") == seed_file == ours_file
    print(
        f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}, pandas {pd.__version__}"
    )
    print(
        f"input: {args.rows:,} rows, {size_mb:.0f} MB CSV; pairs: seed {len(seed_out):,}, rm_demo "
        f"{len(ours_out):,}; same pairs (both processes' files and both calls): {same}"
    )
    seed_p, ours_p = processes["seed"], processes["rm_demo"]
    print(
        f"\nwhole processes, {args.repeat} runs each in turns (seconds: {' '.join(f'{t:.2f}' for t in seed_p)} | "
        f"{' '.join(f'{t:.2f}' for t in ours_p)})"
    )
    print(f"{'':28} {'min':>7} {'median':>7} {'peak MB':>8}")
    print(f"{'seed script (pandas)':28} {min(seed_p):7.2f} {statistics.median(seed_p):7.2f} {peak['seed'] / 1e6:8.0f}")
    print(
        f"{'python -m rm_demo pairs':28} {min(ours_p):7.2f} {statistics.median(ours_p):7.2f} "
        f"{peak['rm_demo'] / 1e6:8.0f}"
    )
    if args.before is not None:
        before_p = processes["before"]
        print(
            f"{'rm_demo pairs, --before':28} {min(before_p):7.2f} {statistics.median(before_p):7.2f} "
            f"{peak['before'] / 1e6:8.0f}   (same pairs as now: {same_before})"
        )
    print(
        f"{'speed-up':28} {min(seed_p) / min(ours_p):6.1f}x "
        f"{statistics.median(seed_p) / statistics.median(ours_p):6.1f}x"
    )
    print(f"\nin one process (no writing):  {'first call':>10}  {'best of ' + str(args.repeat) + ' after it':>18}")
    print(f"seed pandas code            : {seed_first:9.2f}s  {seed_s:17.2f}s")
    print(f"rm_demo pairs_from_file     : {ours_first:9.2f}s  {ours_s:17.2f}s")
    print(f"speed-up                    : {seed_first / ours_first:9.1f}x  {seed_s / ours_s:17.1f}x")
    if not same:
        raise SystemExit("the methods disagree")


if __name__ == "__main__":
    main()
