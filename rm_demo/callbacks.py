"""transformers callbacks: live metrics into the run folder, and a stop button that works."""

from __future__ import annotations

import time

from transformers import TrainerCallback

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

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        self.run.update(max_steps=state.max_steps)

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
        self.run.append_metrics(record)


class CancelCallback(TrainerCallback):
    """Stops training at the next step once `runs/<name>/cancel` exists."""

    def __init__(self, run: RunFolder):
        self.run = run

    def on_step_end(self, args, state, control, **kwargs):
        if self.run.cancel_requested:
            control.should_training_stop = True
            control.should_evaluate = False
        return control
