"""transformers callbacks: live metrics into the run folder, and a stop button that works."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from transformers import TrainerCallback

if TYPE_CHECKING:
    import torch

from rm_demo.runs import RunFolder
from rm_demo.text import counted

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


def seconds_left(elapsed: float, first_step: int, step: int, max_steps: int) -> float | None:
    """The rest of a run at the pace of this process so far. A resumed run's clock started at the step
    it resumed from, not at 0, so its pace is counted from there. None before the first step."""
    todo = max_steps - first_step
    done = (step - first_step) / todo if todo > 0 else 0
    return elapsed / done * (1 - done) if done > 0 else None


class MetricsCallback(TrainerCallback):
    """Appends one JSON object per log or eval event to `metrics.jsonl` (main process only)."""

    def __init__(self, run: RunFolder):
        self.run = run
        self.started = time.time()
        self.training_ended = False
        self.first_step = 0
        self.elapsed_before = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.time(), state.global_step
        self.training_ended = False
        # A resumed run (a run's next slice) goes on with the clock where its curve stopped.
        self.elapsed_before = max((m.get("elapsed_s") or 0.0 for m in self.run.metrics()), default=0.0)
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
        record["elapsed_s"] = round(self.elapsed_before + elapsed, 2)
        left = seconds_left(elapsed, self.first_step, state.global_step, state.max_steps)
        record["eta_s"] = round(left, 1) if left is not None else None
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


class SliceClock(TrainerCallback):
    """Ends a slice of a run: at the step end where one more step would pass `seconds` of training in
    this slice, or at the first one after `pause` is set (the page driving the slices went away).

    The stop saves a checkpoint, which the next slice resumes from, and logs the loss so far, so the
    curve loses no step. Every slice trains at least one step, so a slice shorter than a step still
    moves the run on. `ended` says why the slice ended: "time", "pause", or "" (the run finished).
    """

    def __init__(self, seconds: float | None = None, pause=None, clock=time.monotonic):
        self.seconds, self.pause, self.clock = seconds, pause, clock
        self.started, self.first_step, self.ended = clock(), 0, ""

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step, self.ended = self.clock(), state.global_step, ""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_training_stop or state.global_step >= state.max_steps:
            return control  # a Stop, or the last step: the run ends anyway
        elapsed = self.clock() - self.started
        per_step = elapsed / max(1, state.global_step - self.first_step)
        if self.pause is not None and self.pause.is_set():
            self.ended = "pause"
        elif self.seconds and elapsed + per_step > self.seconds:
            self.ended = "time"
        if self.ended:
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"
            control.should_log = True
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
    (docs/benchmarks-log.md). The running mean lives on the CPU in fp32, so a GPU holds nothing extra.
    A run stopped before its last step keeps its last weights: its window was never reached.
    """

    STATE_FILE = "epoch_weight_average.pt"

    def __init__(self, epochs: int = 2, resume_from: str | Path | None = None):
        self.epochs = epochs
        self.resume_from = resume_from
        self.mean: dict[str, torch.Tensor] = {}
        self.count = 0
        self.epochs_ended = 0
        self.applied = False

    @staticmethod
    def _trainable(model):
        return [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def on_train_begin(self, args, state, control, **kwargs):
        self.mean, self.count, self.epochs_ended, self.applied = {}, 0, 0, False
        saved = Path(self.resume_from) / self.STATE_FILE if self.resume_from else None
        if saved is not None and saved.is_file():  # a resumed run (a slice) goes on with the same mean
            import torch

            kept = torch.load(saved, weights_only=True)
            self.mean, self.count = kept["mean"], int(kept["count"])

    def on_save(self, args, state, control, **kwargs):
        """The running mean goes into each checkpoint: a resumed run (the next slice) ends with the same model."""
        import torch

        if self.count and args is not None and state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                torch.save({"mean": self.mean, "count": self.count}, folder / self.STATE_FILE)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        import torch

        # By the epoch number, not a count of calls: a resumed run starts counting mid-way.
        epoch = state.epoch or 0.0
        if abs(epoch - round(epoch)) > 1e-6:
            return  # a run stopped mid-epoch (a Stop, a slice's end): no epoch has ended here
        self.epochs_ended = round(epoch)
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
        # A slice that ended on this step saved its checkpoint before this epoch end was counted.
        self.on_save(args, state, control)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        import torch

        if self.count < 2 or state.global_step < state.max_steps:
            return
        with torch.no_grad():
            for name, p in self._trainable(model):
                p.copy_(self.mean[name].to(device=p.device, dtype=p.dtype))
        self.applied = True


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else f"{minutes}:{seconds:02d}"


class ConsoleProgress(TrainerCallback):
    """What a person watching the terminal (or the app's log box) reads while a run trains.

    In a terminal: one progress bar, the latest loss and batch accuracy beside it, and a line per
    evaluation. Into a file (the app's train.log, CI): a plain line per log event, no redraws.
    Replaces the Trainer's own printer, which dumps raw metric dicts and a bar per evaluation.
    """

    def __init__(self, stream=None, interactive: bool | None = None, clock=time.time, asked=None):
        import sys

        self.asked = asked  # (epochs, min_steps) the run asked for: a tiny data set's raised epochs are said why
        self.clock = clock
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.bar = None
        self.started = clock()
        self.trained = False
        self.first_step = 0

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.started, self.trained, self.first_step = self.clock(), False, state.global_step
        resumed = f", resuming at step {state.global_step}" if state.global_step else ""
        raised = ""
        if self.asked and state.num_train_epochs > self.asked[0]:
            raised = f" ({self.asked[0]:g} asked: so few pairs get at least --min-steps {self.asked[1]} steps)"
        self._say(f"training: {state.max_steps} steps, {state.num_train_epochs:g} epochs{raised}{resumed}")
        if self.interactive:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, unit="step", file=self.stream, dynamic_ncols=True
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        where = f"step {state.global_step}/{state.max_steps}, epoch {state.epoch or 0:.2f}"
        if "eval_accuracy" in logs:
            loss = f", loss {logs['eval_loss']:.4f}" if "eval_loss" in logs else ""
            # the curves may score a sample; TRL's evaluation after training scores every held-out pair, but
            # averages its batches' accuracies: the saved model's exact figure is printed after it (train.py)
            where = "TRL's own figure (batch-averaged), every held-out pair" if self.trained else where
            self._say(f"{where}: held-out accuracy {logs['eval_accuracy']:.3f}{loss}")
        elif "loss" in logs:
            accuracy = f", batch accuracy {logs['accuracy']:.3f}" if "accuracy" in logs else ""
            if self.bar is not None:
                self.bar.set_postfix_str(f"loss {logs['loss']:.4f}{accuracy}", refresh=True)
            else:
                elapsed = self.clock() - self.started
                seconds = seconds_left(elapsed, self.first_step, state.global_step, state.max_steps)
                left = f", about {_clock(seconds)} left" if seconds else ""
                self._say(f"{where}: loss {logs['loss']:.4f}{accuracy} ({_clock(elapsed)} elapsed{left})")
        elif "train_runtime" in logs and state.global_step < state.max_steps:  # a Stop, or a slice's end
            self._say(f"left off at step {state.global_step}/{state.max_steps} after {_clock(logs['train_runtime'])}")
        elif "train_runtime" in logs:
            self._say(f"trained {counted(state.global_step, 'step')} in {_clock(logs['train_runtime'])}")

    def on_train_end(self, args, state, control, **kwargs):
        self.trained = True  # an evaluation from now on is the final one, of the saved model
        if self.bar is not None:
            self.bar.close()
            self.bar = None
