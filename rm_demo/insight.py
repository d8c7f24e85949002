"""What did the reward model learn? Length baselines, slices, ranking several answers, explanations.

Known failure modes of reward models are measurable: "pick the longer answer" alone scores well on
many preference sets, so an accuracy means little until it is set beside that baseline. These are
pure functions of rewards, lengths and tables; the scorer is passed in.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rm_demo.errors import InputError
from rm_demo.text import MIN_HELD_OUT_PAIRS

# The model agrees with "the longer answer wins" on at least this share of pairs: it may rank by length.
LENGTH_AGREEMENT_WARNING = 0.8


def token_lengths(tokenizer, texts: list[str]) -> np.ndarray:
    return np.array(
        [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]], dtype=np.int64
    )


def length_baselines(chosen_len: np.ndarray, rejected_len: np.ndarray, margin: np.ndarray) -> dict:
    """Accuracy of "the longer answer wins" and "the shorter answer wins" (ties count as wrong, as in
    RewardBench), and how often the model's preference agrees with the longer answer."""
    longer = chosen_len > rejected_len
    shorter = chosen_len < rejected_len
    decided = chosen_len != rejected_len
    model_prefers_longer = np.where(margin > 0, chosen_len > rejected_len, rejected_len > chosen_len)
    agreement = float(np.mean(model_prefers_longer[decided])) if decided.any() else None
    return {
        "longer_answer": {"accuracy": float(np.mean(longer)) if longer.size else None},
        "shorter_answer": {"accuracy": float(np.mean(shorter)) if shorter.size else None},
        "model_agrees_with_longer": agreement,
        "pairs_of_equal_length": int((~decided).sum()),
        "pairs_of_different_length": int(decided.sum()),
    }


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return None
    return float(pd.Series(x).rank().corr(pd.Series(y).rank()))


def length_warning(baselines: dict, correlation: float | None) -> str | None:
    """Plain words when the model seems to rank by length, on enough pairs of unequal length to say so."""
    if (baselines.get("pairs_of_different_length") or 0) < MIN_HELD_OUT_PAIRS:
        return None  # "100% of 1 pair" is no pattern
    agreement = baselines.get("model_agrees_with_longer")
    if agreement is not None and agreement >= LENGTH_AGREEMENT_WARNING:
        return (
            f"The model prefers the longer answer in {agreement:.0%} of the held-out pairs whose lengths differ: "
            "it may be ranking by length more than by content. Check it on pairs where the better answer is the "
            "shorter one."
        )
    if agreement is not None and agreement <= 1 - LENGTH_AGREEMENT_WARNING:
        return (
            f"The model prefers the shorter answer in {1 - agreement:.0%} of the held-out pairs whose lengths "
            "differ: it may be ranking by brevity more than by content."
        )
    return None


def slices(
    pairs: pd.DataFrame, raw: pd.DataFrame, column: str, correct: np.ndarray, answer_key: pd.Series | None = None
) -> dict:
    """Accuracy and pair count per value of `column` of the feedback file.

    A column with one value on all the rows of a pair (a topic, a source) slices by question: each pair
    counts once. Otherwise (a rater) a pair counts for every value found on any rating of either of its answers (`by`
    "ratings"): with several raters an answer has several rows, and crediting the chosen answer's first row
    gave one reviewer of 12 pairs 1. `raw` is the file as read (`read_table`), with its `row` numbers;
    `answer_key` (row number -> the answer's identity) groups those rows; without it each answer is its row.
    """
    if column not in raw.columns or column == "row":
        names = ", ".join(repr(c) for c in raw.columns if c != "row")
        raise InputError(f"there is no column {column!r} to slice by", fix=f"use one of: {names}")
    value_of_row = pd.Series(raw[column].astype(str).to_numpy(), index=raw["row"].to_numpy())
    table = _ratings_of_pairs(pairs, value_of_row, answer_key, correct)
    by = "question" if table["pair"].is_unique else "ratings"  # one value per pair: it counts once
    groups = table.groupby("value", sort=True)["correct"].agg(["size", "mean"])
    return {
        "by": by,
        "values": {
            str(v): {"pairs": int(row["size"]), "accuracy": float(row["mean"])} for v, row in groups.iterrows()
        },
    }


def _ratings_of_pairs(
    pairs: pd.DataFrame, value_of_row: pd.Series, answer_key: pd.Series | None, correct: np.ndarray
) -> pd.DataFrame:
    """(value, correct) once for each distinct value among the rows of a pair's two answers."""
    n = len(pairs)
    ends = pd.DataFrame(
        {
            "pair": np.concatenate([np.arange(n), np.arange(n)]),
            "row": np.concatenate([pairs["chosen_row"].to_numpy(), pairs["rejected_row"].to_numpy()]),
        }
    )
    if answer_key is None:
        rated = ends.assign(value=value_of_row.reindex(ends["row"].to_numpy()).to_numpy())
    else:
        rows = pd.DataFrame({"key": answer_key.to_numpy(), "value": value_of_row.reindex(answer_key.index).to_numpy()})
        ends["key"] = answer_key.reindex(ends["row"].to_numpy()).to_numpy()
        rated = ends.merge(rows, on="key", how="left")
    rated = rated.drop_duplicates(["pair", "value"])
    pair = rated["pair"].to_numpy()
    return pd.DataFrame({"pair": pair, "value": rated["value"].to_numpy(), "correct": correct.astype(float)[pair]})


def rank(rewards: np.ndarray, answers: list[str]) -> list[dict]:
    """Answers best first, with P(best) = softmax of the rewards."""
    rewards = np.asarray(rewards, dtype=np.float64)
    p = np.exp(rewards - rewards.max())
    p /= p.sum()
    order = np.argsort(-rewards, kind="stable")
    return [{"answer": answers[i], "reward": float(rewards[i]), "p_best": float(p[i])} for i in order]


_WORD = re.compile(r"\S+")


def within_reach(scorer, answer: str) -> str:
    """The start of `answer` that can reach the model's window, with a window's worth of room for a word
    taken out: the reward of the answer, and of the answer without any one word of it, is the same as for
    the whole. Ten thousand one-letter words made 201 variants of 5,000 tokens each (1.6 GB) where the
    model reads 256."""
    if getattr(scorer, "tokenizer", None) is None:  # a scorer without a window (a stand-in): all of it
        return answer
    reach = 2 * scorer.max_length
    try:
        found = scorer.tokenizer(answer, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):  # a slow tokenizer has no offsets: keep it whole
        return answer
    offsets = found["offset_mapping"]
    return answer if len(offsets) <= reach else answer[: offsets[reach][0]]


def occlusion(scorer, question: str, answer: str, max_words: int = 200) -> dict:
    """How much each word moves the reward: reward(answer) - reward(answer without that word).

    Occlusion needs only forward passes (one batch for all words), works for any model the scorer
    loads, and its numbers read directly in reward units.
    """
    answer = within_reach(scorer, answer)
    words = [(m.start(), m.end()) for m in _WORD.finditer(answer)][:max_words]
    variants = [answer[:s].rstrip() + (" " if s and e < len(answer) else "") + answer[e:].lstrip() for s, e in words]
    rewards = scorer.score([question] * (len(variants) + 1), [answer, *variants])
    full = float(rewards[0])
    tokens = [{"text": answer[s:e], "contribution": float(full - r)} for (s, e), r in zip(words, rewards[1:])]
    return {"reward": full, "tokens": tokens}


def read_answers(text: str, max_answers: int | None = None) -> list[str]:
    """One answer per line. Only CR and LF end a line: `str.splitlines` also splits on U+2028 and
    other separators that can sit inside an answer."""
    answers = [line.strip() for line in re.split(r"\r\n|\r|\n", text) if line.strip()]
    if len(answers) < 2:
        raise InputError("give at least two answers, one per line", fix="paste or type each answer on its own line")
    if max_answers is not None and len(answers) > max_answers:
        raise InputError(
            f"{len(answers):,} answers is over this app's limit of {max_answers:,}",
            fix=f"rank at most {max_answers:,} at a time (the CLI's `rank` has no such limit)",
        )
    return answers
