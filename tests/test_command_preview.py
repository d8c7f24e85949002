"""Issue 39: the Train tab shows the command before Start, Start runs those settings (the app's job is the CLI's
`train --config RUN/config.json --queued`), and the command typed by hand trains the same run."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pytest

from rm_demo.app import data_tab, train_tab
from rm_demo.app.state import DataSettings, Session
from rm_demo.app.train_form import preview_command
from rm_demo.app.train_tab import TrainForm
from rm_demo.cli import build_parser, read_options_from
from rm_demo.config import config_from_args

WORKSHOP = Path(__file__).parent / "data" / "rated_feedback.csv"
VISITOR = "v" * 32
# Settings off their defaults on both tabs, a float that 6 digits would cut among them.
PAIRING = DataSettings(strategy="all-pairs", aggregate="median", min_margin=2.0)
FORM = TrainForm(
    epochs=1, learning_rate=1.2345678e-4, batch_size=4, max_length=96, eval_fraction=0.3, objective="both"
)
WHERE = ("input", "output_dir", "source_name")  # where the data and the run live, not what trains


def _what_trains(config) -> dict:
    """The config less where things live, and less the size limits on reading (the app's upload limit, the
    CLI's --max-input-mb): they refuse a file or not, they never change what trains."""
    values = {k: v for k, v in asdict(config).items() if k not in WHERE}
    values["read_options"] = {k: v for k, v in values["read_options"].items() if not k.startswith("max_")}
    return values


def _shown(session: Session, form: TrainForm) -> str:
    text = preview_command(session, form)
    return re.search(r"```bash\n(.*)\n```", text).group(1)


def _as_typed(line: str):
    words = shlex.split(line)
    assert words[:4] == ["python", "-m", "rm_demo", "train"]
    args = build_parser().parse_args(words[3:])
    return config_from_args(args, read_options=asdict(read_options_from(args)))


def test_the_command_shown_before_start_is_the_config_start_saves(runs, started):
    session = data_tab.load_data(Session(owner=VISITOR), str(WORKSHOP), "rated_feedback.csv", PAIRING)[0]
    line = _shown(session, FORM)
    assert "--lr 0.00012345678" in line and "--strategy all-pairs" in line and "--aggregate median" in line
    assert "--objective both" in line  # More settings' objective, like every other setting
    session, message = train_tab.start_run(session, FORM)
    assert message.startswith("Started"), message
    saved, typed = _what_trains(started[0]), _what_trains(_as_typed(line))
    assert typed == saved and saved["learning_rate"] == 1.2345678e-4 and saved["min_margin"] == 2.0
    typed = _as_typed(line)
    assert typed.input == "rated_feedback.csv" and typed.output_dir == "runs/rated_feedback"


def test_no_data_no_command_and_two_files_name_both():
    assert preview_command(Session(), TrainForm()) == ""
    session = data_tab.load_data(Session(owner=VISITOR), str(WORKSHOP), "rated_feedback.csv", DataSettings())[0]
    session.input_names = ("observations.json", "scores.json")
    assert "train observations.json --scores scores.json -o runs/observations" in _shown(session, TrainForm())


def test_the_job_the_app_starts_is_the_cli_on_the_runs_settings_file(tmp_path):
    from rm_demo.jobs import run_command
    from rm_demo.runs import RunFolder

    assert run_command(RunFolder(tmp_path / "r"), "py") == [
        "py", "-m", "rm_demo", "train", "--config", str(tmp_path / "r" / "config.json"), "--queued"
    ]  # fmt: skip
    from rm_demo import cli

    with pytest.raises(SystemExit):  # --queued alone names nothing
        build_parser().parse_args(["train", "--queued", "--bogus"])
    assert cli.main(["train", "--queued"]) == 2


@pytest.mark.slow
def test_the_command_typed_by_hand_trains_the_run_the_button_trained(runs, tmp_path):
    """The button's run (a real job) and the preview typed in a shell: the same pairs, split and rewards."""
    from rm_demo.jobs import wait_for

    session = data_tab.load_data(Session(owner=VISITOR), str(WORKSHOP), "rated_feedback.csv", PAIRING)[0]
    line = _shown(session, FORM)
    session, message = train_tab.start_run(session, FORM)
    assert message.startswith("Started"), message
    button = Path(session.run_dir)
    assert wait_for(button, timeout_s=600).status == "completed", (button / "train.log").read_text()[-2000:]

    shell = tmp_path / "shell"
    shell.mkdir()
    shutil.copy(WORKSHOP, shell / "rated_feedback.csv")
    words = shlex.split(line)
    done = subprocess.run([sys.executable, *words[1:]], cwd=shell, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    by_hand = shell / "runs" / "rated_feedback"

    pd.testing.assert_frame_equal(
        pd.read_parquet(button / "pairs.parquet"), pd.read_parquet(by_hand / "pairs.parquet")
    )
    ours, theirs = (json.loads((run / "eval.json").read_text()) for run in (button, by_hand))
    assert ours["accuracy"] == theirs["accuracy"] and ours["pairs"] == theirs["pairs"] > 0
    assert ours["rewards"]["chosen"] == pytest.approx(theirs["rewards"]["chosen"], abs=1e-4)
