"""Deriving pairs: the seed's rule, all-pairs, thresholds, and the accounting invariant."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rm_demo import pairs as pairs_module
from rm_demo.feedback import FeedbackTable, read_feedback
from rm_demo.pairs import DROP_REASONS, PairOptions, derive_pairs, pairs_from_file


def _csv(write_file, rows, name="f.csv"):
    return write_file(name, pd.DataFrame(rows, columns=["question", "answer", "score"]).to_csv(index=False))


def test_seed_sample_gives_the_articles_three_pairs(seed_csv):
    result = pairs_from_file(seed_csv)
    got = {
        (p.prompt, p.chosen[:20], p.chosen_score, p.rejected[:20], p.rejected_score) for p in result.pairs.itertuples()
    }
    assert got == {
        (
            "Do you know why turkeys became the official food of thanksgiving?",
            "To be honest, I don\u2019",
            5,
            "I know that the Amer",
            1,
        ),
        ("How do I float on my back in the water?", "You should tuck your", 5, "ou want me to tell y", 2),
        ("What is your name?", "Answer : My name is ", 5, "Answer : Amit is my ", 2),
    }
    r = result.report
    assert (r.rows_read, r.rows_used, r.dropped, r.questions, r.pairs) == (6, 6, {}, 3, 3)


def test_every_drop_reason_is_counted(write_file):
    rows = [
        ["", "a", "5"],  # missing question
        ["q1", "", "5"],  # missing answer
        ["q1", "a1", ""],  # missing score
        ["q1", "a2", "five"],  # non-numeric
        ["q1", "good", "5"],
        ["q1", "good", "5"],  # duplicate
        ["q1", "mid", "3"],  # not best or worst
        ["q1", "bad", "1"],
        ["solo", "only", "5"],  # single answer
        ["tie", "x", "3"],
        ["tie", "y", "3"],  # all tied
        ["meh", "x", "3"],
        ["meh", "y", "2"],  # below thresholds
    ]
    result = pairs_from_file(_csv(write_file, rows))
    r = result.report
    assert r.dropped == {
        "missing_question": 1,
        "missing_answer": 1,
        "missing_score": 1,
        "non_numeric_score": 1,
        "duplicate_row": 1,
        "single_answer": 1,
        "all_tied": 2,
        "below_thresholds": 2,
        "not_best_or_worst": 1,
    }
    assert r.rows_read == 13 and r.rows_used == 2 and r.pairs == 1
    assert list(result.pairs[["chosen", "rejected", "chosen_row", "rejected_row"]].iloc[0]) == ["good", "bad", 6, 9]
    dropped = result.dropped_rows.set_index("row")["status"]
    assert dropped[2] == "missing_question" and dropped[7] == "duplicate_row" and dropped[14] == "below_thresholds"


def test_scores_parse_leniently_and_repeats_average(write_file):
    rows = [["q", "a", " 5 "], ["q", "b", "4.0"], ["q", "c", "1,5"], ["q", "a", "3"]]
    result = pairs_from_file(_csv(write_file, rows), pair_options=PairOptions(strategy="all-pairs", min_margin=0.5))
    pairs = {(p.chosen, p.rejected): p.margin for p in result.pairs.itertuples()}
    assert pairs == {("a", "c"): 2.5, ("b", "c"): 2.5}  # "a" is rated 5 and 3: mean 4, tied with "b": no pair
    assert result.report.dropped == {"duplicate_row": 1}


def test_all_pairs_margin_and_order(write_file):
    rows = [["q", "a", "5"], ["q", "b", "4"], ["q", "c", "2"], ["q", "d", "1.5"]]
    result = pairs_from_file(_csv(write_file, rows), pair_options=PairOptions(strategy="all-pairs", min_margin=1))
    # Best chosen first; for each, the worst rejected first. c-d (gap 0.5) is below the margin.
    assert [(p.chosen, p.rejected, p.margin) for p in result.pairs.itertuples()] == [
        ("a", "d", 3.5),
        ("a", "c", 3),
        ("a", "b", 1),
        ("b", "d", 2.5),
        ("b", "c", 2),
    ]
    strict = PairOptions(strategy="all-pairs", min_margin=1, chosen_min=4.5, rejected_max=3)
    result = pairs_from_file(_csv(write_file, rows), pair_options=strict)
    assert [(p.chosen, p.rejected) for p in result.pairs.itertuples()] == [("a", "d"), ("a", "c")]
    assert result.report.dropped == {"below_thresholds": 1}


def test_ties_at_top_break_like_the_seed(write_file):
    rows = [["q", "first best", "5"], ["q", "worst", "1"], ["q", "last best", "5"], ["q", "also worst", "1"]]
    pair = pairs_from_file(_csv(write_file, rows)).pairs.iloc[0]
    assert (pair.chosen, pair.rejected) == ("last best", "worst")


def test_other_scale_gets_a_threshold_suggestion(write_file):
    rows = [["q", "a", "9"], ["q", "b", "2"], ["r", "a", "10"], ["r", "b", "6"]]
    report = pairs_from_file(_csv(write_file, rows)).report
    assert report.suggested_thresholds == {"chosen_min": 7.5, "rejected_max": 7.5}
    assert "--chosen-min 7.5" in report.scale_note


def test_given_pairs_pass_through_accounting(write_file):
    path = write_file(
        "p.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"prompt": "q", "chosen": "a", "rejected": "b"},
                {"prompt": "q", "chosen": "a", "rejected": "b"},
                {"prompt": "q", "chosen": "same", "rejected": "same"},
                {"prompt": "q", "chosen": "", "rejected": "b"},
            ]
        ),
    )
    result = pairs_from_file(path)
    assert result.report.kind == "pairs" and result.report.pairs == 1
    assert result.report.dropped == {"duplicate_row": 1, "identical_answers": 1, "missing_chosen": 1}


def test_deterministic(write_file, seed_csv):
    first = pairs_from_file(seed_csv, pair_options=PairOptions(strategy="all-pairs")).pairs
    second = pairs_from_file(seed_csv, pair_options=PairOptions(strategy="all-pairs")).pairs
    pd.testing.assert_frame_equal(first, second)


QUESTIONS = ["Q one?", " Q one? ", "Q\u00a0one?", "Q two", "Q three", ""]
SCORES = ["1", "2", "3", "4", "5", " 4 ", "2.5", "", "n/a", "10"]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(QUESTIONS), st.sampled_from(["a", "b", "c", "d", ""]), st.sampled_from(SCORES)),
        max_size=30,
    ),
    strategy=st.sampled_from(["best-worst", "all-pairs"]),
    margin=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_accounting_invariant(tmp_path_factory, rows, strategy, margin):
    path = tmp_path_factory.mktemp("h") / "f.csv"
    pd.DataFrame(rows or [("q", "a", "1")], columns=["question", "answer", "score"]).to_csv(path, index=False)
    result = derive_pairs(read_feedback(path), PairOptions(strategy=strategy, min_margin=margin))
    r = result.report
    assert r.rows_read == r.rows_used + sum(r.dropped.values()) == len(result.rows)
    assert set(r.dropped) <= set(DROP_REASONS)
    used = result.rows[result.rows["status"] == "used"]
    assert set(used["row"]) == set(result.pairs["chosen_row"]) | set(result.pairs["rejected_row"])
    for p in result.pairs.itertuples():
        assert p.chosen_score > p.rejected_score
        assert p.margin == pytest.approx(p.chosen_score - p.rejected_score)
        chosen = result.rows.set_index("row").loc[p.chosen_row]
        rejected = result.rows.set_index("row").loc[p.rejected_row]
        assert chosen["question"] == rejected["question"] == p.prompt
        if strategy == "all-pairs":
            assert p.margin >= margin
        else:
            assert p.chosen_score >= 4 and p.rejected_score < 4


def test_question_codes_agree_across_arrow_chunks():
    import pyarrow as pa

    from rm_demo.pairs import _codes

    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["a", "b", "a"], ["b", "c", "a"], []])))
    assert _codes(chunked).tolist() == [0, 1, 0, 1, 2, 0]  # first appearance, one numbering for all chunks


# ---------------------------------------------------------------------------------------------
# all-pairs: bounded memory and a per-question cap


def _one_big_question(n: int, seed: int = 0) -> FeedbackTable:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "row": np.arange(2, n + 2),
            "question": ["q"] * n,
            "answer": [f"answer {i}" for i in range(n)],
            "score": rng.integers(1, 6, n).astype(str),
        }
    )
    return FeedbackTable(frame, "feedback", "big.csv", "csv", "utf-8", True, ",", {})


def _brute_force(table: FeedbackTable, min_margin: float = 1.0) -> set:
    f = table.frame.assign(s=table.frame["score"].astype(float))
    return {
        (c.answer, r.answer)
        for c in f.itertuples()
        for r in f.itertuples()
        if c.question == r.question and c.s - r.s >= min_margin and c.s > r.s
    }


def test_a_question_over_the_cap_gives_a_sample_and_says_so():
    table = _one_big_question(3000)
    result = derive_pairs(table, PairOptions(strategy="all-pairs"))
    r = result.report
    assert r.pairs == 1000 == len(result.pairs) and r.pairs_not_taken > 1_000_000
    assert (result.pairs["chosen_score"] - result.pairs["rejected_score"] >= 1).all()
    assert not result.pairs.duplicated(["chosen", "rejected"]).any()
    assert r.rows_read == r.rows_used + r.rows_dropped and "not taken" in " ".join(r.notes)
    assert "pair_cap" in r.dropped
    again = derive_pairs(table, PairOptions(strategy="all-pairs"))
    assert again.pairs.equals(result.pairs)  # seeded: the same file gives the same pairs


def test_the_counting_path_finds_exactly_the_pairs_when_they_fit():
    table = _one_big_question(12, seed=3)
    expected = _brute_force(table, 2.0)
    capped = derive_pairs(table, PairOptions(strategy="all-pairs", min_margin=2, max_pairs_per_question=len(expected)))
    assert (
        set(zip(capped.pairs["chosen"], capped.pairs["rejected"])) == expected and capped.report.pairs_not_taken == 0
    )
    whole = derive_pairs(table, PairOptions(strategy="all-pairs", min_margin=2, max_pairs_per_question=1000))
    assert whole.pairs.equals(capped.pairs)
    assert whole.rows["status"].tolist() == capped.rows["status"].tolist()


def test_thresholds_apply_on_the_counting_path_too():
    table = _one_big_question(60, seed=5)
    options = dict(strategy="all-pairs", chosen_min=4, rejected_max=3)
    exact = derive_pairs(table, PairOptions(**options, max_pairs_per_question=10**6))
    sampled = derive_pairs(table, PairOptions(**options, max_pairs_per_question=50))
    assert len(sampled.pairs) == 50 and set(zip(sampled.pairs["chosen"], sampled.pairs["rejected"])) <= set(
        zip(exact.pairs["chosen"], exact.pairs["rejected"])
    )
    assert sampled.report.pairs_not_taken == len(exact.pairs) - 50


def test_small_questions_in_chunks_give_the_same_pairs(monkeypatch):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame(
        {
            "row": np.arange(2, n + 2),
            "question": [f"q{i % 37}" for i in range(n)],
            "answer": [f"a{i}" for i in range(n)],
            "score": rng.integers(1, 6, n).astype(str),
        }
    )
    table = FeedbackTable(frame, "feedback", "f.csv", "csv", "utf-8", True, ",", {})
    whole = derive_pairs(table, PairOptions(strategy="all-pairs", max_pairs_per_question=10**6))
    monkeypatch.setattr(pairs_module, "CROSS_CHUNK_ROWS", 50)
    chunked = derive_pairs(table, PairOptions(strategy="all-pairs", max_pairs_per_question=10**6))
    assert chunked.pairs.equals(whole.pairs) and chunked.rows["status"].tolist() == whole.rows["status"].tolist()


def test_the_summary_counts_in_words_that_agree_with_the_number(write_file):
    one = pairs_from_file(write_file("one.csv", "question,answer,score\nq,good,5\nq,bad,1\n"))
    assert "1 question -> 1 pair (best-worst)" in one.report.summary_lines()[2]
    two = pairs_from_file(write_file("two.csv", "question,answer,score\nq,good,5\nq,bad,1\nr,fine,4\nr,poor,2\n"))
    assert "2 questions -> 2 pairs (best-worst)" in two.report.summary_lines()[2]


# ---------------------------------------------------------------------------------------------
# The article's rule as a property: rm_demo's best-worst pairs are the article's script's pairs


def article_pairs(path, chosen_min: float = 4.0, rejected_max: float = 4.0) -> set:
    """A plain transcription of the article's script (bench/seed_pairs_script.py) with its thresholds as
    parameters: zip answers with scores, group by question, sort each group by score (stably), the last is
    chosen, the first rejected; keep chosen >= chosen_min and rejected < rejected_max. Rows with a missing
    value are dropped first, as the article's dropna means them to be (its own dropna comes after the
    grouping, where a NaN score leaves the sort undefined)."""
    from operator import itemgetter

    df = pd.read_csv(path).dropna(subset=["question", "answer", "feedback"])
    df["tup"] = list(zip(df["answer"], df["feedback"]))
    out = set()
    for question, tups in df.groupby("question")["tup"].apply(list).items():
        ranked = sorted(tups, key=itemgetter(1))
        (chosen, chosen_score), (rejected, rejected_score) = ranked[-1], ranked[0]
        if chosen_score >= chosen_min and rejected_score < rejected_max:
            # Thresholds that overlap (chosen_min < rejected_max) let the script pair an answer with itself,
            # or two equally scored ones: no preference, and rm_demo's documented difference (single_answer, tie).
            if chosen_score > rejected_score:
                out.add((question, chosen, rejected, float(chosen_score), float(rejected_score)))
    return out


# Scores at and around the thresholds, ties, whole and decimal numbers, and missing ones.
ARTICLE_SCORES = ["1", "2", "3", "3.5", "3.99", "4", "4.0", "4.01", "5", ""]


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["Q one?", "Q two", "Q three", "Q four", ""]), st.sampled_from(ARTICLE_SCORES)),
        min_size=1,
        max_size=25,
    ),
    empty_answers=st.sets(st.integers(0, 24), max_size=3),
    thresholds=st.sampled_from([(None, None), (4.0, 4.0), (3.0, 4.0), (4.5, 3.5), (3.99, 4.01), (5.0, 1.0)]),
)
def test_best_worst_is_the_articles_rule(tmp_path_factory, rows, empty_answers, thresholds):
    """Ties (the last of the best, the first of the worst), equal scores, one answer per question,
    missing questions, answers and scores, and thresholds at the edges: the same pairs as the article's
    script. (Whitespace variants of one question are left out on purpose: rm_demo joins them.)"""
    path = tmp_path_factory.mktemp("article") / "feedback.csv"
    answers = ["" if i in empty_answers else f"answer {i}" for i in range(len(rows))]  # each text its own
    frame = pd.DataFrame({"question": [q for q, _ in rows], "answer": answers, "feedback": [s for _, s in rows]})
    frame.to_csv(path, index=False)
    chosen_min, rejected_max = thresholds
    result = pairs_from_file(path, pair_options=PairOptions(chosen_min=chosen_min, rejected_max=rejected_max))
    got = {
        (p.prompt, p.chosen, p.rejected, float(p.chosen_score), float(p.rejected_score))
        for p in result.pairs.itertuples()
    }
    assert got == article_pairs(
        path, 4.0 if chosen_min is None else chosen_min, 4.0 if rejected_max is None else rejected_max
    )
    assert len(got) == len(result.pairs)  # one pair a question, none twice


def test_a_seven_point_scale_gets_thresholds_inside_it(write_file):
    # Issue 36: scores from 2 to 7 were taken for a 0-to-10 scale and 7.5 was suggested, above every score.
    rows = "".join(f"q{i},good,{7 - i % 2}\nq{i},bad,{2 + i % 2}\n" for i in range(6))
    result = pairs_from_file(write_file("seven.csv", "question,answer,score\n" + rows))
    assert result.report.suggested_thresholds == {"chosen_min": 5.5, "rejected_max": 5.5}
    assert "1-to-7 scale" in result.report.scale_note
    suggested = pairs_from_file(
        write_file("seven2.csv", "question,answer,score\n" + rows),
        pair_options=PairOptions(chosen_min=5.5, rejected_max=5.5),
    )
    assert len(suggested.pairs) == 6
