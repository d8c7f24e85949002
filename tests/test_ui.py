"""The app's handlers, called directly (the browser test drives the same code through Chromium)."""

import json

import pandas as pd
import pytest

from rm_demo import ui
from rm_demo.errors import InputError

SETTINGS = ("auto", "auto", ui.AUTO, ui.AUTO, ui.AUTO, "best-worst", 4, 4, 1)


def test_seed_sample_view(seed_csv):
    view = ui.derive_view(str(seed_csv), "seed_feedback.csv", *SETTINGS)
    assert view.ok and "mac_roman" in view.message and "comma" in view.message
    assert len(ui.pairs_table(view.pairs)) == 3
    assert "6** rows read = **6** used + **0** dropped" in view.summary
    assert len(view.figures) == 3 and all(fig.layout.xaxis.title.text for fig in view.figures)


def test_settings_change_the_view(seed_csv):
    view = ui.derive_view(str(seed_csv), "seed.csv", "cp1252", "auto", ui.AUTO, ui.AUTO, ui.AUTO, "all-pairs", None, None, 3.5)
    assert view.ok and "cp1252" in view.message and len(view.pairs) == 1
    assert "below_min_margin" in view.summary


def test_bad_file_is_a_message_not_a_traceback(write_file):
    path = write_file("bad.csv", "question,reply,stars\nq,a,1\n")
    view = ui.derive_view(str(path), "bad.csv", *SETTINGS)
    assert not view.ok and "bad.csv" in view.message and "How to fix" in view.message and "Traceback" not in view.message
    assert view.columns == ["question", "reply", "stars"]  # offered in the column menus, to fix it there


def test_explicit_columns_from_the_menus(write_file):
    path = write_file("f.csv", "q,a,stars\nx,good,5\nx,bad,1\n")
    view = ui.derive_view(str(path), "f.csv", "auto", "auto", "q", "a", "stars", "best-worst", 4, 4, 1)
    assert view.ok and len(view.pairs) == 1 and set(view.columns) == {"q", "a", "stars"}


def test_upload_limit(write_file, monkeypatch):
    monkeypatch.setenv("RM_DEMO_MAX_UPLOAD_MB", "0.00001")
    path = write_file("big.csv", "question,answer,score\n" + "q,a,1\n" * 10)
    view = ui.derive_view(str(path), "big.csv", *SETTINGS)
    assert not view.ok and "limit" in view.message


def test_dropped_rows_table(write_file):
    path = write_file("f.csv", "question,answer,score\nq,a,5\nq,b,1\nq,c,\n")
    view = ui.derive_view(str(path), "f.csv", *SETTINGS)
    assert view.dropped.to_dict("records") == [{"row": 4, "reason": "missing_score", "question": "q", "answer": "c", "score": ""}]


def test_exports_are_safe_for_spreadsheets(seed_csv):
    session = ui.Session(data_name="x.csv")
    pairs = pd.DataFrame({"prompt": ["=HYPERLINK(1)", "ok"], "chosen": ["+1", "fine"], "rejected": ["@x", "-2"], "margin": [1.0, 2.0]})
    session = ui.export_pairs(session, pairs)
    text = open(session.pairs_csv, encoding="utf-8").read()
    assert "'=HYPERLINK(1)" in text and "'+1" in text and "'@x" in text and "'-2" in text and ",1.0" in text
    assert json.loads(open(session.pairs_jsonl).readline())["prompt"] == "=HYPERLINK(1)"  # JSONL keeps the data as is


def test_start_without_data_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path))
    session, message = ui.start_run(ui.Session(), "embedded default", "", 1, 5e-5, 2, 64, 0.2, False, "best-worst", 4, 4, 1)
    assert "Load data" in message and session.run_dir is None


def test_bad_settings_do_not_start(seed_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path))
    session = ui.Session(data_path=str(seed_csv), data_name="seed.csv")
    session, message = ui.start_run(session, "embedded default", "", 0, 5e-5, 2, 64, 0.2, False, "best-worst", 4, 4, 1)
    assert "Cannot start" in message and "epochs" in message and not list(tmp_path.iterdir())


def test_model_choices_list_finished_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path))
    done = tmp_path / "done"
    (done / "model").mkdir(parents=True)
    (done / "model" / "config.json").write_text("{}")
    (done / "run.json").write_text(json.dumps({"status": "completed", "created_at": 1, "final_metrics": {"eval_accuracy": 0.75}}))
    (tmp_path / "junk").mkdir()  # a foreign folder: listed as unreadable elsewhere, never offered here
    labels = dict(ui.model_choices())
    assert labels[ui.BASE_MODEL_LABEL] == "default"
    assert labels["done · held-out acc 75%"] == str(done / "model")


def test_compare_needs_all_fields():
    with pytest.raises(InputError):
        ui.compare_answers("default", "q", "", "b")


def test_compare_with_base_model():
    result = ui.compare_answers("default", "What is your name?", "My name is Amit", "Bananas")
    assert set(result) == {"reward_a", "reward_b", "difference", "p_a_preferred"}
    assert 0 < result["p_a_preferred"] < 1
    assert ui.get_scorer("default") is ui.get_scorer("default")  # loaded once


def test_app_builds():
    demo = ui.build_app()
    assert demo.title == "Reward Model Studio"


def test_a_fresh_page_reattaches_to_the_running_job(tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path))
    for name, status, created in (("old", "completed", 1), ("live", "running", time.time())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"status": status, "created_at": created, "pid": os.getpid()}))
    assert ui.active_run() == str(tmp_path / "live")


def test_status_says_when_the_saved_model_is_an_epoch_average():
    from types import SimpleNamespace

    status = SimpleNamespace(name="r", status="completed", device_name="CPU", error=None,
                             final_metrics={"eval_accuracy": 0.67, "eval_margin": 0.4, "steps": 375, "eval_pairs": 300, "averaged_epochs": 2})
    assert "mean of the weights at the last 2 epoch ends" in ui.run_status_markdown(status)
    status.final_metrics["averaged_epochs"] = 1
    assert "epoch ends" not in ui.run_status_markdown(status) and "67.0%" in ui.run_status_markdown(status)
