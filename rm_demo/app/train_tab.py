"""Step 3: train on the previewed pairs, with live curves, progress and a stop button.

Training receives exactly the reading and pairing settings the preview used (`Session.settings`).
The 1-second timer runs only while this session's run is queued or running.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr

from rm_demo import plots
from rm_demo.access import check_base_model
from rm_demo.app.data_tab import is_behind
from rm_demo.app.gpu_slices import drive_slices
from rm_demo.app.messages import problem
from rm_demo.app.run_view import progress_html, run_status_markdown
from rm_demo.app.state import Session, limits, runs_root
from rm_demo.app.train_form import TrainForm, epochs_note, gpu_note, preview_command, split_pairs, train_config
from rm_demo.app.train_layout import LOG_LINES, TrainTab
from rm_demo.errors import InputError
from rm_demo.jobs import JobStatus, cancel_job, job_status, requeue, start_job
from rm_demo.limits import check_start, prune_runs
from rm_demo.runs import RunFolder, RunRecord, checkpoint_step, create_run, list_runs, prepare_run
from rm_demo.settings import current
from rm_demo.text import MIN_HELD_OUT_PAIRS


def start_run(session: Session, form: TrainForm, screen: tuple | None = None) -> tuple[Session, str]:
    """Check everything (settings, this app's limits), then make a run folder of its own and queue the job.

    `screen`: the Data tab's settings as shown; a run never starts from a preview made with other ones
    (the button derives it again first: `data_tab.catch_up`)."""
    if not session.data_path or session.settings is None:
        return session, "Load data in step 1 first (a file whose pairs preview worked)."
    if screen is not None and is_behind(session, screen):
        return session, (
            "Cannot start: the pairs preview is not of the settings shown in step 1 (one of them is not valid, or "
            "the preview is still working). Check step 1's message, then Start again."
        )
    if not form.model():
        return (
            session,
            "Type a hub id (e.g. `distilroberta-base`) or a local model folder, or pick the embedded default.",
        )
    root, rules, owner = runs_root(), limits(), session.viewer().key
    try:
        check_base_model(root, form.model(), session.viewer())  # another visitor's run is not a base
        config = train_config(session, form)
        config.validate()
        prune_runs(root, rules.run_ttl_hours)
        check_start(config, len(split_pairs(session, config)[0]), rules, root, owner, session.address)
    except (InputError, ValueError) as exc:
        return session, problem(exc, "Cannot start")
    run_dir = create_run(root, session.data_name)
    try:  # the same start as the CLI's: the run folder keeps the exact data it trains on
        prepare_run(config, session.data_path, run_dir, owner=owner, address=session.address)
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        return session, problem(exc, "Cannot start: could not copy the data")
    if not current().zero_gpu:  # on ZeroGPU the click's second part drives its GPU slices (gpu_slices)
        start_job(run_dir)
    session.run_dir, session.run_seen_finished, session.metrics_seen = str(run_dir), False, -1
    note = " The pairs preview was first derived again with the settings shown in step 1." * session.preview_caught_up
    session.preview_caught_up = False
    return session, f"Started **{run_dir.name}** on {session.pairs} pairs.{note}"


def resumable_run(session: Session) -> RunRecord | None:
    """The run Resume acts on: this page's run if it can resume, else this visitor's newest run that can
    (after a reload or a restart of the app, from any of the owner's pages)."""
    viewer = session.viewer()
    if session.run_dir and Path(session.run_dir).is_dir():
        record = RunRecord.load(Path(session.run_dir))
        if record.resumable and viewer.can_change(record):
            return record
    return next((run for run in list_runs(runs_root()) if viewer.owns(run) and run.resumable), None)


def resume_run(session: Session) -> tuple[Session, str]:
    """Go on with a stopped or failed run from its last checkpoint; the curves continue."""
    record = resumable_run(session)
    if record is None:
        return session, "No stopped or failed run of yours has a checkpoint to resume from: start a new run."
    run = RunFolder(record.path)
    try:
        config = run.config()
        check_start(
            config, record.data.get("train_pairs") or 0, limits(), runs_root(), session.viewer().key, session.address
        )
    except (InputError, OSError, ValueError) as exc:
        return session, problem(exc, "Cannot resume")
    checkpoint = run.latest_checkpoint()
    step = checkpoint_step(checkpoint) if checkpoint else 0
    if current().zero_gpu:  # the click's second part drives its GPU slices (gpu_slices)
        requeue(run)
    else:
        start_job(run, resume=checkpoint is not None)
    session.run_dir, session.run_seen_finished, session.metrics_seen = str(run.path), False, -1
    return session, f"Resuming **{run.name}** from step {step}."


def after_run(session: Session):
    """When this session's run has just ended, the message under the buttons ("Started", "Stopping at the next
    step...") goes: the status above the curves says how it ended. On ZeroGPU the slice driver writes the
    message to the end, with its own last word (gpu_slices)."""
    return "" if session.just_finished and not current().zero_gpu else gr.skip()


def stop_run(session: Session) -> str:
    if not session.run_dir:
        return "No run to stop."
    if not cancel_job(session.run_dir):
        status = RunRecord.load(Path(session.run_dir)).status
        return f"**{Path(session.run_dir).name}** is not running (it is {status}): nothing to stop."
    return "Stopping at the next step..."


def reattach(session: Session) -> Session:
    """A reloaded page picks up this visitor's newest live run (never someone else's), else their
    newest run that can be resumed, so its state and the Resume button are there after a reload."""
    viewer = session.viewer()
    if not session.run_dir:
        own = [run for run in list_runs(runs_root()) if viewer.owns(run)]
        chosen = next((run for run in own if run.live), None) or next((run for run in own if run.resumable), None)
        session.run_dir = str(chosen.path) if chosen else None
        # A finished run shown again is not news: Compare keeps its pick, nothing says "just finished".
        session.run_seen_finished = bool(chosen) and not chosen.live
    return session


def form_notes(session: Session, *form) -> tuple[str, str, str]:
    """The notes under the form: the epochs the run will do, on ZeroGPU the GPU time it will spend, and the
    command Start runs."""
    values = TrainForm(*form)
    gpu = gpu_note(session, values) if current().zero_gpu else ""
    return epochs_note(session, values), gpu, preview_command(session, values)


def poll_outputs(session: Session, status: JobStatus) -> tuple:
    """What one timer tick shows: progress, status, curves, log. The curves are drawn again only when
    the metrics grew (a tick with nothing new sends no figures)."""
    changed = len(status.metrics) != session.metrics_seen or status.finished
    session.metrics_seen = len(status.metrics)
    curves = (
        (
            plots.loss_curves(status.metrics),
            plots.accuracy_curves(status.metrics, status.eval_pairs, MIN_HELD_OUT_PAIRS, status.curve_eval_pairs),
        )
        if changed
        else (gr.skip(), gr.skip())
    )
    return progress_html(status), run_status_markdown(status), *curves, last_lines(status.log_tail)


def last_lines(text: str, lines: int = LOG_LINES) -> str:
    """As many lines as the log box shows: a longer text showed its first lines, not its last."""
    return "\n".join(text.splitlines()[-lines:])


def tick(session: Session) -> tuple:
    """One timer tick: (session, *poll outputs, timer). The timer stops itself once the run has ended."""
    if not session.run_dir:
        return session, *[gr.skip()] * 5, gr.Timer(active=False)
    status = job_status(session.run_dir)
    session.just_finished = status.finished and not session.run_seen_finished
    session.run_seen_finished = session.run_seen_finished or status.finished
    return session, *poll_outputs(session, status), gr.Timer(active=not status.finished)


def wire(train: TrainTab, session, on_finished: list, screen: list, catch_up: tuple, on_started: list) -> None:
    """`on_finished`: (function of the session, outputs) pairs run after each tick; they act when
    `session.just_finished` says this tick saw the run end, and leave their outputs alone otherwise.
    `screen`: the Data tab's settings; `catch_up`: (function, outputs) that brings the preview up to them
    before a start. `on_started`: (function of the session, outputs) pairs run after each Start."""
    forms = len(train.form)

    def start(sess: Session, *values):
        sess, text = start_run(sess, TrainForm(*values[:forms]), tuple(values[forms:]))
        return sess, text, gr.Timer(active=bool(sess.run_dir) and text.startswith("Started"))

    started = train.start_btn.click(catch_up[0], [session, *screen], catch_up[1], show_progress="hidden").then(
        start, [session, *train.form, *screen], [session, train.message, train.timer], api_name="start_training"
    )
    for fn, outputs in on_started:
        started.then(fn, session, outputs, show_progress="hidden")
    train.stop_btn.click(stop_run, session, train.message)

    def resume(sess: Session):
        sess, text = resume_run(sess)
        return sess, text, gr.Timer(active=text.startswith("Resuming"))

    resumed = train.resume_btn.click(resume, session, [session, train.message, train.timer])
    if current().zero_gpu:  # each visitor's slices are their own GPU calls: the limits bound them, not a queue
        for event in (started, resumed):
            event.then(
                drive_slices, [session, train.on_gpu_quota], [train.message, train.timer], concurrency_limit=None
            )
    notes = [train.epochs_note, train.gpu_note, train.command]
    for control in train.form:  # every setting changes the command; some the epochs or the GPU time too
        control.change(form_notes, [session, *train.form], notes, show_progress="hidden")

    tick_event = train.timer.tick(
        tick, session, [session, *train.live_outputs, train.timer], show_progress="hidden", api_name="poll"
    )
    for fn, outputs in on_finished:
        tick_event = tick_event.then(fn, session, outputs, show_progress="hidden")
