"""Hostile input to the CLI, third round (issue 42): a run's own files are never an output, every file the
CLI reads is bounded, a damaged run resumes from its newest intact checkpoint, and junk is exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from records import leave_record

from rm_demo import cli


def _run(capsys, *argv) -> tuple[int, str]:
    code = cli.main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture
def run_folder(tmp_path):
    """A run folder's files as training leaves them (the check comes before any of them is read)."""
    run = tmp_path / "runs" / "first"
    (run / "model").mkdir(parents=True)
    (run / "checkpoint-4").mkdir()
    files = {
        "data.csv": b"question,answer,score\nQ,a,5\nQ,b,1\n",
        "run.json": json.dumps({"status": "completed"}).encode(),
        "model/model.safetensors": b"\x00weights" * 100,
        "model/config.json": b"{}",
        "checkpoint-4/trainer_state.json": b"{}",
    }
    for name, content in files.items():
        (run / name).write_bytes(content)
    return run, files


def _targets(run):
    link = run.parent.parent / "looks-harmless.zip"
    link.symlink_to(run / "run.json")
    return {
        "the data copy": run / "data.csv",
        "run.json": run / "run.json",
        "the weights": run / "model" / "model.safetensors",
        "a checkpoint's file": run / "checkpoint-4" / "trainer_state.json",
        "a symlink to run.json": link,
        "a new file inside the run": run / "report.json",
        "a new file in the model folder": run / "model" / "x.zip",
    }


@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_export_and_evaluate_never_write_into_a_run_folder(run_folder, capsys, command):
    run, files = run_folder
    for what, target in _targets(run).items():
        argv = ["export", run, "-o", target] if command == "export" else ["evaluate", "--run", run, "-o", target]
        code, err = _run(capsys, *argv)
        assert code == 2 and "inside the run folder" in err and "How to fix" in err, (what, err)
        for name, content in files.items():
            assert (run / name).read_bytes() == content, f"{command} -o {what} changed {name}"
        assert not (run / "report.json").exists() and not (run / "model" / "x.zip").exists()


def test_pairs_and_score_keep_out_of_run_folders_too(run_folder, tmp_path, capsys):
    run, files = run_folder
    src = tmp_path / "feedback.csv"
    src.write_text("question,answer,score\nQ,good,5\nQ,bad,1\n")
    for target in (run / "data.csv", run / "pairs.jsonl"):
        code, err = _run(capsys, "pairs", src, "-o", target)
        assert code == 2 and "inside the run folder" in err, err
    assert (run / "data.csv").read_bytes() == files["data.csv"]


def test_export_outside_the_run_is_still_allowed(run_folder, tmp_path, capsys, monkeypatch):
    """The rule refuses the run's own folder, not exports in general: the check passes, and the export goes
    on to say the (fake) model cannot be read back, not that the path is refused."""
    run, _ = run_folder
    monkeypatch.chdir(tmp_path)
    code, err = _run(capsys, "export", run, "-o", tmp_path / "out" / ".." / "first.zip")
    assert "inside the run folder" not in err
    assert not os.path.exists(run / "first.zip")


# ---------------------------------------------------------------------------------------------
# --resume on a damaged run


def _checkpoint(run, step: int, cut: str | None = None):
    """A checkpoint folder with real files of the kinds the Trainer writes (safetensors, torch zips)."""
    import torch
    from safetensors.torch import save_file

    folder = run / "trainer" / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    save_file({"w": torch.arange(1000, dtype=torch.float32)}, folder / "model.safetensors")
    torch.save({"state": torch.ones(100)}, folder / "optimizer.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if cut == "weights missing":
        (folder / "model.safetensors").unlink()
    elif cut == "state missing":
        (folder / "trainer_state.json").unlink()
    elif cut in ("model.safetensors", "optimizer.pt"):
        data = (folder / cut).read_bytes()
        (folder / cut).write_bytes(data[: len(data) // 2])
    return folder


@pytest.mark.parametrize("damage", ["weights missing", "state missing", "model.safetensors", "optimizer.pt"])
def test_resume_skips_a_damaged_newest_checkpoint_for_the_one_before(tmp_path, damage):
    from rm_demo.runs import RunFolder, checkpoint_damage

    run = tmp_path / "run"
    older, newest = _checkpoint(run, 4), _checkpoint(run, 8, cut=damage)
    assert checkpoint_damage(older) is None and checkpoint_damage(newest)
    skipped = []
    assert RunFolder(run).latest_checkpoint(skipped) == older
    assert [path for path, _ in skipped] == [newest]


def _resumable_run(tmp_path, capsys, checkpoints):
    """A stopped run made by `train`'s own start (prepare_run), its data hash recorded as training does."""
    from rm_demo.config import TrainConfig
    from rm_demo.runs import RunFolder, prepare_run
    from rm_demo.train import _data_hash

    data = tmp_path / "feedback.csv"
    data.write_text("question,answer,score\n" + "".join(f"Q{i},good,5\nQ{i},bad,1\n" for i in range(10)))
    run = tmp_path / "run"
    config = prepare_run(TrainConfig(), data, run)
    leave_record(RunFolder(run), status="cancelled", data={"sha256_16": _data_hash(config.input)})
    for step, cut in checkpoints:
        _checkpoint(run, step, cut)
    return run, config


def test_resume_with_no_intact_checkpoint_says_which_and_why(tmp_path, capsys):
    run, _ = _resumable_run(tmp_path, capsys, [(4, "model.safetensors"), (8, "state missing")])
    code, err = _run(capsys, "train", "--resume", run)
    assert code == 2 and "no intact checkpoint" in err, err
    assert "checkpoint-4: model.safetensors is cut short" in err and "checkpoint-8: trainer_state.json" in err


def test_resume_on_an_edited_data_copy_is_refused(tmp_path, capsys):
    run, config = _resumable_run(tmp_path, capsys, [(4, None)])
    copy = Path(config.input)
    copy.write_text(copy.read_text().replace(",5\n", ",0\n"))  # every score flipped
    code, err = _run(capsys, "train", "--resume", run)
    assert code == 2 and "data copy changed" in err and "How to fix" in err, err


# ---------------------------------------------------------------------------------------------
# Budgets checked while reading


def test_a_3_gb_sparse_file_under_a_raised_budget_is_refused_from_its_head(tmp_path, capsys):
    sparse = tmp_path / "zeros.csv"
    with open(sparse, "wb") as fh:
        fh.truncate(3 * 10**9)  # no disk used: a hole of zeros
    code, err = _run(capsys, "pairs", sparse, "-o", tmp_path / "p.jsonl", "--max-input-mb", "5000")
    assert code == 2 and "not a text table" in err, err


def test_a_file_bigger_than_the_memory_left_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    import psutil

    big = tmp_path / "big.csv"
    big.write_text("question,answer,score\n" + "Q,a,5\n" * 200_000)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("Memory", (), {"available": 2_000_000})())
    code, err = _run(capsys, "pairs", big, "-o", tmp_path / "p.jsonl")
    assert code == 2 and "needs about" in err and "GB is free" in err, err


@pytest.mark.parametrize("kind", ["csv", "jsonl", "json"])
def test_row_and_cell_budgets_are_checked_while_reading(tmp_path, kind):
    from rm_demo.errors import InputError
    from rm_demo.feedback import ReadOptions, read_table

    def write(rows):
        path = tmp_path / f"f.{kind}"
        if kind == "csv":
            path.write_text("question,answer,score\n" + "".join(f"{q},{a},{s}\n" for q, a, s in rows))
        else:
            records = [json.dumps({"question": q, "answer": a, "score": s}) for q, a, s in rows]
            path.write_text("\n".join(records) + "\n" if kind == "jsonl" else "[" + ",".join(records) + "]")
        return path

    many = write([("Q", "a", 5)] * 1001)
    with pytest.raises(InputError, match="1,001 rows is over this app's limit of 1,000"):
        read_table(many, ReadOptions(max_rows=1000))
    assert len(read_table(many, ReadOptions(max_rows=1001)).frame) == 1001
    long = write([("Q", "a", 5), ("Q", "b" * 5000, 1)])
    with pytest.raises(InputError, match="the 'answer' cell is 5,000 characters; the limit here is 4,999"):
        read_table(long, ReadOptions(max_cell_chars=4999))
    assert len(read_table(long, ReadOptions(max_cell_chars=5000)).frame) == 2


# ---------------------------------------------------------------------------------------------
# Every file the CLI reads has the data file's rules; junk is exit 2


LAUGHS = "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n" + "".join(
    f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh")
)


@pytest.mark.parametrize(
    "what, make, message",
    [
        ("/dev/zero", lambda t: "/dev/zero", "is a device"),
        ("a FIFO", lambda t: (os.mkfifo(t / "fifo.yaml"), t / "fifo.yaml")[1], "is a pipe"),
        ("a billion laughs in epochs", lambda t: _text(t / "l.yaml", LAUGHS + "epochs: [*h,*h]\n"), "anchor or alias"),
        ("a billion laughs in model", lambda t: _text(t / "m.yaml", LAUGHS + "model: *h\n"), "anchor or alias"),
        ("2 MB of settings", lambda t: _text(t / "big.yaml", "# x\n" * 500_000), "not a settings file"),
        ("JSON nested 100,000 deep", lambda t: _text(t / "deep.json", "[" * 100_000 + "]" * 100_000), "nested"),
        ("a list for epochs", lambda t: _text(t / "e.yaml", "epochs: [" + "1," * 100_000 + "1]\n"), "..."),
    ],
)
def test_a_config_file_is_read_by_the_data_files_rules(tmp_path, capsys, what, make, message):
    started = __import__("time").monotonic()
    code, err = _run(capsys, "train", "--config", make(tmp_path))
    assert code == 2 and message in err and "How to fix" in err, (what, err)
    assert len(err) < 1000 and __import__("time").monotonic() - started < 10, what


def _text(path, text):
    path.write_text(text)
    return path


def test_junk_arguments_and_files_are_exit_2(tmp_path, capsys):
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "lone.jsonl").write_text('{"question": "Q", "answer": "a\\udc00", "score": 5}\n')
    for argv, message in (
        (["pairs", tmp_path / "deep.json", "-o", tmp_path / "p.jsonl"], "nested too deeply"),
        (["pairs", tmp_path / "lone.jsonl", "-o", tmp_path / "p.jsonl"], "line 1 holds \\udc00"),
        (["score", "--input", tmp_path / "lone.jsonl", "-o", tmp_path / "s.csv"], "half of a UTF-16 pair"),
    ):
        code, err = _run(capsys, *argv)
        assert code == 2 and message in err, (argv, err)


def test_a_byte_that_is_not_utf8_in_an_argument_is_exit_2(tmp_path):
    """As a shell passes it: the byte arrives as a lone surrogate (Python's surrogateescape)."""
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable.encode(),
            b"-m",
            b"rm_demo",
            b"compare",
            b"--question",
            b"Q",
            b"--answer-a",
            b"a\xffb",
            b"--answer-b",
            b"b",
        ],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 2 and b"half of a UTF-16 pair" in done.stderr and b"Traceback" not in done.stderr


def test_delete_renames_the_run_away_and_a_late_resume_finds_it_gone(tmp_path):
    from rm_demo.errors import InputError
    from rm_demo.jobs import requeue
    from rm_demo.runs import RunFolder, delete_run

    run = RunFolder(tmp_path / "runs" / "r")
    leave_record(run, status="cancelled")
    (run.path / "data.csv").write_text("x")
    delete_run(tmp_path / "runs", "r")
    assert list((tmp_path / "runs").iterdir()) == []  # neither the run nor its renamed copy is left
    with pytest.raises(InputError, match="was deleted"):
        requeue(run)
    assert not run.path.exists()
