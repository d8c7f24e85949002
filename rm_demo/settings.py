"""The app's and the trainer's settings: read from flags and `RM_DEMO_*` variables in one place.

`Settings.from_env()` is the only code that reads these variables. `python app.py` builds one
`Settings` from its flags and the environment at start-up and installs it with `configure()`; every
module asks `current()` for it. Until something is configured (the CLI, a child training process,
tests), `current()` reads the environment afresh, so a changed variable is seen at the next call.

This module imports nothing heavy: the CLI and the training process import it first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from rm_demo.limits import Limits


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    if value in (None, ""):
        return default
    try:
        return float(value)
    except ValueError:
        from rm_demo.errors import InputError

        raise InputError(f"{name}={value!r} is not a number", fix=f"set {name} to a number, or unset it") from None


@dataclass(frozen=True)
class Settings:
    runs_root: Path = Path("runs")
    host: str = "127.0.0.1"
    port: int = 7860
    share: bool = False
    public: bool = False
    facilitator_secret: str = ""
    browser_secret: str = ""  # empty: a file kept beside the runs (see app.build.browser_secret)
    max_upload_mb: float = 50.0
    scorer_cache_mb: float = 2048.0
    checkpoint_seconds: float = 60.0
    train_nice: int = 10
    # A ZeroGPU Space (spaces' own rule: SPACES_ZERO_GPU): runs train in GPU slices (rm_demo.zero_gpu).
    zero_gpu: bool = False
    # Requests come through a proxy that names the visitor in X-Forwarded-For (a Space, RM_DEMO_TRUST_PROXY=1).
    trust_proxy: bool = False
    # The largest request body the app parses (uploads have their own cap, max_upload_mb); 0: no cap.
    max_request_mb: float = 64.0
    limits: Limits = field(default_factory=Limits)

    @property
    def private(self) -> bool:
        """One person's app: not public and no facilitator (then runs made by the CLI are theirs)."""
        return not (self.public or self.facilitator_secret)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """From the environment; `overrides` (the app's flags) win over it. None means "not given"."""
        env = os.environ if environ is None else environ
        given = {k: v for k, v in overrides.items() if v is not None}
        public = given.pop("public", None) or env.get("RM_DEMO_PUBLIC", "") == "1" or bool(env.get("SPACE_ID"))
        values = dict(
            runs_root=Path(env.get("RM_DEMO_RUNS") or "runs"),
            host=env.get("RM_DEMO_HOST") or env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
            port=int(_number(env, "RM_DEMO_PORT", _number(env, "GRADIO_SERVER_PORT", 7860))),
            share=env.get("RM_DEMO_SHARE", "") == "1",
            public=public,
            facilitator_secret=env.get("RM_DEMO_FACILITATOR_SECRET", ""),
            browser_secret=env.get("RM_DEMO_SECRET", ""),
            max_upload_mb=_number(env, "RM_DEMO_MAX_UPLOAD_MB", 50.0),
            scorer_cache_mb=_number(env, "RM_DEMO_SCORER_CACHE_MB", 2048.0),
            checkpoint_seconds=_number(env, "RM_DEMO_CHECKPOINT_SECONDS", 60.0),
            train_nice=int(_number(env, "RM_DEMO_TRAIN_NICE", 10)),
            zero_gpu=env.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"),
            trust_proxy=bool(env.get("SPACE_ID")) or env.get("RM_DEMO_TRUST_PROXY", "") == "1",
            max_request_mb=_number(env, "RM_DEMO_MAX_REQUEST_MB", 4.0 if public else 64.0),
            limits=limits_from_env(env, public),
        )
        values.update(given)
        if "runs_root" in given:
            values["runs_root"] = Path(given["runs_root"])
        return cls(**values)


def limits_from_env(env: Mapping[str, str], public: bool) -> Limits:
    """The limits of this mode, each changed by its variable (README: "Running for many people")."""
    extra = tuple(m.strip() for m in env.get("RM_DEMO_MODELS", "").split(",") if m.strip())
    base = Limits.public_defaults() if public else Limits()

    def number(name, default):
        return _number(env, name, default)

    return replace(
        base,
        public=public,
        models=base.models + extra,
        max_model_params_m=number("RM_DEMO_MAX_MODEL_PARAMS_M", base.max_model_params_m),
        max_epochs=number("RM_DEMO_MAX_EPOCHS", base.max_epochs),
        max_steps=int(number("RM_DEMO_MAX_STEPS", base.max_steps)),
        max_pairs=int(number("RM_DEMO_MAX_PAIRS", base.max_pairs)),
        max_batch_size=int(number("RM_DEMO_MAX_BATCH_SIZE", base.max_batch_size)),
        max_length=int(number("RM_DEMO_MAX_LENGTH", base.max_length)),
        live_per_visitor=int(number("RM_DEMO_RUNS_PER_VISITOR", base.live_per_visitor)),
        live_per_address=int(number("RM_DEMO_RUNS_PER_ADDRESS", base.live_per_address)),
        live_total=int(number("RM_DEMO_MAX_QUEUE", base.live_total)),
        run_ttl_hours=number("RM_DEMO_RUN_TTL_HOURS", base.run_ttl_hours or 0) or None,
        min_free_disk_mb=number("RM_DEMO_MIN_FREE_DISK_MB", base.min_free_disk_mb),
        max_text_chars=int(number("RM_DEMO_MAX_TEXT_CHARS", base.max_text_chars)),
        max_rank_answers=int(number("RM_DEMO_MAX_RANK_ANSWERS", base.max_rank_answers)),
        max_score_rows=int(number("RM_DEMO_MAX_SCORE_ROWS", base.max_score_rows)),
        max_feedback_rows=int(number("RM_DEMO_MAX_FEEDBACK_ROWS", base.max_feedback_rows or 0)) or None,
        max_cell_chars=int(number("RM_DEMO_MAX_CELL_CHARS", base.max_cell_chars or 0)) or None,
        min_slice_seconds=number("RM_DEMO_MIN_SLICE_SECONDS", base.min_slice_seconds),
    )


_configured: Settings | None = None


def configure(settings: Settings | None) -> None:
    """Install the settings the app was started with (None: read the environment again at each call)."""
    global _configured
    _configured = settings


def current() -> Settings:
    return _configured if _configured is not None else Settings.from_env()
