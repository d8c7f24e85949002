"""The Train tab's form as plain values, and what it means: the run's config, the split, the epochs note.

No gradio: the handlers in `train_tab` and the tests use these directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd

from rm_demo.app.state import Session, number_or_none
from rm_demo.config import TrainConfig, default, planned_epochs
from rm_demo.errors import InputError
from rm_demo.text import counted

EMBEDDED, CUSTOM = "embedded default", "hub id or local folder"


@dataclass
class TrainForm:
    """The Train tab's controls, as plain values."""

    model_choice: str = EMBEDDED
    custom_model: str = ""
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: float | None = None
    max_length: float | None = None
    eval_fraction: float | None = None
    lora: bool = False
    slice_seconds: float | None = None
    on_gpu_quota: str = "cpu"  # ZeroGPU: when the visitor's GPU quota runs out (zero_gpu.ON_QUOTA)
    objective: str = "pairwise"  # config.OBJECTIVES

    def model(self) -> str:
        return "default" if self.model_choice == EMBEDDED else (self.custom_model or "").strip()


def train_config(session: Session, form: TrainForm) -> TrainConfig:
    """The run's config: the form's numbers (blank = the default) and the preview's own settings.

    Its data file and run folder are set when the run is made (`runs.prepare_run`)."""

    def pick(value, name, kind=float):
        return default(name) if number_or_none(value) is None else kind(value)

    pairing = session.settings.pair_options()
    return TrainConfig(
        model=form.model(),
        epochs=pick(form.epochs, "epochs"),
        learning_rate=pick(form.learning_rate, "learning_rate"),
        batch_size=pick(form.batch_size, "batch_size", int),
        max_length=pick(form.max_length, "max_length", int),
        eval_fraction=pick(form.eval_fraction, "eval_fraction"),
        lora=bool(form.lora),
        slice_seconds=pick(form.slice_seconds, "slice_seconds"),
        objective=form.objective or default("objective"),
        **asdict(pairing),
        read_options=session.read_options_dict(),
        source_name=session.data_name or "",
    )


def split_pairs(session: Session, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session's pairs split as training will split them: (train, held out)."""
    from rm_demo.pairs import split_by_question

    pairs = pd.read_json(session.pairs_jsonl, lines=True, dtype=False) if session.pairs_jsonl else pd.DataFrame()
    if pairs.empty:
        return pairs, pairs
    return split_by_question(pairs, config.eval_fraction, config.seed)


def epochs_note(session: Session, form: TrainForm) -> str:
    """Say when the minimum-steps rule will raise the epochs (tiny data sets), before Start."""
    if not session.pairs_jsonl or not session.pairs or not Path(session.pairs_jsonl).exists():
        return ""
    try:
        config = train_config(session, form)
    except (TypeError, ValueError, InputError):
        return ""
    train_pairs, held_out = split_pairs(session, config)
    planned = planned_epochs(config, len(train_pairs))
    note = f"{len(train_pairs)} training pairs, {len(held_out)} held out."
    if planned > config.epochs:
        note += (
            f" With so few pairs, training runs at least {config.min_steps} steps: "
            f"**{planned:g} epochs** instead of {config.epochs:g}."
        )
    return note


def preview_command(session: Session, form: TrainForm) -> str:
    """The command Start runs, before Start (as LLaMA-Factory's "Preview command"): these settings, in the
    shell, from the folder holding the file, train the same run (its own folder under runs/)."""
    import shlex

    from rm_demo.config import command_line
    from rm_demo.runs import safe_stem

    if not session.input_names or session.settings is None:
        return ""
    try:
        config = train_config(session, form)
        config.validate()
    except (TypeError, ValueError, InputError):
        return ""
    first, *second = session.input_names
    config = replace(config, input=first, source_name="")
    line = command_line(config, output_dir=f"runs/{safe_stem(first)}")
    if second:
        line = line.replace(" -o ", f" --scores {shlex.quote(second[0])} -o ", 1)
    return (
        "**The command** (what Start runs, its settings saved in the run's `config.json`; typed in a shell next to "
        f"your file it trains the same run):\n\n```bash\n{line}\n```"
    )


def gpu_note(session: Session, form: TrainForm) -> str:
    """On ZeroGPU: the GPU seconds this run will spend, in how many slices, and what happens without quota."""
    from rm_demo.config import planned_steps
    from rm_demo.zero_gpu import DAILY_QUOTA_MINUTES, DEFAULT_SLICE_S, FIRST_STEP_S, ON_QUOTA, gpu_seconds_estimate

    quotas = ", ".join(f"{minutes} min {who}" for who, minutes in DAILY_QUOTA_MINUTES.items())
    then = ON_QUOTA.get(form.on_gpu_quota, ON_QUOTA["cpu"])
    head = (
        "This Space borrows its GPU (ZeroGPU): a run trains in slices, each a GPU call of its own, charged to "
        f"your daily GPU time ({quotas}). When yours runs out, {then}."
    )
    if not session.pairs_jsonl or not session.pairs or not Path(session.pairs_jsonl).exists():
        return head
    try:
        config = train_config(session, form)
    except (TypeError, ValueError, InputError):
        return head
    steps = planned_steps(config, len(split_pairs(session, config)[0]))
    cap = config.slice_seconds or DEFAULT_SLICE_S
    seconds, slices = gpu_seconds_estimate(steps, cap)
    return head + (
        f" This run: {steps} steps at about {FIRST_STEP_S:g} s each, in {counted(slices, 'slice')} of at most "
        f"{cap:g} s of training plus start-up: **about {seconds} GPU seconds** (measured as it goes)."
    )
