"""transformers callbacks: live metrics into the run folder, and a stop button that works."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from transformers import TrainerCallback

if TYPE_CHECKING:
    import torch

from rm_demo.runs import RunFolder

# TRL's log keys -> the run folder's names.
_KEYS = {
    "loss": "loss",
    "learning_rate": "learning_rate",
    "accuracy": "train_accuracy",
    "margin": "train_margin",
    "eval_loss": "eval_loss",
    "eval_accuracy": "eval_accuracy",
    "eval_margin": "eval_margin",
    "grad_norm": "grad_norm",
}


class MetricsCallback(TrainerCallback):
    """Appends one JSON object per log or eval event to `metrics.jsonl` (main process only)."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.started = time.time()
        self.training_ended = False

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        self.training_ended = False
        self.run.update(max_steps=state.max_steps)

    def on_train_end(self, args, state, control, **kwargs):
        self.training_ended = True  # what is logged from now on scores the saved model

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        record.update({name: float(logs[key]) for key, name in _KEYS.items() if key in logs})
        if len(record) == 2:
            return  # the end-of-training summary: nothing per-step in it
        elapsed = time.time() - self.started
        record["elapsed_s"] = round(elapsed, 2)
        done = state.global_step / state.max_steps if state.max_steps else 0
        record["eta_s"] = round(elapsed / done * (1 - done), 1) if done > 0 else None
        record["max_steps"] = state.max_steps
        if self.training_ended:
            record["final"] = True
        self.run.append_metrics(record)


class CancelCallback(TrainerCallback):
    """Stops training at the next step once `runs/<name>/cancel` exists."""

    def __init__(self, run: RunFolder):
        self.run = run

    def on_step_end(self, args, state, control, **kwargs):
        if self.run.cancel_requested:
            control.should_training_stop = True
            control.should_evaluate = False
            # a checkpoint at the stopping step, so a resumed run goes on from exactly here
            control.should_save = args.save_strategy != "no"
        return control


class CheckpointInterval(TrainerCallback):
    """Lets a scheduled checkpoint through at most once every `min_seconds`; one on Stop always.

    A checkpoint of MiniLM with its optimizer state is about 270 MB. Saved at each of a run's ten
    evaluations, checkpoints took 5 s of a 58 s CPU run at 32 tokens, and on a GPU, together with
    activation checkpointing, they made the default run 2.5x slower. A killed run redoes at most
    about this much work.
    """

    def __init__(self, min_seconds: float = 60.0, clock=time.monotonic):
        self.min_seconds = min_seconds
        self.clock = clock
        self.last = clock()

    def on_train_begin(self, args, state, control, **kwargs):
        self.last = self.clock()

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save and not control.should_training_stop:  # stopping: Stop's checkpoint
            now = self.clock()
            if now - self.last < self.min_seconds:
                control.should_save = False
            else:
                self.last = now
        return control


class EpochWeightAverage(TrainerCallback):
    """Makes the final model the mean of the trainable weights at the ends of the last `epochs` epochs.

    A cheap form of stochastic weight averaging: on HH pairs the mean of the last two epoch ends
    scored higher on held-out pairs than the last weights and moved less with the seed
    (BENCHMARKS.md). The running mean lives on the CPU in fp32, so a GPU holds nothing extra.
    A run stopped before its last step keeps its last weights: its window was never reached.
    """

    def __init__(self, epochs: int = 2):
        self.epochs = epochs
        self.mean: dict[str, torch.Tensor] = {}
        self.count = 0
        self.epochs_ended = 0
        self.applied = False

    @staticmethod
    def _trainable(model):
        return [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def on_train_begin(self, args, state, control, **kwargs):
        self.mean, self.count, self.epochs_ended, self.applied = {}, 0, 0, False

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        import torch

        # By the epoch number, not a count of calls: a resumed run starts counting mid-way. It averages
        # the epoch ends it sees after resuming (one alone is not applied: see on_train_end).
        self.epochs_ended = round(state.epoch or 0)
        if self.epochs_ended <= state.num_train_epochs - self.epochs:
            return  # before the window (a cancelled run's snapshot is never applied: see on_train_end)
        self.count += 1
        with torch.no_grad():
            for name, p in self._trainable(model):
                weight = p.detach().float().cpu()
                if name in self.mean:
                    self.mean[name] += (weight - self.mean[name]) / self.count
                else:
                    self.mean[name] = weight.clone()

    def on_train_end(self, args, state, control, model=None, **kwargs):
        import torch

        if self.count < 2 or state.global_step < state.max_steps:
            return
        with torch.no_grad():
            for name, p in self._trainable(model):
                p.copy_(self.mean[name].to(device=p.device, dtype=p.dtype))
        self.applied = True
