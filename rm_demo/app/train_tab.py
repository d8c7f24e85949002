"""Step 3: train on the previewed pairs, with live curves, progress and a stop button.

Training receives exactly the reading and pairing settings the preview used (`Session.settings`).
The 1-second timer runs only while this session's run is queued or running.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.app.run_view import progress_html, run_status_markdown
from rm_demo.app.state import Session, limits, number_or_none, runs_root
from rm_demo.config import TrainConfig, default, label, planned_epochs
from rm_demo.errors import InputError
from rm_demo.jobs import JobStatus, cancel_job, job_status, start_job
from rm_demo.limits import check_start, prune_runs
from rm_demo.runs import MIN_HELD_OUT_PAIRS, RunFolder, RunRecord, create_run, list_runs

EMBEDDED, CUSTOM = "embedded default", "hub id or local folder"


@dataclass
class TrainForm:
    """The Train tab's controls, as plain values."""

    model_choice: str = EMBEDDED
    custom_model: str = ""
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: float | None = None
    max_length: float | None = None
    eval_fraction: float | None = None
    lora: bool = False

    def model(self) -> str:
        return "default" if self.model_choice == EMBEDDED else (self.custom_model or "").strip()


def train_config(session: Session, form: TrainForm, run_dir: Path) -> TrainConfig:
    """The run's config: the form's numbers (blank = the default) and the preview's own settings."""

    def pick(value, name, kind=float):
        return default(name) if number_or_none(value) is None else kind(value)

    pairing = session.settings.pair_options()
    return TrainConfig(
        input=str(run_dir / data_copy_name(session.data_name)),
        output_dir=str(run_dir),
        model=form.model(),
        epochs=pick(form.epochs, "epochs"),
        learning_rate=pick(form.learning_rate, "learning_rate"),
        batch_size=pick(form.batch_size, "batch_size", int),
        max_length=pick(form.max_length, "max_length", int),
        eval_fraction=pick(form.eval_fraction, "eval_fraction"),
        lora=bool(form.lora),
        strategy=pairing.strategy,
        chosen_min=pairing.chosen_min,
        rejected_max=pairing.rejected_max,
        min_margin=pairing.min_margin,
        max_pairs_per_question=pairing.max_pairs_per_question,
        read_options=session.read_options_dict(),
        source_name=session.data_name or "",
        owner=session.viewer().key,
    )


def data_copy_name(data_name: str | None) -> str:
    """The run keeps a copy of its data; the suffixes matter (".csv.gz"), the name does not."""
    suffixes = [s for s in Path(data_name or "data.csv").suffixes[-2:] if s[1:].isalnum()]
    return "data" + "".join(suffixes or [".csv"])


def start_run(session: Session, form: TrainForm) -> tuple[Session, str]:
    """Check everything (settings, this app's limits), then make a run folder of its own and queue the job."""
    if not session.data_path or session.settings is None:
        return session, "Load data in step 1 first (a file whose pairs preview worked)."
    if not form.model():
        return (
            session,
            "Type a hub id (e.g. `distilroberta-base`) or a local model folder, or pick the embedded default.",
        )
    root, rules = runs_root(), limits()
    try:
        config = train_config(session, form, Path("."))
        config.validate()
        prune_runs(root, rules.run_ttl_hours)
        check_start(config, len(split_pairs(session, config)[0]), rules, root, config.owner)
    except (InputError, ValueError) as exc:
        return session, f"**Cannot start:** {exc}"
    run_dir = create_run(root, session.data_name)
    config = train_config(session, form, run_dir)
    try:
        shutil.copyfile(session.data_path, config.input)  # the run folder keeps the exact data it trained on
    except OSError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        return session, f"**Cannot start:** could not copy the data ({exc.strerror or exc})."
    start_job(config)
    session.run_dir, session.run_seen_finished, session.metrics_seen = str(run_dir), False, -1
    return session, f"Started **{run_dir.name}**."


def split_pairs(session: Session, config: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The session's pairs split as training will split them: (train, held out)."""
    from rm_demo.train import split_by_question

    pairs = pd.read_json(session.pairs_jsonl, lines=True, dtype=False) if session.pairs_jsonl else pd.DataFrame()
    if pairs.empty:
        return pairs, pairs
    return split_by_question(pairs, config.eval_fraction, config.seed)


def resume_run(session: Session) -> tuple[Session, str]:
    """Go on with this session's stopped or failed run from its last checkpoint; the curves continue."""
    from rm_demo.train import latest_checkpoint

    run = RunFolder(session.run_dir) if session.run_dir else None
    record = RunRecord.load(run.path) if run else None
    if record is None or record.status not in ("cancelled", "failed"):
        return session, "Only a stopped or failed run can be resumed."
    if latest_checkpoint(run) is None:
        return session, "This run has no checkpoint to resume from: start it again."
    try:
        config = TrainConfig.from_json((run.path / "config.json").read_text(encoding="utf-8"))
        check_start(config, record.data.get("train_pairs") or 0, limits(), runs_root(), config.owner)
    except (InputError, OSError, ValueError) as exc:
        return session, f"**Cannot resume:** {exc}"
    start_job(config, resume=True)
    session.run_seen_finished, session.metrics_seen = False, -1
    return session, f"Resuming **{run.name}** from step {latest_checkpoint(run).name.rsplit('-', 1)[1]}."


def stop_run(session: Session) -> str:
    if not session.run_dir:
        return "No run to stop."
    cancel_job(session.run_dir)
    return "Stopping at the next step..."


def epochs_note(session: Session, form: TrainForm) -> str:
    """Say when the minimum-steps rule will raise the epochs (tiny data sets), before Start."""
    if not session.pairs_jsonl or not session.pairs or not Path(session.pairs_jsonl).exists():
        return ""
    try:
        config = train_config(session, form, Path("."))
    except (TypeError, ValueError, InputError):
        return ""
    train_pairs, held_out = split_pairs(session, config)
    planned = planned_epochs(config, len(train_pairs))
    note = f"{len(train_pairs)} training pairs, {len(held_out)} held out."
    if planned > config.epochs:
        note += (
            f" With so few pairs, training runs at least {config.min_steps} steps: "
            f"**{planned:g} epochs** instead of {config.epochs:g}."
        )
    return note


def reattach(session: Session) -> Session:
    """A reloaded page picks up this visitor's newest live run (never someone else's)."""
    viewer = session.viewer()
    if not session.run_dir:
        live = next((run for run in list_runs(runs_root()) if run.live and viewer.owns(run)), None)
        session.run_dir = str(live.path) if live else None
    return session


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
    return progress_html(status), run_status_markdown(status), *curves, status.log_tail


def tick(session: Session) -> tuple:
    """One timer tick: (session, *poll outputs, timer). The timer stops itself once the run has ended."""
    if not session.run_dir:
        return session, *[gr.skip()] * 5, gr.Timer(active=False)
    status = job_status(session.run_dir)
    session.just_finished = status.finished and not session.run_seen_finished
    session.run_seen_finished = session.run_seen_finished or status.finished
    return session, *poll_outputs(session, status), gr.Timer(active=not status.finished)


# ---------------------------------------------------------------------------------------------
# Components


@dataclass
class TrainTab:
    model_choice: gr.Radio
    custom_model: gr.Textbox | gr.Dropdown
    epochs: gr.Number
    learning_rate: gr.Number
    batch_size: gr.Number
    max_length: gr.Number
    eval_fraction: gr.Slider
    lora: gr.Checkbox
    epochs_note: gr.Markdown
    start_btn: gr.Button
    stop_btn: gr.Button
    resume_btn: gr.Button
    message: gr.Markdown
    progress: gr.HTML
    status: gr.Markdown
    loss_plot: gr.Plot
    acc_plot: gr.Plot
    log_tail: gr.Textbox
    go_compare: gr.Button
    timer: gr.Timer

    @property
    def form(self) -> list:
        return [
            self.model_choice,
            self.custom_model,
            self.epochs,
            self.learning_rate,
            self.batch_size,
            self.max_length,
            self.eval_fraction,
            self.lora,
        ]

    @property
    def live_outputs(self) -> list:
        return [self.progress, self.status, self.loss_plot, self.acc_plot, self.log_tail]

    @classmethod
    def build(cls, device_name: str) -> TrainTab:
        gr.Markdown(f"Training runs on: **{device_name}**", elem_id="device")
        with gr.Row():
            model_choice = gr.Radio(
                [EMBEDDED, CUSTOM], value=EMBEDDED, label="Model", info="The embedded all-MiniLM-L6-v2 works offline"
            )
            rules = limits()
            if rules.public:  # a public app offers its allowlist, never a free-text path
                offered = [m for m in rules.models if m != "default"]
                custom_model = gr.Dropdown(offered, value=offered[0] if offered else None, label="Offered models")
            else:
                custom_model = gr.Textbox(
                    label="Hub id or folder", placeholder="e.g. distilroberta-base or /path/to/model"
                )
        with gr.Row():
            epochs = gr.Number(default("epochs"), label=label("epochs"), minimum=0.1, elem_id="epochs")
            learning_rate = gr.Number(default("learning_rate"), label=label("learning_rate"))
            batch_size = gr.Number(
                default("batch_size"), label=label("batch_size"), precision=0, minimum=1, elem_id="batch-size"
            )
            max_length = gr.Number(default("max_length"), label=label("max_length"), precision=0, minimum=16)
            eval_fraction = gr.Slider(0, 0.5, value=default("eval_fraction"), step=0.05, label=label("eval_fraction"))
            lora = gr.Checkbox(default("lora"), label=label("lora"))
        epochs_note = gr.Markdown(elem_id="epochs-note")
        with gr.Row():
            start_btn = gr.Button("Start training", variant="primary", elem_id="start-train")
            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-train")
            resume_btn = gr.Button("Resume", elem_id="resume-train")
        message = gr.Markdown(elem_id="train-message")
        progress = gr.HTML(elem_id="train-progress")
        status = gr.Markdown(elem_id="run-status")
        with gr.Row():
            loss_plot = gr.Plot(
                plots.placeholder(plots.LOSS_TITLE, "start a run to see its curves"),
                label="Loss",
                show_label=False,
                elem_id="loss-plot",
            )
            acc_plot = gr.Plot(
                plots.placeholder(plots.ACCURACY_TITLE, "start a run to see its curves"),
                label="Accuracy",
                show_label=False,
                elem_id="acc-plot",
            )
        log_tail = gr.Textbox(label="Log (last lines)", lines=6, max_lines=6, autoscroll=True)
        go_compare = gr.Button("Compare answers →")
        timer = gr.Timer(1.0, active=False)
        return cls(
            model_choice,
            custom_model,
            epochs,
            learning_rate,
            batch_size,
            max_length,
            eval_fraction,
            lora,
            epochs_note,
            start_btn,
            stop_btn,
            resume_btn,
            message,
            progress,
            status,
            loss_plot,
            acc_plot,
            log_tail,
            go_compare,
            timer,
        )


def wire(train: TrainTab, session, on_finished: list) -> None:
    """`on_finished`: (function of the session, outputs) pairs run after each tick; they act when
    `session.just_finished` says this tick saw the run end, and leave their outputs alone otherwise."""

    def start(sess: Session, *form):
        sess, text = start_run(sess, TrainForm(*form))
        return sess, text, gr.Timer(active=bool(sess.run_dir) and text.startswith("Started"))

    train.start_btn.click(
        start, [session, *train.form], [session, train.message, train.timer], api_name="start_training"
    )
    train.stop_btn.click(stop_run, session, train.message)

    def resume(sess: Session):
        sess, text = resume_run(sess)
        return sess, text, gr.Timer(active=text.startswith("Resuming"))

    train.resume_btn.click(resume, session, [session, train.message, train.timer])
    for control in (train.epochs, train.batch_size, train.eval_fraction):
        control.change(
            lambda s, *f: epochs_note(s, TrainForm(*f)),
            [session, *train.form],
            train.epochs_note,
            show_progress="hidden",
        )

    tick_event = train.timer.tick(
        tick, session, [session, *train.live_outputs, train.timer], show_progress="hidden", api_name="poll"
    )
    for fn, outputs in on_finished:
        tick_event = tick_event.then(fn, session, outputs, show_progress="hidden")
