"""Training on a ZeroGPU Space: a run in slices, each inside a `@spaces.GPU` generator.

On ZeroGPU a GPU is attached only inside a function decorated with `spaces.GPU`, for the duration it
asks for, in a worker process that `spaces` forks from the app's; arguments and every value yielded
are pickled across, and a worker may or may not be kept for the next call. So the app's process
drives a run (`drive`) and each slice runs in the worker (`slice_stream`):

    drive(run_dir)                       the app's process: one GPU call per slice, until the run ends
      gpu(run_dir, seconds, resume, driver)   `spaces.GPU(duration=slice_duration)(slice_stream)`
        slice_stream(...)                the worker: trains one slice in a thread, yields progress dicts

A run's state between slices is its folder (checkpoint, run.json, metrics.jsonl), never memory.
Closing the page closes the generators: the slice stops at its next step with a checkpoint and the
run is "paused", resumable. A call refused for quota goes on in the CPU job queue or pauses the run,
as the visitor chose. Off ZeroGPU `spaces.GPU` returns the function unchanged; the app then trains in
its job queue (`rm_demo.jobs`) and none of this runs.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rm_demo.lifecycle import ACTIVE
from rm_demo.runs import RunFolder, checkpoint_step, process_start

log = logging.getLogger(__name__)

# Model, data and checkpoint, per slice, on top of its training seconds (the duration asked for).
# A whole `rm_demo train` of HH on an H200 took 29 s, 14.3 s of it training (BENCHMARKS section 8);
# in the worker the imports are done already.
STARTUP_S = 20.0
# A step's time before one is measured: the defaults on an H200 ran 400-657 pairs/s at 16 pairs a
# step (BENCHMARKS section 8), 0.025-0.04 s; a ZeroGPU slice is a share of one such GPU.
FIRST_STEP_S = 0.08
# Slices of this much training when the run's own setting is 0: with STARTUP_S, spaces' default
# duration of 60 s, the most a visitor without a login can best use of about 2 minutes a day.
DEFAULT_SLICE_S = 40.0
YIELD_EVERY_S = 1.0
# spaces 0.51's refusals of a GPU call (zero/client.py `schedule`), by the title of its gradio error, and
# what each means for the run: "quota" (the visitor's, or the Space's), "busy" (come back later: too
# many tasks at once, no GPU free in time, none available), "too_long" (a slice over the longest call).
REFUSALS = {
    "ZeroGPU quota exceeded": "quota",
    "ZeroGPU pending credits exceeded": "busy",
    "ZeroGPU queue timeout": "busy",
    "ZeroGPU client error": "busy",
    "ZeroGPU illegal duration": "too_long",
}
# ... and by the words of its RuntimeError when the page went away while the call waited for a GPU.
CLOSED_WHILE_WAITING = ("Connection closed by visitor while queueing", "Connection closed by visitor on queue success")
SHORTEST_SLICE_S = 10.0  # "too_long": halved down to this, then refused as it is
ON_QUOTA = {"cpu": "it goes on, on the CPU", "pause": "it pauses: Resume goes on from there later"}
# What ZeroGPU grants a visitor a day, as the `spaces` package and its docs say (0.51).
DAILY_QUOTA_MINUTES = {"without a Hugging Face login": 2, "with a free account": 5, "with PRO": 40}


@dataclass(frozen=True)
class SlicePlan:
    """The next slice: how long it trains, what it asks for, what is left."""

    seconds: float
    duration: int  # the GPU seconds asked of spaces: training plus STARTUP_S
    step_s: float
    steps_left: int


def step_seconds(metrics: list[dict]) -> float:
    """Seconds per step a run's curve shows so far (evaluations included), or FIRST_STEP_S before any."""
    timed = [m for m in metrics if m.get("step") and m.get("elapsed_s")]
    if not timed:
        return FIRST_STEP_S
    last = timed[-1]
    return max(1e-3, float(last["elapsed_s"]) / int(last["step"]))


def plan_slice(run: RunFolder, cap_s: float) -> SlicePlan:
    """At most `cap_s` of training, less when the steps left need less (so the last call asks for what it uses)."""
    max_steps = int(run.read().get("max_steps") or 0)
    metrics = run.metrics()
    done = max((int(m.get("step") or 0) for m in metrics), default=0)
    step_s = step_seconds(metrics)
    steps_left = max(0, max_steps - done) if max_steps else 0
    needed = steps_left * step_s * 1.25 + 2.0 if max_steps else cap_s
    seconds = max(1.0, min(cap_s, needed))
    return SlicePlan(seconds, math.ceil(seconds + STARTUP_S), step_s, steps_left)


def gpu_seconds_estimate(steps: int, cap_s: float, step_s: float = FIRST_STEP_S) -> tuple[int, int]:
    """(GPU seconds, slices) a run of `steps` steps will spend, before any of it is measured."""
    training = steps * step_s
    slices = max(1, math.ceil(training / cap_s))
    return math.ceil(training + slices * STARTUP_S), slices


def slice_duration(run_dir: str, seconds: float, resume: bool, driver: tuple) -> int:
    """spaces' `duration=`: called with the GPU function's own arguments."""
    return math.ceil(seconds + STARTUP_S)


def slice_stream(run_dir: str, seconds: float, resume: bool, driver: tuple) -> Iterator[dict]:
    """One slice of the run, trained in this process (on ZeroGPU, the GPU worker); yields progress.

    Training runs in a thread; this generator yields a plain dict (it must pickle) about once a second.
    Closed early (the page went away), it pauses the slice at the next step, which saves a checkpoint,
    and returns only once that is written.
    """
    from rm_demo.train import SliceLimit, train_slice

    run = RunFolder(run_dir)
    config = run.config()
    pause = threading.Event()
    outcome: dict = {}

    def work() -> None:
        try:  # its lines into the run's train.log, which the Train tab's log box shows, as a run's process does
            with run.log_path.open("a", encoding="utf-8") as log:
                train_slice(config, log, resume, SliceLimit(seconds, pause, tuple(driver)))
        except BaseException as exc:  # recorded in run.json by train_slice; said again in the last yield
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    seen = len(run.metrics())  # the curve so far; a slice yields what it adds
    thread = threading.Thread(target=work, name=f"slice-{run.name}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(YIELD_EVERY_S)
            metrics = run.metrics()
            yield progress(run, metrics[seen:], metrics=metrics)
            seen = len(metrics)
        metrics = run.metrics()
        yield progress(run, metrics[seen:], error=outcome.get("error"), metrics=metrics)
    finally:
        if thread.is_alive():  # closed at a yield: end the slice with its checkpoint before going
            pause.set()
            thread.join()


def progress(
    run: RunFolder, new_metrics: list[dict], error: str | None = None, metrics: list[dict] | None = None
) -> dict:
    """What a slice yields: plain values only (they are pickled across processes). `metrics`: the run's
    curve when the caller has just read it."""
    data = run.read()
    curve = run.metrics() if metrics is None else metrics
    return {
        "run": run.name,
        "status": str(data.get("status") or ""),
        "step": max((int(m.get("step") or 0) for m in curve), default=0),
        "max_steps": int(data.get("max_steps") or 0),
        "new_metrics": [dict(m) for m in new_metrics],
        "error": error or data.get("error"),
    }


def refusal_kind(exc: BaseException) -> str:
    """What a failed GPU call means: "quota", "busy", "too_long", "closed" (the page went away while the
    call waited), or "failed" (anything else: the run fails with spaces' own words)."""
    kind = REFUSALS.get(str(getattr(exc, "title", "") or ""))
    if kind:
        return kind
    if any(words in str(exc) for words in CLOSED_WHILE_WAITING):
        return "closed"
    return "failed"


def duration_factor() -> float:
    """What spaces multiplies a call's seconds by before it counts them against a quota (1.5 on some GPUs:
    its own table, zero/configs.json); 1.0 where spaces cannot say."""
    try:
        from spaces.zero.config import get_config

        return float(get_config()["duration_factor"])
    except Exception:  # noqa: BLE001 (no spaces, or no GPU to look up: no factor)
        return 1.0


def refusal_text(exc: BaseException) -> str:
    """spaces' own words: the error's title and message (a gradio error's str is its message only)."""
    title = str(getattr(exc, "title", "") or "")
    message = str(getattr(exc, "message", "") or exc)
    return f"{title}: {message}" if title and title not in message else message


def quota_left_s(exc: BaseException) -> float | None:
    """The seconds left that spaces' refusal names ("(60s requested vs. 35s left)"), if it does."""
    found = re.search(r"requested vs\.? (\d+(?:\.\d+)?)s left", str(exc))
    return float(found.group(1)) if found else None


_gpu_function: Callable | None = None


def gpu_function() -> Callable:
    """`slice_stream` under `spaces.GPU`: on ZeroGPU the worker's GPU function, elsewhere itself.

    Decorated once (the app does it at start-up, as ZeroGPU wants its GPU functions known then).
    """
    global _gpu_function
    if _gpu_function is None:
        import spaces

        _gpu_function = spaces.GPU(duration=slice_duration)(slice_stream)
    return _gpu_function


def reset_gpu_function() -> None:
    global _gpu_function
    _gpu_function = None


def drive(run_dir: str | Path, cap_s: float, on_quota: str = "cpu", resume: bool = False) -> Iterator[dict]:
    """Train the run in GPU slices from this process until it ends; yields each slice's progress dicts.

    Between slices the run is this process's: it reads as alive while this process lives. Closed
    (the page went away) between slices, the run is saved as paused; mid-slice, the slice pauses it.
    A call refused for quota: `on_quota` "cpu" queues the rest in the CPU job queue, "pause" pauses.
    """
    run = RunFolder(run_dir)
    me = (os.getpid(), process_start(os.getpid()))
    run.move("running", pid=me[0], pid_started=me[1], error=None, finished_at=None)
    resume = resume and run.latest_checkpoint() is not None  # paused before its first checkpoint: from the start
    stream = None
    try:
        while True:
            if run.cancel_requested:  # Stop between two slices
                run.move("cancelled", finished_at=time.time())
                yield progress(run, [])
                return
            plan = plan_slice(run, cap_s)
            stream = gpu_function()(str(run.path), plan.seconds, resume, me)
            try:
                # Not `yield from`: that would close spaces' generator inline when this one is closed.
                for payload in stream:  # noqa: UP028
                    yield payload
            except Exception as exc:
                stream, kind = None, refusal_kind(exc)
                factor = duration_factor()  # the quota counts the seconds asked times this
                left = quota_left_s(exc) if kind == "quota" else None
                if left is not None and left / factor - STARTUP_S >= 5 and plan.duration * factor > left:
                    cap_s = left / factor - STARTUP_S - 1  # a shorter slice still fits in what is left today
                    continue
                if kind == "too_long" and cap_s > SHORTEST_SLICE_S:
                    cap_s = max(SHORTEST_SLICE_S, cap_s / 2)  # over the longest call spaces allows: halve it
                    continue
                yield _refused(run, exc, on_quota, plan, kind)
                return
            stream, resume = None, True
            if run.read().get("status") != "running":  # completed, stopped, failed or paused
                return
    finally:
        if stream is not None:  # closed mid-slice: spaces tells the worker, which pauses the slice
            # spaces' close waits for the worker to finish its step and save a checkpoint, and gradio closes
            # a generator on its event loop when a page goes away: waited there, every visitor's request
            # would wait too. The close and the pause after it go to a thread; this returns at once.
            threading.Thread(target=_close_then_pause, args=(stream, run, me), daemon=True).start()
        else:
            _pause_when_undriven(run, me)


def _close_then_pause(stream, run: RunFolder, me: tuple) -> None:
    try:
        stream.close()
    except Exception as exc:  # the worker failed while pausing: the run's record says so
        log.warning("closing the GPU slice of %s: %s", run.name, exc)
    _pause_when_undriven(run, me)


def _pause(run: RunFolder) -> None:
    """Saved as paused at its last checkpoint's step (what Resume goes on from)."""
    checkpoint = run.latest_checkpoint()
    step = checkpoint_step(checkpoint) if checkpoint else 0
    run.move("paused", finished_at=time.time(), paused_at_step=step)


def _pause_when_undriven(run: RunFolder, me: tuple, timeout_s: float = 600) -> None:
    """This process drives the run no more: a run left to it ("running", its pid) is saved as paused.

    Closed between slices that is now. Closed mid-slice, the worker pauses the slice itself, unless
    the slice ended on its clock just before and handed the run back to this process: a thread waits
    for the worker's last write and pauses the run then.
    """

    def left_to_me() -> bool | None:  # True: pause it; False: the worker still has it; None: not ours
        data = run.read()
        if data.get("status") != "running":
            return None
        return data.get("pid") == me[0]

    def wait_then_pause() -> None:
        deadline = time.time() + timeout_s
        while (mine := left_to_me()) is False and time.time() < deadline:
            time.sleep(0.5)
        if mine:
            _pause(run)

    mine = left_to_me()
    if mine:
        _pause(run)
    elif mine is False:
        threading.Thread(target=wait_then_pause, name=f"pause-{run.name}", daemon=True).start()


def _refused(run: RunFolder, exc: Exception, on_quota: str, plan: SlicePlan, kind: str = "failed") -> dict:
    """A GPU call that failed or was refused: the run goes on on the CPU, pauses, or has failed."""
    if kind in ("busy", "closed"):  # nothing wrong with the run: it waits, resumable, for a later try
        _pause(run)
        if kind == "closed":
            return progress(run, [])
        return {**progress(run, []), "note": f"ZeroGPU is busy ({refusal_text(exc)}): the run is paused, Resume later"}
    if kind == "quota":
        if on_quota == "cpu":
            from rm_demo.jobs import start_job

            resume = run.latest_checkpoint() is not None
            if not resume:  # no slice has run yet: it waits for the device like any new run
                run.move("queued", pid=None)
            start_job(run, resume=resume)
            note = "the GPU quota ran out: the run goes on, on the CPU"
        else:
            _pause(run)
            note = "the GPU quota ran out: the run is paused, Resume goes on from its last checkpoint"
        left = quota_left_s(exc)
        if left is not None:
            note += f" ({left:.0f} GPU seconds were left, {plan.duration} asked)"
        return {**progress(run, []), "note": note}
    data = run.settle()  # a worker killed mid-slice reads as failed, resumable from its checkpoint
    said = f"the GPU call failed: {refusal_text(exc)}"
    if data.get("status") in ACTIVE:
        run.move("failed", when=ACTIVE, error=said, finished_at=time.time())
    elif data.get("error"):  # the worker wrote why: spaces passes only an exception's class name on
        said = str(data["error"])
    return {**progress(run, []), "error": said}
