"""The core's small parts, each against an independent computation: the held-out split, the tokenised pairs
TRL trains on, the accuracy and its interval. Fast (the embedded tokenizer only, no model): the mutation
run (docs/development.md) runs these with test_pairs.py against every mutant of these functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from transformers import AutoTokenizer

from rm_demo.evaluate import summarize
from rm_demo.models import PairEncoder, resolve_model
from rm_demo.pairs import split_by_question
from rm_demo.text import accuracy_phrase, wilson_interval
from rm_demo.train import loss_margins, tokenize_pairs


def _pairs(questions: int, per_question: int = 2) -> pd.DataFrame:
    rows = [
        {"prompt": f"question {q}", "chosen": f"good {q}.{i}", "rejected": f"bad {q}.{i}", "margin": float(1 + i)}
        for q in range(questions)
        for i in range(per_question)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "questions, fraction, held", [(10, 0.3, 3), (10, 0.25, 2), (3, 0.1, 1), (4, 0.99, 3), (2, 0.5, 1), (2, 0.01, 1)]
)
def test_the_split_holds_out_whole_questions_in_the_asked_share(questions, fraction, held):
    pairs = _pairs(questions)
    train, evaluation = split_by_question(pairs, fraction, seed=7)
    assert evaluation["prompt"].nunique() == held  # round(n * fraction), at least 1, at most n - 1
    assert not set(train["prompt"]) & set(evaluation["prompt"])  # no question on both sides
    assert len(train) + len(evaluation) == len(pairs) and len(evaluation) == 2 * held  # every pair of a question
    pd.testing.assert_frame_equal(
        pd.concat([train, evaluation]).sort_values(["prompt", "chosen"]).reset_index(drop=True),
        pairs.sort_values(["prompt", "chosen"]).reset_index(drop=True),
    )
    again = split_by_question(pairs, fraction, seed=7)[1]
    pd.testing.assert_frame_equal(evaluation, again)  # the seed decides
    others = {frozenset(split_by_question(pairs, fraction, seed=s)[1]["prompt"]) for s in range(20)}
    assert len(others) > 1 or held == questions - 1  # and another seed may draw other questions


def test_no_split_without_a_fraction_or_a_second_question():
    for pairs, fraction in ((_pairs(5), 0.0), (_pairs(1), 0.5)):
        train, evaluation = split_by_question(pairs, fraction, seed=1)
        assert len(evaluation) == 0 and len(train) == len(pairs)


@pytest.fixture(scope="module")
def encoder() -> PairEncoder:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("default"))
    return PairEncoder(tokenizer, max_length=16, is_decoder=False)


def test_tokenised_pairs_are_chosen_then_rejected_as_the_encoder_writes_them(encoder):
    pairs = _pairs(2, 1).assign(rejected=["bad", "a much longer rejected answer " * 4])
    data, truncated = tokenize_pairs(encoder, pairs, "off")
    tok = encoder.tokenizer
    for row, pair in zip(data, pairs.itertuples()):
        expected_chosen = tok(pair.prompt, pair.chosen, truncation=True, max_length=16)["input_ids"]
        assert row["chosen_ids"] == expected_chosen  # chosen is chosen: the loss learns the right way round
        assert row["rejected_ids"] == encoder.encode([pair.prompt], [pair.rejected]).input_ids[0]
        assert row["length"] == max(len(row["chosen_ids"]), len(row["rejected_ids"]))
    assert len(data[1]["rejected_ids"]) == 16 and truncated == 1  # the long one is cut, and counted
    assert "margin" not in data.column_names


def test_margins_enter_only_when_asked(encoder):
    pairs = _pairs(1, 3)  # gaps 1, 2, 3
    assert loss_margins(pairs["margin"].to_numpy(), "off") is None
    with_gap = tokenize_pairs(encoder, pairs, "gap")[0]
    assert with_gap["margin"] == pytest.approx(list(loss_margins(pairs["margin"].to_numpy(), "gap")))
    assert with_gap["margin"] != [0.0, 0.0, 0.0]


def test_accuracy_counts_a_tie_as_wrong_and_gives_wilsons_interval():
    chosen = np.array([2.0, 1.0, 0.5, 0.0, 3.0])
    rejected = np.array([1.0, 1.0, 1.0, -1.0, 2.0])  # right, tie, wrong, right, right
    report = summarize(chosen, rejected)
    assert report["correct"] == 3 and report["pairs"] == 5 and report["accuracy"] == 0.6
    assert report["mean_margin"] == pytest.approx(np.mean(chosen - rejected))
    exact = binomtest(3, 5).proportion_ci(method="wilson")
    assert report["accuracy_interval"] == pytest.approx([exact.low, exact.high], abs=1e-6)
    assert summarize(np.array([]), np.array([]))["accuracy"] is None


@pytest.mark.parametrize("correct, n", [(27, 39), (0, 10), (10, 10), (140, 163), (1, 1)])
def test_the_interval_is_wilsons(correct, n):
    exact = binomtest(correct, n).proportion_ci(method="wilson")
    assert wilson_interval(correct, n) == pytest.approx((exact.low, exact.high), abs=1e-6)
    low, high = wilson_interval(correct, n)
    assert f"{100 * low:.1f}-{100 * high:.1f}%" in accuracy_phrase(correct / n, n)


def test_loss_margins_by_mode():
    gaps = np.array([0.5, 2.0, 4.0])
    assert loss_margins(gaps, "off") is None
    assert list(loss_margins(gaps, "gap")) == [0.5, 2.0, 4.0]
    assert list(loss_margins(gaps, "scaled")) == [0.125, 0.5, 1.0]  # by the largest gap of these pairs
    assert list(loss_margins(gaps, "scaled", largest_gap=8.0)) == [0.0625, 0.25, 0.5]  # by the training pairs'
    assert list(loss_margins(gaps, "scaled", largest_gap=float("nan"))) == [0.125, 0.5, 1.0]
    assert list(loss_margins(gaps, "clipped")) == [0.5, 1.0, 1.0]
    assert list(loss_margins(np.array([0.25, 0.5]), "scaled")) == [0.5, 1.0]  # gaps under 1 scale up to 1
    assert list(loss_margins(np.array([0.0, 0.0]), "scaled")) == [0.0, 0.0]  # no division by zero
    for no_scores in (np.array([1.0, float("nan")]), np.array([])):
        assert loss_margins(no_scores, "gap") is None  # pairs without scores get no margin
    with pytest.raises(ValueError, match="unknown margin mode"):
        loss_margins(gaps, "huge")


def test_tokenised_margins_scale_by_the_largest_training_gap(encoder):
    pairs = _pairs(1, 3)  # gaps 1, 2, 3
    scaled = tokenize_pairs(encoder, pairs, "scaled", largest_gap=6.0)[0]
    assert scaled["margin"] == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    assert "margin" not in tokenize_pairs(encoder, pairs)[0].column_names  # the default: no margin


def test_a_cut_chosen_answer_is_counted_too(encoder):
    pairs = _pairs(1, 1).assign(chosen=["a much longer chosen answer " * 4])
    assert tokenize_pairs(encoder, pairs)[1] == 1


def test_no_pairs_no_figures():
    empty = summarize(np.array([]), np.array([]))
    assert empty == {"pairs": 0, "correct": 0, "accuracy": None, "accuracy_interval": None, "mean_margin": None}
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing known: the whole range
