"""The Gradio app: upload -> preview pairs -> train with live plots -> compare two answers.

Handlers are thin: they call the same library functions as the CLI (`pairs_from_file`,
`jobs.start_job`, `Scorer`) and turn results into components. Per-browser state (the data file,
the pairs, the selected run) lives in `gr.State`; the only module-level thing is a cache of loaded
scoring models, which holds no user data.
"""

from __future__ import annotations

import argparse
import functools
import html
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from rm_demo import plots
from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions, delimiter_name
from rm_demo.models import choose_device
from rm_demo.pairs import DROP_REASONS, PairOptions, PairsResult, pairs_from_file, write_pairs
from rm_demo.runs import RunFolder, list_runs

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLES = {"seed": ASSETS / "seed_feedback.csv", "workshop": ASSETS / "workshop_feedback.csv"}
ENCODINGS = ["auto", "utf-8", "utf-8-sig", "utf-16", "cp1252", "mac_roman", "latin-1"]
DELIMITERS = {"auto": None, "comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
AUTO = "(auto)"
BASE_MODEL_LABEL = "untrained base (embedded MiniLM)"


def runs_root() -> Path:
    return Path(os.environ.get("RM_DEMO_RUNS", "runs"))


def max_upload_mb() -> float:
    return float(os.environ.get("RM_DEMO_MAX_UPLOAD_MB", "50"))


@dataclass
class Session:
    """One browser's state. Plain data: Gradio deep-copies it per session."""

    data_path: str | None = None
    data_name: str | None = None
    work_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="rm_demo_"))
    pairs_jsonl: str | None = None
    pairs_csv: str | None = None
    run_dir: str | None = None
    example_index: int = 0


# ---------------------------------------------------------------------------------------------
# Step 1-2: data -> pairs


@dataclass
class DataView:
    ok: bool
    message: str
    summary: str = ""
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    columns: list[str] = field(default_factory=list)
    figures: tuple = ()
    result: PairsResult | None = None


def _num(value) -> float | None:
    if value is None or value == "":
        return None
    return float(value)


def derive_view(path: str | None, name: str | None, encoding: str, delimiter: str, question_col: str, answer_col: str, score_col: str,
                strategy: str, chosen_min, rejected_max, min_margin) -> DataView:
    """Read the file with the chosen settings and derive pairs; errors become a message."""
    if not path:
        return DataView(False, "Upload a feedback file, or click a sample.")
    size_mb = os.path.getsize(path) / 1e6
    if size_mb > max_upload_mb():
        return DataView(False, f"**{name}** is {size_mb:.0f} MB; the limit here is {max_upload_mb():.0f} MB. "
                        "Use the CLI (`python -m rm_demo pairs`) for big files, or raise RM_DEMO_MAX_UPLOAD_MB.")
    pick = lambda v: None if v in (None, "", AUTO) else v  # noqa: E731
    read = ReadOptions(encoding=encoding or "auto", delimiter=DELIMITERS.get(delimiter or "auto"),
                       question_col=pick(question_col), answer_col=pick(answer_col), score_col=pick(score_col))
    try:
        options = PairOptions(strategy=strategy, chosen_min=_num(chosen_min), rejected_max=_num(rejected_max), min_margin=_num(min_margin) or 0.0)
        result = pairs_from_file(path, read, options, name=name)
    except InputError as exc:
        return DataView(False, "**Could not use this file.** " + str(exc).replace("\n", "  \n"), columns=_columns_of(path, read, name))
    r = result.report
    mapping = ", ".join(f"{role} ← `{col}`" for role, col in r.column_mapping.items())
    message = (
        f"**{r.source}**: {r.format.upper()}, encoding **{r.encoding}**{' (detected)' if r.encoding_detected else ''}"
        + (f", delimiter **{delimiter_name(r.delimiter)}**" if r.delimiter else "")
        + f"  \nColumns: {mapping}"
        + (f"; ignored: {', '.join(f'`{c}`' for c in r.ignored_columns)}" if r.ignored_columns else "")
    )
    return DataView(True, message, summary=accounting_markdown(result), pairs=result.pairs, dropped=dropped_table(result),
                    columns=[c for c in r.column_mapping.values()] + list(r.ignored_columns), result=result,
                    figures=(plots.score_distribution(r.score_distribution), plots.answers_per_question(result.rows), plots.margins(result.pairs)))


def _columns_of(path: str, read: ReadOptions, name: str | None) -> list[str]:
    """The file's column names, so the menus can offer them when automatic mapping failed."""
    from rm_demo.feedback import read_table

    try:
        return [c for c in read_table(path, read, name=name).frame.columns if c != "row"]
    except InputError:
        return []


def accounting_markdown(result: PairsResult) -> str:
    r = result.report
    lines = [
        f"### {r.pairs} pairs from {r.questions} questions",
        f"**{r.rows_read}** rows read = **{r.rows_used}** used + **{r.rows_dropped}** dropped ({r.strategy}"
        + (f", chosen ≥ {r.chosen_min:g}, rejected < {r.rejected_max:g}" if r.chosen_min is not None and r.rejected_max is not None else "")
        + ")",
    ]
    if r.dropped:
        lines.append("")
        lines.append("| dropped | rows | why |")
        lines.append("|---|---:|---|")
        lines.extend(f"| `{reason}` | {count} | {DROP_REASONS[reason]} |" for reason, count in r.dropped.items())
    if r.scale_note:
        lines.append(f"\n> ⚠️ {r.scale_note}")
    lines.extend(f"\n> {note}" for note in r.notes)
    return "\n".join(lines)


def dropped_table(result: PairsResult) -> pd.DataFrame:
    dropped = result.dropped_rows
    keep = [c for c in ("row", "status", "question", "answer", "score", "chosen", "rejected") if c in dropped]
    table = dropped[keep].copy()
    table["status"] = table["status"].astype(str)
    return table.rename(columns={"status": "reason"}).reset_index(drop=True)


def pairs_table(pairs: pd.DataFrame) -> pd.DataFrame:
    cols = ["prompt", "chosen", "rejected", "chosen_score", "rejected_score", "margin"]
    return pairs[cols].reset_index(drop=True) if len(pairs) else pd.DataFrame(columns=cols)


def export_pairs(session: Session, pairs: pd.DataFrame) -> Session:
    stem = Path(session.data_name or "feedback").stem
    session.pairs_jsonl = str(Path(session.work_dir) / f"{stem}.pairs.jsonl")
    session.pairs_csv = str(Path(session.work_dir) / f"{stem}.pairs.csv")
    write_pairs(pairs, session.pairs_jsonl)
    write_pairs(safe_for_spreadsheets(pairs), session.pairs_csv)
    return session


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """Neutralise cells a spreadsheet would run as a formula (= + - @ at the start)."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            text = out[col].astype(str)
            risky = text.str.match(r"^[=+\-@\t\r]")
            out[col] = text.where(~risky, "'" + text)
    return out


# ---------------------------------------------------------------------------------------------
# Step 3: training


def start_run(session: Session, model_choice: str, custom_model: str, epochs, lr, batch_size, max_length, eval_fraction, lora: bool,
              strategy: str, chosen_min, rejected_max, min_margin) -> tuple[Session, str]:
    from rm_demo.jobs import start_job
    from rm_demo.train import TrainConfig

    if not session.data_path:
        return session, "Load data in step 1 first."
    model = "default" if model_choice == "embedded default" else (custom_model or "").strip()
    if not model:
        return session, "Type a hub id (e.g. `distilroberta-base`) or a local model folder, or pick the embedded default."
    name = time.strftime("%Y%m%d-%H%M%S") + "-" + Path(session.data_name or "data").stem[:24].replace(" ", "_")
    run_dir = runs_root() / name
    run_dir.mkdir(parents=True, exist_ok=True)
    data_copy = run_dir / ("data" + "".join(Path(session.data_name or "data.csv").suffixes[-2:]))
    shutil.copyfile(session.data_path, data_copy)  # the run folder keeps the exact data it trained on
    try:
        config = TrainConfig(input=str(data_copy), output_dir=str(run_dir), model=model, epochs=float(epochs), learning_rate=float(lr),
                             batch_size=int(batch_size), max_length=int(max_length), eval_fraction=float(eval_fraction), lora=bool(lora),
                             strategy=strategy, chosen_min=_num(chosen_min), rejected_max=_num(rejected_max), min_margin=_num(min_margin) or 0.0)
        config.validate()
    except (InputError, ValueError) as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        return session, f"**Cannot start:** {exc}"
    start_job(config)
    session.run_dir = str(run_dir)
    return session, f"Started **{name}**."


def stop_run(session: Session) -> str:
    from rm_demo.jobs import cancel_job

    if not session.run_dir:
        return "No run to stop."
    cancel_job(session.run_dir)
    return "Stopping at the next step..."


def active_run() -> str | None:
    """The run a fresh page should show: the newest running or queued one."""
    for run in list_runs(runs_root()):
        if run.status in ("running", "queued"):
            return str(run.path)
    return None


def progress_html(status) -> str:
    pct = 100 * status.progress
    eta = f", about {int(status.eta_s // 60)} min {int(status.eta_s % 60)} s left" if status.eta_s and not status.finished else ""
    label = {"queued": f"queued (position {status.queue_position}): waiting for the device",
             "running": f"step {status.step} of {status.max_steps or '?'}{eta}",
             "completed": "finished", "cancelled": "stopped", "failed": "failed"}.get(status.status, status.status)
    color = {"failed": "#c62828", "cancelled": "#8d6e63", "completed": "#2e7d32"}.get(status.status, "#1565c0")
    return (
        f'<div style="font-size:14px;margin-bottom:4px"><b>{html.escape(status.name)}</b>: {html.escape(label)}</div>'
        f'<div style="background:#e0e0e0;border-radius:6px;height:14px;width:100%">'
        f'<div id="rm-progress" data-status="{status.status}" style="background:{color};height:14px;border-radius:6px;width:{pct:.1f}%"></div></div>'
    )


def run_status_markdown(status) -> str:
    parts = [f"**Run** `{status.name}` · status **{status.status}**"]
    if status.device_name:
        parts.append(f"device: {status.device_name}")
    if status.error:
        parts.append(f"\n\n**Error:** {status.error}")
    fm = status.final_metrics or {}
    if status.status in ("completed", "cancelled") and fm.get("eval_accuracy") is not None:
        few = fm.get("eval_pairs") is not None and fm["eval_pairs"] < 20
        parts.append(f"\n\nHeld-out accuracy **{fm['eval_accuracy']:.1%}**"
                     + (f" (on only {fm['eval_pairs']} held-out pair{'s' if fm['eval_pairs'] != 1 else ''}: too few to judge the model)" if few else "")
                     + f", mean reward margin {fm.get('eval_margin') or 0:.3f}, {fm.get('steps')} steps"
                     + (f" (the saved model is the mean of the weights at the last {fm['averaged_epochs']} epoch ends)" if (fm.get("averaged_epochs") or 1) > 1 else "")
                     + ". The model is ready in step 4.")
    elif status.status == "completed":
        parts.append("\n\nDone (no held-out questions to measure). The model is ready in step 4.")
    return " · ".join(parts[:2]) + "".join(parts[2:])


# ---------------------------------------------------------------------------------------------
# Step 4: compare

_scorer_lock = threading.Lock()


@functools.lru_cache(maxsize=3)
def _cached_scorer(model: str):
    from rm_demo.score import Scorer

    return Scorer(model)


def get_scorer(model: str):
    """Models stay loaded between clicks (a small cache shared by sessions: it holds no user data)."""
    with _scorer_lock:
        return _cached_scorer(model)


def model_choices() -> list[tuple[str, str]]:
    choices = [(BASE_MODEL_LABEL, "default")]
    for run in list_runs(runs_root()):
        if run.status in ("completed", "cancelled") and (run.path / "model" / "config.json").exists():
            acc = run.final_metrics.get("eval_accuracy")
            label = f"{run.name}" + (f" · held-out acc {acc:.0%}" if acc is not None else "")
            choices.append((label, str(run.path / "model")))
    return choices


def compare_answers(model: str, question: str, answer_a: str, answer_b: str):
    if not (question or "").strip() or not (answer_a or "").strip() or not (answer_b or "").strip():
        raise InputError("fill in the question and both answers")
    return get_scorer(model or "default").compare(question.strip(), answer_a.strip(), answer_b.strip())


# ---------------------------------------------------------------------------------------------
# Step 5: runs (history, evaluation, scoring, export)


def runs_table() -> pd.DataFrame:
    rows = []
    for run in list_runs(runs_root()):
        info = RunFolder(run.path).read()
        acc = run.final_metrics.get("eval_accuracy")
        rows.append({
            "run": run.name, "status": run.status, "model": Path(run.model).name if run.model else "",
            "data": (info.get("data") or {}).get("source", ""),
            "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created_at)) if run.created_at else "",
            "held-out acc": round(acc, 3) if acc is not None else None,
            "pairs": (info.get("data") or {}).get("train_pairs"),
            "minutes": round(run.final_metrics["train_runtime_s"] / 60, 1) if run.final_metrics.get("train_runtime_s") else None,
            "note": run.error or "",
        })
    return pd.DataFrame(rows, columns=["run", "status", "model", "data", "date", "held-out acc", "pairs", "minutes", "note"])


def run_names(finished_only: bool = False) -> list[str]:
    return [r.name for r in list_runs(runs_root()) if r.status != "unreadable" and (not finished_only or (r.path / "model" / "config.json").exists())]


def _run_path(name: str) -> Path:
    path = (runs_root() / name).resolve()
    if not name or path.parent != runs_root().resolve() or not path.is_dir():
        raise InputError(f"no run named {name!r}", fix="pick a run from the list")
    return path


def overlay(names: list[str]):
    metrics = {name: RunFolder(_run_path(name)).metrics() for name in names or []}
    return plots.overlay_curves(metrics, "eval_accuracy", "Held-out accuracy by run"), plots.overlay_curves(metrics, "loss", "Train loss by run")


def evaluate_view(name: str):
    from rm_demo.evaluate import evaluate_run, load_eval

    path = _run_path(name)
    report = load_eval(path) or evaluate_run(path)
    if not report.get("pairs"):
        return "This run held out no questions, so there is nothing to evaluate.", None, None, pd.DataFrame()
    base = report.get("base", {})
    summary = (f"**{name}**: held-out accuracy **{report['accuracy']:.1%}** on {report['pairs']} pairs "
               f"(untrained base: {base.get('accuracy', float('nan')):.1%}); mean reward margin {report['mean_margin']:.3f} "
               f"(base {base.get('mean_margin', float('nan')):.3f}).")
    mistakes = pd.DataFrame(report["worst_mistakes"], columns=["prompt", "chosen", "rejected", "reward_chosen", "reward_rejected", "margin"])
    return (summary, plots.reward_histograms(report["rewards"]["chosen"], report["rewards"]["rejected"]),
            plots.calibration_chart(report["calibration"]), mistakes)


def export_zip(name: str, work_dir: str) -> str:
    from rm_demo.export import export_run

    return str(export_run(_run_path(name), Path(work_dir) / f"{name}.zip"))


def delete_run(name: str, confirmed: bool) -> str:
    if not confirmed:
        return "Tick *I am sure* to delete."
    path = _run_path(name)
    if RunFolder(path).read().get("status") in ("running", "queued"):
        return "Stop the run before deleting it."
    shutil.rmtree(path)
    return f"Deleted **{name}**."


def score_file(model: str, path: str | None, work_dir: str) -> str:
    """Score an uploaded CSV of (question, answer) rows; returns the path of the scored CSV."""
    from rm_demo.feedback import find_column, normalize_answer, normalize_question, read_table

    if not path:
        raise InputError("upload a CSV of answers first")
    table = read_table(path)
    frame = table.frame.drop(columns="row")
    q_col = find_column(list(frame.columns), "question", None, table.source)
    a_col = find_column(list(frame.columns), "answer", None, table.source)
    rewards = get_scorer(model or "default").score(list(normalize_question(frame[q_col])), list(normalize_answer(frame[a_col])))
    out = Path(work_dir) / (Path(table.source).stem + ".scored.csv")
    safe_for_spreadsheets(frame.assign(reward=rewards)).to_csv(out, index=False)
    return str(out)


# ---------------------------------------------------------------------------------------------
# Wiring


def build_app():
    import gradio as gr

    device = choose_device()

    with gr.Blocks(title="Reward Model Studio") as demo:
        session = gr.State(lambda: Session())
        gr.Markdown(
            "# Reward Model Studio\n"
            "Turn `question, answer, score` feedback into a trained reward model: **1** load data → **2** check the pairs → "
            "**3** train → **4** compare two answers."
        )
        with gr.Tabs() as tabs:
            # ---- 1. Data -------------------------------------------------------------------
            with gr.Tab("1 · Data", id="data"):
                with gr.Row():
                    with gr.Column(scale=3):
                        upload = gr.File(label="Feedback file (CSV, TSV, JSONL, JSON; question, answer, score)",
                                         file_types=[".csv", ".tsv", ".txt", ".jsonl", ".json", ".gz"], type="filepath")
                        with gr.Row():
                            seed_btn = gr.Button("Use the sample (the article's 6 rows)", variant="primary", elem_id="use-seed")
                            workshop_btn = gr.Button("Use the workshop sample (47 rows)", elem_id="use-workshop")
                    with gr.Column(scale=4):
                        data_message = gr.Markdown("Upload a feedback file, or click a sample.", elem_id="data-message")
                with gr.Accordion("Reading and pairing settings", open=True):
                    with gr.Row():
                        encoding = gr.Dropdown(ENCODINGS, value="auto", label="Encoding")
                        delimiter = gr.Dropdown(list(DELIMITERS), value="auto", label="Delimiter")
                        question_col = gr.Dropdown([AUTO], value=AUTO, label="Question column", allow_custom_value=True)
                        answer_col = gr.Dropdown([AUTO], value=AUTO, label="Answer column", allow_custom_value=True)
                        score_col = gr.Dropdown([AUTO], value=AUTO, label="Score column", allow_custom_value=True)
                    with gr.Row():
                        strategy = gr.Radio(["best-worst", "all-pairs"], value="best-worst", label="Pairs",
                                            info="best-worst: one pair per question (the article's rule); all-pairs: every pair with a score gap")
                        chosen_min = gr.Number(value=4, label="Chosen score at least")
                        rejected_max = gr.Number(value=4, label="Rejected score below")
                        min_margin = gr.Number(value=1, label="Minimum gap (all-pairs)")
                go_pairs = gr.Button("See the pairs →")

            # ---- 2. Pairs ------------------------------------------------------------------
            with gr.Tab("2 · Pairs", id="pairs"):
                summary = gr.Markdown("Load data in step 1.", elem_id="pairs-summary")
                pairs_df = gr.Dataframe(label="Pairs (search with the box above the table)", show_search="search", wrap=True,
                                        interactive=False, max_height=420, elem_id="pairs-table",
                                        column_widths=["22%", "31%", "31%", "5%", "5%", "6%"])
                with gr.Row():
                    dl_csv = gr.DownloadButton("Download pairs (CSV)", visible=False)
                    dl_jsonl = gr.DownloadButton("Download pairs (JSONL)", visible=False)
                with gr.Row():
                    fig_scores, fig_counts, fig_margins = gr.Plot(label="Scores"), gr.Plot(label="Answers per question"), gr.Plot(label="Margins")
                with gr.Accordion("Dropped rows, with the reason", open=False):
                    dropped_df = gr.Dataframe(interactive=False, wrap=True, max_height=300)
                go_train = gr.Button("Train on these pairs →")

            # ---- 3. Train ------------------------------------------------------------------
            with gr.Tab("3 · Train", id="train"):
                gr.Markdown(f"Training runs on: **{device.name}**", elem_id="device")
                with gr.Row():
                    model_choice = gr.Radio(["embedded default", "hub id or local folder"], value="embedded default", label="Model",
                                            info="The embedded all-MiniLM-L6-v2 works offline")
                    custom_model = gr.Textbox(label="Hub id or folder", placeholder="e.g. distilroberta-base or /path/to/model")
                with gr.Row():
                    epochs = gr.Number(value=3, label="Epochs", minimum=0.1)
                    lr = gr.Number(value=5e-5, label="Learning rate")
                    batch_size = gr.Number(value=16, label="Batch size (pairs)", precision=0, minimum=1)
                    max_length = gr.Number(value=128, label="Max length (tokens)", precision=0, minimum=16)
                    eval_fraction = gr.Slider(0, 0.5, value=0.2, step=0.05, label="Held-out questions")
                    lora = gr.Checkbox(label="LoRA (decoders)")
                with gr.Row():
                    start_btn = gr.Button("Start training", variant="primary", elem_id="start-train")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-train")
                train_message = gr.Markdown(elem_id="train-message")
                progress = gr.HTML(elem_id="train-progress")
                run_status = gr.Markdown(elem_id="run-status")
                with gr.Row():
                    loss_plot = gr.Plot(label="Loss", elem_id="loss-plot")
                    acc_plot = gr.Plot(label="Accuracy", elem_id="acc-plot")
                log_tail = gr.Textbox(label="Log (last lines)", lines=6, max_lines=6, autoscroll=True)
                go_compare = gr.Button("Compare answers →")

            # ---- 4. Compare ----------------------------------------------------------------
            with gr.Tab("4 · Compare", id="compare"):
                with gr.Row():
                    model_pick = gr.Dropdown(model_choices(), value="default", label="Reward model", elem_id="model-pick")
                    refresh = gr.Button("↻ runs", scale=0)
                    example_btn = gr.Button("Fill in an example from my pairs", scale=0)
                question = gr.Textbox(label="Question", lines=2, elem_id="question")
                with gr.Row():
                    answer_a = gr.Textbox(label="Answer A", lines=5, elem_id="answer-a")
                    answer_b = gr.Textbox(label="Answer B", lines=5, elem_id="answer-b")
                compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
                compare_message = gr.Markdown(elem_id="compare-message")
                with gr.Row():
                    reward_a = gr.Number(None, label="Reward A", precision=4, elem_id="reward-a")
                    reward_b = gr.Number(None, label="Reward B", precision=4, elem_id="reward-b")
                    difference = gr.Number(None, label="A - B", precision=4)
                    p_a = gr.Number(None, label="P(A preferred) = sigmoid(A - B)", precision=4, elem_id="p-a")
                compare_plot = gr.Plot(label="Rewards")

            # ---- 5. Runs -------------------------------------------------------------------
            with gr.Tab("5 · Runs", id="runs"):
                with gr.Row():
                    refresh_runs = gr.Button("↻ Refresh", scale=0)
                runs_df = gr.Dataframe(runs_table, label="All runs", interactive=False, wrap=True, max_height=300)
                overlay_pick = gr.Dropdown(run_names(), multiselect=True, label="Overlay curves of runs")
                with gr.Row():
                    overlay_acc, overlay_loss = gr.Plot(label="Accuracy"), gr.Plot(label="Loss")
                with gr.Row():
                    run_pick = gr.Dropdown(run_names(True), label="Run", scale=3, elem_id="run-pick")
                    eval_btn = gr.Button("Evaluate", scale=1)
                    zip_btn = gr.Button("Export zip", scale=1)
                    zip_file = gr.File(label="Run zip", scale=2)
                eval_summary = gr.Markdown()
                with gr.Row():
                    eval_hist, eval_calib = gr.Plot(label="Rewards"), gr.Plot(label="Calibration")
                mistakes_df = gr.Dataframe(label="Worst mis-ranked held-out pairs", interactive=False, wrap=True, max_height=300)
                with gr.Accordion("Score a file of answers", open=False):
                    with gr.Row():
                        score_upload = gr.File(label="CSV/JSONL with question and answer columns", type="filepath")
                        scored_file = gr.File(label="Scored CSV (every column kept, plus reward)")
                    score_btn = gr.Button("Score with the run above (or the base model)")
                with gr.Accordion("Push to the Hugging Face Hub, or delete", open=False):
                    with gr.Row():
                        repo_id = gr.Textbox(label="Repo id", placeholder="you/my-reward-model")
                        token = gr.Textbox(label="Write token", type="password")
                        push_btn = gr.Button("Push", scale=0)
                    with gr.Row():
                        sure = gr.Checkbox(label="I am sure")
                        delete_btn = gr.Button("Delete run", variant="stop", scale=0)
                runs_message = gr.Markdown()

        timer = gr.Timer(1.0)

        # ---- events ---------------------------------------------------------------------------
        settings = [encoding, delimiter, question_col, answer_col, score_col, strategy, chosen_min, rejected_max, min_margin]
        data_outputs = [session, data_message, summary, pairs_df, dropped_df, fig_scores, fig_counts, fig_margins, dl_csv, dl_jsonl,
                        question_col, answer_col, score_col]

        def refresh_data(sess: Session, *values):
            view = derive_view(sess.data_path, sess.data_name, *values)
            if not view.ok:
                empty = pd.DataFrame()
                cols = gr.update(choices=[AUTO, *view.columns]) if view.columns else gr.update()
                return (sess, view.message, "Load data in step 1.", empty, empty, None, None, None,
                        gr.update(visible=False), gr.update(visible=False), cols, cols, cols)
            sess = export_pairs(sess, view.result.pairs)
            col_update = gr.update(choices=[AUTO, *view.columns])
            return (sess, view.message, view.summary, pairs_table(view.pairs), view.dropped, *view.figures,
                    gr.update(value=sess.pairs_csv, visible=True), gr.update(value=sess.pairs_jsonl, visible=True),
                    col_update, col_update, col_update)

        def use_file(sess: Session, path, name, *values):
            sess.data_path, sess.data_name, sess.example_index = path, name, 0
            return refresh_data(sess, "auto", "auto", AUTO, AUTO, AUTO, *values[5:])

        def reset_settings():
            return "auto", "auto", AUTO, AUTO, AUTO

        def on_upload(sess: Session, file, *values):
            if file is None:
                return refresh_data(sess, *values)
            return use_file(sess, file, Path(file).name, *values)

        upload.upload(reset_settings, None, [encoding, delimiter, question_col, answer_col, score_col]).then(
            on_upload, [session, upload, *settings], data_outputs)
        for button, key in ((seed_btn, "seed"), (workshop_btn, "workshop")):
            button.click(reset_settings, None, [encoding, delimiter, question_col, answer_col, score_col]).then(
                functools.partial(lambda k, sess, *v: use_file(sess, str(SAMPLES[k]), SAMPLES[k].name, *v), key),
                [session, *settings], data_outputs)
        for control in settings:
            control.input(refresh_data, [session, *settings], data_outputs)

        go_pairs.click(lambda: gr.Tabs(selected="pairs"), None, tabs)
        go_train.click(lambda: gr.Tabs(selected="train"), None, tabs)
        go_compare.click(lambda: (gr.Tabs(selected="compare"), gr.update(choices=model_choices())), None, [tabs, model_pick])

        def on_start(sess: Session, *values):
            return start_run(sess, *values)

        start_btn.click(on_start, [session, model_choice, custom_model, epochs, lr, batch_size, max_length, eval_fraction, lora,
                                   strategy, chosen_min, rejected_max, min_margin], [session, train_message])
        stop_btn.click(stop_run, session, train_message)

        def poll(sess: Session):
            from rm_demo.jobs import job_status

            if not sess.run_dir:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            status = job_status(sess.run_dir)
            update_models = gr.update(choices=model_choices(), value=str(Path(sess.run_dir) / "model")) if status.status == "completed" and \
                (Path(sess.run_dir) / "model" / "config.json").exists() else gr.skip()
            return (progress_html(status), run_status_markdown(status), plots.loss_curves(status.metrics),
                    plots.accuracy_curves(status.metrics), status.log_tail, update_models)

        timer.tick(poll, session, [progress, run_status, loss_plot, acc_plot, log_tail, model_pick], show_progress="hidden")

        def on_load(sess: Session):
            if not sess.run_dir:
                sess.run_dir = active_run()
            return sess, gr.update(choices=model_choices())

        demo.load(on_load, session, [session, model_pick])
        refresh.click(lambda: gr.update(choices=model_choices()), None, model_pick)

        def fill_example(sess: Session):
            if not sess.pairs_jsonl or not Path(sess.pairs_jsonl).exists():
                return sess, gr.skip(), gr.skip(), gr.skip(), "Load data in step 1 to get examples."
            pairs = pd.read_json(sess.pairs_jsonl, lines=True)
            if pairs.empty:
                return sess, gr.skip(), gr.skip(), gr.skip(), "Your data gave no pairs."
            row = pairs.iloc[sess.example_index % len(pairs)]
            sess.example_index += 1
            return sess, row["prompt"], row["chosen"], row["rejected"], "Example from your pairs: **A** is the answer people preferred."

        example_btn.click(fill_example, session, [session, question, answer_a, answer_b, compare_message])

        def on_compare(model, q, a, b):
            try:
                result = compare_answers(model, q, a, b)
            except InputError as exc:
                return f"**{exc}**", None, None, None, None, None
            verdict = "A" if result["p_a_preferred"] >= 0.5 else "B"
            return (f"The model prefers **{verdict}** (P(A preferred) = {result['p_a_preferred']:.1%}).",
                    result["reward_a"], result["reward_b"], result["difference"], result["p_a_preferred"],
                    plots.comparison(result["reward_a"], result["reward_b"], result["p_a_preferred"]))

        def refresh_runs_view():
            return runs_table(), gr.update(choices=run_names()), gr.update(choices=run_names(True))

        refresh_runs.click(refresh_runs_view, None, [runs_df, overlay_pick, run_pick])
        overlay_pick.change(overlay, overlay_pick, [overlay_acc, overlay_loss])

        def guarded(fn, n_outputs):
            def call(*args):
                try:
                    return fn(*args)
                except InputError as exc:
                    message = f"**{exc}**"
                    return (message, *([None] * (n_outputs - 1))) if n_outputs > 1 else message
            return call

        eval_btn.click(guarded(evaluate_view, 4), run_pick, [eval_summary, eval_hist, eval_calib, mistakes_df])

        def on_zip(name, sess: Session):
            try:
                return export_zip(name, sess.work_dir), ""
            except InputError as exc:
                return None, f"**{exc}**"

        zip_btn.click(on_zip, [run_pick, session], [zip_file, runs_message])

        def on_score(name, path, sess: Session):
            try:
                model = str(_run_path(name) / "model") if name else "default"
                return score_file(model, path, sess.work_dir), "Scored."
            except InputError as exc:
                return None, f"**{exc}**"

        score_btn.click(on_score, [run_pick, score_upload, session], [scored_file, runs_message])

        def on_push(name, repo, tok):
            from rm_demo.export import push_to_hub

            try:
                return f"Pushed: {push_to_hub(_run_path(name), repo, tok)}"
            except InputError as exc:
                return f"**{exc}**"

        push_btn.click(on_push, [run_pick, repo_id, token], runs_message)
        delete_btn.click(guarded(delete_run, 1), [run_pick, sure], runs_message).then(refresh_runs_view, None, [runs_df, overlay_pick, run_pick])

        compare_btn.click(on_compare, [model_pick, question, answer_a, answer_b], [compare_message, reward_a, reward_b, difference, p_a, compare_plot])
    return demo


def theme():
    import gradio as gr

    # System fonts: the default theme fetches web fonts, which hangs a page on workshop Wi-Fi.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "Segoe UI", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Reward Model Studio (Gradio app)")
    parser.add_argument("--host", default=os.environ.get("RM_DEMO_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RM_DEMO_PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860))
    parser.add_argument("--share", action="store_true", default=os.environ.get("RM_DEMO_SHARE", "") == "1",
                        help="also serve through a public gradio.live link (needs internet)")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    demo = build_app()
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, share=args.share, theme=theme(),
        max_file_size=f"{max_upload_mb():g}mb", show_error=False,
    )
