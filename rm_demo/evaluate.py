"""How good is a trained reward model? Held-out accuracy against the untrained base, calibration,
reward distributions and the worst mistakes. Written to `runs/<name>/eval.json`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rm_demo.errors import InputError
from rm_demo.feedback import FeedbackTable, ReadOptions, read_feedback
from rm_demo.pairs import pairs_from_file
from rm_demo.runs import RunFolder, write_json_atomic
from rm_demo.score import Scorer
from rm_demo.text import MIN_HELD_OUT_PAIRS, counted, wilson_interval

CALIBRATION_BINS = 10


def run_split(run: RunFolder) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's own (training, held-out) pairs, as saved when it started (an older run: derived once, saved)."""
    from rm_demo.run_pairs import run_pairs

    saved = run_pairs(run)
    return saved.train, saved.held_out


def heldout_pairs(run: RunFolder) -> pd.DataFrame:
    return run_split(run)[1]


def score_pairs(scorer: Scorer, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = len(pairs)
    rewards = scorer.score(list(pairs["prompt"]) * 2, list(pairs["chosen"]) + list(pairs["rejected"]))
    return rewards[:n], rewards[n:]


def summarize(chosen: np.ndarray, rejected: np.ndarray) -> dict:
    """Accuracy (the share of pairs whose chosen answer scores higher; a tie is wrong), with its count and
    95% Wilson interval, and the mean margin."""
    margin = chosen - rejected
    correct = int(np.sum(margin > 0))
    return {
        "pairs": int(margin.size),
        "correct": correct,
        "accuracy": correct / margin.size if margin.size else None,
        "accuracy_interval": list(wilson_interval(correct, int(margin.size))) if margin.size else None,
        "mean_margin": float(np.mean(margin)) if margin.size else None,
    }


def calibration(chosen: np.ndarray, rejected: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Predicted P(first answer preferred) in bins vs how often it was. Each pair is shown in both
    orders, so the curve covers 0 to 1 and a calibrated model lies on the diagonal."""
    diff = np.concatenate([chosen - rejected, rejected - chosen])
    observed = np.concatenate([np.ones(chosen.size), np.zeros(chosen.size)])
    predicted = 1 / (1 + np.exp(-diff))
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(predicted, edges) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "predicted": float(predicted[mask].mean()),
                    "observed": float(observed[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return out


def worst_mistakes(pairs: pd.DataFrame, chosen: np.ndarray, rejected: np.ndarray, top: int = 10) -> list[dict]:
    margin = chosen - rejected
    order = np.argsort(margin)[:top]
    return [
        {
            "prompt": pairs["prompt"].iloc[i],
            "chosen": pairs["chosen"].iloc[i],
            "rejected": pairs["rejected"].iloc[i],
            "reward_chosen": float(chosen[i]),
            "reward_rejected": float(rejected[i]),
            "margin": float(margin[i]),
        }
        for i in order
        if margin[i] <= 0
    ]


def evaluate_pairs(
    model: str, pairs: pd.DataFrame, base_model: str | None = "default", device: str | None = None
) -> dict:
    """Score `pairs` with `model` (and the untrained base as the reference line), on `device` (None: this
    process's own choice, `models.scoring_device`)."""
    scorer = Scorer(model, device=device)
    chosen, rejected = score_pairs(scorer, pairs)
    report = {
        "model": model,
        **summarize(chosen, rejected),
        **length_report(scorer, pairs, chosen, rejected),
        "calibration": calibration(chosen, rejected),
        "worst_mistakes": worst_mistakes(pairs, chosen, rejected),
        "rewards": {"chosen": chosen.round(5).tolist(), "rejected": rejected.round(5).tolist()},
    }
    if base_model:
        base_chosen, base_rejected = score_pairs(
            Scorer(base_model, device=device, max_length=scorer.max_length), pairs
        )
        report["base"] = {"model": base_model, **summarize(base_chosen, base_rejected)}
    if len(pairs) < MIN_HELD_OUT_PAIRS:  # the app says the same and shows no accuracy
        report["note"] = (
            f"only {counted(len(pairs), 'pair')}: too few for the accuracy to mean much "
            f"(at least {MIN_HELD_OUT_PAIRS} needed)"
        )
    return report


def length_report(scorer: Scorer, pairs: pd.DataFrame, chosen: np.ndarray, rejected: np.ndarray) -> dict:
    """Length baselines on the same pairs, the reward-length correlation, and the reward's scale."""
    from rm_demo.insight import length_baselines, length_warning, spearman, token_lengths

    chosen_len = token_lengths(scorer.tokenizer, list(pairs["chosen"]))
    rejected_len = token_lengths(scorer.tokenizer, list(pairs["rejected"]))
    baselines = length_baselines(chosen_len, rejected_len, chosen - rejected)
    correlation = spearman(np.concatenate([chosen_len, rejected_len]), np.concatenate([chosen, rejected]))
    rewards = np.concatenate([chosen, rejected])
    return {
        "baselines": baselines,
        "length_correlation": correlation,
        "length_warning": length_warning(baselines, correlation),
        "lengths": {"chosen": chosen_len.tolist(), "rejected": rejected_len.tolist()},
        "reward_stats": {
            "mean": float(rewards.mean()),
            "std": float(rewards.std()),
            "min": float(rewards.min()),
            "max": float(rewards.max()),
        }
        if rewards.size
        else None,
    }


def raters_on_pairs(table: FeedbackTable, pairs: pd.DataFrame) -> dict | None:
    """The raters' own agreement on these pairs: a ceiling for any model's accuracy on them.

    Where one rater scored both answers of a pair, their judgment agrees with the pair when they scored
    its chosen answer higher (a tie does not agree). None when the file names no raters, or no rater
    scored both answers of any pair."""
    from rm_demo.pairs import parse_scores

    frame = table.frame
    if "rater" not in frame or "score" not in frame or not len(pairs):
        return None
    rated = pd.DataFrame(
        {
            "question": frame["question"],
            "answer": frame["answer"],
            "rater": frame["rater"],
            "score": parse_scores(frame["score"])[0],
        }
    ).dropna(subset=["score"])
    rated = rated[rated["rater"].astype(str).str.strip() != ""]
    indexed = pairs[["prompt", "chosen", "rejected"]].reset_index(drop=True).rename_axis("pair").reset_index()

    def side(answer: str) -> pd.DataFrame:
        joined = indexed.merge(rated, left_on=["prompt", answer], right_on=["question", "answer"])
        return joined[["pair", "rater", "score"]]

    both = side("chosen").merge(side("rejected"), on=["pair", "rater"], suffixes=("_chosen", "_rejected"))
    if both.empty:
        return None
    agree = both["score_chosen"] > both["score_rejected"]
    return {
        "judgments": int(len(both)),
        "pairs": int(both["pair"].nunique()),
        "of_pairs": int(len(pairs)),
        "agreeing": float(agree.mean()),
    }


def evaluate_run(run_dir: str | Path, slice_by: list[str] | None = None, device: str | None = None) -> dict:
    """Evaluate a finished run on its held-out questions and write `eval.json`.

    `slice_by`: columns of the feedback file; the report gives accuracy and pairs per value of each.
    `device`: where to score (None: this process's own choice; training passes the device it trained on)."""
    run = RunFolder(run_dir)
    pairs = heldout_pairs(run)
    base = run.read().get("config", {}).get("model", "default")
    report = (
        evaluate_pairs(str(run.model_dir), pairs, base_model=base, device=device)
        if len(pairs)
        else {"pairs": 0, "note": "the run held out no questions"}
    )
    report["run"] = run.name
    mapping = ((run.read().get("data") or {}).get("report") or {}).get("column_mapping") or {}
    report["raters"] = None
    if len(pairs) and "rater" in mapping:  # the file is read again only where it names raters
        config = run.config()
        try:
            table = read_feedback(config.input, ReadOptions.from_dict(config.read_options), name=config.data_name)
            report["raters"] = raters_on_pairs(table, pairs)
        except (OSError, ValueError):  # the data gone or unreadable: no raters to ask
            pass
    write_json_atomic(run.path / "eval.json", report)
    return add_slices(run.path, report, slice_by or [], pairs)


def add_slices(run_dir: str | Path, report: dict, columns: list[str], pairs: pd.DataFrame | None = None) -> dict:
    """Accuracy per value of `columns`, from the report's own rewards: no model is loaded or run again.
    Slices already in the report stay; new ones are added and `eval.json` is written again."""
    run = RunFolder(run_dir)
    # A slice by raters from before it counted every rating ("chosen answer": the first row only) is redone.
    done = {c for c in report.get("slices") or {} if (report.get("slices_by") or {}).get(c) != "chosen answer"}
    new = [c for c in columns if c not in done]
    if not new or not report.get("pairs"):
        return report
    found = run_slices(run, heldout_pairs(run) if pairs is None else pairs, report, new)
    report.setdefault("slices", {}).update({column: found[column]["values"] for column in new})
    # "question" when the column is constant within each question, else "ratings" (either answer's)
    report.setdefault("slices_by", {}).update({column: found[column]["by"] for column in new})
    write_json_atomic(run.path / "eval.json", report)
    return report


def run_slices(run: RunFolder, pairs: pd.DataFrame, report: dict, columns: list[str]) -> dict:
    from rm_demo.feedback import read_table
    from rm_demo.insight import slices

    config = run.config()
    raw = read_table(config.input, ReadOptions.from_dict(config.read_options), name=config.data_name).frame
    correct = np.array(report["rewards"]["chosen"]) > np.array(report["rewards"]["rejected"])
    if "chosen_row" not in pairs:
        raise InputError(
            "this run's data is a pairs file: it has no feedback rows to slice by",
            fix="slice a run trained on a feedback file",
        )
    key = answer_key(raw, ((run.read().get("data") or {}).get("report") or {}).get("column_mapping") or {})
    return {column: slices(pairs, raw, column, correct, key) for column in columns}


def answer_key(raw: pd.DataFrame, mapping: dict) -> pd.Series | None:
    """Row number -> its (question, answer) as the pairs derivation groups them (normalised), so a slice by
    rater finds every rating of an answer; None where the file has no such columns (a pairs file)."""
    from rm_demo.feedback import normalize_answer, normalize_question

    question, answer = mapping.get("question"), mapping.get("answer")
    if question not in raw.columns or answer not in raw.columns:
        return None
    key = normalize_question(raw[question]).str.cat(normalize_answer(raw[answer]), sep="\x00")
    return pd.Series(key.to_numpy(), index=raw["row"].to_numpy())


def evaluate_file(
    model: str, pairs_file: str, base_model: str | None = "default", read: ReadOptions | None = None
) -> dict:
    """`read`: how to read the file (the CLI bounds its size: --max-input-mb)."""
    result = pairs_from_file(pairs_file, read)
    pairs = result.pairs
    if not len(pairs):
        raise InputError(
            f"no usable pairs to evaluate ({counted(result.report.rows_read, 'row')} read, all dropped)",
            source=result.report.source,
            fix="run `python -m rm_demo pairs` on it to see why each row was dropped",
        )
    return evaluate_pairs(model, pairs, base_model)


def load_eval(run_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(run_dir) / "eval.json").read_text())
    except (OSError, ValueError):
        return None
