"""The run store: the run folder, the contract between the trainer, the job queue, the UI and scoring.

runs/<name>/
    run.json       status, owner, config, data summary, versions, device, error, final metrics
    config.json    the training settings (a valid `rm_demo train --config` file)
    data.<ext>     a copy of the data it trains on (CLI and app alike): the run never depends on the
                   user's file staying where it was
    metrics.jsonl  one JSON object per log or eval event (appended while training)
    train.log      the trainer's output (runs started by the app)
    model/         save_pretrained of model and tokenizer
    trainer/       the latest checkpoint (checkpoint-STEP/), while a run can still be resumed
    cancel         present when a stop was asked for

Every change to run.json is a read-modify-write under a file lock (`filelock`, one lock file per
run), written through a uniquely named temporary file, so the trainer, the app's threads and a
facilitator in another process never lose each other's keys. Whether a queued or running run is
alive is decided from its process (`psutil`: pid and start time) whenever a run is read, so a run
killed while no page watched reads as failed at the next look, on any page or none.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from rm_demo.lifecycle import ACTIVE, NEW, STATUSES, check
from rm_demo.text import not_text_at

# The statuses and which may follow which: rm_demo.lifecycle ("paused": a sliced run whose slices stopped
# coming; it resumes from the checkpoint its last slice left).
LOCK_NAME = ".run.lock"
# A run is written as queued a moment before its process exists; without a pid it counts as alive
# this long after its last write.
NO_PID_GRACE_S = 60.0
DEAD_PROCESS_ERROR = "the training process ended without finishing (killed or crashed); see the log"


def write_json_atomic(path: Path, data: dict) -> None:
    """Readers (the UI polls every second) never see a half-written file; each writer has its own
    temporary file, so two writers never rename each other's."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
        _replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _replace(source: str, target: Path, tries: int = 50) -> None:
    """os.replace; on Windows a reader holding the target open makes it fail for a moment: try again."""
    for attempt in range(tries):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == tries - 1:
                raise
            time.sleep(0.01)


def process_start(pid: int | None) -> float | None:
    """When process `pid` started (seconds since the epoch, psutil); None if there is no such process.

    A pid can be reused after a restart; (pid, start time) names one process for good.
    """
    import psutil

    if not pid:
        return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether `pid` runs (not a zombie) and is the process that started at `started`."""
    import psutil

    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:  # odd run.json files name no process
        return False
    if not isinstance(started, (int, float)) or isinstance(started, bool):
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # finished, not yet reaped by its parent
            return False
        return abs(process.create_time() - started) < 1.0
    except (psutil.Error, OSError):
        return False


def record_alive(data: dict, now: float | None = None) -> bool:
    """Whether the process a queued or running run.json names is alive and is that run's own.

    A record from before start times were taken in seconds (or with none) cannot tell its pid from
    a reused one: it reads as dead. A record with no pid yet is alive for a short grace period.
    """
    if data.get("pid") is None:
        now = time.time() if now is None else now
        return now - _number(data.get("updated_at") or data.get("created_at")) < NO_PID_GRACE_S
    return process_alive(data.get("pid"), data.get("pid_started"))


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

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "trainer"

    def lock(self, timeout: float = 60.0) -> FileLock:
        """The lock every read-modify-write of run.json holds (re-entrant in one thread)."""
        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.path / LOCK_NAME), timeout=timeout)

    def read(self) -> dict:
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **fields) -> dict:
        """Set these keys of run.json and keep every other key, whoever else writes it meanwhile.
        Not the status: that is `move`'s."""
        if "status" in fields:
            raise TypeError("a run's status changes through RunFolder.move (rm_demo.lifecycle)")
        with self.lock():
            data = self.read()
            data.update(fields)
            data["updated_at"] = time.time()
            write_json_atomic(self.run_json, data)
            return data

    def move(self, status: str, *, fresh: bool = False, when: tuple[str, ...] | None = None, **fields) -> dict:
        """Give the run this status (and set these keys), if rm_demo.lifecycle lists the move; else raise
        LifecycleError and change nothing. `fresh`: a run starting again from step 0 in this folder; a
        finished one is then moved as from no record (a queued or running one still as itself). `when`:
        only from these statuses, checked under the lock (a run that ended meanwhile is left as it is)."""
        with self.lock():
            data = self.read()
            current = data.get("status")
            if when is not None and current not in when:
                return data
            check(NEW if fresh and current not in ACTIVE else current, status)
            data.update(fields, status=status, updated_at=time.time())
            write_json_atomic(self.run_json, data)
            return data

    def settle(self) -> dict:
        """run.json, with a queued or running run whose process is gone marked failed (or cancelled
        when a stop had been asked for) and the reason; returns what run.json now says."""
        data = self.read()
        if data.get("status") not in ("queued", "running") or record_alive(data):
            return data
        with self.lock():
            data = self.read()  # again under the lock: the process may have finished its record meanwhile
            if data.get("status") not in ("queued", "running") or record_alive(data):
                return data
            cancelled = self.cancel_requested
            check(data.get("status"), "cancelled" if cancelled else "failed")
            data.update(
                status="cancelled" if cancelled else "failed",
                error=data.get("error") or (None if cancelled else DEAD_PROCESS_ERROR),
                finished_at=time.time(),
                updated_at=time.time(),
            )
            write_json_atomic(self.run_json, data)
            return data

    def config(self, record: dict | None = None):
        """The run's TrainConfig (config.json, else run.json's copy), its data pointing at the run's own copy.

        `record`: run.json as the caller has just read it (saves reading it again)."""
        from rm_demo.config import TrainConfig
        from rm_demo.errors import InputError

        record = self.read() if record is None else record
        try:
            config = TrainConfig.from_json(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            saved = record.get("config")
            if not isinstance(saved, dict):
                raise InputError(
                    "the run folder has no readable config", source=str(self.path), fix="train it again from the start"
                ) from None
            config = TrainConfig.from_dict(saved)
        data_file = record.get("data_file")
        if isinstance(data_file, str) and (self.path / data_file).is_file():
            config.input = str(self.path / data_file)
        config.output_dir = str(self.path)
        return config

    def write_config(self, config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.config_path, asdict(config))

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of each checkpoint-STEP folder, newest first."""
        folder = self.checkpoints_dir
        found = []
        for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
            step = checkpoint_step(path)
            if step is not None:
                found.append((step, path))
        return sorted(found, reverse=True)

    def latest_checkpoint(self, skipped: list | None = None) -> Path | None:
        """The newest intact checkpoint. A process killed while saving leaves a folder without its
        trainer_state.json (the Trainer writes it last); a disk that filled up, a file cut short or
        deleted: each such one is skipped for the one before, and listed in `skipped` as (folder, why)."""
        for _, path in self.checkpoints():
            damage = checkpoint_damage(path)
            if damage is None:
                return path
            if skipped is not None:
                skipped.append((path, damage))
        return None

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
    queued_at: float = 0.0  # its place in the queue: a resume queues it again, its creation date stays
    final_metrics: dict = field(default_factory=dict)
    error: str | None = None
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    pid: int | None = None
    device_name: str = ""
    owner: str = ""  # the hash of the owner's id (access.owner_key); "" for runs made outside the app
    address: str = ""  # the hash of the address the app's Start came from (app.identity.client_address)
    shared: bool = False  # published as an example: every visitor may see and use it

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """The run as it is now: a queued or running run whose process died reads (and is saved) as failed."""
        path = Path(path)
        folder = RunFolder(path)
        if not folder.run_json.exists():
            return cls(path.name, path, "unreadable", error="no run.json")
        try:
            data = folder.settle()
        except OSError:  # a read-only runs folder, or a lock held too long: show it as it reads
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
            queued_at=_number(data.get("queued_at") or data.get("created_at")),
            final_metrics=_dict(data.get("final_metrics")),
            error=None if data.get("error") is None else str(data.get("error")),
            config=config,
            data=_dict(data.get("data")),
            pid=data.get("pid") if isinstance(data.get("pid"), int) and data.get("pid") > 0 else None,
            device_name=str(data.get("device_name") or ""),
            # top level since runs record their owner apart from the training settings; config before that
            owner=str(data.get("owner") or config.get("owner") or ""),
            address=str(data.get("address") or ""),
            shared=data.get("shared") is True,
        )

    @property
    def has_model(self) -> bool:
        return (self.path / "model" / "config.json").is_file()

    @property
    def live(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def resumable(self) -> bool:
        """Stopped or failed with a checkpoint to go on from; or paused (ZeroGPU), with or without one (a
        run paused while its first GPU call waited starts again from the beginning)."""
        if self.status == "paused":
            return True
        return self.status in ("cancelled", "failed") and RunFolder(self.path).latest_checkpoint() is not None

    @property
    def command(self) -> str:
        return rerun_command(self.path)

    @property
    def source_name(self) -> str:
        """The data's original file name (older runs only know their copy's name)."""
        return str(self.config.get("source_name") or self.data.get("source") or "")

    @property
    def pairs_total(self) -> int | None:
        train, held_out = self.data.get("train_pairs"), self.data.get("eval_pairs")
        return train + held_out if isinstance(train, int) and isinstance(held_out, int) else None

    @property
    def held_out_pairs(self) -> int | None:
        """Pairs the run held out (its final evaluation's count, else the split's)."""
        held_out = self.final_metrics.get("eval_pairs", self.data.get("eval_pairs"))
        return held_out if isinstance(held_out, int) else None

    def judged_accuracy(self, min_pairs: int = 10) -> float | None:
        """The held-out accuracy, or None when too few pairs were held out for it to mean anything."""
        held_out = self.held_out_pairs
        return self.metric("eval_accuracy") if held_out is not None and held_out >= min_pairs else None

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


def rerun_command(path: Path, record: dict | None = None) -> str:
    """The CLI line that trains this run again into `<run>-again` ("" when its config cannot be read)."""
    from rm_demo.config import command_line
    from rm_demo.errors import InputError

    try:
        return command_line(RunFolder(path).config(record), output_dir=f"{path}-again")
    except InputError:
        return ""


# A checkpoint's weights under one of these names (full model, adapter, or shards with their index).
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def checkpoint_damage(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, or None if it is intact. Cheap: headers and sizes,
    no tensor is read (a cut safetensors file is found by its header's offsets, a cut torch file by its
    zip directory, which sits at the end)."""
    import zipfile

    try:
        json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "trainer_state.json is missing or unreadable"
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    weights += sorted(folder.glob("model-*-of-*.safetensors"))
    if not weights and not any((folder / name).is_file() for name in INDEX_FILES):
        return "it has no model weights (model.safetensors)"
    for file in [*weights, *sorted(folder.glob("*.pt")), *sorted(folder.glob("*.pth"))]:
        if file.suffix == ".safetensors":
            problem = _safetensors_damage(file)
        else:
            try:
                with zipfile.ZipFile(file):
                    problem = None
            except (OSError, zipfile.BadZipFile):
                problem = "is cut short or damaged"
        if problem:
            return f"{file.name} {problem}"
    return None


def _safetensors_damage(file: Path) -> str | None:
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                return "is cut short or damaged"
            header = json.loads(fh.read(header_len))
    except (OSError, ValueError):
        return "is cut short or damaged"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    if 8 + header_len + max(ends, default=0) != size:
        return "is cut short or damaged"
    return None


def checkpoint_step(path: Path) -> int | None:
    """The step of a `checkpoint-STEP` folder, None for any other name."""
    prefix, _, step = Path(path).name.rpartition("-")
    return int(step) if prefix == "checkpoint" and step.isdigit() else None


def live_runs(root: Path) -> list[RunRecord]:
    """Runs queued or training now, each one's process asked (a dead one is marked failed and left out)."""
    return [run for run in list_runs(root) if run.live]


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
    """A new, empty run folder named `<time>-<file stem>-<random>`, made atomically.

    The random part keeps names from being guessed from a time and a file name (ownership is checked
    on every request; this only makes a probe pointless). `mkdir` without `exist_ok` fails if the name
    is taken, so each caller gets its own folder: a second one gets `-2`, and so on.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = time.strftime("%Y%m%d-%H%M%S") + "-" + safe_stem(data_name) + "-" + secrets.token_hex(3)
    for n in range(1, 10_000):
        path = root / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run name under {root}")


def data_copy_name(source_name: str | None) -> str:
    """The run keeps a copy of its data; the suffixes matter (".csv.gz"), the name does not."""
    suffixes = [s for s in Path(source_name or "data.csv").suffixes[-2:] if s[1:].isalnum()]
    return "data" + "".join(suffixes or [".csv"])


def prepare_run(config, data_file: str | Path, run_dir: str | Path, owner: str = "", address: str = ""):
    """Make `run_dir` a queued run of `config`: the data copied in, config.json and run.json written.

    The one way a run starts, from the CLI or the app: the run trains on its own copy, so moving or
    editing the user's file later changes nothing, and `RunFolder.config()` reads it back. Returns the
    config as training will read it (input = the copy, output_dir = the folder).
    """
    from dataclasses import replace

    run = RunFolder(run_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    source_name = config.source_name or Path(data_file).name
    copy = data_copy_name(source_name)
    shutil.copyfile(data_file, run.path / copy)
    config = replace(config, input=str(run.path / copy), output_dir=str(run.path), source_name=source_name)
    for stale in (run.cancel_path, run.metrics_path):
        stale.unlink(missing_ok=True)
    run.write_config(config)
    run.move(
        "queued",
        fresh=True,
        owner=owner,
        address=address,
        data_file=copy,
        config=asdict(config),
        created_at=time.time(),
        error=None,
        final_metrics=None,
        resume=False,
        pid=None,
    )
    return config


# A run's name is one folder name: at most this long (most file systems' limit), no separator, no NUL.
MAX_RUN_NAME_CHARS = 255


def shown_name(name) -> str:
    """A name as a message quotes it: a 5,000-character or binary name is not echoed back whole."""
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def resolve_run(root: Path, name: str | None) -> Path:
    """The folder of the run called `name` directly under `root` (never a path elsewhere)."""
    from rm_demo.errors import InputError

    well_formed = (
        isinstance(name, str)
        and 0 < len(name) <= MAX_RUN_NAME_CHARS
        and name not in (".", "..")
        and not any(c in name for c in "/\\\x00")
        and not_text_at(name) is None  # half a UTF-16 pair cannot be a file name
    )
    root = Path(root).resolve()
    path = (root / name).resolve() if well_formed else None  # a link to a folder elsewhere is not a run here
    if path is None or path.parent != root or not path.is_dir():
        raise InputError(f"no run named {shown_name(name)}", fix="pick a run from the list")
    return path


def delete_run(root: Path, name: str) -> str:
    """Delete a run that is not live. Under its lock (a Resume pressed meanwhile queues it first, or
    finds it gone), the folder is first renamed out of the store in one step, then removed: a run is
    either whole or absent, never a folder left without its log, curves or checkpoints."""
    from rm_demo.errors import InputError

    path = resolve_run(root, name)
    with RunFolder(path).lock():
        if RunRecord.load(path).live:
            raise InputError(f"{name} is still queued or running", fix="stop the run before deleting it")
        trash = path.with_name(f".deleted-{path.name[:200]}-{secrets.token_hex(4)}")  # listed by no one
        os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return f"Deleted **{name}**."


def run_of_model(model_path: str | Path) -> RunFolder | None:
    """The run a model folder was saved by (runs/<name>/model), or None for any other model."""
    folder = Path(model_path)
    run = RunFolder(folder.parent)
    return run if folder.name == "model" and run.run_json.is_file() else None


def base_model_of(model_path: str) -> tuple[str, int | None]:
    """The untrained model a run's model started from and the max length it trained at: the honest
    "before" for its "after". A folder that is not a run's model gives the embedded default at the
    scorer's own length (None)."""
    run = run_of_model(model_path)
    if run is None:
        return "default", None
    try:
        config = run.config()
    except (OSError, ValueError, TypeError):  # InputError is a ValueError
        return "default", None
    return config.model or "default", config.max_length
