"""Models loaded in the background, before the Compare that needs them: a run's as it finishes, a
visitor's newest when their page opens. No gradio: the handlers and tests call these."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from rm_demo.app.state import Session, runs_root
from rm_demo.runs import list_runs
from rm_demo.score import get_scorer

log = logging.getLogger(__name__)

# One model loads in the background at a time: thirty pages opening at once (a room after a restart)
# loaded thirty models side by side, each slowed by the others and every click waiting on the GIL.
_preloader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preload-model")


def preload(model_path: str) -> Future:
    """Load a model into the scorer cache in the background (this session's run, as it completes),
    so that the first Compare against it does not wait for the load. Queued behind other preloads;
    a click that needs the model first loads it itself."""

    def load() -> None:
        try:
            get_scorer(model_path, background=True).compare(
                "What is a cactus?", "A plant that stores water.", "A fish."
            )
        except Exception:  # a model that cannot load says so on the click that needs it
            log.warning("could not preload %s", model_path, exc_info=True)

    return _preloader.submit(load)


def preload_own_run(session: Session) -> Future | None:
    """A page that opens (a reload, the app restarted) loads its visitor's newest finished model in the
    background: that visitor's first Compare is then as quick as any. Returns the load's future."""
    viewer = session.viewer()
    newest = next(
        (run for run in list_runs(runs_root()) if viewer.owns(run) and run.status in ("completed", "cancelled")),
        None,
    )
    if newest is None or not newest.has_model:
        return None
    return preload(str(newest.path / "model"))
