"""Hostile input to the CLI: every odd file, option and path ends in exit 0 with every row accounted
for, or exit 2 with one plain message, never a traceback."""

import errno
import gzip
import json
import os
import stat
import subprocess
import sys

import pandas as pd
import pytest

from rm_demo import cli, tables

GOOD = "question,answer,score\nQ1,good,5\nQ1,bad,1\nQ2,fine,4\nQ2,poor,2\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _run(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def _accounted(report_path) -> dict:
    report = json.loads(report_path.read_text())
    assert report["rows_read"] == report["rows_used"] + report["rows_dropped"]
    return report


# name, bytes, expected pairs (exit 0) or a part of the message (exit 2)
FILES = [
    ("cr_only.csv", GOOD.replace("\n", "\r").encode(), 2),
    ("crlf.csv", GOOD.replace("\n", "\r\n").encode(), 2),
    ("plain_named.csv.gz", GOOD.encode(), 2),
    ("real.csv.gz", gzip.compress(GOOD.encode()), 2),
    ("two_members.csv.gz", gzip.compress(GOOD.encode()[:30]) + gzip.compress(GOOD.encode()[30:]), 2),
    ("mac_roman_cr.csv", GOOD.replace("good", "don\u2019t").replace("\n", "\r").encode("mac_roman"), 2),
    ("corrupt.csv.gz", b"\x1f\x8b\x08\x00" + b"\x00garbage" * 20, "damaged"),
    ("cut.csv.gz", gzip.compress(GOOD.encode() * 50)[:60], "damaged"),
    ("garbage.csv", bytes(range(256)) * 40, "binary"),
    ("picture.csv", PNG, "PNG image"),
    ("sheet.csv", b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    ("only_bom.csv", b"\xef\xbb\xbf", "byte-order mark"),
    ("empty.csv", b"", "empty"),
    ("header_only.csv", b"question,answer,score\n", None),
    ("nan_scores.csv", b"question,answer,score\nq,a,nan\nq,b,inf\nq,c,5\nq,d,1\n", 1),
    ("utf16.csv", GOOD.encode("utf-16"), 2),
    ("utf16le_no_bom.csv", GOOD.encode("utf-16-le"), 2),
    # issue 26
    (
        "bom_quoted_header.csv",
        b"\xef\xbb\xbf" + GOOD.replace("question,answer,score", '"question","answer","score"').encode(),
        2,
    ),
    ("utf32.csv", GOOD.encode("utf-32"), 2),
    ("utf32le_no_bom.csv", GOOD.encode("utf-32-le"), 2),
    ("cr_only_quoted_break.csv", GOOD.replace("good", '"good\rtwo lines"').replace("\n", "\r").encode(), 2),
]


@pytest.mark.parametrize("name, content, expected", FILES, ids=[f[0] for f in FILES])
def test_odd_files(tmp_path, capsys, name, content, expected):
    src = tmp_path / name
    src.write_bytes(content)
    code, err = _run(capsys, "pairs", src, "-o", tmp_path / "out.jsonl", "--report", tmp_path / "report.json")
    if isinstance(expected, int):
        assert code == 0, err
        assert _accounted(tmp_path / "report.json")["pairs"] == expected
    elif expected is None:  # header only: zero rows read, zero pairs, all of it reported
        assert code == 0 and "rows read 0" in err
        assert _accounted(tmp_path / "report.json")["rows_read"] == 0
    else:
        assert code == 2 and expected in err and name in err and "How to fix" in err, err
        assert not (tmp_path / "out.jsonl").exists()


def test_a_cr_only_file_gives_the_same_pairs_as_its_lf_twin(tmp_path, capsys):
    (tmp_path / "lf.csv").write_text(GOOD)
    (tmp_path / "cr.csv").write_bytes(GOOD.replace("\n", "\r").encode())
    for name in ("lf", "cr"):
        assert _run(capsys, "pairs", tmp_path / f"{name}.csv", "-o", tmp_path / f"{name}.jsonl")[0] == 0
    assert (tmp_path / "lf.jsonl").read_text() == (tmp_path / "cr.jsonl").read_text()


def test_a_stray_quote_is_named_with_its_line(tmp_path, capsys):
    text = 'question,answer,score\nQ0,fine,4\nQ0,poor,1\nQ1,"a open,5\nQ1,b,1\nQ1,c,3\nQ2,d close",2\nQ3,e,5\nQ3,f,1\n'
    (tmp_path / "quote.csv").write_text(text)
    code, err = _run(
        capsys, "pairs", tmp_path / "quote.csv", "-o", tmp_path / "p.jsonl", "--report", tmp_path / "r.json"
    )
    assert code == 0 and "Check the quotes: row 4 (from line 4)" in err
    report = _accounted(tmp_path / "r.json")
    assert any("row 4 (from line 4)" in note for note in report["notes"])
    assert report["rows_read"] == 5  # the CSV rules' meaning is kept: four lines are one record


@pytest.mark.parametrize(
    "answer",
    [
        "line one\nI have 2 cats, 3\nline three",  # a line ending in "delimiter, number", one field too few for a row
        "line one\nHuman: cats, dogs, 3\nline three",  # a line with a row's fields, but the first line is no row's end
    ],
)
def test_a_quoted_multi_line_answer_is_not_flagged(tmp_path, capsys, answer):
    text = f'question,answer,score\nQ1,"{answer}",5\nQ1,short,1\n'
    (tmp_path / "ok.csv").write_text(text)
    code, err = _run(capsys, "pairs", tmp_path / "ok.csv", "-o", tmp_path / "p.jsonl")
    assert code == 0 and "Check the quotes" not in err


def test_every_csv_the_cli_writes_is_formula_safe(tmp_path, capsys):
    rows = "question,answer,score\n=HYPERLINK(1),@SUM(A1),5\n=HYPERLINK(1),+Q,1\n=HYPERLINK(1),-cmd|x,\n"
    (tmp_path / "f.csv").write_text(rows)
    code, _ = _run(capsys, "pairs", tmp_path / "f.csv", "-o", tmp_path / "p.csv", "--dropped", tmp_path / "d.csv")
    assert code == 0
    pairs, dropped = pd.read_csv(tmp_path / "p.csv"), pd.read_csv(tmp_path / "d.csv")
    assert pairs.loc[0, "prompt"] == "'=HYPERLINK(1)" and pairs.loc[0, "chosen"] == "'@SUM(A1)"
    assert pairs.loc[0, "rejected"] == "'+Q" and dropped.loc[0, "answer"] == "'-cmd|x"


OPTIONS = [
    (["-o", "{tmp}/missing/p.jsonl"], "does not exist"),
    (["-o", "{tmp}"], "is a folder"),
    (["-o", "{tmp}/p.jsonl", "--report", "{tmp}/missing/r.json"], "does not exist"),
    (["-o", "{tmp}/p.jsonl", "--dropped", "{tmp}/missing/d.csv"], "does not exist"),
    (["-o", "{tmp}/p.jsonl", "--delimiter", ";;"], "one character"),
    (["-o", "{tmp}/p.jsonl", "--chosen-min", "nan"], "finite"),
    (["-o", "{tmp}/p.jsonl", "--rejected-max", "inf"], "finite"),
    (["-o", "{tmp}/p.jsonl", "--min-margin", "-1"], "minimum margin"),
    (["-o", "{tmp}/p.jsonl", "--max-pairs-per-question", "0"], "pair cap"),
    (["-o", "{tmp}/p.jsonl", "--encoding", "klingon"], "unknown encoding"),
]


@pytest.mark.parametrize("args, message", OPTIONS, ids=[o[1] for o in OPTIONS])
def test_odd_pairs_options(tmp_path, capsys, args, message):
    (tmp_path / "f.csv").write_text(GOOD)
    argv = [a.format(tmp=tmp_path) for a in args]
    code, err = _run(capsys, "pairs", tmp_path / "f.csv", *argv)
    assert code == 2 and message in err, err
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "missing").exists()


TRAIN_OPTIONS = [
    (["--epochs", "inf"], "epochs"),
    (["--epochs", "1e12"], "epochs"),
    (["--epochs", "0"], "epochs"),
    (["--seed", "-1"], "seed"),
    (["--grad-accum", "0"], "gradient accumulation"),
    (["--batch-size", "0"], "batch size"),
    (["--lr", "nan"], "learning rate"),
    (["--max-length", "4"], "max length"),
    (["--eval-fraction", "1.5"], "eval fraction"),
    (["--chosen-min", "nan"], "chosen min"),
]


@pytest.mark.parametrize("args, message", TRAIN_OPTIONS, ids=[" ".join(o[0]) for o in TRAIN_OPTIONS])
def test_odd_train_options_stop_before_any_work(tmp_path, capsys, args, message):
    (tmp_path / "f.csv").write_text(GOOD)
    code, err = _run(capsys, "train", tmp_path / "f.csv", "-o", tmp_path / "run", *args)
    assert code == 2 and message in err and "How to fix" in err, err
    assert not (tmp_path / "run").exists()


def test_train_names_the_file_given_not_the_runs_copy(tmp_path, capsys):
    """Training reads the run's copy (data.csv): its messages named that, not the visitor's file; a file over
    --max-input-mb was copied into the run whole before it was refused."""
    big = tmp_path / "feedback-log.csv"
    big.write_text(GOOD + "Q3,an answer of some length to fill the file,5\n" * 30_000)  # 1.4 MB
    code, err = _run(capsys, "train", big, "-o", tmp_path / "run", "--max-input-mb", "1")
    assert code == 2 and "feedback-log.csv: the file is 1.4 MB, over --max-input-mb 1" in err, err
    assert "python -m rm_demo pairs" in err and "data.csv" not in err, err
    assert not (tmp_path / "run").exists()  # refused before anything was copied
    gzipped = tmp_path / "feedback-log.csv.gz"
    gzipped.write_bytes(gzip.compress(big.read_bytes()))  # its size is known only once read: refused then
    code, err = _run(capsys, "train", gzipped, "-o", tmp_path / "run-gz", "--max-input-mb", "1")
    assert code == 2 and "feedback-log.csv.gz: the file is over 1 MB once decompressed" in err, err
    assert "--max-input-mb" in err and "upload" not in err, err
    (tmp_path / "no-pairs.csv").write_text("question,answer,score\nQ1,only,5\n")
    code, err = _run(capsys, "train", tmp_path / "no-pairs.csv", "-o", tmp_path / "run-none")
    assert code == 2 and "no-pairs.csv: no pairs to train on" in err and "data.csv" not in err, err


def test_a_runs_data_is_read_again_under_the_users_name(tmp_path):
    """Evaluate's slices read the run's copy again: under its own name they said "data.csv", as training did."""
    from rm_demo.config import TrainConfig
    from rm_demo.errors import InputError
    from rm_demo.evaluate import run_slices
    from rm_demo.runs import RunFolder, prepare_run

    (tmp_path / "notes.csv").write_bytes(PNG)  # damaged after the run was made: the copy is what is read
    config = prepare_run(TrainConfig(), tmp_path / "notes.csv", tmp_path / "run")
    assert config.data_name == "notes.csv" and config.input.endswith("data.csv")
    with pytest.raises(InputError) as caught:
        run_slices(RunFolder(tmp_path / "run"), pd.DataFrame(), {}, ["rater"])
    assert caught.value.source == "notes.csv", str(caught.value)


def test_score_reads_its_file_before_loading_a_model(tmp_path, capsys):
    """A bad file is reported at once: the missing model named beside it is never reached."""
    (tmp_path / "empty.csv").write_text("")
    code, err = _run(
        capsys, "score", "--model", tmp_path / "no-model", "--input", tmp_path / "empty.csv", "-o", tmp_path / "o.csv"
    )
    assert code == 2 and "the file is empty" in err and "no-model" not in err and "scoring" not in err, err


def test_train_into_an_existing_file(tmp_path, capsys):
    (tmp_path / "f.csv").write_text(GOOD)
    (tmp_path / "taken").write_text("x")
    code, err = _run(capsys, "train", tmp_path / "f.csv", "-o", tmp_path / "taken")
    assert code == 2 and "is a file, not a run folder" in err


def test_a_full_disk_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    (tmp_path / "f.csv").write_text(GOOD)

    def fill_the_disk(lines, out):
        out.write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write() raises it: no file named

    monkeypatch.setattr(tables, "_write_string_buffer", fill_the_disk)
    code, err = _run(capsys, "pairs", tmp_path / "f.csv", "-o", tmp_path / "p.jsonl")
    assert code == 2 and "No space left on device" in err and "free some disk space" in err
    assert "p.jsonl" in err  # the file it was writing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]


def test_a_bug_is_short_unless_debug(tmp_path, capsys, monkeypatch):
    (tmp_path / "f.csv").write_text(GOOD)

    def broken(*args, **kwargs):
        raise RuntimeError("something internal")

    monkeypatch.setattr("rm_demo.pairs.pairs_from_file", broken)
    code, err = _run(capsys, "pairs", tmp_path / "f.csv", "-o", tmp_path / "p.jsonl")
    assert code == 1 and "--debug" in err and "something internal" in err and "This is a bug" in err
    with pytest.raises(RuntimeError):
        cli.main(["pairs", str(tmp_path / "f.csv"), "-o", str(tmp_path / "p.jsonl"), "--debug"])


@pytest.mark.parametrize(
    "run_json",
    [
        '{"created_at": "yesterday", "status": "completed"}',
        '{"config": null}',
        "[]",
        '{"status": 5, "final_metrics": "x", "data": [1]}',
        "{ not json",
        '{"status": "running", "pid": "abc", "pid_started": 1.5}',
    ],
)
def test_odd_run_folders_are_listed_not_fatal(tmp_path, capsys, run_json):
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "run.json").write_text(run_json)
    (tmp_path / "foreign").mkdir()
    code = cli.main(["runs", "--root", str(tmp_path)])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 0
    assert "odd" in out and "foreign" in out and "unreadable" in out.split("foreign")[1].splitlines()[0]


def test_a_real_process_prints_no_traceback(tmp_path):
    (tmp_path / "picture.csv").write_bytes(PNG)
    proc = subprocess.run(
        [sys.executable, "-m", "rm_demo", "pairs", str(tmp_path / "picture.csv"), "-o", str(tmp_path / "p.jsonl")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: picture.csv: this is a PNG image")
    assert "Traceback" not in proc.stderr


# ---- issue 26: outputs never destroy a device, an input or each other; inputs are bounded


def _fifo(tmp_path, name="pipe.csv"):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this OS")
    path = tmp_path / name
    os.mkfifo(path)
    return path


def _good(tmp_path, name="in.csv"):
    path = tmp_path / name
    path.write_text(GOOD)
    return path


# what, argv builder (tmp_path, input) -> args, a part of the message (exit 2)
OUTPUT_CASES = [
    ("-o is the input", lambda t, i: ["pairs", i, "-o", i], "would destroy the input"),
    ("--dropped is the input", lambda t, i: ["pairs", i, "-o", t / "p.jsonl", "--dropped", i], "destroy the input"),
    ("--report is -o", lambda t, i: ["pairs", i, "-o", t / "p.json", "--report", t / "p.json"], "same file"),
    ("-o through a link to the input", lambda t, i: ["pairs", i, "-o", _link(t, i)], "destroy the input"),
    ("-o a pipe", lambda t, i: ["pairs", i, "-o", _fifo(t, "out.jsonl")], "is a pipe"),
    ("score -o is --input", lambda t, i: ["score", "--input", i, "-o", i], "destroy the input"),
]


def _link(tmp_path, target):
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("what, argv, message", OUTPUT_CASES, ids=[c[0] for c in OUTPUT_CASES])
def test_an_output_never_replaces_an_input_a_device_or_another_output(tmp_path, capsys, what, argv, message):
    source = _good(tmp_path)
    code, err = _run(capsys, *argv(tmp_path, source))
    assert code == 2 and message in err, err
    assert source.read_text() == GOOD  # the input is untouched


def test_dev_full_stays_a_device(tmp_path, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    code, err = _run(capsys, "pairs", _good(tmp_path), "-o", "/dev/full")
    assert code == 2 and "is a device" in err and not os.path.isfile("/dev/full")


def test_an_output_symlink_is_written_through_and_the_umask_is_respected(tmp_path, capsys):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "pairs.jsonl"
    link.symlink_to(target)
    old = os.umask(0o027)
    try:
        code, err = _run(capsys, "pairs", _good(tmp_path), "-o", link, "--report", tmp_path / "new.json")
    finally:
        os.umask(old)
    assert code == 0, err
    assert link.is_symlink() and len(target.read_text().splitlines()) == 2  # the link stays, its file has the pairs
    # An existing file keeps its mode; a new one gets what the umask gives (not mkstemp's 0600).
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o666 & ~tables._UMASK


INPUT_CASES = [
    ("/dev/zero", lambda t: "/dev/zero", "is a device"),
    ("a .csv link to /dev/zero", lambda t: _link(t, "/dev/zero"), "is a device"),
    ("a FIFO with no writer", lambda t: _fifo(t), "is a pipe"),
    ("a folder", lambda t: t, "is a folder"),
]


@pytest.mark.parametrize("what, path, message", INPUT_CASES, ids=[c[0] for c in INPUT_CASES])
@pytest.mark.parametrize("command", ["pairs", "score", "rank", "train"])
def test_special_files_are_refused_as_inputs_at_once(tmp_path, capsys, what, path, message, command):
    if what != "a folder" and what != "a FIFO with no writer" and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero here")
    source = path(tmp_path)
    argv = {
        "pairs": ["pairs", source, "-o", tmp_path / "p.jsonl"],
        "score": ["score", "--input", source, "-o", tmp_path / "s.csv"],
        "rank": ["rank", "--question", "Q", "--answers-file", source],
        "train": ["train", source, "-o", tmp_path / "run"],
    }[command]
    code, err = _run(capsys, *argv)
    assert code == 2 and message in err, err


def test_a_gzip_bomb_stops_at_the_input_limit(tmp_path, capsys):
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(b"question,answer,score\n" + b"q,a,1\n" * 2_000_000))  # 12 MB inside
    code, err = _run(capsys, "pairs", bomb, "-o", tmp_path / "p.jsonl", "--max-input-mb", "5")
    assert code == 2 and "over 5 MB once decompressed" in err
    assert cli.DEFAULT_MAX_INPUT_MB <= 512  # the default bound keeps a whole process under 1 GB


def test_an_answer_with_a_line_separator_inside_stays_one_answer():
    from rm_demo.insight import read_answers

    assert read_answers("one\u2028still one\ntwo\r\nthree") == ["one\u2028still one", "two", "three"]


def test_one_column_cannot_be_both_question_and_answer(tmp_path, capsys):
    code, err = _run(
        capsys,
        "pairs",
        _good(tmp_path),
        "-o",
        tmp_path / "p.jsonl",
        "--question-col",
        "answer",
        "--answer-col",
        "answer",
    )
    assert code == 2 and "both the question and the answer" in err


def test_a_scored_csvs_header_is_formula_safe_too(tmp_path):
    frame = pd.DataFrame({"=HYPERLINK(1)": ["x"], "answer": ["@cmd"]})
    tables.write_table(frame, tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text()
    assert text.splitlines()[0] == "'=HYPERLINK(1),answer" and "'@cmd" in text


def test_evaluate_on_a_file_with_no_usable_pairs_is_a_message(tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "q", "chosen": "same", "rejected": "same"}\n')
    code, err = _run(capsys, "evaluate", "--model", "default", pairs)
    assert code == 2 and "no usable pairs" in err


def test_shift_jis_is_detected_by_charset_normalizer_not_read_as_mac_roman(tmp_path, capsys):
    answer = "こんにちは、元気ですか。今日はいい天気ですね。"
    src = tmp_path / "sjis.csv"
    src.write_bytes(f"question,answer,score\nq,{answer},5\nq,bad,1\n".encode("shift_jis"))
    code, err = _run(capsys, "pairs", src, "-o", tmp_path / "p.jsonl")
    assert code == 0 and "encoding cp932 (detected)" in err, err
    assert answer in (tmp_path / "p.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize("damage", ["config.json", "model.safetensors"])
def test_a_damaged_model_folder_is_a_message(tmp_path, capsys, damage):
    import shutil

    from rm_demo.models import resolve_model

    folder = tmp_path / "model"
    shutil.copytree(resolve_model("default"), folder)
    target = folder / damage
    target.write_bytes(b"{ not json" if damage == "config.json" else target.read_bytes()[:100_000])
    code, err = _run(capsys, "compare", "--model", folder, "--question", "Q", "--answer-a", "A", "--answer-b", "B")
    assert code == 2 and "could not load the model" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["evaluate", "--run"], ["train", "--resume"]])
def test_a_truncated_run_json_is_named_as_such(tmp_path, capsys, command):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"status": "compl')
    code, err = _run(capsys, *command, run)
    assert code == 2 and "run" in err and "is a folder" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("command", ["evaluate", "rank"])
def test_every_command_that_reads_a_file_stops_at_the_input_limit(tmp_path, capsys, command):
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b'{"prompt": "q", "chosen": "a", "rejected": "b"}\n' * 200_000))  # 10 MB inside
    argv = {
        "evaluate": ["evaluate", "--model", "default", bomb],
        "rank": ["rank", "--question", "Q", "--answers-file", tmp_path / "answers.csv"],
    }[command]
    if command == "rank":
        (tmp_path / "answers.csv").write_text("answer\n" + "an answer\n" * 1_000_000)  # 10 MB
    code, err = _run(capsys, *argv, "--max-input-mb", "5")
    assert code == 2 and "over 5 MB" in err, err


def test_output_cut_short_by_a_closed_pipe_ends_quietly():
    """`python -m rm_demo pairs-sql | head -1`: the reader goes away; no "error: a file: Broken pipe"."""
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-m", "rm_demo", "pairs-sql"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    child.stdout.close()  # before it writes a byte: its first write meets a pipe nobody reads
    err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0 and err == ""
