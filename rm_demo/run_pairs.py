"""A run's pairs and held-out split, derived once when it starts and saved in its folder.

Training, the evaluation, Compare's examples, the export and the Evaluate tab read them back, so a run
is judged on the pairs it trained and held out, whatever later changes the pairing code or the data
file. `pairs.parquet` holds every pair with its source rows (`chosen_row`, `rejected_row`) and a
`held_out` flag; `answers.parquet`, for a score objective, the rated answers; `pairs_report.json` the
derivation's account of every row. A run from before these files derives them once, then saves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from rm_demo.errors import InputError
from rm_demo.runs import RunFolder, write_json_atomic
from rm_demo.tables import atomic_path

PAIRS_FILE = "pairs.parquet"
ANSWERS_FILE = "answers.parquet"  # a scored file's rated answers, saved for --objective pointwise or both
REPORT_FILE = "pairs_report.json"


@dataclass(frozen=True)
class RunPairs:
    train: pd.DataFrame
    held_out: pd.DataFrame
    report: dict  # PairsReport.to_dict() of the derivation
    # A scored file's distinct rated answers with a `held_out` flag (their question's side of the split);
    # None for a pairs file.
    answers: pd.DataFrame | None = None

    @property
    def training_answers(self) -> pd.DataFrame | None:
        """The rated answers of the training questions: none of a held-out question's answers trains."""
        if self.answers is None:
            return None
        return self.answers[~self.answers["held_out"]].drop(columns="held_out").reset_index(drop=True)

    @property
    def all(self) -> pd.DataFrame:
        return pd.concat([self.train, self.held_out], ignore_index=True)


def derive(config) -> RunPairs:
    """The pairs of `config` (a TrainConfig) from its data file, split by question."""
    from rm_demo.feedback import ReadOptions
    from rm_demo.pairs import pairs_from_file, split_by_question

    name = config.data_name
    result = pairs_from_file(
        config.input, ReadOptions.from_dict(config.read_options), config.pair_options(), name=name
    )
    if len(result.pairs) == 0:
        raise InputError(
            "no pairs to train on: " + "; ".join(f"{n} rows {r}" for r, n in result.report.dropped.items()),
            source=name,
            fix="check the thresholds (--chosen-min/--rejected-max) or use --strategy all-pairs",
        )
    train, held_out = split_by_question(result.pairs, config.eval_fraction, config.seed)
    answers = None
    if result.answers is not None and config.objective != "pairwise":  # only a score objective fits them
        answers = result.answers.assign(held_out=result.answers["prompt"].isin(set(held_out["prompt"])))
    return RunPairs(train, held_out, result.report.to_dict(), answers)


def save(run: RunFolder, pairs: RunPairs) -> None:
    """Write both files atomically (a reader never sees half of one); the report last, as the mark."""
    table = pd.concat([pairs.train.assign(held_out=False), pairs.held_out.assign(held_out=True)], ignore_index=True)
    run.path.mkdir(parents=True, exist_ok=True)
    with atomic_path(run.path / PAIRS_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    if pairs.answers is not None:
        with atomic_path(run.path / ANSWERS_FILE) as tmp:
            pairs.answers.to_parquet(tmp, index=False)
    else:
        (run.path / ANSWERS_FILE).unlink(missing_ok=True)
    write_json_atomic(run.path / REPORT_FILE, pairs.report)


def load(run: RunFolder) -> RunPairs | None:
    """The saved pairs, or None where the run has none saved (yet)."""
    try:
        report = json.loads((run.path / REPORT_FILE).read_text(encoding="utf-8"))
        table = pd.read_parquet(run.path / PAIRS_FILE)
    except (OSError, ValueError):
        return None
    held = table.pop("held_out").to_numpy(dtype=bool)
    try:
        answers = pd.read_parquet(run.path / ANSWERS_FILE)
    except (OSError, ValueError):  # a pairs file's run, or one saved before the answers were
        answers = None
    return RunPairs(table[~held].reset_index(drop=True), table[held].reset_index(drop=True), report, answers)


def run_pairs(run: RunFolder | None, config=None, *, fresh: bool = False) -> RunPairs:
    """The run's pairs: the saved ones, else (or with `fresh`: a run starting from step 0) derived from its
    config, saved, and read back, so the first reader sees exactly what every later one will. Without a
    folder, or one that cannot be written, the derived pairs as they are."""
    saved = None if fresh or run is None else load(run)
    if saved is not None:
        return saved
    derived = derive(config or run.config())
    if run is None:
        return derived
    try:
        save(run, derived)
    except OSError:
        return derived
    return load(run) or derived
