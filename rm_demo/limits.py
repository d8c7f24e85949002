"""Limits for an app many people share: a public Space, or a workshop on one machine.

Everything a visitor can start is checked here before a process is spawned, each with a plain
message: the model (public mode: an allowlist, and a size cap read from the model's config before
any weights are fetched), epochs, steps, pairs, runs per visitor and in all, free disk. The host sets
them through environment variables (README, "Running for many people").
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rm_demo.config import MAX_EPOCHS, MAX_LENGTH_TOKENS, TrainConfig, planned_steps
from rm_demo.errors import InputError
from rm_demo.runs import list_runs, live_runs
from rm_demo.text import check_is_text

# Small models that train on a CPU Space; the host extends the list with RM_DEMO_MODELS.
PUBLIC_MODELS = (
    "default",
    "sentence-transformers/all-MiniLM-L6-v2",
    "distilroberta-base",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
)


@dataclass(frozen=True)
class Limits:
    public: bool = False
    models: tuple[str, ...] = PUBLIC_MODELS  # public mode only; elsewhere any hub id or folder
    max_model_params_m: float = 600.0  # millions of parameters, read from the model's config
    max_epochs: float = MAX_EPOCHS
    max_steps: int = 100_000
    max_pairs: int = 1_000_000
    max_batch_size: int = 4096
    max_length: int = MAX_LENGTH_TOKENS
    live_per_visitor: int = 3
    # Runs queued or training from one network address (0: no such limit). Ids are free to ask for: this
    # is the limit a script switching ids meets. A room behind one Wi-Fi router shares an address.
    live_per_address: int = 0
    live_total: int = 20
    run_ttl_hours: float | None = None  # finished runs older than this are pruned (public mode)
    min_free_disk_mb: float = 500.0
    # What one click may send the app to score: every entry point (Compare, Explain, Rank, Score, API)
    # checks these before any model runs.
    max_text_chars: int = 100_000  # a question or an answer
    max_rank_answers: int = 1_000
    max_score_rows: int = 1_000_000  # rows of an uploaded file of answers to score
    # Rows of an uploaded feedback file, and characters of one cell of an upload, checked while it is read
    # (None: any). A cell's cap is looser than a typed text's: long transcripts train fine, cut to the window.
    max_feedback_rows: int | None = None
    max_cell_chars: int | None = None
    # Each slice of a sliced run loads the model and data again: shorter slices spend the shared
    # device on start-up (a 0.01 s slice trains one step per reload).
    min_slice_seconds: float = 0.0

    @classmethod
    def public_defaults(cls) -> Limits:
        return cls(
            public=True,
            max_epochs=20,
            max_steps=3000,
            max_pairs=20_000,
            max_batch_size=64,
            max_length=512,
            live_per_visitor=1,
            live_per_address=4,
            live_total=8,
            run_ttl_hours=24.0,
            max_model_params_m=600.0,
            max_text_chars=10_000,
            max_rank_answers=50,
            max_score_rows=20_000,
            max_feedback_rows=200_000,
            max_cell_chars=100_000,
            min_slice_seconds=10.0,
        )


def check_texts(limits: Limits, **texts: str) -> None:
    """Each text within `limits.max_text_chars`, named by its field when it is not."""
    for field, text in texts.items():
        if text is not None:
            check_is_text(text, field.replace("_", " "))
        if text is not None and len(text) > limits.max_text_chars:
            raise InputError(
                f"the {field.replace('_', ' ')} is {len(text):,} characters; the limit here is "
                f"{limits.max_text_chars:,}",
                fix="shorten it (a reward model reads only its first few hundred tokens anyway)",
            )


def check_model(model: str, limits: Limits) -> None:
    """Public mode: only allowlisted models, no server paths, and none over the size cap."""
    if not limits.public:
        return
    if model not in limits.models:
        raise InputError(
            f"the model {model!r} is not offered here",
            fix=f"pick one of: {', '.join(limits.models)} (the host can add more with RM_DEMO_MODELS)",
        )
    if model != "default":
        params_m = estimated_params_m(model)
        if params_m > limits.max_model_params_m:
            raise InputError(
                f"{model} has about {params_m:,.0f}M parameters; the limit here is {limits.max_model_params_m:,.0f}M",
                fix="pick a smaller model",
            )


def estimated_params_m(model: str) -> float:
    """Parameters in millions, from the model's config alone (a few KB; no weights are fetched)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model)
    except Exception as exc:  # offline, unknown id, gated: all mean "cannot check"
        raise InputError(
            f"could not read the config of {model} ({type(exc).__name__})",
            fix="check the network and the model id, or use the embedded default",
        ) from None
    return params_from_config(config) / 1e6


def params_from_config(config) -> float:
    """Transformer parameters from the shapes in a config: embeddings + 12 h^2 per layer (attention + MLP)."""
    text = getattr(config, "text_config", None) or config
    hidden = getattr(text, "hidden_size", None) or getattr(text, "d_model", None) or getattr(text, "n_embd", 0)
    layers = (
        getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", None) or getattr(text, "num_layers", 0)
    )
    vocab = getattr(text, "vocab_size", 0) or 0
    inner = getattr(text, "intermediate_size", None) or 4 * hidden
    return float(vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner))


def check_start(
    config: TrainConfig, train_pairs: int, limits: Limits, root: Path, owner: str, address: str = ""
) -> None:
    """Everything checked before a run is queued; each refusal says what the limit is."""
    check_model(config.model, limits)
    if config.epochs > limits.max_epochs:
        raise InputError(
            f"{config.epochs:g} epochs is over this app's limit of {limits.max_epochs:g}",
            fix=f"use at most {limits.max_epochs:g} epochs",
        )
    steps = planned_steps(config, train_pairs)
    if steps > limits.max_steps:
        raise InputError(
            f"this run would take {steps:,} steps; the limit here is {limits.max_steps:,}",
            fix="use fewer epochs, a larger batch, or less data",
        )
    if train_pairs > limits.max_pairs:
        raise InputError(
            f"{train_pairs:,} training pairs is over this app's limit of {limits.max_pairs:,}",
            fix="train on a sample, or run the CLI on your own machine",
        )
    if config.batch_size > limits.max_batch_size or config.max_length > limits.max_length:
        raise InputError(
            f"batch size {config.batch_size} and max length {config.max_length} must stay within this app's "
            f"limits of {limits.max_batch_size} pairs and {limits.max_length} tokens",
            fix=f"use a batch of at most {limits.max_batch_size} and at most {limits.max_length} tokens",
        )
    if 0 < config.slice_seconds < limits.min_slice_seconds:
        raise InputError(
            f"slices of {config.slice_seconds:g} s are shorter than this app's {limits.min_slice_seconds:g} s",
            fix=f"use 0 (one go) or at least {limits.min_slice_seconds:g} seconds",
        )
    if not owner:  # a request that never said who it is could otherwise start runs without any cap
        raise InputError("this page has no visitor id yet", fix="reload the page, then start again")
    live = live_runs(root)  # each run's process is asked: a dead run is marked failed here and frees its slot
    mine = [run for run in live if run.owner == owner]
    if len(mine) >= limits.live_per_visitor:
        raise InputError(
            f"you already have {len(mine)} run(s) queued or running (the limit is {limits.live_per_visitor})",
            fix="wait for it to finish, or stop it",
        )
    from_here = [run for run in live if address and run.address == address]
    if limits.live_per_address and len(from_here) >= limits.live_per_address:
        raise InputError(
            f"{len(from_here)} runs from your network address are queued or running (the limit is "
            f"{limits.live_per_address})",
            fix="wait for one of them to finish; the host can raise RM_DEMO_RUNS_PER_ADDRESS for a room on one Wi-Fi",
        )
    if len(live) >= limits.live_total:
        raise InputError(f"the queue is full ({len(live)} runs waiting or training)", fix="try again in a few minutes")
    check_disk(root, limits.min_free_disk_mb)


def check_disk(root: Path, min_free_mb: float) -> None:
    root.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(root).free / 1e6
    if free_mb < min_free_mb:
        raise InputError(
            f"only {free_mb:,.0f} MB of disk is free where runs are kept (at least {min_free_mb:,.0f} MB needed)",
            fix="delete old runs, or ask the host to free disk space",
        )


def prune_runs(root: Path, max_age_hours: float | None, now: float | None = None) -> list[str]:
    """Delete finished runs older than `max_age_hours` (public mode keeps a Space's disk bounded)."""
    if not max_age_hours:
        return []
    now = time.time() if now is None else now
    removed = []
    for run in list_runs(root):
        if (
            run.status in ("completed", "failed", "cancelled", "paused")
            and not run.shared
            and run.created_at
            and now - run.created_at > max_age_hours * 3600
        ):
            shutil.rmtree(run.path, ignore_errors=True)
            removed.append(run.name)
    return removed
