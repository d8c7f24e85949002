"""The facilitator's view (only when the app was started with a facilitator secret): every run, the
queue, and stop, delete or share any run. Everyone else sees only a box for the secret."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm_demo.access import open_run, secret_matches
from rm_demo.app.menus import menu
from rm_demo.app.messages import problem
from rm_demo.app.state import Session, facilitator_secret, runs_root
from rm_demo.errors import InputError
from rm_demo.jobs import cancel_job, job_status
from rm_demo.runs import RunFolder, RunRecord, delete_run, list_runs

COLUMNS = ["run", "owner", "status", "queue", "data", "started", "shared"]


class GuessThrottle:
    """Wrong guesses of the secret, per visitor: after the n-th wrong guess that visitor waits 2^(n-1)
    seconds (at most 10 minutes) before a guess is even checked. Nothing sleeps, so a flood of guesses
    from some clients neither holds the app's workers nor delays the real facilitator's unlock (a
    shared one-second sleep did both: 14 s for the facilitator under a flood)."""

    def __init__(self, clock=time.monotonic, longest_s: float = 600.0):
        self.clock, self.longest_s = clock, longest_s
        self._failures: dict[str, tuple[int, float]] = {}  # visitor -> (wrong guesses, time of the last)
        self._lock = threading.Lock()

    def wait_s(self, visitor: str) -> float:
        with self._lock:
            failures, last = self._failures.get(visitor, (0, 0.0))
        if not failures:
            return 0.0
        return max(0.0, last + min(2.0 ** (failures - 1), self.longest_s) - self.clock())

    def failed(self, visitor: str) -> None:
        with self._lock:
            failures, _ = self._failures.get(visitor, (0, 0.0))
            self._failures[visitor] = (failures + 1, self.clock())
            if len(self._failures) > 100_000:  # a bound on memory: the oldest visitors go
                for key in list(self._failures)[:10_000]:
                    del self._failures[key]

    def succeeded(self, visitor: str) -> None:
        with self._lock:
            self._failures.pop(visitor, None)


guesses = GuessThrottle()


def unlock(session: Session, given: str) -> tuple[Session, str]:
    try:
        session.require_owner()
    except InputError as exc:
        return session, problem(exc)
    # Per page and per network address: a script that asks for a new id before each guess is still counted.
    keys = [session.owner] + ([f"address:{session.address}"] if session.address else [])
    wait = max(guesses.wait_s(key) for key in keys)
    if wait > 0:
        return session, f"**Too many wrong guesses from this page or address:** try again in {wait:.0f} s."
    session.facilitator = secret_matches(given, facilitator_secret())
    if not session.facilitator:
        for key in keys:
            guesses.failed(key)
        return session, "**That is not the facilitator secret.**"
    guesses.succeeded(session.owner)
    return session, "Unlocked: you see and control every run."


def _require(session: Session) -> None:
    if not session.facilitator:
        raise InputError("this view is for the facilitator", fix="unlock it with the secret given at launch")


def all_runs_table(session: Session) -> pd.DataFrame:
    _require(session)
    rows = []
    for run in list_runs(runs_root()):
        queue = job_status(run.path).queue_position if run.status == "queued" else None
        rows.append(
            {
                "run": run.name,
                "owner": run.owner[:8] or "(CLI)",
                "status": run.status,
                "queue": queue,
                "data": run.source_name,
                "started": time.strftime("%H:%M:%S", time.localtime(run.created_at)) if run.created_at else "",
                "shared": "yes" if run.shared else "",
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def stop_any(session: Session, name: str | None) -> str:
    _require(session)
    path = open_run(runs_root(), name, session.viewer(), change=True)
    if not cancel_job(path):  # finished, or its process is gone (then it now reads as failed)
        return f"**{name}** is not running (it is {RunRecord.load(path).status}): nothing to stop."
    return f"Stopping **{name}** at its next step."


def delete_any(session: Session, name: str | None, confirmed: bool) -> str:
    _require(session)
    if not confirmed:
        return "Tick *I am sure* to delete."
    open_run(runs_root(), name, session.viewer(), change=True)
    return delete_run(runs_root(), name)


def share(session: Session, name: str | None, shared: bool) -> str:
    """A shared run is an example every visitor sees and can compare, evaluate and score with."""
    _require(session)
    RunFolder(open_run(runs_root(), name, session.viewer(), change=True)).update(shared=shared)
    return f"**{name}** is {'now shared with everyone' if shared else 'private to its owner again'}."


@dataclass
class FacilitatorTab:
    secret: gr.Textbox
    unlock_btn: gr.Button
    message: gr.Markdown
    refresh_btn: gr.Button
    table: gr.Dataframe
    run_pick: gr.Dropdown
    stop_btn: gr.Button
    share_btn: gr.Button
    unshare_btn: gr.Button
    sure: gr.Checkbox
    delete_btn: gr.Button

    @classmethod
    def build(cls) -> FacilitatorTab:
        with gr.Row():
            secret = gr.Textbox(label="Facilitator secret", type="password", scale=3, elem_id="facilitator-secret")
            unlock_btn = gr.Button("Unlock", scale=1, elem_id="facilitator-unlock")
        message = gr.Markdown(elem_id="facilitator-message")
        refresh_btn = gr.Button("↻ Refresh", scale=0)
        table = gr.Dataframe(pd.DataFrame(columns=COLUMNS), label="Every run", interactive=False, elem_id="all-runs")
        with gr.Row():
            run_pick = menu([], label="Run", scale=3)
            stop_btn = gr.Button("Stop", variant="stop", scale=1)
            share_btn = gr.Button("Share as example", scale=1)
            unshare_btn = gr.Button("Unshare", scale=1)
        with gr.Row():
            sure = gr.Checkbox(label="I am sure")
            delete_btn = gr.Button("Delete run", variant="stop", scale=0)
        return cls(
            secret,
            unlock_btn,
            message,
            refresh_btn,
            table,
            run_pick,
            stop_btn,
            share_btn,
            unshare_btn,
            sure,
            delete_btn,
        )


def wire(tab: FacilitatorTab, session) -> None:
    def listing(sess: Session):
        try:
            table = all_runs_table(sess)
        except InputError:
            return pd.DataFrame(columns=COLUMNS), gr.update(choices=[])
        return table, gr.update(choices=list(table["run"]))

    def act(fn):
        def call(sess: Session, *args):
            try:
                return fn(sess, *args)
            except InputError as exc:
                return problem(exc)

        return call

    tab.unlock_btn.click(unlock, [session, tab.secret], [session, tab.message]).then(
        listing, session, [tab.table, tab.run_pick]
    )
    tab.refresh_btn.click(listing, session, [tab.table, tab.run_pick])
    for button, fn, extra in (
        (tab.stop_btn, stop_any, []),
        (tab.delete_btn, delete_any, [tab.sure]),
        (tab.share_btn, lambda s, n: share(s, n, True), []),
        (tab.unshare_btn, lambda s, n: share(s, n, False), []),
    ):
        button.click(act(fn), [session, tab.run_pick, *extra], tab.message).then(
            listing, session, [tab.table, tab.run_pick]
        )
