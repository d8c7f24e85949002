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


def test_raters_under_another_name_are_found_or_named(tmp_path, capsys):
    """A `Reviewer` column is a rater column by its name; any other name is one with --rater-col. Two raters
    of the same answers are then combined and their agreement given, not counted as duplicate rows."""
    from rm_demo import cli

    rows = ["question,answer,score,{who}"]
    for rater, scores in {"ana": (5, 1, 4, 2), "ben": (5, 2, 5, 1)}.items():
        rows += [f"Q1,good,{scores[0]},{rater}", f"Q1,bad,{scores[1]},{rater}"]
        rows += [f"Q2,fine,{scores[2]},{rater}", f"Q2,poor,{scores[3]},{rater}"]
    text = "\n".join(rows) + "\n"
    for header, flags in (("Reviewer", []), ("Who", ["--rater-col", "Who"])):
        path = tmp_path / f"{header}.csv"
        path.write_text(text.replace("{who}", header))
        report = tmp_path / "report.json"
        assert cli.main(["pairs", str(path), "-o", str(tmp_path / "p.jsonl"), "--report", str(report), *flags]) == 0
        data = json.loads(report.read_text())
        assert data["column_mapping"]["rater"] == header and "duplicate_row" not in data["dropped"], data
        assert data["pairs"] == 2 and data["raters"] == 2 and data["agreement"]["judgments"] == 8
    capsys.readouterr()
    path.write_text(text.replace("{who}", "Who"))
    assert cli.main(["pairs", str(path), "-o", str(tmp_path / "p.jsonl"), "--report", str(report)]) == 0
    assert "rater" not in json.loads(report.read_text())["column_mapping"]  # not guessed from "Who"


def test_the_pairs_download_says_who_rated_each_side(tmp_path):
    """Scored answers: every rater of each side (a third rater's answer with a stray space is the same answer);
    judged pairs: those who judged the trained direction, not the outvoted one. Without raters: no column."""
    from rm_demo import cli

    scored = tmp_path / "scored.csv"
    rows = ["question,answer,score,rater", "Q1,good,5,ben", "Q1,bad,1,ana", "Q1,good ,4,ana", "Q1,meh,3,cy"]
    scored.write_text("\n".join([*rows, "Q2,x,5,ana", "Q2,y,1,ana"]) + "\n")
    out = tmp_path / "p.jsonl"
    assert cli.main(["pairs", str(scored), "-o", str(out)]) == 0
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(p["chosen_raters"], p["rejected_raters"]) for p in pairs] == [("ana; ben", "ana"), ("ana", "ana")]

    judged = tmp_path / "judged.jsonl"
    votes = [("good", "bad", "ana"), ("good", "bad", "ben"), ("bad", "good", "cy")]
    lines = [json.dumps({"prompt": "Q", "chosen": c, "rejected": r, "rater": w}) for c, r, w in votes]
    judged.write_text("\n".join(lines) + "\n")
    assert cli.main(["pairs", str(judged), "-o", str(out)]) == 0
    assert [json.loads(line)["raters"] for line in out.read_text().splitlines()] == ["ana; ben"]

    plain = tmp_path / "plain.csv"
    plain.write_text("question,answer,score\nQ1,good,5\nQ1,bad,1\n")
    assert cli.main(["pairs", str(plain), "-o", str(out)]) == 0
    assert "rater" not in out.read_text()
