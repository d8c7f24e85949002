"""The `pairs` command as a user runs it: a real subprocess, files in and out."""

import json
import subprocess
import sys


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rm_demo", *args], capture_output=True, text=True, cwd=cwd)


def test_pairs_cli_writes_jsonl_and_report(seed_csv, tmp_path):
    out, report = tmp_path / "pairs.jsonl", tmp_path / "report.json"
    proc = run("pairs", str(seed_csv), "-o", str(out), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    pairs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(pairs) == 3
    assert set(pairs[0]) >= {"prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin"}
    data = json.loads(report.read_text())
    assert (
        data["rows_read"],
        data["rows_used"],
        data["dropped"],
        data["questions"],
        data["pairs"],
        data["encoding"],
    ) == (6, 6, {}, 3, 3, "mac_roman")


def test_pairs_cli_csv_output_and_options(seed_csv, tmp_path):
    out = tmp_path / "pairs.csv"
    proc = run(
        "pairs",
        str(seed_csv),
        "-o",
        str(out),
        "--strategy",
        "all-pairs",
        "--min-margin",
        "3.5",
        "--encoding",
        "mac_roman",
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8").count("\n") >= 2  # header + the one pair with gap 4


def test_bad_input_exit_2_plain_message(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,reply,stars\nq,a,1\n")
    proc = run("pairs", str(bad), "-o", str(tmp_path / "x.jsonl"))
    assert proc.returncode == 2
    assert "bad.csv" in proc.stderr and "score" in proc.stderr and "--score-col" in proc.stderr
    assert "Traceback" not in proc.stderr
