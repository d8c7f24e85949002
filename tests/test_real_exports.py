"""Exports written by the tools' own packages (tests/data/formats/real/, made by make_real_exports.py there;
SOURCES.md says which call wrote which file): each reads to the pairs a person makes by hand, with every
record accounted for, or stops with a message that names the tool, what was found and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions, join_exports, read_table
from rm_demo.pairs import PairOptions, pairs_from_file

REAL = Path(__file__).parent / "data" / "formats" / "real"
# The pairs by hand: each question's good answer over its bad one (make_real_exports.QUESTIONS).
BY_HAND = [
    ("How do I boil an egg?", "Simmer it for 9 minutes, then cool it in cold water.", "Boil it."),
    ("Name a primary colour.", "Red.", "Purple."),
    ("What is 2 + 2?", "4.", "22."),
]
ZERO_TO_ONE = PairOptions(chosen_min=0.75, rejected_max=0.75)  # the tracing fixtures score 0 or 1
BOTH = ReadOptions(answer_col="answer1,answer2")  # the two fields a Label Studio pairwise compared


def _joined(first: str, second: str, tmp_path) -> Path:
    return join_exports(REAL / first, REAL / second, tmp_path)


# name -> (input, read options, pair options, (source, kind, records, rows, {drop reason: rows}, raters))
CASES = {
    "argilla, a pending record first (to_list(flatten=True))": (
        "argilla_flat_pending_first.jsonl",
        ReadOptions(),
        PairOptions(),
        ("Argilla dataset export", "feedback", 9, 15, {"no_judgment": 3}, 2),
    ),
    "argilla, nested (records.to_json, Dataset.to_disk)": (
        "argilla_nested_records.json",
        ReadOptions(),
        PairOptions(),
        ("Argilla dataset export", "feedback", 9, 15, {"no_judgment": 3}, 2),
    ),
    "argilla, the ranking template (a RankingQuestion over three responses)": (
        "argilla_ranking.jsonl",
        ReadOptions(),
        PairOptions(),
        # ranks 1..3 score 3..1; the middle answer of each ranking is not the best or the worst
        ("Argilla dataset export", "feedback", 3, 9, {"not_best_or_worst": 3}, 1),
    ),
    "label studio JSON, model fields before the answers": (
        "label_studio_pairwise_model_fields.json",
        BOTH,
        PairOptions(),
        ("Label Studio JSON export", "pairs", 3, 3, {}, 1),
    ),
    "label studio JSON-MIN (the SDK's converter)": (
        "label_studio_pairwise_json_min.json",
        BOTH,
        PairOptions(),
        ("Label Studio JSON-MIN or CSV export", "pairs", 3, 3, {}, 1),
    ),
    "label studio CSV (the SDK's converter)": (
        "label_studio_pairwise.csv",
        BOTH,
        PairOptions(),
        ("Label Studio JSON-MIN or CSV export", "pairs", 3, 3, {}, 1),
    ),
    "langfuse v2 observations + v3 scores, two files": (
        ("langfuse_v2_observations.json", "langfuse_v3_scores.json"),
        ReadOptions(),
        ZERO_TO_ONE,
        # 12 observations + 24 scores; the 6 generations nobody scored and the 12 scores of other names
        ("Langfuse scores and traces", "feedback", 36, 30, {"no_judgment": 6, "other_field": 12}, 1),
    ),
    "langsmith runs/query + list_feedback, two files": (
        ("langsmith_runs_query.json", "langsmith_feedback.jsonl"),
        ReadOptions(),
        ZERO_TO_ONE,
        ("LangSmith feedback and runs", "feedback", 12, 6, {}, 1),
    ),
    "langsmith list_runs saved as JSON Lines + list_feedback, two files": (
        ("langsmith_list_runs.jsonl", "langsmith_feedback.jsonl"),
        ReadOptions(),
        ZERO_TO_ONE,
        ("LangSmith feedback and runs", "feedback", 12, 6, {}, 1),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_real_export_reads_to_the_pairs_by_hand(case, tmp_path):
    name, read, pairing, (source, kind, records, rows, dropped, raters) = CASES[case]
    path = _joined(*name, tmp_path) if isinstance(name, tuple) else REAL / name
    result = pairs_from_file(path, read, pairing)
    report = result.report
    assert [tuple(p) for p in result.pairs[["prompt", "chosen", "rejected"]].itertuples(index=False)] == BY_HAND
    assert (report.source_format, report.kind, report.records_read, report.rows_read) == (source, kind, records, rows)
    assert report.dropped == dropped and report.rows_read == report.rows_used + report.rows_dropped
    assert report.raters == raters


@pytest.mark.parametrize(
    "name",
    ["label_studio_pairwise_model_fields.json", "label_studio_pairwise_json_min.json", "label_studio_pairwise.csv"],
)
def test_a_label_studio_pairwise_that_does_not_say_its_fields_asks(name):
    # The importer took "the first two text fields": chosen was a model's name. Now it names the candidates.
    with pytest.raises(InputError) as caught:
        pairs_from_file(REAL / name)
    text = str(caught.value)
    assert "which two fields were compared" in text and "'model_a', 'model_b', 'answer1', 'answer2'" in text.replace(
        "'answer1', 'answer2', 'model_a', 'model_b'", "'model_a', 'model_b', 'answer1', 'answer2'"
    )
    assert "--answer-col answer1,answer2" in caught.value.fix


def test_the_compared_fields_are_said_and_a_wrong_name_is_refused():
    table = read_table(REAL / "label_studio_pairwise_model_fields.json", BOTH)
    assert "Compared fields (left, right): 'answer1', 'answer2'." in table.imported.notes
    with pytest.raises(InputError, match="are not all among them"):
        read_table(REAL / "label_studio_pairwise_model_fields.json", ReadOptions(answer_col="answer1,answer9"))


@pytest.mark.parametrize(
    "name, tool, lacks",
    [
        ("langfuse_v3_scores.json", "Langfuse scores", "the traces they rate"),
        ("langfuse_v2_observations.json", "Langfuse traces or observations", "the scores that rate them"),
        ("langsmith_runs_query.json", "LangSmith runs", "the feedback that rates them"),
        ("langsmith_list_runs.jsonl", "LangSmith runs", "the feedback that rates them"),
        ("langsmith_feedback.jsonl", "LangSmith feedback", "the runs it rates"),
    ],
)
def test_one_half_of_a_tracing_export_names_the_tool_and_the_missing_half(name, tool, lacks):
    with pytest.raises(InputError) as caught:
        pairs_from_file(REAL / name)
    assert f"this is {tool} alone" in str(caught.value) and lacks in str(caught.value)
    assert "pairs FIRST SECOND" in caught.value.fix and "Scores file box" in caught.value.fix


def test_langfuse_reads_observe_inputs_categories_and_authorless_scores(tmp_path):
    path = _joined("langfuse_v2_observations.json", "langfuse_v3_scores.json", tmp_path)
    frame = read_table(path).frame
    used = frame[frame["import_status"] == ""]
    # an @observe trace's input {"args": [question], "kwargs": {}} is the question, not its JSON
    assert set(used["question"]) == {q for q, _, _ in BY_HAND}
    # an end user's score has no author: not one rater named after its source ("API")
    assert set(used["rater"]) == {"user-ann", ""}
    # a CATEGORICAL score is its category's name, never the number 0
    verdict = pairs_from_file(path, ReadOptions(score_col="verdict"), ZERO_TO_ONE)
    assert verdict.report.dropped.get("non_numeric_score") == 6 and not len(verdict.pairs)
    notes = read_table(path, ReadOptions(score_col="verdict")).imported.notes
    assert any("gives names, not numbers ('helpful', 'unhelpful')" in n for n in notes)
    # a judge's score on a generation (subject of kind observation) reads that generation's texts
    judged = pairs_from_file(path, ReadOptions(score_col="judge"), ZERO_TO_ONE)
    assert [tuple(p) for p in judged.pairs[["prompt", "chosen", "rejected"]].itertuples(index=False)] == BY_HAND


def test_the_cli_joins_two_files_for_pairs_and_train(tmp_path):
    out = tmp_path / "pairs.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rm_demo",
            "pairs",
            str(REAL / "langsmith_runs_query.json"),
            str(REAL / "langsmith_feedback.jsonl"),
            "--chosen-min",
            "0.75",
            "--rejected-max",
            "0.75",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 3 pairs" in done.stderr and "Read as LangSmith feedback and runs" in done.stderr
    one = subprocess.run(
        [sys.executable, "-m", "rm_demo", "pairs", str(REAL / "langsmith_feedback.jsonl"), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert one.returncode == 2 and "LangSmith feedback alone" in one.stderr and "Traceback" not in one.stderr


def test_a_forced_format_names_what_the_file_looks_like():
    with pytest.raises(InputError) as caught:
        read_table(REAL / "argilla_nested_records.json", ReadOptions(format="langfuse"))
    assert "it looks like 'argilla' (Argilla dataset export)" in str(caught.value)
    assert caught.value.fix == "pick --format argilla"


@pytest.mark.parametrize("rank", ["0", "1"])
def test_train_with_scores_trains_every_process_on_both_files(rank, tmp_path, monkeypatch):
    # Under torchrun every process runs the command: the first trains on the run's copy, the others read the
    # data themselves, and with --scores that must be the joined two files too (not the runs alone).
    import rm_demo.train
    from rm_demo.cli import main

    seen = []

    def fake_train(config, resume=False):
        seen.append(pairs_from_file(config.input, pair_options=ZERO_TO_ONE))
        return None

    monkeypatch.setattr(rm_demo.train, "train", fake_train)
    monkeypatch.setenv("RANK", rank)
    run = tmp_path / "run"
    if rank != "0":
        run.mkdir()  # the first process made it
    args = ["train", str(REAL / "langsmith_runs_query.json"), "--scores", str(REAL / "langsmith_feedback.jsonl")]
    assert main([*args, "-o", str(run), "--chosen-min", "0.75", "--rejected-max", "0.75"]) == 0
    assert [tuple(p) for p in seen[0].pairs[["prompt", "chosen", "rejected"]].itertuples(index=False)] == BY_HAND
