"""The run folder: the contract between the trainer, the job queue, the UI and scoring.

runs/<name>/
    run.json       config, data summary, versions, device, status, error, final metrics
    metrics.jsonl  one JSON object per log or eval event (appended while training)
    train.log      the trainer's output
    model/         save_pretrained of model and tokenizer
    cancel         present when a stop was asked for
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")


def write_json_atomic(path: Path, data: dict) -> None:
    """Readers (the UI polls every second) never see a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class RunFolder:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel"

    def read(self) -> dict:
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **fields) -> dict:
        data = self.read()
        data.update(fields)
        data["updated_at"] = time.time()
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.run_json, data)
        return data

    def append_metrics(self, record: dict) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def metrics(self) -> list[dict]:
        """Every complete line so far (a line being written is skipped, not an error)."""
        try:
            lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def log_tail(self, lines: int = 20) -> str:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        # tqdm redraws with carriage returns and cursor moves: keep the last state of each line.
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
        cleaned = [part.split("\r")[-1] for part in text.split("\n")]
        return "\n".join([line for line in cleaned if line.strip()][-lines:])

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()


@dataclass
class RunRecord:
    """A run as every reader sees it: `run.json` read once, tolerant of old, odd or foreign files.

    A folder without a readable run.json is a record with status "unreadable" and the reason.
    """

    name: str
    path: Path
    status: str
    model: str = ""
    created_at: float = 0.0
    final_metrics: dict = field(default_factory=dict)
    error: str | None = None
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    pid: int | None = None
    device_name: str = ""
    owner: str = ""  # the hash of the owner's id (access.owner_key); "" for runs made outside the app
    shared: bool = False  # published as an example: every visitor may see and use it

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        path = Path(path)
        folder = RunFolder(path)
        if not folder.run_json.exists():
            return cls(path.name, path, "unreadable", error="no run.json")
        data = folder.read()
        if not data:
            return cls(path.name, path, "unreadable", error="run.json is not a JSON object")
        return cls.from_dict(path, data)

    @classmethod
    def from_dict(cls, path: Path, data: dict) -> RunRecord:
        config = _dict(data.get("config"))
        status = data.get("status")
        return cls(
            name=Path(path).name,
            path=Path(path),
            status=status if status in STATUSES else "unknown",
            model=str(config.get("model") or ""),
            created_at=_number(data.get("created_at")),
            final_metrics=_dict(data.get("final_metrics")),
            error=None if data.get("error") is None else str(data.get("error")),
            config=config,
            data=_dict(data.get("data")),
            pid=data.get("pid") if isinstance(data.get("pid"), int) and data.get("pid") > 0 else None,
            device_name=str(data.get("device_name") or ""),
            owner=str(config.get("owner") or ""),
            shared=data.get("shared") is True,
        )

    @property
    def has_model(self) -> bool:
        return (self.path / "model" / "config.json").is_file()

    @property
    def live(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def source_name(self) -> str:
        """The data's original file name (older runs only know their copy's name)."""
        return str(self.config.get("source_name") or self.data.get("source") or "")

    @property
    def pairs_total(self) -> int | None:
        train, held_out = self.data.get("train_pairs"), self.data.get("eval_pairs")
        return train + held_out if isinstance(train, int) and isinstance(held_out, int) else None

    def judged_accuracy(self, min_pairs: int = 10) -> float | None:
        """The held-out accuracy, or None when too few pairs were held out for it to mean anything."""
        held_out = self.final_metrics.get("eval_pairs", self.data.get("eval_pairs"))
        return self.metric("eval_accuracy") if isinstance(held_out, int) and held_out >= min_pairs else None

    def metric(self, key: str) -> float | None:
        value = self.final_metrics.get(key)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def list_runs(root: Path) -> list[RunRecord]:
    """Every run folder under `root`, newest first; unreadable folders are listed as such."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = [RunRecord.load(child) for child in root.iterdir() if child.is_dir() and not child.name.startswith(".")]
    return sorted(out, key=lambda r: (r.created_at, r.name), reverse=True)


def safe_stem(name: str | None, limit: int = 24) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name or "data").stem)[:limit].strip("._")
    return stem or "data"


def create_run(root: Path, data_name: str | None) -> Path:
    """A new, empty run folder named `<time>-<file stem>`, made atomically.

    `mkdir` without `exist_ok` fails if the name is taken (two starts in the same second with the
    same file name), so each caller gets its own folder: the second gets `-2`, and so on.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = time.strftime("%Y%m%d-%H%M%S") + "-" + safe_stem(data_name)
    for n in range(1, 10_000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run name under {root}")


def resolve_run(root: Path, name: str | None) -> Path:
    """The folder of the run called `name` directly under `root` (never a path elsewhere)."""
    from rm_demo.errors import InputError

    root = Path(root).resolve()
    path = (root / (name or "")).resolve()
    if not name or path.parent != root or not path.is_dir():
        raise InputError(f"no run named {name!r}", fix="pick a run from the list")
    return path


def delete_run(root: Path, name: str) -> str:
    import shutil

    path = resolve_run(root, name)
    if RunRecord.load(path).live:
        from rm_demo.errors import InputError

        raise InputError(f"{name} is still queued or running", fix="stop the run before deleting it")
    shutil.rmtree(path)
    return f"Deleted **{name}**."


BASE_MODEL_LABEL = "untrained base (embedded MiniLM)"
# Below this many held-out pairs a percentage says more about chance than about the model.
MIN_HELD_OUT_PAIRS = 10


def model_choices(root: Path, viewer=None) -> list[tuple[str, str]]:
    """(label, model path) for every run with a saved model that `viewer` may see, after the untrained base."""
    choices = [(BASE_MODEL_LABEL, "default")]
    for run in list_runs(root):
        if viewer is not None and not viewer.can_see(run):
            continue
        if run.status in ("completed", "cancelled") and run.has_model:
            acc = run.judged_accuracy(MIN_HELD_OUT_PAIRS)
            choices.append(
                (run.name + (f" · held-out acc {acc:.0%}" if acc is not None else ""), str(run.path / "model"))
            )
    return choices
