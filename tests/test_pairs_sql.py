"""The pairs derivation: the article's rule with every drop reason, and the same derivation as SQL
(rm_demo.pairs_sql) run on DuckDB and on Spark (local mode, where Java and pyspark are present), row for row
the same as rm_demo.pairs."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rm_demo.feedback import FeedbackTable
from rm_demo.importers import IMPORT_REASONS
from rm_demo.pairs import CODE, STATUS_NAMES, PairOptions, derive_pairs
from rm_demo.pairs_sql import DUCKDB, SPARK, plan_script, plan_sql

SCORES = ["1", "2", "3", "3.5", "3.99", "4", "4.0", "4.01", "5", "", " 4 ", "4,5", "five", "nan"]


def article_statuses(rows: list[tuple[str, str, str]], chosen_min: float, rejected_max: float):
    """A plain transcription of the article's rule, one row at a time, with the reason for every row left out:
    group the rated answers by question, the best is chosen (the last of equals in file order, as a stable sort
    puts it), the worst rejected (the first of equals), kept when chosen >= chosen_min and rejected < rejected_max.
    Returns (statuses, pairs as (question, chosen, rejected))."""
    status: list[str | None] = [None] * len(rows)
    scores: dict[int, float] = {}
    for i, (question, answer, score) in enumerate(rows):
        text = score.strip().replace(",", ".")
        if question == "":
            status[i] = "missing_question"
        elif answer == "":
            status[i] = "missing_answer"
        elif text == "":
            status[i] = "missing_score"
        else:
            try:
                scores[i] = float(text)
            except ValueError:
                status[i] = "non_numeric_score"
            if i in scores and not np.isfinite(scores[i]):
                status[i] = "non_numeric_score"
                del scores[i]
    by_question: dict[str, list[int]] = {}
    for i in scores:
        by_question.setdefault(rows[i][0], []).append(i)
    pairs = []
    for question, members in by_question.items():
        ranked = sorted(members, key=lambda i: scores[i])  # stable: file order among equals
        best, worst = ranked[-1], ranked[0]
        if len(members) == 1:
            status[best] = "single_answer"
            continue
        if scores[best] == scores[worst]:
            for i in members:
                status[i] = "all_tied"
            continue
        if scores[best] >= chosen_min and scores[worst] < rejected_max:
            pairs.append((question, rows[best][1], rows[worst][1]))
            for i in members:
                status[i] = "used" if i in (best, worst) else "not_best_or_worst"
        else:
            for i in members:
                status[i] = "below_thresholds"
    return status, pairs


def _table(frame: pd.DataFrame) -> FeedbackTable:
    return FeedbackTable(frame, "feedback", "generated.csv", "csv", "utf-8", True, ",", {})


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["Q one?", "Q two", "Q three", ""]), st.booleans(), st.sampled_from(SCORES)),
        min_size=1,
        max_size=30,
    ),
    thresholds=st.sampled_from([(4.0, 4.0), (3.0, 4.0), (4.5, 3.5), (3.99, 4.01), (5.0, 1.0)]),
)
def test_best_worst_is_the_articles_rule_with_every_drop_reason(rows, thresholds):
    rows = [
        (question, f"answer {i}" if has_answer else "", score) for i, (question, has_answer, score) in enumerate(rows)
    ]
    frame = pd.DataFrame(
        {
            "row": np.arange(2, len(rows) + 2),
            "question": [r[0] for r in rows],
            "answer": [r[1] for r in rows],
            "score": [r[2] for r in rows],
        }
    )
    chosen_min, rejected_max = thresholds
    result = derive_pairs(_table(frame), PairOptions(chosen_min=chosen_min, rejected_max=rejected_max))
    expected_status, expected_pairs = article_statuses(rows, chosen_min, rejected_max)
    assert result.rows["status"].tolist() == expected_status
    assert list(zip(result.pairs["prompt"], result.pairs["chosen"], result.pairs["rejected"])) == expected_pairs


def test_the_plan_reads_as_one_sql_script_for_another_engine():
    options = PairOptions(strategy="all-pairs", aggregate="majority", max_rater_spread=1.0)
    script = plan_script(plan_sql(CODE, IMPORT_REASONS, options, (None, None), raters=True, dialect=SPARK), SPARK)
    names = [line.split()[-2] for line in script.splitlines() if line.startswith("CREATE OR REPLACE TEMP VIEW")]
    assert names == [
        "rated", "first_rows", "answer_firsts", "valid", "answers", "kept", "gaps", "pairs", "answer_status",
        "row_status",
    ]  # fmt: skip
    assert "regexp_full_match" not in script and "isfinite" not in script  # DuckDB's own names stay out


def run_on_duckdb(frame: pd.DataFrame, options: PairOptions, raters: bool) -> tuple[list, pd.DataFrame]:
    """The plan's script on DuckDB: (each row's status name, None where the plan leaves it open; the pairs
    as positions and scores, in rm_demo's order)."""
    duckdb = pytest.importorskip("duckdb")
    feedback = frame.assign(pos=np.arange(len(frame)))[["pos", "question", "answer", "score", "import_status"]]
    con = duckdb.connect()
    con.register("feedback", feedback)
    con.execute(plan_script(plan_sql(CODE, IMPORT_REASONS, options, options.resolved_thresholds(), raters), DUCKDB))
    status = con.execute("SELECT status FROM row_status ORDER BY pos").fetchnumpy()["status"]
    pairs = con.execute(
        "SELECT chosen_pos, rejected_pos, chosen_score, rejected_score FROM pairs "
        "ORDER BY qid, chosen_score DESC, chosen_pos, rejected_score, rejected_pos"
    ).df()
    names = [None if np.ma.is_masked(code) else STATUS_NAMES[int(code)] for code in status]
    return names, pairs


def _same_as_rm_demo(frame: pd.DataFrame, options: PairOptions, raters: bool) -> None:
    expected = derive_pairs(_table(frame), options)
    status, pairs = run_on_duckdb(frame, options, raters)
    assert status == expected.rows["status"].tolist()
    rows = frame["row"].to_numpy()
    assert rows[pairs["chosen_pos"]].tolist() == expected.pairs["chosen_row"].tolist()
    assert rows[pairs["rejected_pos"]].tolist() == expected.pairs["rejected_row"].tolist()
    assert pairs["chosen_score"].tolist() == expected.pairs["chosen_score"].tolist()
    assert pairs["rejected_score"].tolist() == expected.pairs["rejected_score"].tolist()


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["q1", "q2", "q3", ""]),
            st.sampled_from(["a", "b", "c", "d", ""]),
            # half of them 1, 3, 4 or 5, so that ties at the top and the bottom are common
            st.one_of(st.sampled_from(["1", "3", "4", "5"]), st.sampled_from([*SCORES, "4\u00a0", "1e400", "0x1"])),
            st.sampled_from(["ann", "bo", "cy"]),
            st.sampled_from(["", "", "cancelled", "no_trace", "unknown"]),
        ),
        min_size=1,
        max_size=30,
    ),
    raters=st.booleans(),
    strategy=st.sampled_from(["best-worst", "all-pairs"]),
    aggregate=st.sampled_from(["mean", "median", "majority"]),
    spread=st.sampled_from([None, 0.0, 1.0]),
    margin=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    thresholds=st.sampled_from([(None, None), (4.0, 4.0), (3.0, 3.5)]),
)
def test_the_sql_plan_gives_rm_demos_statuses_and_pairs(rows, raters, strategy, aggregate, spread, margin, thresholds):
    frame = pd.DataFrame(
        {
            "row": np.arange(2, len(rows) + 2),
            "question": [r[0] for r in rows],
            "answer": [r[1] for r in rows],
            "score": [r[2] for r in rows],
            "import_status": [r[4] for r in rows],
        }
    )
    if raters:
        frame["rater"] = [r[3] for r in rows]
    options = PairOptions(
        strategy=strategy,
        aggregate=aggregate,
        max_rater_spread=spread,
        min_margin=margin,
        chosen_min=thresholds[0],
        rejected_max=thresholds[1],
    )
    _same_as_rm_demo(frame, options, raters)


def test_a_question_over_the_cap_is_left_open_by_the_plan():
    frame = pd.DataFrame(
        {
            "row": np.arange(2, 10),
            "question": ["big"] * 5 + ["small"] * 3,
            "answer": [f"a{i}" for i in range(8)],
            "score": ["1", "2", "3", "4", "5", "1", "3", "5"],
            "import_status": [""] * 8,
        }
    )
    options = PairOptions(strategy="all-pairs", max_pairs_per_question=3)  # big: 10 possible pairs, small: 3
    status, pairs = run_on_duckdb(frame, options, raters=False)
    expected = derive_pairs(_table(frame), options)
    assert status[:5] == [None] * 5  # rm_demo samples these; a join cannot
    assert status[5:] == expected.rows["status"].tolist()[5:] == ["used"] * 3
    assert sorted(frame["row"].to_numpy()[pairs["chosen_pos"]].tolist()) == [8, 9, 9]


# ---------------------------------------------------------------------------------------------
# The same plan on Spark (local mode): what docs/data.md tells people with logs beyond one machine to run.


def _spark_session():
    if shutil.which("java") is None:
        pytest.skip("no Java here: Spark needs a JVM")
    pyspark = pytest.importorskip("pyspark.sql")
    return (
        pyspark.SparkSession.builder.master("local[1]")
        .appName("rm_demo-pairs-plan")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )


@pytest.fixture(scope="module")
def spark():
    session = _spark_session()
    yield session
    session.stop()


def _generated_feedback(seed: int, raters: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame(
        {
            "row": np.arange(2, n + 2),
            "question": rng.choice([f"question {i}" for i in range(40)] + [""], n),
            "answer": rng.choice([f"answer {i}" for i in range(12)] + [""], n),
            "score": rng.choice(SCORES + ["4\u00a0", "1e400", "-inf"], n),
            "import_status": rng.choice(["", "", "", "cancelled", "no_trace"], n),
        }
    )
    if raters:
        frame["rater"] = rng.choice(["ann", "bo", "cy"], n)
    return frame


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")  # pyspark about pandas 3
@pytest.mark.parametrize(
    "options, raters",
    [
        (PairOptions(), False),
        (PairOptions(aggregate="majority", max_rater_spread=2.0, chosen_min=3.5, rejected_max=3.0), True),
        (PairOptions(strategy="all-pairs", min_margin=0.5, chosen_min=3.0, aggregate="median"), True),
        (PairOptions(strategy="all-pairs", max_pairs_per_question=10**6), False),
    ],
)
def test_the_plan_gives_the_same_pairs_and_accounting_on_spark(spark, options, raters):
    frame = _generated_feedback(seed=len(str(options)), raters=raters)
    here = derive_pairs(_table(frame), options)  # on DuckDB

    feedback = frame.assign(pos=np.arange(len(frame)))[["pos", "question", "answer", "score", "import_status"]]
    spark.createDataFrame(feedback).createOrReplaceTempView("feedback")
    thresholds = options.resolved_thresholds()
    for name, query in plan_sql(CODE, IMPORT_REASONS, options, thresholds, raters=raters, dialect=SPARK):
        spark.sql(f"{SPARK.create} {name} AS {query}")
    status = spark.sql("SELECT status FROM row_status ORDER BY pos").toPandas()["status"]
    pairs = spark.sql(
        "SELECT chosen_pos, rejected_pos, chosen_score FROM pairs "
        "ORDER BY qid, chosen_score DESC, chosen_pos, rejected_score, rejected_pos"
    ).toPandas()

    assert [STATUS_NAMES[int(code)] for code in status] == here.rows["status"].tolist()
    rows = frame["row"].to_numpy()
    assert rows[pairs["chosen_pos"]].tolist() == here.pairs["chosen_row"].tolist()
    assert rows[pairs["rejected_pos"]].tolist() == here.pairs["rejected_row"].tolist()
    assert pairs["chosen_score"].tolist() == pytest.approx(here.pairs["chosen_score"].tolist())
    assert len(here.pairs) > 5  # the generated file makes pairs, so the comparison says something


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_the_printed_script_runs_on_spark_as_docs_data_md_shows(spark, capsys):
    from rm_demo.cli import main

    frame = _generated_feedback(seed=3, raters=True)
    options = PairOptions(strategy="all-pairs", aggregate="majority", chosen_min=3.0)
    assert main(["pairs-sql", "--dialect", "spark", "--raters", "--strategy", "all-pairs", "--aggregate", "majority",
                 "--chosen-min", "3"]) == 0  # fmt: skip
    script = capsys.readouterr().out
    feedback = frame.assign(pos=np.arange(len(frame)))[["pos", "question", "answer", "score", "import_status"]]
    spark.createDataFrame(feedback).createOrReplaceTempView("feedback")
    for statement in script.split(";\n"):  # as docs/data.md runs it
        if statement.strip():
            spark.sql(statement)
    status = spark.sql("SELECT status FROM row_status ORDER BY pos").toPandas()["status"]
    assert [STATUS_NAMES[int(code)] for code in status] == derive_pairs(_table(frame), options).rows["status"].tolist()
