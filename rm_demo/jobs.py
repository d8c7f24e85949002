"""Background training jobs: a child process per run, one at a time per device, FIFO.

The run folder is the only state: a reloaded page, a second browser or a restarted app reads the
same `run.json` and `metrics.jsonl`. Ordering uses the run's `queued_at` (its `created_at` until
it is queued again); the device is held
with an OS file lock (`runs/.device.lock`), which a crashed or killed trainer releases by dying.

    runs.prepare_run(...) -> the run folder, status "queued" (the same for the CLI's foreground runs)
    start_job(run)        -> its child process; it waits its turn, then "running"
    job_status(run)       -> status, progress, metrics, log tail (a dead process reads as failed)
    cancel_job(run)       -> the trainer stops at its next step ("cancelled"); hard kill after a grace period

Processes are handled through `psutil` and locks through `filelock`, so the same code runs on Linux,
macOS and Windows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from rm_demo.errors import InputError
from rm_demo.lifecycle import ACTIVE, FINISHED
from rm_demo.runs import RunFolder, list_runs, process_alive, process_start, record_alive, rerun_command

LOCK_NAME = ".device.lock"
POLL_S = 0.5
CANCEL_GRACE_S = 20.0


def _as_run(run: RunFolder | str | Path) -> RunFolder:
    return run if isinstance(run, RunFolder) else RunFolder(run)


def _own_process_group() -> dict:
    """Popen arguments that give the child its own process group (so a stop reaches its children too)."""
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def run_command(run: RunFolder, python: str = sys.executable) -> list[str]:
    """What a run the app starts runs: the CLI's train on the run's own settings file, waiting its turn."""
    return [python, "-m", "rm_demo", "train", "--config", str(run.config_path), "--queued"]


def start_job(run: RunFolder | str | Path, python: str = sys.executable, resume: bool = False) -> RunFolder:
    """Start the child process of a run that `runs.prepare_run` made (output to train.log).

    `resume`: a stopped, failed or killed run goes on from its latest checkpoint and keeps its curves
    (see `train`); it queues behind the runs already waiting, like a new one."""
    run = _as_run(run)
    if resume:
        requeue(run)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    with run.log_path.open("ab") as log:
        proc = subprocess.Popen(
            run_command(run, python),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            **_own_process_group(),
        )
    run.update(pid=proc.pid, pid_started=process_start(proc.pid))
    return run


def requeue(run: RunFolder) -> None:
    """A stopped, failed, killed or paused run queued again to resume, behind the runs already waiting."""
    if not run.run_json.is_file():  # deleted meanwhile (delete_run renames it away under its lock)
        raise InputError("this run was deleted", source=run.name, fix="start a new run")
    run.cancel_path.unlink(missing_ok=True)
    resume = run.latest_checkpoint() is not None  # a run paused before its first checkpoint starts again
    run.move("queued", queued_at=time.time(), error=None, final_metrics=None, resume=resume, pid=None)


def _my_turn(run: RunFolder) -> bool:
    """FIFO: no live queued run in the same runs folder is older than this one."""
    data = run.read()
    me = data.get("queued_at") or data.get("created_at", 0)
    return not any(
        other.name != run.name and other.status == "queued" and (other.queued_at, other.name) < (me, run.name)
        for other in list_runs(run.path.parent)  # each one's process asked: a dead one does not hold the queue
    )


def lower_priority(steps: int) -> None:
    """Below the app in the CPU's queue: on a shared CPU the people clicking Compare come first."""
    import psutil

    with contextlib.suppress(psutil.Error, OSError, ValueError, AttributeError):
        me = psutil.Process()
        if os.name == "nt":
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS if steps > 0 else psutil.NORMAL_PRIORITY_CLASS)
        else:
            me.nice(min(19, me.nice() + steps))
    lower_autogroup(steps)


AUTOGROUP = Path("/proc/self/autogroup")


def lower_autogroup(steps: int) -> None:
    """The same for this process's scheduler autogroup, where Linux has them (most desktop kernels; on here).

    The trainer starts in a session of its own (`_own_process_group`), and Linux gives each session's
    autogroup an equal share of the CPU whatever its processes' nice (sched(7)): on this 2-core machine two
    busy processes at nice 10, each in its own session, took twice the CPU of two at nice 0 beside them;
    with their groups at nice 10 too, a quarter of it. A room's Compare clicks waited behind the training."""
    with contextlib.suppress(OSError, ValueError):
        current = int(AUTOGROUP.read_text().split("nice")[-1])
        AUTOGROUP.write_text(str(min(19, current + steps)))


def worker(run_dir: str) -> int:
    """The child process: wait for the device, train, record the outcome."""
    from rm_demo.settings import current

    run = RunFolder(run_dir)
    config = run.config()
    lower_priority(current().train_nice)
    # An OS file lock on the device: a crashed or killed trainer releases it by dying.
    device = FileLock(str(run.path.parent / LOCK_NAME))
    if not _wait_for_device(run, device):
        return 0

    def take_turns() -> bool:
        """Between two slices of a sliced run a waiting run gets the device: sliced runs share it in turns.
        False: stopped while it waited."""
        if not any(other.name != run.name and other.status == "queued" for other in list_runs(run.path.parent)):
            return True
        device.release()
        run.move("queued", queued_at=time.time())  # behind the runs waiting now
        if not _wait_for_device(run, device):
            return False
        run.move("running")
        return True

    try:
        # SIGTERM (a polite cancel from outside) stops at the next step like the stop button.
        signal.signal(signal.SIGTERM, lambda *_: run.cancel_path.touch())
        from rm_demo.train import train

        try:
            train(config, progress=True, resume=run.read().get("resume") is True, between_slices=take_turns)
        except InputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    finally:
        if device.is_locked:
            device.release()


def _wait_for_device(run: RunFolder, device: FileLock) -> bool:
    """Wait for this run's turn (FIFO) and the device; False, with the run saved as cancelled, on a Stop."""
    while True:
        if run.cancel_requested:
            run.move("cancelled", finished_at=time.time(), error=None)
            return False
        if _my_turn(run):
            try:
                device.acquire(timeout=0)
                return True
            except Timeout:
                pass
        time.sleep(POLL_S)


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
    command: str = ""  # the CLI line that trains this run again

    @property
    def progress(self) -> float:
        return self.step / self.max_steps if self.max_steps else 0.0

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def job_status(run: RunFolder | str | Path) -> JobStatus:
    run = _as_run(run)
    data = run.settle()  # killed (OOM, kill -9) or crashed before it could write its own status: failed
    status = data.get("status", "unknown")
    metrics = run.metrics()
    last = next((m for m in reversed(metrics) if "eta_s" in m), {})
    position = 0
    if status == "queued":
        me = data.get("queued_at") or data.get("created_at", 0)
        position = 1 + sum(
            1 for r in list_runs(run.path.parent) if r.status in ("queued", "running") and r.queued_at < me
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
        error=data.get("error"),
        final_metrics=data.get("final_metrics") or {},
        metrics=metrics,
        log_tail=run.log_tail(),
        queue_position=position,
        eval_pairs=summary.get("eval_pairs"),
        curve_eval_pairs=summary.get("curve_eval_pairs"),
        command=rerun_command(run.path, data),
    )


def cancel_job(run: RunFolder | str | Path, grace_s: float = CANCEL_GRACE_S) -> bool:
    """Ask a queued or running run to stop at its next step; kill its processes if it has not after
    `grace_s`. Returns False, asking nothing, when the run is not live (finished, or its process gone).

    Only a process this run started is ever signalled: the recorded pid must still have the recorded
    start time (a pid reused after a restart belongs to someone else, perhaps the app itself).
    """
    run = _as_run(run)
    data = run.settle()
    if data.get("status") not in ("queued", "running"):
        return False
    run.cancel_path.touch()
    pid, started = data.get("pid"), data.get("pid_started")
    if grace_s <= 0 or pid is None or pid == os.getpid() or not record_alive(data):
        return True

    def hard_kill() -> None:
        deadline = time.time() + grace_s
        while time.time() < deadline:
            # A process may outlive its run's training (a ZeroGPU worker is kept for the next call).
            if not process_alive(pid, started) or run.read().get("status") not in ("queued", "running"):
                return
            time.sleep(POLL_S)
        if kill_process_tree(pid, started):
            run.move(
                "cancelled", when=ACTIVE, error="stopped by force after the grace period", finished_at=time.time()
            )

    threading.Thread(target=hard_kill, daemon=True).start()
    return True


def kill_process_tree(pid: int, started: float | None) -> bool:
    """Kill the process that started at `started` and every process below it (any OS). False if it was gone."""
    import psutil

    if not process_alive(pid, started):
        return False
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except psutil.Error:
        return False
    for process in family:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(family, timeout=5)
    return True


def wait_for(run: RunFolder | str | Path, timeout_s: float = 600, poll_s: float = POLL_S) -> JobStatus:
    """Block until the run finishes (for the CLI and tests); returns its final status."""
    deadline = time.time() + timeout_s
    while True:
        status = job_status(run)
        if status.finished or time.time() > deadline:
            return status
        time.sleep(poll_s)
