"""Pairs out of core (rm_demo.pairs_big): `rm_demo pairs --engine out-of-core` writes the same pairs, dropped rows
and report as the in-memory engine, on fixtures, messy text and generated files, also when DuckDB must spill;
files it cannot read that way are named with the reason (and `auto` reads them in memory)."""

from __future__ import annotations

import csv
import gzip
import json
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rm_demo.cli import main
from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions
from rm_demo.pair_options import PairOptions
from rm_demo.pairs_big import pairs_out_of_core, plain_csv

DATA = Path(__file__).parent / "data"

OPTIONS = [
    [],
    ["--chosen-min", "3", "--rejected-max", "3"],
    ["--strategy", "all-pairs"],
    ["--strategy", "all-pairs", "--min-margin", "2"],
    ["--strategy", "all-pairs", "--max-pairs-per-question", "2"],  # questions over the cap are sampled
    ["--strategy", "all-pairs", "--chosen-min", "4", "--rejected-max", "3"],
]

# Texts as people type them: a no-break space, a tab, double spaces, a decomposed accent, a line break inside
# a quoted answer, a formula-looking cell, a CRLF line end, empty fields, a decimal comma, a non-number.
MESSY = (
    "question,answer,score,model\r\n"
    "What is 0.1 + 0.2?\u00a0,0.30000000000000004 in floating point,5,a\r\n"
    'What  is 0.1 + 0.2?,"Exactly 0.3.\nIt is.",2,b\r\n'
    'What is 0.1\t+ 0.2?,\u00a0About 0.3 ,"\u00a04,5\u00a0",c\r\n'
    'Caf\u0065\u0301 or tea?,=HYPERLINK("x"),4,d\r\n'
    "Caf\u00e9 or tea?,Tea.,1,e\r\n"
    "Caf\u00e9 or tea?,Tea.,2,e\r\n"
    "Caf\u00e9 or tea?,Cafe\u0301 au lait.,5,e\r\n"
    "Caf\u00e9 or tea?,Caf\u00e9 au lait.,3,e\r\n"
    ",orphan answer,3,f\r\n"
    "Why?,,4,g\r\n"
    "Why?,Because.,,h\r\n"
    "Why?,Because so.,five,i\r\n"
    'Why?,Because it is.,"4,5",j\r\n'
    "Why?,-1 is negative,1,k\r\n"
    "Only one?,Yes.,5,l\r\n"
    "Tied?,A,3,m\r\n"
    "Tied?,B,3,n\r\n"
)


def _pairs_run(tmp_path: Path, source: Path, engine: str, options: list[str], ext: str) -> tuple:
    out, dropped, report = tmp_path / f"p-{engine}{ext}", tmp_path / f"d-{engine}{ext}", tmp_path / f"r-{engine}.json"
    args = ["pairs", str(source), "-o", str(out), "--dropped", str(dropped), "--report", str(report)]
    assert main([*args, *options, "--engine", engine]) == 0
    return _read(out), _read(dropped), json.loads(report.read_text(encoding="utf-8"))


def _read(path: Path) -> list[dict]:
    if path.suffix == ".csv":  # every cell as text: the numbers' spelling may differ, their value may not
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        return [{k: _number_or_text(v) for k, v in row.items()} for row in frame.to_dict("records")]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _number_or_text(value: str):
    try:
        return float(value)
    except ValueError:
        return value


def assert_same(tmp_path: Path, source: Path, options: list[str], ext: str = ".jsonl") -> dict:
    memory = _pairs_run(tmp_path, source, "memory", options, ext)
    out_of_core = _pairs_run(tmp_path, source, "out-of-core", options, ext)
    assert out_of_core[0] == memory[0]  # the pairs, in order
    assert out_of_core[1] == memory[1]  # every dropped row with its reason, in file order
    assert out_of_core[2] == memory[2]  # the report: counts, reasons, scores, notes
    return memory[2]


@pytest.fixture
def rated_plain(tmp_path) -> Path:
    """The rated fixture without its rater column (out of core reads no raters)."""
    frame = pd.read_csv(DATA / "rated_feedback.csv", dtype=str, keep_default_na=False).drop(columns=["rater"])
    path = tmp_path / "rated_plain.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("options", OPTIONS, ids=" ".join)
def test_out_of_core_writes_what_memory_writes_on_the_rated_fixture(tmp_path, rated_plain, options):
    report = assert_same(tmp_path, rated_plain, options)
    assert report["pairs"] > 0 and report["rows_used"] + report["rows_dropped"] == report["rows_read"]


@pytest.mark.parametrize("ext", [".jsonl", ".csv"])
@pytest.mark.parametrize("options", OPTIONS[:3], ids=" ".join)
def test_messy_text_is_normalised_and_accounted_for_the_same_way(tmp_path, options, ext):
    source = tmp_path / "messy.csv"
    source.write_bytes(MESSY.encode("utf-8"))
    report = assert_same(tmp_path, source, options, ext)
    assert report["rows_read"] == 17 and report["ignored_columns"] == ["model"]
    assert {"missing_question", "missing_answer", "missing_score", "non_numeric_score", "duplicate_row"} <= set(
        report["dropped"]
    )


def test_a_formula_is_made_safe_in_csv_output(tmp_path):
    source = tmp_path / "messy.csv"
    source.write_bytes(MESSY.encode("utf-8"))
    main(["pairs", str(source), "-o", str(tmp_path / "p.csv"), "--engine", "out-of-core"])
    text = (tmp_path / "p.csv").read_text(encoding="utf-8")
    assert "'-1 is negative" in text and ",-1 is negative" not in text


QUESTIONS = ["Why?", "Why? ", " why?", "Why\u00a0 now?", "Why  now?", "Cafe\u0301?", "Caf\u00e9?", ""]
ANSWERS = [
    "Yes.",
    "Cafe\u0301 ok",
    "Caf\u00e9 ok",
    " Yes.",
    "Yes.\u3000",
    "no",
    "No",
    "Multi\nline",
    "A, b",
    '"quoted"',
    "",
    "=1+1",
    "\u00a0",
]
SCORES = ["1", "2", "3", "3.5", "4", "4.0", "5", "", " 4 ", "4,5", "five", "nan", "inf", "-2", "1e1"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(QUESTIONS), st.sampled_from(ANSWERS), st.sampled_from(SCORES)),
        min_size=1,
        max_size=40,
    ),
    options=st.sampled_from(OPTIONS),
)
def test_generated_files_give_the_same_pairs_and_accounting(tmp_path, rows, options):
    source = tmp_path / "generated.csv"
    with source.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["question", "answer", "score"])
        writer.writerows(rows)
    for old in tmp_path.glob("[pdr]-*"):
        old.unlink()
    assert_same(tmp_path, source, options)


@pytest.fixture(scope="module")
def many_rows(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("many") / "many.csv"
    pd.DataFrame(
        {
            "question": [f"Question {i % 40_000} about topic {i % 40_000 % 977}?" for i in range(200_000)],
            "answer": [f"Answer {i}: {'some words ' * (i % 7)}end." for i in range(200_000)],
            "score": [str(1 + (i // 40_000 + i) % 5) for i in range(200_000)],
        }
    ).to_csv(source, index=False)
    return source


def test_duckdb_pairs_within_its_memory_limit_and_gives_the_same_pairs(tmp_path, many_rows):
    """200,000 rows within 80 MB of DuckDB memory (the in-memory engine's process peaks near 300 MB here)."""
    pairing = PairOptions()
    plain = plain_csv(many_rows, ReadOptions(), pairing)
    report = pairs_out_of_core(plain, pairing, tmp_path / "spilled.jsonl", memory_mb=80)
    main(["pairs", str(many_rows), "-o", str(tmp_path / "memory.jsonl"), "--engine", "memory"])
    assert _read(tmp_path / "spilled.jsonl") == _read(tmp_path / "memory.jsonl")
    assert report.rows_read == 200_000 and report.pairs == 40_000


def test_the_memory_limit_holds_and_running_out_is_said_plainly(tmp_path, many_rows):
    pairing = PairOptions()
    plain = plain_csv(many_rows, ReadOptions(), pairing)
    with pytest.raises(InputError, match="needed more than its memory limit of 8 MB") as refused:
        pairs_out_of_core(plain, pairing, tmp_path / "p.jsonl", memory_mb=8)
    assert refused.value.fix and not (tmp_path / "p.jsonl").exists()


@pytest.mark.parametrize(
    "case, reason",
    [
        ("mac_roman", "does not read a file that is not UTF-8"),
        ("gzip", "does not read a compressed file"),
        ("raters", "does not read a file with a rater column"),
        ("helpsteer2", "does not read anything but a plain CSV of question, answer, score"),
    ],
)
def test_a_file_out_of_core_cannot_read_is_named_with_why_and_auto_reads_it_in_memory(tmp_path, capsys, case, reason):
    if case == "mac_roman":  # as the article's sample was saved: "don’t" in Mac Roman
        source = tmp_path / "seed_feedback.csv"
        rows = "question,answer,score\nWhy?,I don\u2019t know,1\nWhy?,Because it is,5\nHow?,Caf\u00e9,4\n"
        source.write_bytes(rows.encode("mac_roman"))
    elif case == "gzip":
        source = tmp_path / "rated.csv.gz"
        source.write_bytes(gzip.compress((DATA / "rated_feedback.csv").read_bytes()))
    elif case == "raters":
        source = DATA / "rated_feedback.csv"
    else:
        source = DATA / "formats" / "helpsteer2.csv"
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", str(source), "-o", str(out), "--engine", "out-of-core"]) == 2
    err = capsys.readouterr().err
    assert reason in err and source.name in err and "Traceback" not in err
    assert not out.exists()
    assert main(["pairs", str(source), "-o", str(out), "--engine", "auto"]) == 0 and out.exists()


GOOD_ROWS = "question,answer,score\n" + "".join(f"q{i % 997},answer {i} in words,{i % 5 + 1}\n" for i in range(60_000))


@pytest.mark.parametrize(
    "tail, message",
    [
        (b"q,b,2,extra\n", "line 60002 has 4 fields, the header has 3"),
        (b"q,\xff\xfe,2\n", "line 60002 is not valid UTF-8"),
        (b'q,"open quote,2\nq,c,3\n', "a quote opened on line 60002 is never closed"),
        (b"q," + b"x" * (9 << 20) + b",2\n", "line 60002 is over 8 MB"),
    ],
    ids=["fields", "utf-8", "quote", "long line"],
)
def test_a_fault_past_the_sample_is_named_by_its_line(tmp_path, capsys, tail, message):
    """The reader's sample is the first megabyte: DuckDB finds a fault beyond it, said the reader's way."""
    source = tmp_path / "late.csv"
    source.write_bytes(GOOD_ROWS.encode() + tail)
    assert len(GOOD_ROWS) > (1 << 20)
    assert main(["pairs", str(source), "-o", str(tmp_path / "p.jsonl"), "--engine", "out-of-core"]) == 2
    err = capsys.readouterr().err
    assert "error: late.csv: " in err and message in err and "How to fix" in err and "Traceback" not in err
    assert not (tmp_path / "p.jsonl").exists()


def test_auto_pairs_out_of_core_only_a_file_memory_cannot_hold(tmp_path, many_rows, monkeypatch, capsys):
    import psutil

    main(["pairs", str(many_rows), "-o", str(tmp_path / "a.jsonl")])
    assert "out of core" not in capsys.readouterr().err
    # a machine with three times the file free: reading it whole (5x) would take over half of that
    free = psutil.virtual_memory()._replace(available=3 * many_rows.stat().st_size)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: free)
    main(["pairs", str(many_rows), "-o", str(tmp_path / "b.jsonl")])
    assert "paired out of core" in capsys.readouterr().err
    assert _read(tmp_path / "a.jsonl") == _read(tmp_path / "b.jsonl")


def test_the_question_normalisation_matches_the_readers_on_every_space_it_collapses():
    from rm_demo.feedback import _SPACE_CLASS
    from rm_demo.pairs_big import _SPACES

    spaces = {chr(c) for c in range(0x3001) if __import__("re").fullmatch(_SPACE_CLASS, chr(c))} | {"\ufeff"}
    assert spaces == set(_SPACES) | {chr(c) for c in range(0x2000, 0x200C)}
    assert unicodedata.normalize("NFC", "Cafe\u0301") == "Caf\u00e9"


@pytest.mark.parametrize("limit", ["0", "-5"])
def test_a_memory_limit_too_small_to_work_is_refused_before_anything_runs(tmp_path, rated_plain, capsys, limit):
    out = tmp_path / "p.jsonl"
    assert main(["pairs", str(rated_plain), "-o", str(out), "--engine", "out-of-core", "--out-of-core-mb", limit]) == 2
    assert f"--out-of-core-mb must be at least 32, not {limit}" in capsys.readouterr().err and not out.exists()
    # The same refusal whichever engine runs, and from the library call the CLI makes.
    assert main(["pairs", str(rated_plain), "-o", str(out), "--engine", "memory", "--out-of-core-mb", limit]) == 2
    assert "--out-of-core-mb must be at least 32" in capsys.readouterr().err and not out.exists()
    with pytest.raises(InputError, match="--out-of-core-mb must be at least 1"):
        pairs_out_of_core(
            plain_csv(rated_plain, ReadOptions(), PairOptions()), PairOptions(), out, memory_mb=int(limit)
        )
    assert not out.exists()


@pytest.mark.parametrize("strategy", ["best-worst", "all-pairs"])
def test_progress_says_each_step_in_words(tmp_path, rated_plain, capsys, strategy):
    """A long run's progress lines say what each of the plan's steps does, not only its table's name."""
    from rm_demo.importers import IMPORT_REASONS
    from rm_demo.pairs import CODE
    from rm_demo.pairs_big import STEP_WORDS
    from rm_demo.pairs_sql import DUCKDB, plan_sql

    options = PairOptions(strategy=strategy)
    steps = [name for name, _ in plan_sql(CODE, IMPORT_REASONS, options, options.resolved_thresholds(), False, DUCKDB)]
    assert set(steps) <= set(STEP_WORDS)  # a step added to the plan gets its words here
    main(
        ["pairs", str(rated_plain), "-o", str(tmp_path / "p.jsonl"), "--engine", "out-of-core", "--strategy", strategy]
    )
    err = capsys.readouterr().err
    for name in steps:
        assert f"pairing: {STEP_WORDS[name]} ({name})" in err
