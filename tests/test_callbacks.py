"""The training callbacks' own logic, driven by hand: no trainer, no data."""

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
