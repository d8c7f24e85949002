"""What the reward model learned: baselines, slices, ranking, explanations. Hand-made cases first."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from rm_demo import cli
from rm_demo.errors import InputError
from rm_demo.insight import length_baselines, length_warning, occlusion, rank, slices, spearman


def test_length_baselines_on_known_pairs():
    chosen_len, rejected_len = np.array([10, 3, 5, 7]), np.array([2, 8, 5, 1])
    margin = np.array([1.0, 1.0, 1.0, -1.0])  # the model is right on the first three
    b = length_baselines(chosen_len, rejected_len, margin)
    assert b["longer_answer"]["accuracy"] == 0.5  # pairs 1 and 4; the tie (pair 3) counts as wrong
    assert b["shorter_answer"]["accuracy"] == 0.25
    assert b["pairs_of_equal_length"] == 1
    # the model picks: longer (10>2), shorter (3<8), -, shorter (1<7): it agrees with "longer" on 1 of 3
    assert b["model_agrees_with_longer"] == pytest.approx(1 / 3)


def test_the_length_warning_speaks_only_when_length_decides():
    enough = {"pairs_of_different_length": 40}
    assert "longer answer in 90%" in length_warning({**enough, "model_agrees_with_longer": 0.9}, 0.8)
    assert "shorter answer in 95%" in length_warning({**enough, "model_agrees_with_longer": 0.05}, -0.8)
    assert length_warning({**enough, "model_agrees_with_longer": 0.55}, 0.1) is None
    assert length_warning({"model_agrees_with_longer": None}, None) is None
    # one pair of unequal length is no pattern, whichever way the model went
    assert length_warning({"pairs_of_different_length": 1, "model_agrees_with_longer": 0.0}, None) is None


def test_spearman():
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 1, 1]), np.array([1, 2, 3])) is None


def test_slices_add_up_and_say_how_they_cut():
    raw = pd.DataFrame(
        {"row": [2, 3, 4, 5, 6, 7], "topic": ["a", "a", "b", "b", "b", "b"], "rater": ["x", "y", "x", "y", "y", "x"]}
    )
    pairs = pd.DataFrame({"chosen_row": [2, 4, 6], "rejected_row": [3, 5, 7]})
    correct = np.array([True, False, True])
    by_topic = slices(pairs, raw, "topic", correct)
    assert by_topic["by"] == "question" and by_topic["values"] == {
        "a": {"pairs": 1, "accuracy": 1.0},
        "b": {"pairs": 2, "accuracy": 0.5},
    }
    by_rater = slices(pairs, raw, "rater", correct)  # each pair's two rows: x and y rated every pair
    assert by_rater["by"] == "ratings" and by_rater["values"] == {
        "x": {"pairs": 3, "accuracy": 2 / 3},
        "y": {"pairs": 3, "accuracy": 2 / 3},
    }
    with pytest.raises(InputError, match="no column 'nope'"):
        slices(pairs, raw, "nope", correct)


def test_a_rater_slice_credits_every_rating_of_both_answers_not_the_first_row():
    # Two reviewers rated every answer; the file lists ann's rows first. Crediting the chosen answer's first row
    # gave ann every pair and bob none (issue 37: one reviewer fed 12 of 20 pairs and was credited with 1).
    raw = pd.DataFrame(
        {
            "row": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            "rater": ["ann", "ann", "ann", "ann", "bob", "bob", "bob", "bob", "cy", "cy"],
        }
    )
    key = pd.Series(["q1a", "q1b", "q2a", "q2b", "q1a", "q1b", "q2a", "q2b", "q2a", "q2b"], index=raw["row"])
    pairs = pd.DataFrame({"chosen_row": [2, 4], "rejected_row": [3, 5]})
    found = slices(pairs, raw, "rater", np.array([True, False]), key)
    assert found["by"] == "ratings" and found["values"] == {
        "ann": {"pairs": 2, "accuracy": 0.5},
        "bob": {"pairs": 2, "accuracy": 0.5},
        "cy": {"pairs": 1, "accuracy": 0.0},
    }


def test_rank_is_sorted_and_sums_to_one():
    ranked = rank(np.array([0.5, 2.0, -1.0]), ["mid", "best", "worst"])
    assert [r["answer"] for r in ranked] == ["best", "mid", "worst"]
    assert sum(r["p_best"] for r in ranked) == pytest.approx(1.0)
    assert ranked[0]["p_best"] == pytest.approx(np.exp(2.0) / np.exp([0.5, 2.0, -1.0]).sum())


class _KeywordScorer:
    """A stand-in model whose reward counts the word 'sparingly' (3 points) and 'hour' (-2)."""

    def score(self, prompts, answers):
        return np.array([3.0 * a.split().count("sparingly") - 2.0 * a.split().count("hour") for a in answers])


def test_occlusion_finds_the_word_that_moves_the_reward():
    result = occlusion(_KeywordScorer(), "How do I water a cactus?", "Water it sparingly , never every hour")
    contributions = {t["text"]: t["contribution"] for t in result["tokens"]}
    assert max(contributions, key=contributions.get) == "sparingly" and contributions["sparingly"] == 3.0
    assert min(contributions, key=contributions.get) == "hour" and contributions["hour"] == -2.0
    assert result["reward"] == 1.0 and all(np.isfinite(t["contribution"]) for t in result["tokens"])


def test_rank_and_explain_commands(tmp_path, capsys):
    (tmp_path / "answers.txt").write_text("Water it sparingly.\n\nEvery hour, a full glass.\nNever.\n")
    assert (
        cli.main(["rank", "--question", "How do I water a cactus?", "--answers-file", str(tmp_path / "answers.txt")])
        == 0
    )
    ranked = json.loads(capsys.readouterr().out)
    assert len(ranked) == 3 and [r["reward"] for r in ranked] == sorted((r["reward"] for r in ranked), reverse=True)
    assert sum(r["p_best"] for r in ranked) == pytest.approx(1.0)
    assert cli.main(["explain", "--question", "Q?", "--answer", "Water it sparingly."]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert [t["text"] for t in explained["tokens"]] == ["Water", "it", "sparingly."]
    (tmp_path / "one.txt").write_text("only one\n")
    assert cli.main(["rank", "--question", "Q", "--answers-file", str(tmp_path / "one.txt")]) == 2
    assert "at least two answers" in capsys.readouterr().err


def _feedback(path, length_decides: bool, n: int = 24):
    """Good answers are long and bad ones short (length decides), or half the good ones are the short ones."""
    rows = ["question,answer,score"]
    for i in range(n):
        long_text = f"Here is a long and careful explanation number {i} covering every step in detail with examples"
        if length_decides or i % 2 == 0:
            rows += [f"Question {i}?,{long_text},5", f"Question {i}?,No idea {i},1"]
        else:
            rows += [f"Question {i}?,Yes exactly {i},5", f"Question {i}?,{long_text} but wrong,1"]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("length_decides", [True, False])
def test_a_model_trained_where_length_decides_gets_the_warning(tmp_path, length_decides):
    from rm_demo.evaluate import evaluate_run
    from rm_demo.train import TrainConfig, train

    data = _feedback(tmp_path / "f.csv", length_decides)
    run = tmp_path / "run"
    train(
        TrainConfig(
            input=str(data),
            output_dir=str(run),
            epochs=3,
            batch_size=4,
            learning_rate=1e-4,
            eval_fraction=0.5,
            max_length=64,
            checkpoints=False,
        ),
        progress=False,
    )
    report = evaluate_run(run)
    if length_decides:
        assert report["baselines"]["longer_answer"]["accuracy"] == 1.0 and report["length_warning"]
    else:
        assert 0.2 < report["baselines"]["longer_answer"]["accuracy"] < 0.8 and report["length_warning"] is None


def test_the_evaluation_summary_puts_baselines_beside_accuracy():
    from rm_demo.app.eval_tab import summary_markdown

    report = {
        "accuracy": 0.7,
        "pairs": 40,
        "mean_margin": 0.5,
        "base": {"accuracy": 0.5},
        "baselines": {"longer_answer": {"accuracy": 0.8}, "shorter_answer": {"accuracy": 0.15}},
        "length_correlation": 0.6,
        "length_warning": "The model prefers the longer answer in 90% ...",
    }
    text = summary_markdown("r", report)
    assert "**70.0% of 40 pairs (95% interval 54.6-81.9%)**" in text
    assert "*the longer answer wins* **80.0%**" in text and "**+0.60**" in text
    assert "⚠️ The model prefers the longer answer" in text
    assert "⚠️" not in summary_markdown("r", {**report, "length_warning": None})


def test_rank_and_explain_views_with_the_base_model():
    from rm_demo.app.rank_explain import explain_view, rank_view, word_shades

    message, table = rank_view("default", "How do I water a cactus?", "Sparingly.\nEvery hour.\n\nNever.")
    assert list(table["rank"]) == [1, 2, 3] and list(table["reward"]) == sorted(table["reward"], reverse=True)
    with pytest.raises(InputError, match="at least two answers"):
        rank_view("default", "Q", "only one")
    message, a, b, a_base, b_base = explain_view("default", "Q?", "Water it sparingly.", "Every hour.", True)
    assert re.findall(r'class="explained-word"[^>]*>([^<]+)<', a) == ["Water", "it", "sparingly."]
    assert a_base == "" and "green" in message and "red" in message  # the base is the model here
    assert word_shades({"tokens": [{"text": "x", "contribution": -4.0}, {"text": "y", "contribution": 1.0}]}) == [
        ("x", -1.0),
        ("y", 0.25),
    ]


def test_explained_words_are_green_when_they_raise_the_reward_and_red_when_they_lower_it():
    from rm_demo.app.rank_explain import LOWERS, RAISES, explained_html

    html = explained_html(
        {"reward": 1.0, "tokens": [{"text": "good", "contribution": 0.5}, {"text": "bad", "contribution": -1.0}]}, "A"
    )
    good, bad = re.findall(r"rgba\((\d+), (\d+), (\d+), ([\d.]+)\)", html)
    assert tuple(map(int, good[:3])) == RAISES and tuple(map(int, bad[:3])) == LOWERS
    assert float(bad[3]) > float(good[3])  # the stronger effect, the stronger colour


def test_the_raters_own_agreement_on_held_out_pairs_is_the_ceiling(write_file):
    """Three raters scored both answers of two questions; one of them disagrees once: 5 of 6 judgments
    agree with the pairs' preference (the aggregate's). A tie does not agree."""
    from rm_demo.app.eval_tab import summary_markdown
    from rm_demo.evaluate import raters_on_pairs
    from rm_demo.feedback import read_feedback
    from rm_demo.pairs import pairs_from_file

    rows = ["question,answer,score,rater"]
    for rater, (a1, b1, a2, b2) in {"ana": (5, 1, 5, 2), "ben": (5, 2, 5, 1), "chen": (4, 5, 4, 1)}.items():
        rows += [f"Q1,good one,{a1},{rater}", f"Q1,bad one,{b1},{rater}", f"Q2,good two,{a2},{rater}"]
        rows += [f"Q2,bad two,{b2},{rater}"]
    path = write_file("raters.csv", "\n".join(rows) + "\n")
    pairs = pairs_from_file(path).pairs
    assert len(pairs) == 2
    raters = raters_on_pairs(read_feedback(path), pairs)
    assert raters == {"judgments": 6, "pairs": 2, "of_pairs": 2, "agreeing": pytest.approx(5 / 6)}
    report = {"accuracy": 0.5, "pairs": 2, "mean_margin": 0.1, "base": {"accuracy": 0.5}, "raters": raters}
    assert "Raters agree with the pairs' preference in 83% of their 6 judgments on 2 of these 2 pairs" in (
        summary_markdown("r", report)
    )
    tie = write_file("tie.csv", "\n".join(rows).replace("Q1,bad one,5,chen", "Q1,bad one,4,chen") + "\n")
    assert raters_on_pairs(read_feedback(tie), pairs_from_file(tie).pairs)["agreeing"] == pytest.approx(5 / 6)
