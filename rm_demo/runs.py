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
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

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
class RunSummary:
    name: str
    path: Path
    status: str
    model: str = ""
    created_at: float = 0.0
    final_metrics: dict = field(default_factory=dict)
    error: str | None = None


def list_runs(root: Path) -> list[RunSummary]:
    """Every run folder under `root`, newest first; unreadable folders are listed as such."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for child in root.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        data = RunFolder(child).read()
        if not data:
            out.append(RunSummary(child.name, child, "unreadable", error="no readable run.json"))
            continue
        out.append(
            RunSummary(
                name=child.name,
                path=child,
                status=str(data.get("status", "unknown")),
                model=str(data.get("config", {}).get("model", "")),
                created_at=float(data.get("created_at", 0) or 0),
                final_metrics=data.get("final_metrics") or {},
                error=data.get("error"),
            )
        )
    return sorted(out, key=lambda r: r.created_at, reverse=True)
