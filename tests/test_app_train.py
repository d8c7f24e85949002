"""Train tab: starting, the timer tick, the status line, the epochs note. No browser, no real training."""

import json
import os
import time

import gradio as gr
from conftest import write_checkpoint

from rm_demo import plots
from rm_demo.access import Viewer
from rm_demo.app import compare_tab, data_tab, run_view, runs_tab, train_tab
from rm_demo.app.state import DataSettings, Session
from rm_demo.app.train_tab import TrainForm
from rm_demo.jobs import JobStatus, process_start

ME = {"pid": os.getpid(), "pid_started": process_start(os.getpid())}  # a live process that counts as the run's

VISITOR = "v" * 32  # a browser id, as the page load gives every visitor


def _finished_run(root, name="done", status="completed", eval_pairs=40, **final):
    path = root / name
    (path / "model").mkdir(parents=True)
    (path / "model" / "config.json").write_text("{}")
    metrics = {"eval_accuracy": 0.7, "eval_margin": 0.3, "steps": 50, "eval_pairs": eval_pairs, **final}
    (path / "run.json").write_text(
        json.dumps(
            {
                "status": status,
                "created_at": time.time(),
                "final_metrics": metrics,
                "data": {"train_pairs": 100, "eval_pairs": eval_pairs},
            }
        )
    )
    (path / "metrics.jsonl").write_text(json.dumps({"step": 50, "train_accuracy": 0.9, "loss": 0.3}) + "\n")
    return path


def _loaded(seed_csv) -> Session:
    return data_tab.load_data(Session(owner=VISITOR), str(seed_csv), "seed_feedback.csv", DataSettings())[0]


def test_start_without_data_explains(runs, started):
    session, message = train_tab.start_run(Session(owner=VISITOR), TrainForm())
    assert "Load data" in message and session.run_dir is None and not started


def test_bad_settings_do_not_start(seed_csv, runs, started):
    session, message = train_tab.start_run(_loaded(seed_csv), TrainForm(epochs=0))
    assert "Cannot start" in message and "epochs" in message and not started
    assert not runs.exists() or not list(runs.iterdir())


def test_huge_epochs_are_refused(seed_csv, runs, started):
    session, message = train_tab.start_run(_loaded(seed_csv), TrainForm(epochs=1e6))
    assert "Cannot start" in message and not started


def test_starts_in_the_same_second_get_their_own_folders(seed_csv, runs, started):
    a, _ = train_tab.start_run(_loaded(seed_csv), TrainForm())
    b, _ = train_tab.start_run(_loaded(seed_csv), TrainForm())
    assert a.run_dir != b.run_dir and len(started) == 2 and started[0].output_dir != started[1].output_dir


def test_the_run_remembers_the_uploaded_name(seed_csv, runs, started):
    train_tab.start_run(_loaded(seed_csv), TrainForm())
    assert started[0].source_name == "seed_feedback.csv" and started[0].input.endswith("data.csv")


def test_blank_numbers_take_the_defaults(seed_csv, runs, started):
    train_tab.start_run(_loaded(seed_csv), TrainForm(epochs=None, learning_rate="", batch_size=None))
    config = started[0]
    assert (config.epochs, config.learning_rate, config.batch_size) == (3.0, 5e-5, 16)


def test_the_timer_stops_and_the_compare_picker_is_set_once(runs, monkeypatch):
    # Defect 2: after a run completed, every tick re-sent the picker's value, so "untrained base" snapped back.
    preloaded = []
    monkeypatch.setattr(compare_tab, "preload", preloaded.append)
    path = _finished_run(runs)
    session = Session(run_dir=str(path))
    session, *shown, timer = train_tab.tick(session)
    assert session.just_finished and timer.active is False
    first, note = compare_tab.after_run(session)
    assert first["value"] == str(path / "model")
    assert path.name in note and "Compare now uses its model" in note  # the switch is said on screen
    assert preloaded == [str(path / "model")]  # loading starts now, not on the first Compare
    session, *shown, timer = train_tab.tick(session)  # a later tick (another reload) announces nothing again
    assert not session.just_finished and compare_tab.after_run(session) == (gr.skip(), gr.skip())
    assert len(preloaded) == 1
    assert runs_tab.after_run(session) == (gr.skip(),) * 4


def test_the_timer_keeps_going_while_the_run_is_live(runs):
    path = runs / "live"
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "running", "created_at": time.time(), **ME}))
    session, *shown, timer = train_tab.tick(Session(run_dir=str(path)))
    assert timer.active is True and not session.just_finished and "live" in shown[0]


def test_a_tick_with_nothing_new_sends_no_figures(runs):
    path = runs / "live"
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "running", "created_at": time.time(), **ME}))
    (path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.7}) + "\n")
    session, progress, status, loss, accuracy, log, timer = train_tab.tick(Session(run_dir=str(path)))
    assert loss is not gr.skip() and loss.data
    session, progress, status, loss, accuracy, log, timer = train_tab.tick(session)
    assert loss == gr.skip() and accuracy == gr.skip() and "live" in progress
    with (path / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"step": 2, "loss": 0.6}) + "\n")
    session, progress, status, loss, accuracy, log, timer = train_tab.tick(session)
    assert len(loss.data[0].x) == 2


def test_no_run_no_timer():
    session, *shown, timer = train_tab.tick(Session(owner=VISITOR))
    assert timer.active is False


def _status(**final):
    return JobStatus(
        name="r",
        status="completed",
        device_name="CPU",
        final_metrics=final,
        metrics=[{"step": 30, "train_accuracy": 1.0}, {"step": 31, "train_accuracy": 0.5}],
    )


def test_few_held_out_pairs_get_no_percentage_headline():
    # Defect 4: the sample ended on a bold "Held-out accuracy 0.0%" from one held-out pair.
    text = run_view.run_status_markdown(_status(eval_accuracy=0.0, eval_pairs=1, steps=30))
    assert "0.0%" not in text and "Held-out accuracy" not in text
    assert "only 1 held-out pair" in text and "Training accuracy" in text and "75%" in text


def test_enough_held_out_pairs_get_the_headline():
    text = run_view.run_status_markdown(_status(eval_accuracy=0.67, eval_pairs=300, steps=375, averaged_epochs=2))
    assert "Held-out accuracy **67.0% of 300 pairs (95% interval 61.5-72.1%)**" in text and "last 2 epoch ends" in text
    text = run_view.run_status_markdown(_status(eval_accuracy=0.67, eval_pairs=300, steps=375, averaged_epochs=1))
    assert "epoch ends" not in text


def test_the_accuracy_chart_says_when_held_out_pairs_are_too_few():
    metrics = [{"step": 0, "eval_accuracy": 1.0}, {"step": 5, "eval_accuracy": 0.0, "train_accuracy": 0.5}]
    few = plots.accuracy_curves(metrics, eval_pairs=1)
    assert any("too few" in (trace.name or "") for trace in few.data)
    enough = plots.accuracy_curves(metrics, eval_pairs=50)
    assert not any("too few" in (trace.name or "") for trace in enough.data)
    sampled = plots.accuracy_curves(metrics, eval_pairs=400, curve_pairs=256)
    assert any("a sample of 256 of 400" in (trace.name or "") for trace in sampled.data)


def test_the_epochs_note_says_when_min_steps_raise_the_epochs(seed_csv):
    # Defect 7: "Epochs = 3" ran 30 epochs on small data without saying so.
    note = train_tab.epochs_note(_loaded(seed_csv), TrainForm(epochs=3, batch_size=16, eval_fraction=0.2))
    assert "30 epochs** instead of 3" in note and "2 training pairs, 1 held out" in note


def test_the_epochs_note_is_quiet_when_nothing_changes(write_file):
    rows = "".join(f"q{i},good,5\nq{i},bad,1\n" for i in range(400))
    path = write_file("big.csv", "question,answer,score\n" + rows)
    session = data_tab.load_data(Session(owner=VISITOR), str(path), "big.csv", DataSettings())[0]
    note = train_tab.epochs_note(session, TrainForm(epochs=3, batch_size=16, eval_fraction=0.2))
    assert "320 training pairs, 80 held out." == note


def test_reattach_finds_a_live_run(runs):
    for name, status, created in (("old", "completed", 1), ("live", "running", time.time())):
        (runs / name).mkdir(parents=True)
        (runs / name / "run.json").write_text(
            json.dumps(
                {
                    "status": status,
                    "created_at": created,
                    "pid": os.getpid(),
                    "pid_started": process_start(os.getpid()),
                }
            )
        )
    assert train_tab.reattach(Session(owner=VISITOR)).run_dir == str(runs / "live")


def test_menus_show_no_accuracy_from_a_handful_of_held_out_pairs(runs):
    from rm_demo.app.model_menu import model_choices

    _finished_run(runs, "big", eval_pairs=40)
    _finished_run(runs, "tiny", eval_pairs=2)
    labels = {path.split("/")[-2]: label for label, path in model_choices(runs) if path != "default"}
    assert labels == {"big": "big · held-out acc 70.0% (55-82%, n=40)", "tiny": "tiny"}
    table = runs_tab.runs_table(runs, Viewer()).set_index("run")
    assert (
        table.loc["big", "held-out acc"] == "70.0% (55-82%, n=40)" and table.loc["tiny", "held-out acc"] == "too few"
    )


def test_resume_goes_on_from_the_last_checkpoint(runs, monkeypatch):
    from rm_demo.config import TrainConfig

    calls = []
    monkeypatch.setattr(train_tab, "start_job", lambda run, resume=False: calls.append((run, resume)))
    path = _finished_run(runs, "stopped", status="cancelled")
    (path / "config.json").write_text(TrainConfig(input="x.csv", output_dir=str(path)).to_json())
    session, message = train_tab.resume_run(Session(owner=VISITOR, run_dir=str(path)))
    assert "has a checkpoint to resume from" in message and not calls
    write_checkpoint(path / "trainer" / "checkpoint-6")  # a complete checkpoint
    session, message = train_tab.resume_run(Session(owner=VISITOR, run_dir=str(path)))
    assert message == "Resuming **stopped** from step 6." and calls[0][1] is True


def test_resume_works_from_a_reloaded_page_and_after_a_restart(runs, monkeypatch):
    """A page that did not start the run (reloaded, another tab, the app restarted) resumes it too."""
    from rm_demo.config import TrainConfig

    calls = []
    monkeypatch.setattr(train_tab, "start_job", lambda run, resume=False: calls.append((run, resume)))
    path = _finished_run(runs, "stopped", status="failed")
    (path / "config.json").write_text(TrainConfig(input="x.csv", output_dir=str(path)).to_json())
    write_checkpoint(path / "trainer" / "checkpoint-4")
    fresh = train_tab.reattach(Session(owner=VISITOR))  # what a page load does
    assert fresh.run_dir == str(path) and fresh.run_seen_finished  # shown, not announced as just finished
    session, message = train_tab.resume_run(Session(owner=VISITOR))  # not even reattached: found anyway
    assert message == "Resuming **stopped** from step 4." and [(r.path, resume) for r, resume in calls] == [
        (path, True)
    ]
    assert session.run_dir == str(path)


def test_stop_says_when_there_is_nothing_to_stop(runs):
    done = _finished_run(runs, "done")
    assert train_tab.stop_run(Session(owner=VISITOR, run_dir=str(done))) == (
        "**done** is not running (it is completed): nothing to stop."
    )


def test_stopping_then_stopped_leaves_no_stopping_message(runs):
    # Issue 37: "Stopping at the next step..." stayed under the buttons after the run had stopped.
    path = runs / "live"
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "running", "created_at": time.time(), **ME}))
    session, *_ = train_tab.tick(Session(run_dir=str(path)))
    assert train_tab.after_run(session) == gr.skip()  # still running: the message stays
    (path / "run.json").write_text(json.dumps({"status": "cancelled", "created_at": time.time()}))
    session, progress, status, *_ = train_tab.tick(session)
    assert train_tab.after_run(session) == "" and "cancelled" in status
    session, *_ = train_tab.tick(session)
    assert train_tab.after_run(session) == gr.skip()  # once


def test_a_new_run_takes_the_old_one_out_of_evaluate_until_it_finishes(runs):
    # Issue 37: Evaluate kept showing the previous run's figures while the new one trained.
    from rm_demo.app import eval_tab

    old = _finished_run(runs, "old")
    session = Session(owner=VISITOR, run_dir=str(old))
    assert eval_tab.run_started(session) == gr.skip()  # a refused Start: the finished run stays
    new = runs / "new"
    new.mkdir()
    (new / "run.json").write_text(json.dumps({"status": "running", "created_at": time.time(), **ME}))
    session.run_dir = str(new)
    assert eval_tab.run_started(session) == gr.update(value=None)
    summary, *charts, mistakes, slices, menu = eval_tab.run_picked(None, session)
    assert "**new** is training" in summary and mistakes.empty and slices.empty
