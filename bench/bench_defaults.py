"""Benchmark: training defaults on three kinds of data, with seeds, by the exact held-out accuracy.

Runs `rm_demo train` configurations (the objective, margin handling, reward centring, ...) and plain TRL on

* workshop: the shipped workshop sample (assets/workshop_feedback.csv, several rated answers per question);
  a fixed 20% of its questions (seed 0) is held out, the rest trains;

* scored: the scored feedback set of `bench/scored_set.py` (HH pairs turned into 1-5 ratings,
  several answers per question); 880 questions train, the other 778 are held out (their
  best-worst pairs scored);
* hh: the HH-RLHF pairs (first 2,000 train, last 312 held out, as in `bench_train.py`).

Every configuration runs once per seed; the table gives each seed's held-out accuracy, the mean,
the spread (max - min), the 95% interval of one run's figure at this many pairs, and the training
time. Every figure is exact: the saved model on every held-out pair, counted as `rm_demo evaluate`
counts it (`evaluate.summarize`: a tie is wrong); plain TRL's model scores the texts as TRL trained
on them. On the scored set "hard" is the accuracy on the held-out pairs whose rejected answer is the
other HH answer (not the off-topic one).

    python bench/bench_defaults.py --data workshop --configs default pointwise both plain --seed 42 7 1 2 3
    python bench/bench_defaults.py --data scored --configs off gap scaled clipped center plain --seed 42 7 1
    python bench/bench_defaults.py --data hh --configs off center --seed 42 7 1
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_train import DATA, hh_heldout_triples, hh_pairs_file, load_hh, run_plain_trl, run_rm_demo
from results import emit
from scored_set import build_scored_set, split_questions

from rm_demo.text import wilson_interval

# name -> TrainConfig fields changed from the defaults ("plain": TRL as its docs show it)
CONFIGS = {
    "default": {},  # `rm_demo train` as it runs with no options
    "pointwise": {"objective": "pointwise"},
    "both": {"objective": "both"},
    "off": {"margin": "off"},
    "gap": {"margin": "gap"},
    "scaled": {"margin": "scaled"},
    "clipped": {"margin": "clipped"},
    "center": {"margin": "off", "center_rewards": 0.01},
    "gap+center": {"margin": "gap", "center_rewards": 0.01},
    # the defaults before 2026-11-26: word embeddings trained, no dropout (TRL's default)
    "off-before": {"margin": "off", "train_embeddings": True},
    "dropout": {"margin": "off", "dropout": True},
    "frozen-2": {"margin": "off", "freeze_layers": 2},
    "frozen-3": {"margin": "off", "freeze_layers": 3},
    # attention as before a fourth session of 2026-11-26: SDPA on the CPU too
    "sdpa": {"margin": "off", "attention": "sdpa"},
    # training length and step size (a fifth session of 2026-11-26)
    "epochs-4": {"margin": "off", "epochs": 4.0},
    "epochs-4-avg-3": {"margin": "off", "epochs": 4.0, "average_epochs": 3},
    "epochs-5": {"margin": "off", "epochs": 5.0},
    "lr-1e-4": {"margin": "off", "learning_rate": 1e-4},
    "lr-8e-5": {"margin": "off", "learning_rate": 8e-5},
    "lr-1.5e-4": {"margin": "off", "learning_rate": 1.5e-4},
    "lr-1e-4-epochs-2": {"margin": "off", "learning_rate": 1e-4, "epochs": 2.0},
    "length-192": {"margin": "off", "max_length": 192},
    "length-256": {"max_length": 256},
    "length-512": {"max_length": 512},  # plain TRL's length here: BERT's whole window
    # what else plain TRL does differently (issue 40: it led on the workshop sample, with no pair truncated)
    "fp32": {"precision": "fp32"},
    "embeddings": {"train_embeddings": True},
    "average-1": {"average_epochs": 1},
    "plain-like": {"precision": "fp32", "train_embeddings": True, "average_epochs": 1, "attention": "sdpa"},
    "plain": None,
}


WORKSHOP = Path(__file__).resolve().parents[1] / "assets" / "workshop_feedback.csv"


def workshop_data(out_dir: Path, fold: int | None = None, folds: int = 5):
    """(train feedback CSV, held-out triples, None, train pairs for plain TRL): a fixed fifth of the questions
    held out (seed 0: the same pairs for every configuration and seed), or with `fold` the fold-th of `folds`
    equal parts of the questions (seed 0), so that runs over every fold hold out every pair once."""
    import pandas as pd

    from rm_demo.feedback import read_feedback
    from rm_demo.pairs import derive_pairs, pairs_from_file

    frame = pd.read_csv(WORKSHOP)
    if fold is None:
        train, held = split_questions(frame, held_out=0.2, seed=0)
    else:
        questions = np.random.default_rng(0).permutation(frame["question"].drop_duplicates().to_numpy())
        held_questions = set(np.array_split(questions, folds)[fold].tolist())
        mask = frame["question"].isin(held_questions)
        train, held = frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_csv, held_csv = out_dir / "workshop_train.csv", out_dir / "workshop_heldout.csv"
    train.to_csv(train_csv, index=False)
    held.to_csv(held_csv, index=False)
    pairs = derive_pairs(read_feedback(held_csv)).pairs
    triples = list(zip(pairs["prompt"], pairs["chosen"], pairs["rejected"]))
    train_pairs = pairs_from_file(train_csv).pairs
    plain_rows = [
        {"prompt": p, "chosen": c, "rejected": r}
        for p, c, r in zip(train_pairs["prompt"], train_pairs["chosen"], train_pairs["rejected"])
    ]
    return train_csv, triples, None, plain_rows


def exact(margins) -> dict:
    """The held-out figure as `rm_demo evaluate` gives it, from r(chosen) - r(rejected) per pair."""
    from rm_demo.evaluate import summarize

    margins = np.asarray(margins, dtype="float64")
    return summarize(margins, np.zeros_like(margins))


def scored_data(out_dir: Path, train_questions: int, hh_file: Path = DATA):
    """(train feedback CSV, held-out triples, which held-out pairs are hard, train pairs for plain TRL).

    `train_questions` (a seeded sample) train; every other question is held out, so that accuracy
    is measured on as many pairs as the set has (its standard error shrinks with them).
    """
    from rm_demo.feedback import read_feedback
    from rm_demo.pairs import derive_pairs, pairs_from_file

    frame = build_scored_set(hh_file)
    questions = frame["question"].nunique()
    train, held = split_questions(frame, held_out=1 - train_questions / questions, seed=0)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_csv, held_csv = out_dir / "scored_train.csv", out_dir / "scored_heldout.csv"
    train.drop(columns="kind").to_csv(train_csv, index=False)
    held.drop(columns="kind").to_csv(held_csv, index=False)
    pairs = derive_pairs(read_feedback(held_csv)).pairs
    triples = list(zip(pairs["prompt"], pairs["chosen"], pairs["rejected"]))
    off_topic = set(held.loc[held["kind"] == "off_topic", "answer"])
    hard = np.array([r not in off_topic for r in pairs["rejected"]])
    train_pairs = pairs_from_file(train_csv).pairs
    plain_rows = [
        {"prompt": p, "chosen": c, "rejected": r}
        for p, c, r in zip(train_pairs["prompt"], train_pairs["chosen"], train_pairs["rejected"])
    ]
    return train_csv, triples, hard, plain_rows


def mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: of the b + c pairs the two models judge differently, b went one way."""
    from math import comb

    n = b + c
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def hard_accuracy(result: dict, hard: np.ndarray) -> float | None:
    margins = result.get("heldout_margins")
    return None if margins is None else float(np.mean(np.array(margins)[hard] > 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("workshop", "scored", "hh"), default="scored")
    parser.add_argument(
        "--hh-file", type=Path, default=DATA, help="the HH-RLHF pairs (jsonl.gz; both data sets come from it)"
    )
    parser.add_argument("--configs", nargs="+", default=["off", "gap"], choices=list(CONFIGS))
    parser.add_argument("--seed", type=int, nargs="+", default=[42, 7, 1])
    parser.add_argument(
        "--train-questions", type=int, default=880, help="scored set: questions to train on; the rest are held out"
    )
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument(
        "--plain-max-length", type=int, default=512, help="plain TRL: longer pairs are dropped (512: BERT's limit)"
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--average-epochs", type=int, default=2)
    parser.add_argument("--no-group", action="store_true")
    parser.add_argument(
        "--folds",
        action="store_true",
        help="workshop: the n-th seed holds out the n-th of as many equal parts of the questions (cross-validation: "
        "over all seeds every pair is held out once), instead of one fixed fifth for every seed",
    )
    parser.add_argument("--out", type=Path, help="append each run's result as a JSON line here")
    args = parser.parse_args()
    seeds = args.seed
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.data == "workshop":
            data, heldout, hard, plain_rows = workshop_data(tmp)
        elif args.data == "scored":
            data, heldout, hard, plain_rows = scored_data(tmp, args.train_questions, args.hh_file)
        else:
            train_rows, heldout_rows = load_hh(args.hh_file)
            data, heldout, hard, plain_rows = (
                hh_pairs_file(train_rows, tmp),
                hh_heldout_triples(heldout_rows),
                None,
                train_rows,
            )
        plain_heldout = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in heldout]
        print(
            f"data: {args.data}, {len(plain_rows)} train pairs, {len(heldout)} held-out pairs"
            + (f" ({int(hard.sum())} hard)" if hard is not None else "")
            + f"; epochs {args.epochs}, batch {args.batch_size}, max_length {args.max_length}, lr {args.lr}",
            flush=True,
        )
        table: dict[str, list[dict]] = {}
        for index, seed in enumerate(seeds):
            args.seed = seed
            if args.folds and args.data == "workshop":
                data, heldout, hard, plain_rows = workshop_data(tmp / f"fold-{index}", index, len(seeds))
                plain_heldout = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in heldout]
                print(f"fold {index}: {len(plain_rows)} train pairs, {len(heldout)} held out", flush=True)
            for name in args.configs:
                run_dir = tmp / f"{name}-{seed}"
                start = time.perf_counter()
                if CONFIGS[name] is None:
                    result = run_plain_trl(plain_rows, plain_heldout, args, run_dir)
                else:
                    result = run_rm_demo(data, heldout, args, run_dir, **CONFIGS[name])
                figure = exact(result["heldout_margins"])  # both: the saved model on every held-out pair
                result.update(
                    heldout_accuracy=figure["accuracy"],
                    heldout_correct=figure["correct"],
                    heldout_pairs=figure["pairs"],
                    heldout_interval=figure["accuracy_interval"],
                )
                result.update(config=name, seed=seed, data=args.data, wall_seconds=time.perf_counter() - start)
                if hard is not None:
                    result["hard_accuracy"] = hard_accuracy(result, hard)
                result["heldout_right"] = [bool(m > 0) for m in result.pop("heldout_margins")]
                table.setdefault(name, []).append(result)
                emit(result, args.out)

    if args.folds:
        print(f"\n{args.data}: exact held-out accuracy per fold {seeds} (every pair held out once)")
        for name, runs in table.items():
            correct, total = sum(r["heldout_correct"] for r in runs), sum(r["heldout_pairs"] for r in runs)
            low, high = wilson_interval(correct, total)
            print(f"{name:12} {correct}/{total} = {correct / total:.3f} (95% {low:.3f}-{high:.3f})", end="")
            if "plain" in table and name != "plain":  # paired, pair by pair: McNemar's exact test
                mine = [right for run in runs for right in run["heldout_right"]]
                plain = [right for run in table["plain"] for right in run["heldout_right"]]
                only_mine = sum(a and not b for a, b in zip(mine, plain))
                only_plain = sum(b and not a for a, b in zip(mine, plain))
                print(
                    f"; right where plain TRL is wrong {only_mine}, the reverse {only_plain}, "
                    f"p = {mcnemar(only_mine, only_plain):.2f}",
                    end="",
                )
            print()
        return
    print(f"\n{args.data}: exact held-out accuracy per seed {seeds} ({len(heldout)} held-out pairs)")
    print(f"{'config':12} {'per seed':>36} {'mean':>6} {'spread':>7} {'one run, 95%':>14} {'hard':>6} {'train s':>8}")
    for name, runs in table.items():
        accs = [r["heldout_accuracy"] for r in runs]
        hard_mean = np.mean([r["hard_accuracy"] for r in runs]) if hard is not None else float("nan")
        low, high = wilson_interval(round(np.mean(accs) * len(heldout)), len(heldout))  # one run at the mean
        print(
            f"{name:12} {' '.join(f'{a:.3f}' for a in accs):>36} {np.mean(accs):6.3f} {max(accs) - min(accs):7.3f} "
            f"{f'{low:.3f}-{high:.3f}':>14} {hard_mean:6.3f} {np.mean([r['train_seconds'] for r in runs]):8.0f}"
        )


if __name__ == "__main__":
    main()
