"""The training callbacks' own logic, driven by hand: no trainer, no data."""

import pytest
import torch
from transformers import TrainerControl, TrainerState

from rm_demo.callbacks import CheckpointInterval, EpochWeightAverage


def _run_epochs(values, max_steps, stop_after=None):
    """A 2-layer model whose first layer holds `values[i]` at the end of epoch i+1; the second is frozen."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Linear(1, 1))
    model[1].requires_grad_(False)
    frozen = model[1].weight.clone()
    state, control = TrainerState(), TrainerControl()
    state.num_train_epochs, state.max_steps = len(values), max_steps
    average = EpochWeightAverage(epochs=2)
    average.on_train_begin(None, state, control)
    for epoch, value in enumerate(values, start=1):
        with torch.no_grad():
            model[0].weight.fill_(value)
        state.global_step, state.epoch = epoch * max_steps // len(values), float(epoch)
        control.should_training_stop = epoch == stop_after or state.global_step >= max_steps
        average.on_epoch_end(None, state, control, model=model)
        if control.should_training_stop:
            break
    average.on_train_end(None, state, control, model=model)
    assert torch.equal(model[1].weight, frozen)  # frozen weights are never touched
    return average, model[0].weight


def test_final_weights_are_the_mean_of_the_last_two_epoch_ends():
    average, weight = _run_epochs([1.0, 2.0, 4.0], max_steps=30)
    assert average.applied and torch.allclose(weight, torch.full((1, 2), 3.0))


def test_a_run_stopped_early_keeps_its_last_weights():
    average, weight = _run_epochs([1.0, 2.0, 4.0], max_steps=30, stop_after=2)
    assert not average.applied and torch.equal(weight, torch.full((1, 2), 2.0))


def test_one_epoch_has_nothing_to_average():
    average, weight = _run_epochs([5.0], max_steps=10)
    assert not average.applied and torch.equal(weight, torch.full((1, 2), 5.0))


def test_a_resumed_run_counts_epochs_by_number():
    """Resumed in epoch 3 of 3 (window: epochs 2 and 3): only the end of epoch 3 is seen, so nothing is averaged."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    state, control = TrainerState(), TrainerControl()
    state.num_train_epochs, state.max_steps, state.global_step, state.epoch = 3, 30, 30, 3.0
    average = EpochWeightAverage(epochs=2)
    average.on_train_begin(None, state, control)
    average.on_epoch_end(None, state, control, model=model)
    average.on_train_end(None, state, control, model=model)
    assert average.epochs_ended == 3 and average.count == 1 and not average.applied


def test_checkpoints_are_saved_at_most_once_a_minute_and_always_on_stop():
    now = [0.0]
    interval = CheckpointInterval(min_seconds=60, clock=lambda: now[0])
    state, control = TrainerState(), TrainerControl()
    interval.on_train_begin(None, state, control)

    def scheduled_save_at(seconds, stopping=False):
        now[0] = seconds
        control.should_save, control.should_training_stop = True, stopping
        return interval.on_step_end(None, state, control).should_save

    assert not scheduled_save_at(30)  # too soon after the start
    assert scheduled_save_at(61)
    assert not scheduled_save_at(100)  # 39 s after the last one
    assert scheduled_save_at(105, stopping=True)  # Stop's checkpoint: a resume goes on from here
    now[0] = 200
    control.should_save, control.should_training_stop = False, False
    assert not interval.on_step_end(None, state, control).should_save  # nothing scheduled, nothing added


def test_console_progress_reads_as_lines_not_metric_dicts():
    import io

    from rm_demo.callbacks import ConsoleProgress

    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.num_train_epochs, state.is_world_process_zero = 30, 3, True
    console.on_train_begin(None, state, control)
    state.global_step, state.epoch = 10, 1.0
    console.on_log(None, state, control, logs={"loss": 0.61234, "accuracy": 0.75, "grad_norm": 1.0})
    console.on_log(None, state, control, logs={"eval_loss": 0.65, "eval_accuracy": 0.625, "eval_margin": 0.1})
    state.global_step = 30
    console.on_log(None, state, control, logs={"train_runtime": 75.0, "train_loss": 0.5})
    console.on_train_end(None, state, control)
    console.on_log(None, state, control, logs={"eval_loss": 0.6, "eval_accuracy": 0.7})
    lines = out.getvalue().splitlines()
    assert lines[0] == "training: 30 steps, 3 epochs"
    assert lines[1].startswith("step 10/30, epoch 1.00: loss 0.6123, batch accuracy 0.750 (")
    assert "left)" in lines[1]  # a third done: an estimate of the rest
    assert lines[2] == "step 10/30, epoch 1.00: held-out accuracy 0.625, loss 0.6500"
    assert lines[3] == "trained 30 steps in 1:15"
    # TRL's figure named as TRL's: the saved model's exact one is train.py's to print (test_train)
    assert lines[4] == "TRL's own figure (batch-averaged), every held-out pair: held-out accuracy 0.700, loss 0.6000"
    assert "{" not in out.getvalue()


def test_console_progress_is_silent_on_other_processes():
    import io

    from rm_demo.callbacks import ConsoleProgress

    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.is_world_process_zero = 30, False
    console.on_train_begin(None, state, control)
    console.on_log(None, state, control, logs={"loss": 0.6})
    assert out.getvalue() == ""


def test_epochs_raised_for_a_tiny_data_set_are_said_why():
    """The seed sample trains 30 epochs where 3 were asked: the CLI's first line said only "30 epochs"."""
    import io

    from rm_demo.callbacks import ConsoleProgress

    for epochs, said in (
        (30, "training: 30 steps, 30 epochs (3 asked: so few pairs get at least --min-steps 30 steps)"),
        (3, "training: 30 steps, 3 epochs"),
    ):
        out = io.StringIO()
        state, control = TrainerState(), TrainerControl()
        state.max_steps, state.num_train_epochs, state.is_world_process_zero = 30, epochs, True
        ConsoleProgress(out, interactive=False, asked=(3, 30)).on_train_begin(None, state, control)
        assert out.getvalue().splitlines() == [said]


def test_a_resumed_runs_estimate_counts_from_where_it_resumed():
    import io

    from rm_demo.callbacks import ConsoleProgress

    now = [0.0]
    out = io.StringIO()
    console = ConsoleProgress(out, interactive=False, clock=lambda: now[0])
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.num_train_epochs, state.is_world_process_zero = 30, 3, True
    state.global_step, state.epoch = 20, 2.0
    console.on_train_begin(None, state, control)
    now[0], state.global_step = 10.0, 25  # 5 steps in 10 s, 5 to go
    console.on_log(None, state, control, logs={"loss": 0.5})
    lines = out.getvalue().splitlines()
    assert lines[0] == "training: 30 steps, 3 epochs, resuming at step 20"
    assert lines[1].endswith("(0:10 elapsed, about 0:10 left)")


def test_the_apps_time_estimate_for_a_resumed_run_counts_from_where_it_resumed(tmp_path, monkeypatch):
    import time

    from rm_demo.callbacks import MetricsCallback, seconds_left
    from rm_demo.runs import RunFolder

    assert seconds_left(10.0, 0, 10, 30) == pytest.approx(20.0) and seconds_left(10.0, 20, 25, 30) == 10.0
    assert seconds_left(5.0, 20, 20, 30) is None  # no step yet: no pace to go by
    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    metrics = MetricsCallback(run)
    state, control = TrainerState(), TrainerControl()
    state.max_steps, state.global_step, state.epoch, state.is_world_process_zero = 30, 20, 2.0, True
    metrics.on_train_begin(None, state, control)
    now[0], state.global_step = 1010.0, 25  # 5 steps in 10 s, 5 to go
    metrics.on_log(None, state, control, logs={"loss": 0.5})
    assert run.metrics()[-1]["eta_s"] == 10.0  # it read 2.0 when the pace counted the steps before the resume
