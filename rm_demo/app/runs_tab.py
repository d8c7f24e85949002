"""Step 5: every run, their curves side by side, evaluation, scoring a file, export and delete."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.access import Viewer, open_run, visible_runs
from rm_demo.app.menus import menu
from rm_demo.app.messages import problem
from rm_demo.app.pairs_tab import cut_cells
from rm_demo.app.run_view import command_markdown
from rm_demo.app.state import DELIMITERS, ENCODINGS, Session, limits, max_upload_mb, runs_root
from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions
from rm_demo.runs import RunFolder, RunRecord, delete_run
from rm_demo.score import forget_scorer, get_scorer, read_answers, score_answers
from rm_demo.tables import write_table
from rm_demo.text import MIN_HELD_OUT_PAIRS, accuracy_phrase

RUN_COLUMNS = ["run", "status", "model", "data", "date", "held-out acc", "pairs", "held out", "minutes", "note"]
SCORED_PREVIEW_ROWS = 20


def runs_table(root: Path, viewer: Viewer) -> pd.DataFrame:
    rows = []
    for run in visible_runs(root, viewer):
        acc, runtime = run.metric("eval_accuracy"), run.metric("train_runtime_s")
        judged = run.judged_accuracy(MIN_HELD_OUT_PAIRS)
        rows.append(
            {
                "run": run.name,
                "status": run.status,
                "model": Path(run.model).name if run.model else "",
                "data": run.source_name,
                "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at)) if run.created_at else "",
                "held-out acc": accuracy_phrase(judged, run.held_out_pairs, short=True)
                if judged is not None
                else ("too few" if acc is not None else ""),
                "pairs": run.pairs_total,
                "held out": run.data.get("eval_pairs"),
                "minutes": round(runtime / 60, 1) if runtime is not None else None,
                "note": run.error or "",
            }
        )
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def run_names(root: Path, viewer: Viewer, with_model: bool = False) -> list[str]:
    return [r.name for r in visible_runs(root, viewer) if r.status != "unreadable" and (not with_model or r.has_model)]


def overlay(root: Path, names: list[str] | None, viewer: Viewer):
    paths = {name: open_run(root, name, viewer) for name in names or []}
    too_few = {}
    for name, path in paths.items():
        held_out = RunRecord.load(path).held_out_pairs
        if held_out is not None and held_out < MIN_HELD_OUT_PAIRS:
            too_few[name] = held_out
    return overlay_figures({name: RunFolder(path).metrics() for name, path in paths.items()}, too_few)


def overlay_picked(names, session: Session) -> tuple:
    """The overlay menu's change: both charts, or (a run that is not the visitor's, a menu value that is
    not a list of names) empty charts and the refusal in the message line, never text in a chart."""
    try:
        session.require_owner()
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise InputError("the overlay takes a list of run names", fix="pick runs from the menu")
        return (*overlay(runs_root(), names, session.viewer()), "")
    except InputError as exc:
        return (*overlay_figures({}), problem(exc))


def overlay_figures(metrics: dict[str, list[dict]], too_few: dict[str, int] | None = None) -> tuple:
    """Held-out accuracy and train loss of each run; with none, both say to pick runs. Runs in `too_few`
    held out too few pairs to be judged (the app's one small-sample rule): their accuracy is drawn faint."""
    return (
        plots.overlay_curves(metrics, "eval_accuracy", "Held-out accuracy by run", too_few),
        plots.overlay_curves(metrics, "loss", "Train loss by run"),
    )


def export_zip(root: Path, name: str, viewer: Viewer, work_dir: Path) -> str:
    from rm_demo.export import export_run

    return str(export_run(open_run(root, name, viewer), work_dir / f"{name}.zip"))


def remove_run(root: Path, name: str | None, confirmed: bool, viewer: Viewer) -> str:
    if not confirmed:
        return "Tick *I am sure* to delete."
    open_run(root, name, viewer, change=True)
    message = delete_run(root, name)
    forget_scorer()  # a cached model of the deleted run must not answer later
    return message


def score_view(
    root: Path, name: str | None, viewer: Viewer, path: str | None, encoding: str, delimiter: str, work_dir: Path
):
    """Score an uploaded table of (question, answer) rows: (message, preview, scored CSV path)."""
    if not path:
        raise InputError(
            "upload a CSV or JSONL of answers first", fix="it needs a question column and an answer column"
        )
    model = str(open_run(root, name, viewer) / "model") if name else "default"
    # The Data tab's bounds: bytes after decompression, then rows, all before any model runs.
    rules = limits()
    read = ReadOptions(
        encoding=encoding or "auto",
        delimiter=DELIMITERS.get(delimiter or "auto") if isinstance(delimiter, str) else None,
        max_bytes=int(max_upload_mb() * 1e6),
        max_rows=rules.max_score_rows,  # counted while reading, before the table is built
        max_cell_chars=rules.max_cell_chars,
    )
    table = read_answers(path, read)
    if len(table.frame) > limits().max_score_rows:
        raise InputError(
            f"{len(table.frame):,} rows is over this app's limit of {limits().max_score_rows:,}",
            source=table.source,
            fix="score a smaller file here, or any size with the CLI (python -m rm_demo score)",
        )
    scored = score_answers(get_scorer(model), table)
    out = work_dir / (Path(scored.source).stem + ".scored.csv")
    write_table(scored.frame, out)
    rewards = scored.frame["reward"]
    message = (
        f"Scored **{len(rewards)}** answers from `{scored.source}` with {name or 'the untrained base'} "
        f"(question ← `{scored.question_col}`, answer ← `{scored.answer_col}`): reward mean {rewards.mean():.3f}, "
        f"from {rewards.min():.3f} to {rewards.max():.3f}. The highest-scored answers first:"
    )
    preview = scored.frame[[scored.question_col, scored.answer_col, "reward"]].sort_values("reward", ascending=False)
    return message, cut_cells(preview.head(SCORED_PREVIEW_ROWS).round(4)), str(out)


def run_command(root: Path, name: str | None, viewer: Viewer) -> str:
    """The CLI line that trains the picked run again."""
    return command_markdown(RunRecord.load(open_run(root, name, viewer)).command).strip() if name else ""


def refresh(root: Path, viewer: Viewer) -> tuple:
    """The table, the overlay menu, and the run menus here and in the Evaluate tab (the newest run with
    a model preselected)."""
    finished = run_names(root, viewer, with_model=True)

    def newest():  # one update per menu: gradio consumes an update as it applies it
        return gr.update(choices=finished, value=finished[0] if finished else None)

    return runs_table(root, viewer), gr.update(choices=run_names(root, viewer)), newest(), newest()


# ---------------------------------------------------------------------------------------------
# Components


@dataclass
class RunsTab:
    refresh_btn: gr.Button
    table: gr.Dataframe
    overlay_pick: gr.Dropdown
    overlay_acc: gr.Plot
    overlay_loss: gr.Plot
    run_pick: gr.Dropdown
    zip_btn: gr.Button
    zip_file: gr.File
    score_upload: gr.File
    score_encoding: gr.Dropdown
    score_delimiter: gr.Dropdown
    score_btn: gr.Button
    score_message: gr.Markdown
    score_preview: gr.Dataframe
    scored_file: gr.File
    repo_id: gr.Textbox
    token: gr.Textbox
    push_btn: gr.Button
    sure: gr.Checkbox
    delete_btn: gr.Button
    message: gr.Markdown
    command: gr.Markdown

    @property
    def listing(self) -> list:
        return [self.table, self.overlay_pick, self.run_pick]

    @classmethod
    def build(cls) -> RunsTab:
        refresh_btn = gr.Button("↻ Refresh", scale=0)
        table = gr.Dataframe(
            pd.DataFrame(columns=RUN_COLUMNS),
            label="All runs",
            interactive=False,
            wrap=True,
            max_height=300,
            elem_id="runs-table",
            # wide enough for each header's longest word: "pairs" and "minutes" broke mid-word
            column_widths=["17%", "9%", "10%", "12%", "10%", "8%", "6%", "7%", "7%", "14%"],
        )
        overlay_pick = menu([], multiselect=True, label="Overlay curves of runs")
        with gr.Row():
            accuracy_empty, loss_empty = overlay_figures({})
            overlay_acc = gr.Plot(accuracy_empty, label="Accuracy", show_label=False)
            overlay_loss = gr.Plot(loss_empty, label="Loss", show_label=False)
        with gr.Row():
            run_pick = menu([], label="Run", scale=3, elem_id="run-pick")
            zip_btn = gr.Button("Export zip", scale=1)
            # shown once there is a zip: empty, it was a 270 px blank box beside a one-line row
            zip_file = gr.File(label="Run zip", scale=2, visible=False, elem_id="run-zip")
        command = gr.Markdown(elem_id="run-command")
        message = gr.Markdown(elem_id="runs-message")
        with gr.Accordion("Score a file of answers", open=False):
            with gr.Row():
                score_upload = gr.File(
                    label="CSV/JSONL with question and answer columns",
                    type="filepath",
                    scale=2,
                    elem_id="score-upload",
                )
                score_encoding = menu(ENCODINGS, value="auto", label="Encoding", scale=1)
                score_delimiter = menu(list(DELIMITERS), value="auto", label="Delimiter", scale=1)
            score_btn = gr.Button("Score with the run above (or the base model)", elem_id="score-btn")
            score_message = gr.Markdown(elem_id="score-message")
            score_preview = gr.Dataframe(interactive=False, wrap=True, max_height=300, visible=False)
            scored_file = gr.File(
                label="Scored CSV (every column kept, plus reward)", visible=False, elem_id="scored-file"
            )
        with gr.Accordion("Push to the Hugging Face Hub, or delete", open=False):
            with gr.Row():
                repo_id = gr.Textbox(label="Repo id", placeholder="you/my-reward-model")
                token = gr.Textbox(label="Write token", type="password")
                push_btn = gr.Button("Push", scale=0)
            with gr.Row():
                sure = gr.Checkbox(label="I am sure")
                delete_btn = gr.Button("Delete run", variant="stop", scale=0)
        return cls(
            refresh_btn,
            table,
            overlay_pick,
            overlay_acc,
            overlay_loss,
            run_pick,
            zip_btn,
            zip_file,
            score_upload,
            score_encoding,
            score_delimiter,
            score_btn,
            score_message,
            score_preview,
            scored_file,
            repo_id,
            token,
            push_btn,
            sure,
            delete_btn,
            message,
            command,
        )


def _guarded(fn, n_outputs: int):
    """Bad input becomes a message in the first output; the other outputs are cleared."""

    def call(*args):
        try:
            return fn(*args)
        except InputError as exc:
            text = problem(exc)
            return (text, *([None] * (n_outputs - 1))) if n_outputs > 1 else text

    return call


def wire(runs: RunsTab, session, listing: list) -> None:
    """`listing`: this tab's table and menus, then the other tabs' run menus the same refresh fills (the
    Evaluate tab's), in the order `refresh` returns them."""
    refresh_listing = (lambda sess: refresh(runs_root(), sess.viewer()), session, listing)
    runs.refresh_btn.click(*refresh_listing)
    runs.overlay_pick.change(
        overlay_picked, [runs.overlay_pick, session], [runs.overlay_acc, runs.overlay_loss, runs.message]
    )

    def zip_run(name, sess: Session):
        try:
            return gr.File(export_zip(runs_root(), name, sess.viewer(), sess.workdir()), visible=True), ""
        except InputError as exc:
            return gr.File(None, visible=False), problem(exc)

    runs.run_pick.change(
        _guarded(lambda name, sess: run_command(runs_root(), name, sess.viewer()), 1),
        [runs.run_pick, session],
        runs.command,
        show_progress="hidden",
    )
    # another run picked: the zip shown was the last one's
    runs.run_pick.change(lambda: gr.File(None, visible=False), None, runs.zip_file, show_progress="hidden")
    runs.zip_btn.click(zip_run, [runs.run_pick, session], [runs.zip_file, runs.message])

    def score(name, path, encoding, delimiter, sess: Session):
        try:
            sess.require_owner()
            message, preview, out = score_view(
                runs_root(), name, sess.viewer(), path, encoding, delimiter, sess.workdir()
            )
        except InputError as exc:
            return problem(exc, "Could not score this file"), gr.update(visible=False), gr.File(None, visible=False)
        return message, gr.update(value=preview, visible=True), gr.File(out, visible=True)

    runs.score_btn.click(
        score,
        [runs.run_pick, runs.score_upload, runs.score_encoding, runs.score_delimiter, session],
        [runs.score_message, runs.score_preview, runs.scored_file],
        api_name="score_file",
    )

    def push(name, repo, token, sess: Session):
        from rm_demo.export import push_to_hub

        return f"Pushed: {push_to_hub(open_run(runs_root(), name, sess.viewer(), change=True), repo, token)}"

    runs.push_btn.click(_guarded(push, 1), [runs.run_pick, runs.repo_id, runs.token, session], runs.message)
    runs.delete_btn.click(
        _guarded(lambda name, sure, sess: remove_run(runs_root(), name, sure, sess.viewer()), 1),
        [runs.run_pick, runs.sure, session],
        runs.message,
    ).then(*refresh_listing)


def after_run(session: Session) -> tuple:
    """When this session's run has just ended, the list shows it (once, not every tick)."""
    if not session.just_finished:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return refresh(runs_root(), session.viewer())
