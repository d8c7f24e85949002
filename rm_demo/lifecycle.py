"""A run's lifecycle as data: its statuses, and which status may follow which.

Every write of a run's `status` goes through `RunFolder.move` (under the run's lock), which asks
`check` here; `RunFolder.update` refuses a status. A move this table does not list is a bug in the
caller, not a state to record, and raises `LifecycleError`.
"""

from __future__ import annotations

NEW = None  # no run.json yet (or a folder `--overwrite` starts again)
STATUSES = ("queued", "running", "completed", "failed", "cancelled", "paused")
FINISHED = ("completed", "failed", "cancelled", "paused")
ACTIVE = ("queued", "running")  # a process is (about to be) working on it
MODEL_STATUSES = ("completed", "cancelled")  # a run that saved a model (a stopped run saves the one it had)

# status -> the statuses that may follow it, and why.
TRANSITIONS: dict[str | None, dict[str, str]] = {
    NEW: {
        "queued": "the app or `prepare_run` records a new run before its process starts",
        "running": "`train -o NEW_FOLDER` from a shell starts at once",
    },
    "queued": {
        "queued": "waits again behind runs queued earlier",
        "running": "its process starts training",
        "cancelled": "stopped before it started",
        "failed": "its process died before training (settle) or refused its input",
    },
    "running": {
        "running": "the next slice's driver, or a resumed process, takes it over",
        "completed": "trained to the end, model saved",
        "cancelled": "stopped (button, Ctrl-C, by force after the grace period)",
        "failed": "an error, or its process died (settle)",
        "paused": "a slice ended at the owner's pause, or ZeroGPU's quota ran out",
        "queued": "ZeroGPU: it waits for the GPU again before the next slice",
    },
    "paused": {
        "queued": "resumed from the app",
        "running": "resumed (`train --resume`, the next slice)",
        "cancelled": "stopped while paused",
        "failed": "its resume found nothing to resume from",
    },
    "failed": {
        "queued": "resumed from the app, from its last checkpoint",
        "running": "`train --resume` from its last checkpoint",
        # A reader (settle) can take a live process for dead under load; the process's own last word wins,
        # as it did before the moves were checked (seen once in the suite: a ZeroGPU slice's resume).
        "completed": "its own process finished after a reader had taken it for dead",
        "cancelled": "its own process stopped after a reader had taken it for dead",
        "paused": "its own process paused after a reader had taken it for dead",
    },
    "cancelled": {
        "queued": "resumed from the app, from its last checkpoint",
        "running": "`train --resume` from its last checkpoint",
    },
    "completed": {},
}


class LifecycleError(RuntimeError):
    pass


def allowed(current: str | None, new: str) -> bool:
    current = current if current in TRANSITIONS else NEW  # an unreadable or foreign record starts again
    return new in TRANSITIONS[current]


def check(current: str | None, new: str) -> None:
    if new not in STATUSES:
        raise LifecycleError(f"{new!r} is not a run status (one of {', '.join(STATUSES)})")
    if not allowed(current, new):
        raise LifecycleError(f"a run cannot go from {current or 'new'} to {new}")
