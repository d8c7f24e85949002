"""Feedback from where it lives: each source's export, read in the library, the CLI and the app.

The fixtures in tests/data/formats/ are written from each project's documented export format, small
enough to check every row by hand. Aggregation and agreement are checked against hand-computed values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rm_demo.agreement import agreement, share_agreeing
from rm_demo.app import data_tab
from rm_demo.app.state import DataSettings
from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions, read_table
from rm_demo.importers import ULTRAFEEDBACK_ASPECTS
from rm_demo.pairs import PairOptions, combine_scores, pairs_from_file

FORMATS = Path(__file__).parent / "data" / "formats"

# file -> (source recognised, kind, records, rows, pairs, {drop reason: rows})
EXPECTED = {
    "label_studio_ratings.json": (
        "Label Studio JSON export",
        "feedback",
        3,
        6,
        1,
        {"cancelled": 1, "no_judgment": 1},
    ),
    "label_studio_pairwise.json": ("Label Studio JSON export", "pairs", 2, 4, 2, {"outvoted": 1}),
    "argilla_records.jsonl": ("Argilla dataset export", "feedback", 3, 5, 1, {"not_submitted": 1, "no_judgment": 1}),
    "openai_preference.jsonl": ("OpenAI preference fine-tuning JSONL", "pairs", 3, 3, 2, {"no_judgment": 1}),
    "trl_conversational.jsonl": ("TRL preference set (conversational)", "pairs", 2, 2, 2, {}),
    "trl_implicit_conversational.jsonl": ("TRL preference set (conversational)", "pairs", 1, 1, 1, {}),
    "trl_standard.jsonl": (None, "pairs", None, 2, 2, {}),
    "trl_unpaired.jsonl": (
        "TRL unpaired preference set (prompt, completion, label)",
        "feedback",
        3,
        3,
        1,
        {"single_answer": 1},
    ),
    "ultrafeedback.jsonl": ("UltraFeedback", "feedback", 2, 4, 1, {"no_judgment": 1, "not_best_or_worst": 1}),
    "helpsteer2.jsonl": ("HelpSteer2", "feedback", 4, 4, 1, {"all_tied": 2}),
    "helpsteer2.csv": ("HelpSteer2", "feedback", 4, 4, 1, {"all_tied": 2}),
    "helpsteer3.jsonl": ("HelpSteer3 preference", "pairs", 3, 3, 2, {"tie": 1}),
    "chatbot_arena.json": ("Chatbot Arena conversations", "pairs", 4, 4, 2, {"tie": 2}),
    "langfuse_export.json": (
        "Langfuse scores and traces",
        "feedback",
        7,
        5,
        1,
        {"other_field": 1, "no_trace": 1, "no_judgment": 1},
    ),
    "langsmith_export.jsonl": ("LangSmith feedback and runs", "feedback", 4, 2, 1, {}),
}


def test_every_fixture_is_in_the_table():
    assert sorted(p.name for p in FORMATS.iterdir() if p.is_file()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_source_reads_to_its_rows_and_pairs(name):
    source, kind, records, rows, pairs, dropped = EXPECTED[name]
    result = pairs_from_file(FORMATS / name)
    report = result.report
    assert (report.source_format, report.kind, report.records_read) == (source, kind, records)
    assert (report.rows_read, report.pairs, report.dropped) == (rows, pairs, dropped)
    assert report.rows_read == report.rows_used + report.rows_dropped
    if records:  # every record of the file is behind at least one row: none vanished
        first = 2 if name.endswith(".csv") else 1  # a CSV's records are its lines; the header is line 1
        covered = set(result.rows["record"])
        if "trace_record" in result.rows:  # a rated trace is used through its scores' rows
            covered |= set(pd.to_numeric(result.rows["trace_record"], errors="coerce").dropna().astype(int))
        assert covered == set(range(first, first + records))


def test_label_studio_ratings_several_raters():
    result = pairs_from_file(FORMATS / "label_studio_ratings.json")
    pair = result.pairs.iloc[0]
    # "4" rated 5 and 4 (mean 4.5), "5" rated 1 and 2 (mean 1.5); annotation 13 was cancelled.
    assert (pair["prompt"], pair["chosen"], pair["rejected"]) == ("What is 2 + 2?", "4", "5")
    assert (pair["chosen_score"], pair["rejected_score"]) == (4.5, 1.5)
    assert list(result.rows["status"]) == ["used", "used", "cancelled", "used", "used", "no_judgment"]
    assert list(result.rows["rater"]) == ["1", "2", "3", "1", "2", ""]
    assert result.report.raters == 2  # the cancelled annotation's author rated nothing
    # Hand-computed interval alpha: values 5,4 | 1,2. D_o = 4/4 = 1; D_e = 2 * 40 / (4 * 3) = 20/3.
    assert result.report.agreement["alpha"] == pytest.approx(1 - 3 / 20)
    assert result.report.agreement["reading"] == "too few items to tell (at least 10 needed)"  # 2 items


def test_label_studio_pairwise_majority_and_agreement():
    result = pairs_from_file(FORMATS / "label_studio_pairwise.json")
    assert list(result.rows["status"]) == ["used", "used", "outvoted", "used"]
    assert result.pairs[["chosen", "rejected"]].values.tolist() == [
        ["Red.", "Purple."],
        ["No, it is roughly a sphere.", "Yes."],
    ]
    assert list(result.rows["rater"]) == ["ann@example.com", "bo@example.com", "cy@example.com", "ann@example.com"]
    # Task 1 judged left, left, right: of its three pairs of judgments one agrees.
    assert result.report.agreement["share_agreeing"] == pytest.approx(1 / 3)


def test_argilla_keeps_submitted_responses_only():
    result = pairs_from_file(FORMATS / "argilla_records.jsonl")
    assert list(result.rows["status"]) == ["used", "used", "used", "not_submitted", "no_judgment"]
    assert result.pairs.iloc[0][["chosen_score", "rejected_score"]].tolist() == [4.5, 1.0]


def test_openai_prompt_keeps_earlier_turns():
    pairs = pairs_from_file(FORMATS / "openai_preference.jsonl").pairs
    assert pairs.iloc[0]["prompt"] == "Hello, can you tell me how cold San Francisco is today?"
    assert pairs.iloc[1]["prompt"].endswith("User: Why that one?")
    assert pairs.iloc[1]["prompt"].startswith("System: You are terse.")
    assert pairs.iloc[1]["chosen"] == "It came to mind first."


def test_trl_conversational_and_implicit_prompt():
    explicit = pairs_from_file(FORMATS / "trl_conversational.jsonl").pairs
    implicit = pairs_from_file(FORMATS / "trl_implicit_conversational.jsonl").pairs
    expected = ["What color is the sky?", "It is blue.", "It is green."]
    assert explicit.iloc[0][["prompt", "chosen", "rejected"]].tolist() == expected
    assert implicit.iloc[0][["prompt", "chosen", "rejected"]].tolist() == expected


def test_trl_unpaired_labels_are_a_zero_one_scale():
    result = pairs_from_file(FORMATS / "trl_unpaired.jsonl")
    assert (result.report.chosen_min, result.report.rejected_max) == (0.75, 0.75)
    assert result.pairs.iloc[0][["chosen", "rejected"]].tolist() == ["blue.", "green."]


def test_ultrafeedback_score_field_and_model_column():
    default = pairs_from_file(FORMATS / "ultrafeedback.jsonl")
    assert default.pairs.iloc[0][["chosen_score", "rejected_score"]].tolist() == [4.5, 2.0]
    overall = pairs_from_file(FORMATS / "ultrafeedback.jsonl", ReadOptions(score_col="overall_score"))
    assert overall.report.chosen_min == 7.75  # 3/4 of the way up 1-10
    assert overall.pairs.iloc[0][["chosen_score", "rejected_score"]].tolist() == [8.5, 3.0]
    aspect = pairs_from_file(FORMATS / "ultrafeedback.jsonl", ReadOptions(score_col="helpfulness"))
    assert aspect.pairs.iloc[0][["chosen_score", "rejected_score"]].tolist() == [5.0, 2.0]
    raw = read_table(FORMATS / "ultrafeedback.jsonl").frame  # what slices read
    assert list(raw["model"]) == ["gpt-4", "alpaca-7b", "falcon-40b", ""] and raw["row"].is_unique
    with pytest.raises(InputError, match="no score 'stars'"):
        pairs_from_file(FORMATS / "ultrafeedback.jsonl", ReadOptions(score_col="stars"))


def test_helpsteer2_attribute_or_weighted_sum():
    result = pairs_from_file(FORMATS / "helpsteer2.jsonl", ReadOptions(score_col="0.5*helpfulness + 0.5*correctness"))
    assert result.pairs.iloc[0][["chosen_score", "rejected_score"]].tolist() == [4.0, 0.5]
    assert result.report.chosen_min == 3  # 3/4 of the way up 0-4
    with pytest.raises(InputError, match="'stars' is not one of"):
        pairs_from_file(FORMATS / "helpsteer2.jsonl", ReadOptions(score_col="stars"))


def test_helpsteer3_strength_is_the_margin_and_ties_are_counted():
    result = pairs_from_file(FORMATS / "helpsteer3.jsonl")
    assert result.pairs[["chosen", "rejected", "margin"]].values.tolist() == [
        ["Eight.", "Six.", 2.0],
        ["Call lst.reverse().", "Use sorted().", 1.0],
    ]
    assert list(result.rows["status"]) == ["used", "used", "tie"]
    found = result.report.agreement
    # individual_preference: -2,-3,-1 | 1,-1 | 0,0. Signs agree in 3 of 3, 0 of 1 and 1 of 1 pairs.
    assert found["share_agreeing"] == pytest.approx(4 / 5)
    # Interval alpha by hand: D_o = (6 + 8 + 0) / 7 = 2; D_e = 2 * 76 / 42; alpha = 1 - 84/152 = 17/38.
    assert found["alpha"] == pytest.approx(17 / 38)
    assert "training leaves them out" in " ".join(result.report.summary_lines())


def test_arena_ties_judges_and_multi_turn():
    result = pairs_from_file(FORMATS / "chatbot_arena.json")
    assert list(result.rows["status"]) == ["used", "tie", "used", "tie"]
    assert list(result.rows["rater"]) == ["arena_user_1", "arena_user_2", "arena_user_1", "arena_user_3"]
    second = result.pairs.iloc[1]
    assert second["prompt"] == "Name a colour."
    assert second["chosen"].startswith("Assistant: Red.") and "Green." in second["chosen"]  # model_b won


def test_langfuse_scores_join_their_traces():
    result = pairs_from_file(FORMATS / "langfuse_export.json")
    statuses = dict(zip(result.rows["record"], result.rows["status"]))
    # records 1-3 are the traces, 4-7 the scores (the export's two lists, traces first)
    assert statuses == {4: "used", 5: "used", 6: "other_field", 7: "no_trace", 3: "no_judgment"}
    assert result.pairs.iloc[0][["prompt", "chosen", "rejected"]].tolist() == [
        "Summarise the report.",
        "The report finds sales grew 4%.",
        "Sales.",
    ]
    other = pairs_from_file(FORMATS / "langfuse_export.json", ReadOptions(score_col="toxicity"))
    assert other.report.dropped["other_field"] == 3


def test_langsmith_feedback_joins_runs():
    result = pairs_from_file(FORMATS / "langsmith_export.jsonl")
    assert list(result.rows["rater"]) == ["u-7", "u-7"]
    assert result.pairs.iloc[0]["chosen"] == "A platform for tracing and evaluating LLM apps."


def test_format_named_or_refused():
    with pytest.raises(InputError, match="does not look like a Chatbot Arena"):
        pairs_from_file(FORMATS / "helpsteer2.jsonl", ReadOptions(format="arena"))
    with pytest.raises(InputError, match="unknown format"):
        read_table(FORMATS / "helpsteer2.jsonl", ReadOptions(format="excel"))
    plain = pairs_from_file(FORMATS / "helpsteer2.jsonl", ReadOptions(format="table", score_col="helpfulness"))
    assert plain.report.source_format is None and plain.report.pairs == 1


# ---------------------------------------------------------------------------------------------
# Several raters: aggregation policies, by hand


def test_combine_scores_by_hand():
    group = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    values = np.array([2, 4, 5, 1, 1, 5, 5, 4, 4, 2], dtype=float)
    mean, spread = combine_scores(group, values, "mean")
    assert mean == pytest.approx([11 / 3, 3, 10 / 3]) and spread.tolist() == [3, 4, 2]
    assert combine_scores(group, values, "median")[0].tolist() == [4, 3, 4]
    # majority: the most common score; a tie between scores goes to the middle one (lower middle if even)
    assert combine_scores(group, values, "majority")[0].tolist() == [4, 1, 4]


RATED = (
    "question,answer,score,annotator\n"
    "q,good,5,ann\nq,good,4,bo\nq,good,5,cy\n"
    "q,split,5,ann\nq,split,1,bo\nq,split,2,cy\n"
    "q,bad,1,ann\nq,bad,2,bo\nq,bad,1,cy\n"
)


def test_policies_change_the_pair_and_the_spread_rule_drops(write_file):
    path = write_file("rated.csv", RATED)
    by_mean = pairs_from_file(path)
    # mean: good 14/3, split 8/3, bad 4/3 -> good over bad; split is neither best nor worst
    assert by_mean.pairs[["chosen", "rejected"]].values.tolist() == [["good", "bad"]]
    assert by_mean.rows["status"].tolist() == ["used"] * 3 + ["not_best_or_worst"] * 3 + ["used"] * 3
    assert "mean of an answer's scores" in " ".join(by_mean.report.summary_lines())
    spread = pairs_from_file(path, pair_options=PairOptions(max_rater_spread=2))
    assert spread.report.dropped == {"raters_disagree": 3}  # "split": 5 and 1 lie 4 apart
    assert spread.pairs[["chosen", "rejected"]].values.tolist() == [["good", "bad"]]
    median = pairs_from_file(path, pair_options=PairOptions(aggregate="median", strategy="all-pairs"))
    scores = dict(zip(median.pairs["chosen"] + ">" + median.pairs["rejected"], median.pairs["margin"]))
    assert scores == {"good>split": 3.0, "good>bad": 4.0, "split>bad": 1.0}  # medians 5, 2, 1
    with pytest.raises(InputError, match="unknown way to combine raters"):
        pairs_from_file(path, pair_options=PairOptions(aggregate="mode"))


def test_without_raters_repeats_stay_duplicates(write_file):
    path = write_file("dup.csv", "question,answer,score\nq,a,5\nq,a,3\nq,b,1\n")
    result = pairs_from_file(path)
    assert result.report.dropped == {"duplicate_row": 1} and result.report.agreement is None
    assert result.pairs.iloc[0]["chosen_score"] == 4.0


# ---------------------------------------------------------------------------------------------
# Agreement


def test_krippendorff_reference_values():
    """Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the 4-observer example:
    nominal 0.743, interval 0.849."""
    table = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [u for row in table for u, v in enumerate(row) if v is not None]
    values = [v for row in table for v in row if v is not None]
    assert agreement(units, values, "nominal")["alpha"] == pytest.approx(0.743, abs=5e-4)
    interval = agreement(units, values, "interval")
    assert interval["alpha"] == pytest.approx(0.849, abs=5e-4) and interval["reading"] == "reliable"


def test_agreement_by_hand_and_its_warnings():
    # two units, each rated 1 and 2: D_o = 1, D_e = 8/12, alpha = 1 - 1.5 = -0.5
    found = agreement([0, 0, 1, 1], [1, 2, 2, 1])
    assert found["alpha"] == pytest.approx(-0.5) and found["reading"].startswith("too few items")
    assert found["warning"] is None  # two items: no verdict on the raters either way
    ten = agreement([u for u in range(10) for _ in (0, 1)], [1, 2, 2, 1] * 5)  # the same, on ten items
    assert ten["reading"] == "unreliable" and "little more than chance" in ten["warning"]
    # D_o = 2/6 (unit 2's 3-4 both ways), D_e = 202/30 (every ordered pair of the six values): 1 - 10/202
    close = agreement([0, 0, 1, 1, 2, 2], [1, 1, 5, 5, 3, 4])
    assert close["alpha"] == pytest.approx(1 - 10 / 202) and close["reading"].startswith("too few items")
    assert agreement([0, 1], [1, 2]) is None  # nothing judged twice
    assert agreement([0, 0], [3, 3])["alpha"] is None  # one value everywhere: alpha is undefined
    assert share_agreeing(np.array([0, 0, 0, 1, 1]), np.array([1, 1, -1, 1, 1])) == pytest.approx(2 / 4)


def test_noisy_raters_warn_in_the_pairs_tab(write_file):
    noisy = "question,answer,score,rater\n" + "".join(
        f"q{i},a,{x},r1\nq{i},a,{y},r2\nq{i},b,1,r1\n" for i, (x, y) in enumerate([(5, 1), (1, 5), (2, 4), (4, 2)] * 3)
    )  # twelve answers rated twice: enough items for alpha to be read
    view = data_tab.derive_view(str(write_file("noisy.csv", noisy)), "noisy.csv", DataSettings())
    assert view.ok and "Krippendorff's alpha" in view.summary and "⚠️ Raters agree" in view.summary


# ---------------------------------------------------------------------------------------------
# The CLI and the app, on every fixture


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_reads_every_source(name, tmp_path):
    source, kind, records, rows, pairs, dropped = EXPECTED[name]
    out, report = tmp_path / "pairs.jsonl", tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "rm_demo", "pairs", str(FORMATS / name), "-o", str(out), "--report", str(report)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(report.read_text())
    assert (found["source_format"], found["records_read"], found["rows_read"]) == (source, records, rows)
    assert (found["pairs"], found["dropped"]) == (pairs, dropped)
    assert len(pd.read_json(out, lines=True)) == pairs
    if source:
        assert f"recognised: {source}" in done.stderr  # the accounting goes to stderr, as for every file


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_data_tab_says_what_it_recognised(name):
    source, kind, records, rows, pairs, dropped = EXPECTED[name]
    view = data_tab.derive_view(str(FORMATS / name), name, DataSettings())
    assert view.ok, view.message
    expected = f"Recognised: **{source}**, {records} records" if source else "Recognised: a table of pairs"
    assert expected in view.message
    assert len(view.pairs) == pairs and f"**{rows}** rows read" in view.summary


def test_app_format_and_rater_settings(write_file):
    settings = DataSettings.from_widgets(
        "auto", "auto", None, None, None, "best-worst", "", "", "", "auto", "mean", "2"
    )
    view = data_tab.derive_view(str(write_file("rated.csv", RATED)), "rated.csv", settings)
    assert view.ok and "raters_disagree" in view.summary
    wrong = DataSettings.from_widgets("auto", "auto", None, None, None, "best-worst", "", "", "", "arena")
    view = data_tab.derive_view(str(FORMATS / "helpsteer2.jsonl"), "helpsteer2.jsonl", wrong)
    assert not view.ok and "Chatbot Arena" in view.message and "Traceback" not in view.message


def test_score_menu_offers_the_sources_scores():
    view = data_tab.derive_view(str(FORMATS / "ultrafeedback.jsonl"), "uf.jsonl", DataSettings())
    assert view.score_choices == ["fine-grained_score", "overall_score", *ULTRAFEEDBACK_ASPECTS]
    assert view.result.report.extra_columns == ["model"]  # offered for slices in Evaluate
    langfuse = data_tab.derive_view(str(FORMATS / "langfuse_export.json"), "lf.json", DataSettings())
    assert langfuse.score_choices == ["quality", "toxicity"]


def test_a_score_named_label_is_not_taken_for_booleans(write_file):
    rows = "".join(json.dumps({"prompt": "q", "completion": c, "label": s}) + "\n" for c, s in [("a", 1), ("b", 5)])
    result = pairs_from_file(write_file("scores.jsonl", rows))
    assert result.report.source_format is None and result.pairs.iloc[0]["chosen"] == "b"


def test_ultrafeedback_without_fine_grained_score_takes_the_mean_of_its_aspects(write_file):
    # Issue 36: copies of UltraFeedback without `fine-grained_score` dropped every row by default.
    records = [json.loads(line) for line in (FORMATS / "ultrafeedback.jsonl").read_text().splitlines()]
    full = pairs_from_file(FORMATS / "ultrafeedback.jsonl")
    for record in records:
        for completion in record["completions"]:
            completion.pop("fine-grained_score", None)
    path = write_file("uf_no_fine.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    result = pairs_from_file(path)
    assert result.pairs[["prompt", "chosen", "rejected"]].equals(full.pairs[["prompt", "chosen", "rejected"]])
    # each score is the mean of the aspects rated with a number ("N/A" left out), worked out here
    means = {}
    for record in records:
        for c in record["completions"]:
            ratings = [a["Rating"] for a in c["annotations"].values() if a["Rating"] not in ("N/A", None)]
            means[c["response"]] = sum(map(float, ratings)) / len(ratings)
    pair = result.pairs.iloc[0]
    expected = (means[pair["chosen"]], means[pair["rejected"]])
    assert (pair["chosen_score"], pair["rejected_score"]) == pytest.approx(expected, abs=1e-5)
    assert any("the mean of its aspects' ratings" in n for n in result.report.notes)


def test_forcing_trl_reads_its_standard_string_format(write_file):
    auto = pairs_from_file(FORMATS / "trl_standard.jsonl")
    forced = pairs_from_file(FORMATS / "trl_standard.jsonl", ReadOptions(format="trl"))
    assert forced.pairs.equals(auto.pairs) and len(forced.pairs) == 2


def test_a_label_studio_chatbot_task_asks_its_last_user_turn(write_file):
    # Label Studio's chatbot evaluation template keeps the conversation in data.messages (was missing_question).
    task = {
        "data": {
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Name a primary colour."},
            ],
            "answer": "Red.",
        },
        "annotations": [{"completed_by": 1, "result": [{"type": "rating", "from_name": "r", "value": {"rating": 5}}]}],
    }
    other = json.loads(json.dumps(task))
    other["data"]["answer"], other["annotations"][0]["result"][0]["value"]["rating"] = "Purple.", 1
    result = pairs_from_file(write_file("chat.json", json.dumps([task, other])))
    assert len(result.pairs) == 1 and result.pairs.iloc[0]["chosen"] == "Red."
    assert result.pairs.iloc[0]["prompt"].endswith("Name a primary colour.") and "missing_question" not in str(
        result.report.dropped
    )
