"""Background training jobs: a child process per run, one at a time per device, FIFO.

The run folder is the only state: a reloaded page, a second browser or a restarted app reads the
same `run.json` and `metrics.jsonl`. Ordering uses the run's `created_at`; the device is held
with an OS file lock (`runs/.device.lock`), which a crashed or killed trainer releases by dying.

    start_job(config)   -> RunFolder, status "queued"; the child waits its turn, then "running"
    job_status(run)     -> status, progress, metrics, log tail (a dead process reads as failed)
    cancel_job(run)     -> the trainer stops at its next step ("cancelled"); hard kill after a grace period
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rm_demo.config import TrainConfig
from rm_demo.runs import FINISHED, RunFolder, list_runs

LOCK_NAME = ".device.lock"
POLL_S = 0.5
CANCEL_GRACE_S = 20.0


def process_start(pid: int | None) -> int | None:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22); None if unknown.

    A pid can be reused after a restart; (pid, start time) names one process for good.
    """
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None, started: int | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when its start time was recorded, is the same process."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive, but the start time below decides whether it is ours
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return started is None  # no /proc (macOS): trust the pid only when nothing better was recorded
    if fields[0] == "Z":  # a finished child not yet reaped
        return False
    return started is None or int(fields[19]) == started


def run_process_alive(data: dict) -> bool:
    """Whether the process a run.json names is alive and is that run's own worker.

    A record without `pid_started` comes from an older version: its pid cannot be told apart from a
    reused one, so it reads as dead. `pid_started: null` means the platform has no /proc: trust the pid.
    """
    if "pid_started" not in data:
        return False
    started = data["pid_started"]
    return _alive(data.get("pid"), started if isinstance(started, int) else None)


def start_job(config: TrainConfig, python: str = sys.executable, resume: bool = False) -> RunFolder:
    """Queue a run and start its child process (own process group, output to train.log).

    `resume`: the run goes on from its latest checkpoint and keeps its curves (see `train`); it
    queues behind the runs already waiting, like a new one."""
    run = RunFolder(config.output_dir)
    run.path.mkdir(parents=True, exist_ok=True)
    for stale in (run.cancel_path,) if resume else (run.cancel_path, run.metrics_path):
        if stale.exists():
            stale.unlink()
    run.update(
        status="queued", config=asdict(config), created_at=time.time(), error=None, final_metrics=None, resume=resume
    )
    config_file = run.path / "config.json"
    config_file.write_text(config.to_json(), encoding="utf-8")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    with run.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "rm_demo.jobs", str(run.path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: cancel can kill it and its children
            env=env,
        )
    run.update(pid=proc.pid, pid_started=process_start(proc.pid))
    return run


def _my_turn(run: RunFolder) -> bool:
    """FIFO: no queued run in the same runs folder is older than this one."""
    me = run.read().get("created_at", 0)
    for other in list_runs(run.path.parent):
        if other.name != run.name and other.status == "queued" and (other.created_at, other.name) < (me, run.name):
            if run_process_alive(RunFolder(other.path).read()):
                return False
    return True


def worker(run_dir: str) -> int:
    """The child process: wait for the device, train, record the outcome."""
    run = RunFolder(run_dir)
    config = TrainConfig.from_json((run.path / "config.json").read_text(encoding="utf-8"))
    # Below the app in the CPU's queue: on a shared CPU the people clicking Compare come first.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(int(os.environ.get("RM_DEMO_TRAIN_NICE", "10")))
    lock_path = run.path.parent / LOCK_NAME
    with open(lock_path, "a+") as lock:
        while True:
            if run.cancel_requested:
                run.update(status="cancelled", finished_at=time.time(), error=None)
                return 0
            if _my_turn(run):
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
            time.sleep(POLL_S)
        # SIGTERM (a polite cancel from outside) stops at the next step like the stop button.
        signal.signal(signal.SIGTERM, lambda *_: run.cancel_path.touch())
        from rm_demo.errors import InputError
        from rm_demo.train import train

        try:
            train(config, progress=True, resume=run.read().get("resume") is True)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0


@dataclass
class JobStatus:
    name: str
    status: str
    step: int = 0
    max_steps: int = 0
    eta_s: float | None = None
    elapsed_s: float | None = None
    device_name: str = ""
    error: str | None = None
    final_metrics: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    log_tail: str = ""
    queue_position: int = 0
    eval_pairs: int | None = None
    curve_eval_pairs: int | None = None  # the evaluations during training scored this sample of them

    @property
    def progress(self) -> float:
        return self.step / self.max_steps if self.max_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def job_status(run: RunFolder | str | Path) -> JobStatus:
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    data = run.read()
    status = data.get("status", "unknown")
    error = data.get("error")
    if status in ("queued", "running") and data.get("pid") and not run_process_alive(data):
        # Killed (OOM, kill -9) or crashed before it could write its own status.
        status = "cancelled" if run.cancel_requested else "failed"
        error = error or "the training process ended without finishing (killed or crashed); see the log"
        data = run.update(status=status, error=error, finished_at=time.time())
    metrics = run.metrics()
    last = next((m for m in reversed(metrics) if "eta_s" in m), {})
    position = 0
    if status == "queued":
        me = data.get("created_at", 0)
        position = 1 + sum(
            1 for r in list_runs(run.path.parent) if r.status in ("queued", "running") and r.created_at < me
        )
    summary = data.get("data") if isinstance(data.get("data"), dict) else {}
    return JobStatus(
        name=run.name,
        status=status,
        step=int(last.get("step", 0)),
        max_steps=int(data.get("max_steps") or last.get("max_steps") or 0),
        eta_s=last.get("eta_s"),
        elapsed_s=last.get("elapsed_s"),
        device_name=data.get("device_name", ""),
        error=error,
        final_metrics=data.get("final_metrics") or {},
        metrics=metrics,
        log_tail=run.log_tail(),
        queue_position=position,
        eval_pairs=summary.get("eval_pairs"),
        curve_eval_pairs=summary.get("curve_eval_pairs"),
    )


def cancel_job(run: RunFolder | str | Path, grace_s: float = CANCEL_GRACE_S) -> None:
    """Ask the trainer to stop at its next step; kill its process group if it has not after `grace_s`.

    Only a process this run started is ever signalled: the recorded pid must still have the recorded
    start time (a pid reused after a restart belongs to someone else, perhaps the app itself).
    """
    run = run if isinstance(run, RunFolder) else RunFolder(run)
    run.cancel_path.touch()
    data = run.read()
    if grace_s <= 0 or not run_process_alive(data):
        return
    pid = data["pid"]

    def hard_kill() -> None:
        deadline = time.time() + grace_s
        while time.time() < deadline:
            if not run_process_alive(data):
                return
            time.sleep(POLL_S)
        if not run_process_alive(data) or pid == os.getpid():
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        run.update(status="cancelled", error="stopped by force after the grace period", finished_at=time.time())

    import threading

    threading.Thread(target=hard_kill, daemon=True).start()


def wait_for(run: RunFolder | str | Path, timeout_s: float = 600, poll_s: float = POLL_S) -> JobStatus:
    """Block until the run finishes (for the CLI and tests); returns its final status."""
    deadline = time.time() + timeout_s
    while True:
        status = job_status(run)
        if status.finished or time.time() > deadline:
            return status
        time.sleep(poll_s)


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
