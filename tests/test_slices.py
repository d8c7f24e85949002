"""Time-sliced runs: each slice ends in a checkpoint the next resumes from, and the run ends with the model
an unsliced run gets; on ZeroGPU each slice runs in a `spaces.GPU` generator (a forked stand-in here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import spaces  # imported before any test sets SPACES_ZERO_GPU: off ZeroGPU its GPU returns the function
import torch
from conftest import write_checkpoint
from records import leave_record
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState, TrainingArguments
from zero_gpu_stand_in import StandInGPU, quota_error

from rm_demo import zero_gpu
from rm_demo.callbacks import EpochWeightAverage, SliceClock
from rm_demo.config import TrainConfig
from rm_demo.runs import RunFolder, RunRecord, prepare_run
from rm_demo.train import train

DATA = Path(__file__).parent / "data" / "rated_feedback.csv"
# Small and quick: 30 steps of 8 pairs at 32 tokens, 2 steps an epoch (the weight average's window
# of two epoch ends is crossed by slices of any length).
SMALL = {"max_length": 32, "batch_size": 8}


def _weights(run: Path) -> dict:
    return load_file(run / "model" / "model.safetensors")


def _same_model(a: Path, b: Path) -> float:
    wa, wb = _weights(a), _weights(b)
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> Path:
    """The run every sliced one must end like: the same data, settings and seed, in one go."""
    folder = tmp_path_factory.mktemp("whole") / "run"
    record = train(TrainConfig(input=str(DATA), output_dir=str(folder), **SMALL), progress=False)
    assert record["status"] == "completed" and record["slices"] == 0
    return folder


# ---------------------------------------------------------------------------------------------
# The pieces


def _state(step, max_steps=30, epoch=None):
    state = TrainerState()
    state.global_step, state.max_steps, state.epoch, state.num_train_epochs = step, max_steps, epoch, 3
    return state


def test_a_slice_ends_before_the_step_that_would_pass_its_seconds(tmp_path):
    now = [0.0]
    clock = SliceClock(seconds=10, clock=lambda: now[0])
    args = TrainingArguments(output_dir=str(tmp_path), save_strategy="steps", report_to=[])
    clock.on_train_begin(args, _state(4), TrainerControl())
    ended = []
    for step in range(5, 30):
        now[0] += 3.0  # 3 s a step: after 3 steps (9 s) a 4th would pass 10 s
        control = clock.on_step_end(args, _state(step), TrainerControl())
        ended.append(control.should_training_stop)
        if control.should_training_stop:
            assert control.should_save and control.should_log and clock.ended == "time"
            break
    assert ended == [False, False, True]


def test_every_slice_trains_a_step_and_a_pause_ends_it_at_the_next(tmp_path):
    now, pause = [0.0], threading.Event()
    args = TrainingArguments(output_dir=str(tmp_path), save_strategy="steps", report_to=[])
    slow = SliceClock(seconds=1, clock=lambda: now[0])
    slow.on_train_begin(args, _state(0), TrainerControl())
    now[0] = 5.0  # one step took longer than the whole slice: it still made it, and the slice ends
    assert slow.on_step_end(args, _state(1), TrainerControl()).should_training_stop
    paused = SliceClock(seconds=None, pause=pause, clock=lambda: now[0])
    paused.on_train_begin(args, _state(0), TrainerControl())
    assert not paused.on_step_end(args, _state(1), TrainerControl()).should_training_stop
    pause.set()
    assert paused.on_step_end(args, _state(2), TrainerControl()).should_training_stop and paused.ended == "pause"
    last = SliceClock(seconds=1, clock=lambda: now[0])  # the run's last step ends the run, not a slice
    last.on_train_begin(args, _state(29), TrainerControl())
    now[0] += 10
    assert not last.on_step_end(args, _state(30), TrainerControl()).should_training_stop and last.ended == ""


def test_the_weight_average_crosses_a_resume_and_a_stop_mid_epoch_is_no_epoch_end(tmp_path):
    model = torch.nn.Linear(2, 1, bias=False)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[])
    first = EpochWeightAverage(epochs=2)
    first.on_train_begin(args, _state(0), TrainerControl())
    with torch.no_grad():
        model.weight.fill_(2.0)
    first.on_epoch_end(args, _state(20, epoch=2.0), TrainerControl(), model=model)  # in the window
    first.on_epoch_end(args, _state(23, epoch=2.3), TrainerControl(), model=model)  # stopped mid-epoch 3
    assert first.count == 1
    (tmp_path / "checkpoint-23").mkdir()
    first.on_save(args, _state(23), TrainerControl())
    second = EpochWeightAverage(epochs=2, resume_from=tmp_path / "checkpoint-23")
    second.on_train_begin(args, _state(23), TrainerControl())
    with torch.no_grad():
        model.weight.fill_(4.0)
    second.on_epoch_end(args, _state(30, epoch=3.0), TrainerControl(), model=model)
    second.on_train_end(args, _state(30, epoch=3.0), TrainerControl(), model=model)
    assert second.applied and torch.allclose(model.weight, torch.full((1, 2), 3.0))


def test_slices_are_a_setting_checked_like_the_others():
    with pytest.raises(ValueError, match="slice seconds"):
        TrainConfig(slice_seconds=-1).validate()
    with pytest.raises(ValueError, match="needs checkpoints"):
        TrainConfig(slice_seconds=30, checkpoints=False).validate()


# ---------------------------------------------------------------------------------------------
# Whole runs


@pytest.mark.slow
def test_cli_slices_end_with_the_model_of_one_go(whole_run, tmp_path):
    """`rm_demo train --slice-seconds` as a user types it: several slices, the same model and figures."""
    out = tmp_path / "sliced"
    done = subprocess.run(
        [sys.executable, "-m", "rm_demo", "train", str(DATA), "-o", str(out), "--slice-seconds", "0.8"]
        + ["--max-length", "32", "--batch-size", "8"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "run.json").read_text())
    whole = json.loads((whole_run / "run.json").read_text())
    assert record["status"] == "completed" and record["slices"] >= 2
    assert "left off at step" in done.stderr and "resuming at step" in done.stderr
    assert _same_model(out, whole_run) <= 1e-6
    for key in ("eval_accuracy", "eval_margin", "eval_loss"):
        assert abs(record["final_metrics"][key] - whole["final_metrics"][key]) <= 1e-3
    assert record["final_metrics"]["averaged_epochs"] == 2 and record["final_metrics"]["steps"] == 30
    # one curve: every evaluation of the unsliced run at the same steps, a clock that never goes back
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [m["step"] for m in metrics if "eval_accuracy" in m and not m.get("final")]
    whole_metrics = [json.loads(line) for line in (whole_run / "metrics.jsonl").read_text().splitlines()]
    assert evals == [m["step"] for m in whole_metrics if "eval_accuracy" in m and not m.get("final")]
    clock = [m["elapsed_s"] for m in metrics]
    assert clock == sorted(clock)
    assert not (out / "trainer").exists()  # a completed run keeps no checkpoint


# ---------------------------------------------------------------------------------------------
# ZeroGPU: the app's process drives, a forked worker trains each slice


@pytest.fixture
def stand_in(monkeypatch):
    gpu = StandInGPU()
    monkeypatch.setattr(spaces, "GPU", gpu)
    zero_gpu.reset_gpu_function()
    yield gpu
    zero_gpu.reset_gpu_function()
    gpu.close()


def _queued_run(tmp_path, name="gpu") -> Path:
    folder = tmp_path / name
    prepare_run(TrainConfig(**SMALL), DATA, folder)
    return folder


def _wait_for_status(folder: Path, wanted: set, timeout_s: float = 120) -> str:
    """The worker writes the run's end itself, after the app's side has gone: wait for it to be written."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = RunFolder(folder).read().get("status")
        if status in wanted:
            return status
        time.sleep(0.2)
    return RunFolder(folder).read().get("status")


def test_off_zero_gpu_the_slice_function_is_itself():
    zero_gpu.reset_gpu_function()
    assert zero_gpu.gpu_function() is zero_gpu.slice_stream  # spaces' GPU returns it unchanged there
    zero_gpu.reset_gpu_function()


@pytest.mark.slow
def test_zero_gpu_slices_in_forked_workers_end_with_the_model_of_one_go(whole_run, tmp_path, stand_in):
    folder = _queued_run(tmp_path)
    payloads = list(zero_gpu.drive(folder, cap_s=1.0))
    record = RunFolder(folder).read()
    assert record["status"] == "completed" and record["slices"] == len(stand_in.durations) >= 2
    assert len(set(stand_in.worker_pids)) == 1  # one worker for every slice, as spaces keeps it
    # each call asked for its slice's training time plus the start-up, no more than the cap allows
    assert all(d <= 1.0 + zero_gpu.STARTUP_S + 1 for d in stand_in.durations)
    assert payloads == stand_in.payloads and all(isinstance(p, dict) for p in payloads)
    assert payloads[-1]["status"] == "completed" and payloads[-1]["step"] == 30
    assert sum(len(p["new_metrics"]) for p in payloads) == len(RunFolder(folder).metrics())
    assert _same_model(folder, whole_run) <= 1e-6
    # The Train tab's log box reads the run's train.log: each slice's lines and the exact figure are there
    # (they went to the app's own stderr, and the box stayed empty for the whole run).
    log = RunFolder(folder).log_tail(lines=200)
    assert log.count("training: 30 steps") == len(stand_in.durations) and "left off at step" in log, log
    assert "step 30/30" in log and "the saved model, every held-out pair: held-out accuracy" in log, log


@pytest.mark.slow
def test_a_page_closed_mid_slice_leaves_a_paused_run_that_resumes_to_the_same_model(whole_run, tmp_path, stand_in):
    folder = _queued_run(tmp_path)
    driving = zero_gpu.drive(folder, cap_s=30.0)
    for payload in driving:
        if payload["step"] >= 5:  # training, mid-slice
            break
    closing = time.monotonic()
    driving.close()  # gradio closes the handler when the page goes away, on its event loop
    # The stand-in's close waits for the worker's end as spaces' does (the rest of the step, a checkpoint):
    # that wait happens on a thread of its own, so gradio's event loop is not held.
    assert time.monotonic() - closing < 0.2
    assert _wait_for_status(folder, {"paused"}) == "paused"
    record = RunRecord.load(folder)
    assert record.resumable and 5 <= RunFolder(folder).read()["paused_at_step"] < 30
    from rm_demo.jobs import requeue

    requeue(RunFolder(folder))  # what Resume does on ZeroGPU; then the click's second part drives it
    last = list(zero_gpu.drive(folder, cap_s=30.0, resume=True))[-1]
    assert last["status"] == "completed" and _same_model(folder, whole_run) <= 1e-6


def test_closed_between_slices_the_run_is_paused_not_left_running(tmp_path, stand_in, monkeypatch):
    folder = _queued_run(tmp_path)

    def one_slice_then_more(run_dir, seconds, resume, driver):  # a slice that ended on its clock
        leave_record(RunFolder(run_dir), status="running", pid=driver[0], pid_started=driver[1])
        yield {"status": "running", "step": 3}

    monkeypatch.setattr(zero_gpu, "slice_stream", one_slice_then_more)
    zero_gpu.reset_gpu_function()
    driving = zero_gpu.drive(folder, cap_s=5.0)
    next(driving)
    driving.close()  # the slice had handed the run back to the app's process: nobody drives it now
    assert _wait_for_status(folder, {"paused"}, timeout_s=10) == "paused"


def test_stop_between_slices_stops(tmp_path, stand_in, monkeypatch):
    folder = _queued_run(tmp_path)

    def a_slice(run_dir, seconds, resume, driver):
        leave_record(RunFolder(run_dir), status="running", pid=driver[0], pid_started=driver[1])
        RunFolder(run_dir).cancel_path.touch()  # Stop pressed as the slice ended
        yield {"status": "running", "step": 3}

    monkeypatch.setattr(zero_gpu, "slice_stream", a_slice)
    zero_gpu.reset_gpu_function()
    assert list(zero_gpu.drive(folder, cap_s=5.0))[-1]["status"] == "cancelled"
    assert len(stand_in.durations) == 1


def test_out_of_quota_the_run_goes_on_on_the_cpu_or_pauses(tmp_path, stand_in, monkeypatch):
    from rm_demo import jobs

    queued = []
    monkeypatch.setattr(jobs, "start_job", lambda run, resume=False: queued.append((run.name, resume)))
    stand_in.refuse = [quota_error(left_s=0)]
    cpu = _queued_run(tmp_path, "cpu")
    last = list(zero_gpu.drive(cpu, cap_s=40.0, on_quota="cpu"))[-1]
    assert queued == [("cpu", False)] and "on the CPU" in last["note"]
    assert RunFolder(cpu).read()["status"] == "queued"  # waiting for the device, not "running" in nobody's hands
    stand_in.refuse = [quota_error(left_s=0)]
    paused = _queued_run(tmp_path, "paused")
    last = list(zero_gpu.drive(paused, cap_s=40.0, on_quota="pause"))[-1]
    assert RunFolder(paused).read()["status"] == "paused" and "paused" in last["note"] and len(queued) == 1


def test_a_call_over_what_is_left_today_is_asked_again_shorter(tmp_path, stand_in, monkeypatch):
    folder = _queued_run(tmp_path)

    def a_last_slice(run_dir, seconds, resume, driver):
        leave_record(RunFolder(run_dir), status="completed")
        yield {"status": "completed", "step": 30, "seconds": seconds}

    monkeypatch.setattr(zero_gpu, "slice_stream", a_last_slice)
    zero_gpu.reset_gpu_function()
    stand_in.refuse = [quota_error(left_s=45, asked_s=60)]
    last = list(zero_gpu.drive(folder, cap_s=40.0))[-1]
    assert last["status"] == "completed" and stand_in.durations == [45 - 1]


# ---------------------------------------------------------------------------------------------
# The app on a ZeroGPU Space, and the job queue elsewhere


def test_on_zero_gpu_start_and_resume_drive_slices_from_the_click(seed_csv, runs, started, stand_in, monkeypatch):
    from rm_demo.app import data_tab, train_tab
    from rm_demo.app.gpu_slices import drive_slices
    from rm_demo.app.state import DataSettings, Session
    from rm_demo.app.train_tab import TrainForm

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    session = data_tab.load_data(Session(owner="v" * 32), str(seed_csv), "seed.csv", DataSettings())[0]
    form = TrainForm(slice_seconds=20, on_gpu_quota="pause")
    epochs, gpu, _ = train_tab.form_notes(session, *vars(form).values())
    assert "GPU seconds" in gpu and "1 slice of at most 20 s" in gpu and "it pauses" in gpu
    session, message = train_tab.start_run(session, form)
    assert message.startswith("Started") and not started  # no job process: the click drives the GPU slices

    def a_slice(run_dir, seconds, resume, driver):
        leave_record(RunFolder(run_dir), status="paused" if not resume else "completed", max_steps=30)
        yield {"status": "running", "step": 12, "max_steps": 30}

    monkeypatch.setattr(zero_gpu, "slice_stream", a_slice)
    zero_gpu.reset_gpu_function()
    shown = [message for message, timer in drive_slices(session, "pause")]
    assert shown == ["Training on the borrowed GPU: step 12 of 30."]
    assert RunFolder(session.run_dir).read()["status"] == "paused"
    assert list(drive_slices(session, "pause")) == []  # a paused run is driven again only by Resume
    write_checkpoint(Path(session.run_dir) / "trainer" / "checkpoint-12")
    session, message = train_tab.resume_run(session)
    assert message == f"Resuming **{Path(session.run_dir).name}** from step 12." and not started
    list(drive_slices(session, "pause"))
    assert RunFolder(session.run_dir).read()["status"] == "completed" and stand_in.durations[-1] > 20


@pytest.mark.slow
def test_sliced_runs_in_the_job_queue_let_a_waiting_run_have_the_device(tmp_path):
    """Between two slices a run queued behind it trains: one device shared in turns, not first come, all served."""
    from rm_demo.jobs import start_job, wait_for

    root = tmp_path / "runs"
    long_run, short_run = root / "long", root / "short"
    prepare_run(TrainConfig(slice_seconds=0.8, **SMALL), DATA, long_run)
    start_job(long_run)
    deadline = time.time() + 120
    while not RunFolder(long_run).metrics() and time.time() < deadline:  # the first run has the device
        time.sleep(0.2)
    prepare_run(TrainConfig(**SMALL), DATA, short_run)
    start_job(short_run)
    assert wait_for(short_run, timeout_s=300).status == "completed"
    assert wait_for(long_run, timeout_s=300).status == "completed"
    long_record, short_record = RunFolder(long_run).read(), RunFolder(short_run).read()
    assert short_record["finished_at"] < long_record["finished_at"]  # it did not wait for the whole first run
    assert long_record["slices"] >= 2


# ---------------------------------------------------------------------------------------------
# Each refusal of spaces 0.51, built by spaces' own `error` with its own words (zero/client.py `schedule`)


def _spaces_refusal(kind: str) -> Exception:
    from spaces.zero import client
    from spaces.zero.gradio import error

    return {
        "pending credits": error(
            "ZeroGPU pending credits exceeded",
            "You have too many ZeroGPU credits allocated to running tasks. "
            "Try again once some of those tasks have completed.",
        ),
        "queue timeout": error("ZeroGPU queue timeout", f"{client.NO_GPU_MESSAGE_INQUEUE}. Retry later", html=True),
        "no GPU": error("ZeroGPU client error", client.NO_GPU_MESSAGE_REGULAR),
        "closed while queueing": RuntimeError("Connection closed by visitor while queueing"),
        "space limit": error(
            "ZeroGPU quota exceeded", f"Space app has reached its GPU limit. {client.EXAMPLES_RETRY_MESSAGE}"
        ),
        "something else": RuntimeError("Unexpected end of stream"),
    }[kind]


def _a_last_slice(run_dir, seconds, resume, driver):
    leave_record(RunFolder(run_dir), status="completed")
    yield {"status": "completed", "step": 30, "seconds": seconds}


@pytest.mark.parametrize(
    "kind, status, words",
    [
        ("pending credits", "paused", "ZeroGPU pending credits exceeded"),  # transient: not the quota
        ("queue timeout", "paused", "No GPU was available after 60s"),
        ("no GPU", "paused", "No GPU was available"),
        ("closed while queueing", "paused", None),  # the docs promise a pause, even before any checkpoint
        ("space limit", "paused", "GPU quota ran out"),  # a quota: the visitor's choice, here "pause"
        ("something else", "failed", "Unexpected end of stream"),  # spaces' own words, not a class name
    ],
)
def test_each_refusal_is_handled_by_its_kind(tmp_path, stand_in, monkeypatch, kind, status, words):
    from rm_demo import jobs

    queued = []
    monkeypatch.setattr(jobs, "start_job", lambda run, resume=False: queued.append(run.name))
    stand_in.refuse = [_spaces_refusal(kind)]
    folder = _queued_run(tmp_path)
    last = list(zero_gpu.drive(folder, cap_s=40.0, on_quota="pause"))[-1]
    record = RunRecord.load(folder)
    assert record.status == status and not queued, (kind, last)
    if words:
        assert words in (last.get("note") or "") + (last.get("error") or ""), (kind, last)
    if status == "paused":
        assert record.resumable  # with no checkpoint yet: Resume starts it again from the beginning
        from rm_demo.jobs import requeue

        requeue(RunFolder(folder))
        assert RunFolder(folder).read()["resume"] is False


def test_a_slice_over_the_longest_call_is_asked_again_shorter(tmp_path, stand_in, monkeypatch):
    from spaces.zero.gradio import error

    monkeypatch.setattr(zero_gpu, "slice_stream", _a_last_slice)
    zero_gpu.reset_gpu_function()
    stand_in.refuse = [
        error("ZeroGPU illegal duration", "The requested GPU duration (140s) is larger than the maximum allowed")
    ]
    last = list(zero_gpu.drive(_queued_run(tmp_path), cap_s=120.0))[-1]
    assert last["status"] == "completed" and stand_in.durations[-1] == 60 + zero_gpu.STARTUP_S


def test_the_quota_counts_the_seconds_asked_times_spaces_duration_factor(tmp_path, stand_in, monkeypatch):
    """On a GPU whose factor is 1.5, 45 s left buy 30 s of call: 9 s of training after the start-up."""
    monkeypatch.setattr(zero_gpu, "slice_stream", _a_last_slice)
    monkeypatch.setattr(zero_gpu, "duration_factor", lambda: 1.5)
    zero_gpu.reset_gpu_function()
    stand_in.refuse = [quota_error(left_s=45, asked_s=90)]
    last = list(zero_gpu.drive(_queued_run(tmp_path), cap_s=40.0))[-1]
    assert last["status"] == "completed" and stand_in.durations == [45 / 1.5 - 1]  # the refused call is not one


def test_an_exception_in_the_worker_fails_the_run_with_the_workers_own_words(tmp_path, stand_in, monkeypatch):
    """spaces passes a worker's exception on as its class name only; the run keeps what the worker wrote."""

    def a_slice_that_breaks(run_dir, seconds, resume, driver):
        leave_record(RunFolder(run_dir), status="failed", error="ValueError: the data copy is unreadable")
        raise ValueError("the data copy is unreadable")
        yield  # a generator

    monkeypatch.setattr(zero_gpu, "slice_stream", a_slice_that_breaks)
    zero_gpu.reset_gpu_function()
    last = list(zero_gpu.drive(_queued_run(tmp_path), cap_s=40.0))[-1]
    assert last["error"] == "ValueError: the data copy is unreadable"
    assert RunRecord.load(tmp_path / "gpu").status == "failed" and not stand_in.workers  # that worker is gone
