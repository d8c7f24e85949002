"""`TrainConfig`: every knob of a training run, written once.

Each field carries its help text (and, where it differs from the field name, its CLI flag) in
`metadata`, like TRL's config dataclasses read by `TrlParser`. The CLI's `train` flags and the app's
widget defaults and labels are generated from these fields, so a default lives in one place.

This module imports nothing heavy (no torch, no pandas): the CLI builds its parser from it, and
`python -m rm_demo pairs` must not pay for an ML stack it does not use.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from rm_demo.errors import InputError
from rm_demo.pair_options import AGGREGATIONS, STRATEGIES, PairOptions

# Upper bounds that still allow any sensible run; beyond them a typo (1e6 epochs) would hold the
# device for days.
MAX_EPOCHS = 1000
OBJECTIVES = ("pairwise", "pointwise", "both")
MAX_STEPS = 1_000_000
MAX_LENGTH_TOKENS = 32_768
MARGIN_MODES = ("off", "gap", "scaled", "clipped")
# Above this size activations start to crowd a GPU's memory at the default batch and length.
CHECKPOINTING_ABOVE_PARAMS = 200_000_000
# torch's CPU flash-attention backward is slow on short texts: a MiniLM step with plain (eager)
# attention takes 23-25% less time at 128 tokens, 19-25% less at 192, the same at 256 and 19-25%
# more at 512 (docs/benchmarks-log.md section 2).
EAGER_ATTENTION_UP_TO_TOKENS = 256


def _opt(help: str, flag: str | None = None, choices: tuple | None = None, label: str | None = None) -> dict:
    return {"help": help, "flag": flag, "choices": choices, "label": label}


@dataclass
class TrainConfig:
    """Every knob of a training run. Defaults suit the embedded MiniLM on a CPU."""

    input: str = field(default="", metadata=_opt("feedback file or pairs file (from `rm_demo pairs`)"))
    output_dir: str = field(default="runs/run", metadata=_opt("run folder to write, e.g. runs/first", flag="--output"))
    model: str = field(
        default="default",
        metadata=_opt("'default' (embedded all-MiniLM-L6-v2, offline), a hub id, or a local folder", label="Model"),
    )
    epochs: float = field(default=3.0, metadata=_opt("passes over the training pairs", label="Epochs"))
    learning_rate: float = field(default=5e-5, metadata=_opt("learning rate", flag="--lr", label="Learning rate"))
    batch_size: int = field(default=16, metadata=_opt("pairs per device per step", label="Batch size (pairs)"))
    gradient_accumulation: int = field(default=1, metadata=_opt("gradient accumulation steps", flag="--grad-accum"))
    # all-MiniLM-L6-v2 was trained on 128 tokens; on HH pairs 128 scored as well as 256, 1.5x faster.
    max_length: int = field(
        default=128,
        metadata=_opt("tokens per (prompt, answer); prompts are cut from the left", label="Max length (tokens)"),
    )
    eval_fraction: float = field(
        default=0.2, metadata=_opt("share of questions held out for evaluation", label="Held-out questions")
    )
    eval_steps: int = field(default=0, metadata=_opt("evaluate every N steps (0: about ten evaluations per run)"))
    # Evaluating every held-out pair ten times took 40% of a one-epoch HH run; a fixed sample draws
    # the same curve shape, and the final evaluation still scores every held-out pair.
    curve_eval_pairs: int = field(
        default=256,
        metadata=_opt(
            "evaluations during training score a fixed sample of at most this many held-out pairs (the "
            "curves); the final evaluation scores all of them (0: all, every time)"
        ),
    )
    min_steps: int = field(
        default=30,
        metadata=_opt("tiny data sets get more epochs so that training shows: at least this many optimizer steps"),
    )
    seed: int = field(default=42, metadata=_opt("random seed (split, head, order)"))
    # The pairing settings: PairOptions' fields, with its defaults (rm_demo.pair_options is their one shape).
    strategy: str = field(
        default=PairOptions.default("strategy"),
        metadata=_opt(
            "best-worst: one pair per question (the seed's rule); all-pairs: every pair with a score gap",
            choices=STRATEGIES,
            label="Pairs",
        ),
    )
    chosen_min: float | None = field(
        default=PairOptions.default("chosen_min"),
        metadata=_opt("chosen score must be >= this (best-worst default 4)", label="Chosen score at least"),
    )
    rejected_max: float | None = field(
        default=PairOptions.default("rejected_max"),
        metadata=_opt("rejected score must be < this (best-worst default 4)", label="Rejected score below"),
    )
    min_margin: float = field(
        default=PairOptions.default("min_margin"),
        metadata=_opt("all-pairs: minimum score gap", label="Minimum gap (all-pairs)"),
    )
    max_pairs_per_question: int = field(
        default=PairOptions.default("max_pairs_per_question"),
        metadata=_opt("all-pairs: at most this many pairs per question (a uniform, seeded sample above it)"),
    )
    aggregate: str = field(
        default=PairOptions.default("aggregate"),
        metadata=_opt(
            "several ratings of one answer become one score by: mean, median, or majority (the score most "
            "raters gave; a tie between scores goes to the middle one)",
            choices=AGGREGATIONS,
            label="Several raters",
        ),
    )
    max_rater_spread: float | None = field(
        default=PairOptions.default("max_rater_spread"),
        metadata=_opt(
            "drop an answer whose raters' scores lie further apart than this (HelpSteer2 used 2; default: never)",
            label="Largest rater spread",
        ),
    )
    margin: str = field(
        default="off",
        metadata=_opt(
            "how the score gap enters TRL's loss: off (plain Bradley-Terry), gap (subtract chosen - rejected "
            "score), scaled (the gap / the largest gap), clipped (the gap, at most 1)",
            choices=MARGIN_MODES,
        ),
    )
    objective: str = field(
        default="pairwise",
        metadata=_opt(
            "what the reward model learns: pairwise (TRL's Bradley-Terry loss on the pairs), pointwise (each rated "
            "answer's score, scaled to -1..1 over the file: every rated answer trains, not only the pairs'), or "
            "both (the two losses added); pointwise and both need a scored file",
            choices=OBJECTIVES,
            label="Objective",
        ),
    )
    center_rewards: float = field(
        default=0.0,
        metadata=_opt("TRL's center_rewards_coefficient: pulls rewards towards mean zero (0: off; TRL suggests 0.01)"),
    )
    group_by_length: bool = field(
        default=True,
        metadata=_opt(
            "without this flag batches group pairs of similar length (less padding)", flag="--no-group-by-length"
        ),
    )
    average_epochs: int = field(
        default=2, metadata=_opt("final model = mean of the weights at the last N epoch ends (1: the last weights)")
    )
    checkpoints: bool = field(
        default=True,
        metadata=_opt(
            "without this flag a checkpoint is saved at an evaluation at most once a minute, and on Stop, so "
            "the run can resume (removed once it completes)",
            flag="--no-checkpoints",
        ),
    )
    slice_seconds: float = field(
        default=0.0,
        metadata=_opt(
            "train in slices of at most N seconds each, ending in a checkpoint the next slice resumes from "
            "(optimizer, schedule, random state and data order), e.g. to fit a borrowed GPU's time (0: one go)",
            label="Slice (seconds, 0: one go)",
        ),
    )
    lora: bool = field(
        default=False, metadata=_opt("train LoRA adapters (peft) instead of all weights", label="LoRA (decoders)")
    )
    lora_r: int = field(default=16, metadata=_opt("LoRA rank"))
    # TRL turns it on by default; for a small model it only costs time (the backward pass runs each
    # layer's forward again: 30% more compute per step) and saves memory nobody is short of.
    activation_checkpointing: str = field(
        default="auto",
        metadata=_opt(
            "recompute activations in the backward pass: less memory, slower steps (auto: on for models of "
            f"{CHECKPOINTING_ABOVE_PARAMS // 10**6}M parameters or more)",
            choices=("auto", "on", "off"),
        ),
    )
    attention: str = field(
        default="auto",
        metadata=_opt(
            "how attention is computed while training (auto: eager on the CPU for max length up to "
            f"{EAGER_ATTENTION_UP_TO_TOKENS}, where it is faster, else the model's own, SDPA for most)",
            choices=("auto", "eager", "sdpa"),
        ),
    )
    # A few thousand pairs move only the rows of the words they contain, so seen and unseen words
    # drift apart; the word embeddings are also half of MiniLM's weights (and of its optimizer state).
    # Frozen: the same accuracy on HH and on the scored set, steps 1-4% faster (docs/benchmarks-log.md).
    train_embeddings: bool = field(
        default=False,
        metadata=_opt("train the input word embeddings too (by default they stay as the checkpoint has them)"),
    )
    # Freezing the first 2 of MiniLM's 6 layers made steps 5-10% faster; on the scored set it gained
    # 0.006 (inside the seed spread) and on HH it lost 0.013: an option (docs/benchmarks-log.md section 7).
    freeze_layers: int = field(
        default=0,
        metadata=_opt("keep the first N transformer layers as the checkpoint has them (no backward through them)"),
    )
    # TRL turns dropout off for reward models. The checkpoint's dropout left HH accuracy as it was
    # over five seeds (0.667 against 0.668) at a fifth more per CPU step, and lowered the scored set's
    # by 0.019: an option, not the default (docs/benchmarks-log.md sections 2 and 7).
    dropout: bool = field(
        default=False,
        metadata=_opt("keep the model's own dropout while training (TRL turns it off): HH same, scored set -0.019"),
    )
    device: str = field(default="auto", metadata=_opt("where to train", choices=("auto", "cpu", "cuda", "mps")))
    precision: str = field(default="auto", metadata=_opt("number format", choices=("auto", "bf16", "fp16", "fp32")))
    trust_remote_code: bool = field(
        default=False, metadata=_opt("allow a hub model's own code to run (off by default)")
    )
    # Where the data came from, for people: the run folder keeps a copy named data.csv.
    source_name: str = field(default="", metadata=_opt("the data's original file name, shown in run lists and cards"))
    read_options: dict = field(default_factory=dict, metadata=_opt("how to read the input (encoding, columns, ...)"))

    def validate(self) -> None:
        for option in fields(self):  # every option with a fixed set of values (margin, attention, ...)
            choices, value = option.metadata.get("choices"), getattr(self, option.name)
            _check(
                not choices or value in choices,
                f"{option.name.replace('_', ' ')} must be one of {', '.join(choices or ())}, not {value!r}",
                f"use e.g. {flag(option.name)} {option.default}",
            )
        _check(
            math.isfinite(self.epochs) and 0 < self.epochs <= MAX_EPOCHS,
            f"epochs must be a number in (0, {MAX_EPOCHS}], not {self.epochs}",
            "use e.g. --epochs 3",
        )
        _check(
            math.isfinite(self.learning_rate) and 0 < self.learning_rate < 1,
            f"learning rate {self.learning_rate} is out of range (0, 1)",
            "use e.g. --lr 5e-5",
        )
        _check(
            self.curve_eval_pairs >= 0,
            f"curve eval pairs must be >= 0, not {self.curve_eval_pairs}",
            "use 0 (every held-out pair) or e.g. --curve-eval-pairs 256",
        )
        _check(
            math.isfinite(self.center_rewards) and 0 <= self.center_rewards < 10,
            f"center rewards must be a number in [0, 10), not {self.center_rewards}",
            "use 0 (off) or e.g. --center-rewards 0.01",
        )
        _check(
            self.freeze_layers >= 0,
            f"freeze layers must be >= 0, not {self.freeze_layers}",
            "use 0 (every layer trains) or e.g. --freeze-layers 2",
        )
        # LoRA (peft) keeps every base weight as loaded, so these would do nothing: say so, not ignore them.
        _check(
            not (self.lora and self.freeze_layers),
            f"--freeze-layers {self.freeze_layers} does nothing with --lora: LoRA keeps every base weight frozen",
            "drop --freeze-layers, or --lora to train the weights themselves",
        )
        _check(
            not (self.lora and self.train_embeddings),
            "--train-embeddings does nothing with --lora: LoRA trains adapters, never the base model's weights",
            "drop --train-embeddings, or --lora to train the weights themselves",
        )
        _check(
            self.average_epochs >= 1,
            f"average epochs must be >= 1, not {self.average_epochs}",
            "use 1 to keep the last weights, or e.g. 2",
        )
        _check(
            self.batch_size >= 1 and self.gradient_accumulation >= 1,
            "batch size and gradient accumulation must be >= 1",
            "use e.g. --batch-size 16 --grad-accum 1",
        )
        _check(
            8 <= self.max_length <= MAX_LENGTH_TOKENS,
            f"max length must be in [8, {MAX_LENGTH_TOKENS}] tokens",
            "use e.g. --max-length 128",
        )
        _check(
            math.isfinite(self.eval_fraction) and 0 <= self.eval_fraction < 1,
            f"eval fraction must be in [0, 1), not {self.eval_fraction}",
            "use e.g. --eval-fraction 0.2",
        )
        self._validate_slices()
        _check(0 <= self.seed < 2**32, f"the seed must be in [0, 2^32), not {self.seed}", "use e.g. --seed 42")
        _check(
            0 <= self.min_steps <= MAX_STEPS and 0 <= self.eval_steps <= MAX_STEPS,
            "min steps and eval steps must be >= 0",
            "leave them at their defaults",
        )
        self.pair_options().validate()  # the pairing settings' one check

    def _validate_slices(self) -> None:
        _check(
            math.isfinite(self.slice_seconds) and self.slice_seconds >= 0,
            f"slice seconds must be >= 0, not {self.slice_seconds}",
            "use 0 (train in one go) or e.g. --slice-seconds 60",
        )
        _check(
            not (self.slice_seconds and not self.checkpoints),
            "--slice-seconds needs checkpoints: each slice ends in one that the next resumes from",
            "drop --no-checkpoints, or --slice-seconds to train in one go",
        )

    @property
    def data_name(self) -> str:
        """The data's name as the user gave it. A run reads its copy of the data under this name, as the app's
        preview read the upload: messages name the user's file, and a format told by its name is told alike."""
        return self.source_name or Path(self.input).name

    def pair_options(self) -> PairOptions:
        """The pairing part of this config, as the data path takes it."""
        return PairOptions(**{name: getattr(self, name) for name in PAIR_FLAGS})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict | None) -> TrainConfig:
        """Tolerant of old or foreign run.json files: unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        data = dict(data or {})
        if "use_margin" in data and "margin" not in data:  # run.json files before margin modes
            data["margin"] = "gap" if data["use_margin"] else "off"
        # Runs saved before embeddings were frozen trained them: a resume must go on the same way
        # (its optimizer state holds the embedding's moments). LoRA runs never trained them.
        data.setdefault("train_embeddings", not data.get("lora", False))
        return cls(**{k: v for k, v in data.items() if k in known})


def uses_activation_checkpointing(setting: str, model_params: int) -> bool:
    """`auto`: on only for models big enough that their activations may not fit beside them."""
    if setting == "auto":
        return model_params >= CHECKPOINTING_ABOVE_PARAMS
    return setting == "on"


def training_attention(setting: str, device: str, max_length: int, loaded: str | None) -> str | None:
    """The attention implementation to train with, or None to keep the one the model loaded with.

    `auto` swaps only the kernels measured (SDPA, the loaded default for most models) for eager
    attention, on the CPU and for short texts; GPUs keep their fused kernels."""
    if setting != "auto":
        return None if setting == loaded else setting
    if device == "cpu" and max_length <= EAGER_ATTENTION_UP_TO_TOKENS and loaded == "sdpa":
        return "eager"
    return None


def steps_per_epoch(config: TrainConfig, train_pairs: int, world_size: int = 1) -> int:
    """Optimizer steps in one pass over `train_pairs` (at least 1)."""
    return max(1, math.ceil(train_pairs / (config.batch_size * config.gradient_accumulation * world_size)))


def planned_epochs(config: TrainConfig, train_pairs: int, world_size: int = 1) -> float:
    """Epochs a run will really do: tiny data sets are raised to `min_steps` optimizer steps."""
    if not config.min_steps:
        return config.epochs
    return max(config.epochs, math.ceil(config.min_steps / steps_per_epoch(config, train_pairs, world_size)))


def planned_steps(config: TrainConfig, train_pairs: int, world_size: int = 1) -> int:
    """Optimizer steps the whole run will take (what the limits and the progress bar count)."""
    return math.ceil(
        steps_per_epoch(config, train_pairs, world_size) * planned_epochs(config, train_pairs, world_size)
    )


def _check(ok: bool, message: str, fix: str) -> None:
    if not ok:
        raise InputError(message, fix=fix)


def default(name: str):
    """The default of a TrainConfig field (what the app's widgets start at)."""
    f = _field(name)
    return f.default_factory() if f.default is MISSING else f.default


def label(name: str) -> str:
    return _field(name).metadata.get("label") or name.replace("_", " ").capitalize()


def help_text(name: str) -> str:
    return _field(name).metadata["help"]


def _field(name: str):
    return next(f for f in fields(TrainConfig) if f.name == name)


def flag(name: str) -> str:
    return _field(name).metadata.get("flag") or "--" + name.replace("_", "-")


# TrainConfig fields offered as `train` flags (the rest keep their defaults or come from other flags).
TRAIN_FLAGS = [
    "checkpoints",
    "slice_seconds",
    "model",
    "epochs",
    "learning_rate",
    "batch_size",
    "gradient_accumulation",
    "max_length",
    "eval_fraction",
    "curve_eval_pairs",
    "seed",
    "average_epochs",
    "objective",
    "margin",
    "center_rewards",
    "lora",
    "activation_checkpointing",
    "attention",
    "train_embeddings",
    "freeze_layers",
    "dropout",
    "device",
    "precision",
    "trust_remote_code",
    "eval_steps",
    "min_steps",
    "lora_r",
    "group_by_length",
]
PAIR_FLAGS = PairOptions.names()
# ReadOptions fields and the flags that set them (`pairs` and `train` share them).
READ_FLAGS = {
    "encoding": "--encoding",
    "delimiter": "--delimiter",
    "question_col": "--question-col",
    "answer_col": "--answer-col",
    "score_col": "--score-col",
    "chosen_col": "--chosen-col",
    "rejected_col": "--rejected-col",
    "rater_col": "--rater-col",
    "format": "--format",
}

# The training settings in groups, as a `--config` file may write them (a flat file works too).
GROUPS = {
    "data": ("input", "source_name", "read_options"),
    "pairs": tuple(PAIR_FLAGS),
    "model": (
        "model",
        "max_length",
        "lora",
        "lora_r",
        "trust_remote_code",
        "attention",
        "activation_checkpointing",
        "train_embeddings",
        "freeze_layers",
        "dropout",
        "device",
        "precision",
    ),
    "training": (
        "output_dir",
        "epochs",
        "learning_rate",
        "batch_size",
        "gradient_accumulation",
        "eval_fraction",
        "eval_steps",
        "curve_eval_pairs",
        "min_steps",
        "seed",
        "objective",
        "margin",
        "center_rewards",
        "group_by_length",
        "average_epochs",
        "checkpoints",
        "slice_seconds",
    ),
}


@functools.cache
def _type_hints() -> dict:
    return typing.get_type_hints(TrainConfig)


def value_type(name: str) -> type:
    """The type a field holds, with `X | None` read as X (the annotation itself, not its spelling)."""
    hint = _type_hints()[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


def add_config_arguments(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """One CLI flag per named TrainConfig field: type, default, choices and help from the field."""
    for name in names:
        meta, value = _field(name).metadata, default(name)
        kwargs = {"dest": name, "default": value, "help": meta["help"] + _default_note(value)}
        if meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        if value_type(name) is bool:
            parser.add_argument(flag(name), action="store_false" if value else "store_true", **kwargs)
            continue
        parser.add_argument(flag(name), type=value_type(name), **kwargs)


def _default_note(value) -> str:
    if value in (None, "") or isinstance(value, bool):
        return ""
    return f" (default {value})"


def config_from_args(args: argparse.Namespace, **extra) -> TrainConfig:
    """A TrainConfig from the parsed flags: every attribute named like a field is taken."""
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in known}
    return TrainConfig(**{**values, **extra})


def read_config_file(path: str | Path) -> dict:
    """A `--config` file (YAML or JSON) as TrainConfig values, checked and typed.

    Keys may sit at the top level or in the groups of `GROUPS` (data, pairs, model, training); a
    run's own config.json is such a file. An unknown key or a value of the wrong kind is named with
    the file, never ignored.
    """
    from rm_demo.tables import regular_input

    path = Path(path)
    regular_input(path)  # /dev/zero or a FIFO would be read without end, or hang
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read it ({exc.strerror or exc})", source=str(path), fix="check the path") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise InputError(
            f"is over {MAX_CONFIG_BYTES // 1000:,} KB: not a settings file",
            source=str(path),
            fix="give the YAML or JSON file of settings (a few lines; the data file goes in `input`)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path), fix="give a UTF-8 YAML or JSON file") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raw = _load_yaml(text)
    except RecursionError:
        raise InputError("nested too deeply", source=str(path), fix="settings are `name: value` lines") from None
    except InputError as exc:
        raise InputError(exc.message, source=str(path), fix=exc.fix) from None
    except ValueError as exc:
        raise InputError(f"not valid JSON: {_short(exc)}", source=str(path), fix="check the file's syntax") from None
    except Exception as exc:  # yaml.YAMLError
        raise InputError(f"not valid YAML: {_short(exc)}", source=str(path), fix="check the file's syntax") from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise InputError("must hold settings as `name: value` lines", source=str(path), fix="see docs/training.md")
    flat: dict = {}
    for key, value in raw.items():
        if key in GROUPS and isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[_known_key(inner, path, f"{key}.")] = inner_value
        elif key == "owner":  # written by older versions into config.json: not a setting
            continue
        elif key == "use_margin":  # older versions' margin switch, read as from_dict reads it
            flat.setdefault("margin", "gap" if value else "off")
        else:
            flat[_known_key(key, path)] = value
    typed = {name: _typed(name, value, path) for name, value in flat.items()}
    if typed.get("read_options"):
        _check_read_options(typed["read_options"], path, "data.read_options." if "data" in raw else "read_options.")
    return typed


def _check_read_options(options: dict, path: Path, prefix: str) -> None:
    """The keys inside `read_options:` are checked like any other: a misspelt one was silently ignored."""
    from rm_demo.feedback import ReadOptions

    known = set(ReadOptions.__dataclass_fields__)
    for key in options:
        if key not in known:
            raise InputError(
                f"unknown setting {prefix}{key}",
                source=str(path),
                fix=f"the ways to read a file are {', '.join(sorted(known))}",
            )


# A settings file is a few lines; the data file it names is read with its own budget.
MAX_CONFIG_BYTES = 1_000_000


def _short(value, limit: int = 200) -> str:
    """A value or error as a message quotes it: never a whole file or structure."""
    import reprlib

    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = limit
    text = str(value) if isinstance(value, Exception) else shorter.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _load_yaml(text: str):
    """YAML without anchors and aliases: settings never need them, and nested aliases (the "billion
    laughs") expand to gigabytes as soon as the value is read."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None):
                raise InputError(
                    "uses a YAML anchor or alias (&name, *name)", fix="write each setting's value out in full"
                )
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader)


def _known_key(key, path: Path, prefix: str = "") -> str:
    name = str(key).replace("-", "_")
    name = {"lr": "learning_rate", "grad_accum": "gradient_accumulation", "output": "output_dir"}.get(name, name)
    if name not in {f.name for f in fields(TrainConfig)}:
        raise InputError(
            f"unknown setting {prefix}{key}",
            source=str(path),
            fix="see `python -m rm_demo train --help` for the settings (written with _ or -)",
        )
    return name


def _typed(name: str, value, path: Path):
    kind = value_type(name)
    if value is None and _field(name).default is None:
        return None
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, (str, int, float)) and not isinstance(value, bool),
        dict: isinstance(value, dict),
    }.get(kind, True)
    if not ok:
        raise InputError(
            f"{name} must be {kind.__name__.replace('str', 'text').replace('dict', 'a mapping')}, not {_short(value)}",
            source=str(path),
            fix=f"e.g. {name}: {default(name)!r}".replace("'", ""),
        )
    return kind(value) if kind in (float, str) else value


def command_line(config: TrainConfig, output_dir: str | None = None) -> str:
    """The `rm_demo train` command that trains this run again: its data and every setting off its default."""
    import shlex

    parts = ["python -m rm_demo train", shlex.quote(config.input), "-o", shlex.quote(output_dir or config.output_dir)]
    for name in TRAIN_FLAGS + PAIR_FLAGS:
        value = getattr(config, name)
        if value == default(name):
            continue
        if isinstance(value, bool):
            parts.append(flag(name))
        else:
            # repr: the shortest text that reads back as the same float (":g" cut 1.2345678e-05 to 1.23457e-05)
            parts += [flag(name), shlex.quote(repr(value) if isinstance(value, float) else str(value))]
    for key, option in READ_FLAGS.items():
        value = (config.read_options or {}).get(key)
        if value not in (None, "auto"):
            parts += [option, shlex.quote("tab" if value == "\t" else str(value).replace("\t", "tab"))]
    return " ".join(parts)
