"""Step 6: what did the model learn? Held-out accuracy beside the length baselines (with a warning when
the model ranks by length), reward against length, accuracy per slice of the data, calibration, and
the worst mistakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.access import Viewer, open_run
from rm_demo.app.menus import menu
from rm_demo.app.messages import problem
from rm_demo.app.state import Session, runs_root
from rm_demo.errors import InputError
from rm_demo.runs import RunRecord
from rm_demo.text import MIN_HELD_OUT_PAIRS, accuracy_phrase, ceiling_phrase, counted

MISTAKE_FIELDS = ["prompt", "chosen", "rejected", "reward_chosen", "reward_rejected", "margin"]
# Shown with spaces, so a narrow header wraps between words ("reward_rejected" broke mid-word).
MISTAKE_COLUMNS = [name.replace("_", " ") for name in MISTAKE_FIELDS]
SLICE_COLUMNS = ["value", "pairs", "accuracy"]
EVALUATE_FIRST = "pick a run and press Evaluate"
TOO_FEW = "too few held-out pairs to chart"


def empty_charts(message: str) -> tuple:
    """The three charts with nothing to draw: each its title and `message`, not a blank box."""
    titles = (plots.REWARDS_TITLE, plots.CALIBRATION_TITLE, plots.LENGTH_TITLE)
    return tuple(plots.placeholder(title, message) for title in titles)


@dataclass
class EvaluationView:
    summary: str
    histogram: object = None
    calibration: object = None
    length_scatter: object = None
    mistakes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MISTAKE_COLUMNS))
    slices: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SLICE_COLUMNS))
    slice_columns: list[str] = field(default_factory=list)


def slice_columns(path: Path) -> list[str]:
    """Columns of the run's feedback file that can slice it: the question, the rater, every column not
    used, and a tool export's own columns (UltraFeedback's model, HelpSteer's attributes, ...)."""
    report = RunRecord.load(path).data.get("report") or {}
    mapping = report.get("column_mapping") or {}
    columns = [mapping.get("question"), mapping.get("rater"), *(report.get("ignored_columns") or [])]
    return list(dict.fromkeys(c for c in [*columns, *(report.get("extra_columns") or [])] if c))


def evaluate_view(
    root: Path, name: str, viewer: Viewer, slice_by: str | None = None, min_pairs: int = MIN_HELD_OUT_PAIRS
) -> EvaluationView:
    from rm_demo.evaluate import add_slices, evaluate_run, load_eval

    path = open_run(root, name, viewer)
    report = load_eval(path)
    if report is None or "baselines" not in report:  # never evaluated, or by an older version
        report = evaluate_run(path)
    report = add_slices(path, report, [slice_by] if slice_by else [])
    columns = slice_columns(path)
    n = report.get("pairs") or 0
    if not n:
        return EvaluationView(
            "This run held out no questions, so there is nothing to evaluate.",
            *empty_charts(TOO_FEW),
            slice_columns=columns,
        )
    mistakes = pd.DataFrame(report.get("worst_mistakes") or [], columns=MISTAKE_FIELDS).round(3)
    mistakes.columns = MISTAKE_COLUMNS
    if n < min_pairs:
        return EvaluationView(
            f"**{name}** held out only {counted(n, 'pair')}: too few for an accuracy, a baseline or a "
            f"calibration curve to mean anything (at least {min_pairs} needed). Train on more data, or compare "
            "answers by hand in step 4.",
            *empty_charts(TOO_FEW),
            mistakes=mistakes,
            slice_columns=columns,
        )
    return EvaluationView(
        summary_markdown(name, report),
        plots.reward_histograms(report["rewards"]["chosen"], report["rewards"]["rejected"]),
        plots.calibration_chart(report["calibration"]),
        plots.reward_vs_length(report.get("lengths") or {}, report["rewards"]),
        mistakes,
        slice_table(report, slice_by, min_pairs),
        columns,
    )


def summary_markdown(name: str, report: dict) -> str:
    base = report.get("base", {})
    lines = [
        f"**{name}**: held-out accuracy **{accuracy_phrase(report['accuracy'], report['pairs'])}** "
        f"(untrained base: {base.get('accuracy', float('nan')):.1%}); mean reward margin "
        f"{report['mean_margin']:.3f}."
    ]
    if report.get("raters"):
        lines.append(ceiling_phrase(report["raters"]))
    b = report.get("baselines") or {}
    if b:
        rho = report.get("length_correlation")
        lines.append(
            f"Baselines on the same pairs: *the longer answer wins* **{b['longer_answer']['accuracy']:.1%}**, "
            f"*the shorter answer wins* **{b['shorter_answer']['accuracy']:.1%}** (ties count as wrong). "
            + (f"Correlation of reward with answer length (Spearman): **{rho:+.2f}**." if rho is not None else "")
        )
    if report.get("length_warning"):
        lines.append(f"> ⚠️ {report['length_warning']}")
    return "\n\n".join(lines)


def slice_table(report: dict, column: str | None, min_pairs: int = MIN_HELD_OUT_PAIRS) -> pd.DataFrame:
    values = (report.get("slices") or {}).get(column) if column else None
    if not values:
        return pd.DataFrame(columns=SLICE_COLUMNS)
    rows = [
        # the app's small-sample rule: no percentage from fewer than MIN_HELD_OUT_PAIRS pairs
        {"value": v, "pairs": s["pairs"], "accuracy": f"{s['accuracy']:.1%}" if s["pairs"] >= min_pairs else "too few"}
        for v, s in values.items()
    ]
    return pd.DataFrame(rows, columns=SLICE_COLUMNS).sort_values("pairs", ascending=False, kind="stable")


@dataclass
class EvalTab:
    run_pick: gr.Dropdown
    slice_pick: gr.Dropdown
    eval_btn: gr.Button
    summary: gr.Markdown
    histogram: gr.Plot
    calibration: gr.Plot
    length_scatter: gr.Plot
    slices: gr.Dataframe
    mistakes: gr.Dataframe

    @property
    def outputs(self) -> list:
        return [
            self.summary,
            self.histogram,
            self.calibration,
            self.length_scatter,
            self.mistakes,
            self.slices,
            self.slice_pick,
        ]

    @classmethod
    def build(cls) -> EvalTab:
        with gr.Row():
            run_pick = menu([], label="Run", scale=3, elem_id="eval-run-pick")
            slice_pick = menu([], label="Accuracy by (a column of the data)", scale=2, elem_id="slice-pick")
            eval_btn = gr.Button("Evaluate", variant="primary", scale=1, elem_id="eval-btn")
        summary = gr.Markdown("Pick a run and press **Evaluate**.", elem_id="eval-summary")
        histogram_empty, calibration_empty, length_empty = empty_charts(EVALUATE_FIRST)
        with gr.Row():
            histogram = gr.Plot(histogram_empty, label="Rewards", show_label=False)
            calibration = gr.Plot(calibration_empty, label="Calibration", show_label=False)
        with gr.Row():
            length_scatter = gr.Plot(
                length_empty, label="Reward against length", show_label=False, elem_id="length-plot"
            )
            slices = gr.Dataframe(
                pd.DataFrame(columns=SLICE_COLUMNS),
                label="Accuracy by slice (by a rater: the pairs whose answers they rated, so pairs may count twice)",
                interactive=False,
                elem_id="slices-table",
            )
        mistakes = gr.Dataframe(
            pd.DataFrame(columns=MISTAKE_COLUMNS),
            label="Worst mis-ranked held-out pairs",
            interactive=False,
            wrap=True,
            max_height=300,
            column_widths=["22%", "22%", "22%", "11%", "11%", "12%"],
        )
        return cls(run_pick, slice_pick, eval_btn, summary, histogram, calibration, length_scatter, slices, mistakes)


def evaluated(name: str | None, column: str | None, session: Session) -> tuple:
    """The Evaluate button (and a new slice column): the outputs of `EvalTab.outputs`."""
    try:
        session.require_owner()  # evaluating loads and runs models: some visitor's action, like the others
        view = evaluate_view(runs_root(), name, session.viewer(), column or None)
    except InputError as exc:
        return (
            problem(exc),
            *empty_charts(EVALUATE_FIRST),
            pd.DataFrame(columns=MISTAKE_COLUMNS),
            pd.DataFrame(columns=SLICE_COLUMNS),
            gr.skip(),
        )
    menu = gr.update(choices=view.slice_columns, value=column if column in view.slice_columns else None)
    return (view.summary, view.histogram, view.calibration, view.length_scatter, view.mistakes, view.slices, menu)


def wire(tab: EvalTab, session) -> None:
    tab.eval_btn.click(evaluated, [tab.run_pick, tab.slice_pick, session], tab.outputs, api_name="evaluate")
    tab.slice_pick.input(evaluated, [tab.run_pick, tab.slice_pick, session], tab.outputs)
    tab.run_pick.change(run_picked, [tab.run_pick, session], tab.outputs)


def run_started(session: Session):
    """A run of this page has just started: the run evaluated so far leaves the menu's pick (its figures were
    read as the new model's while it trained); the menu lists the new run once it has finished."""
    live = session.run_dir and RunRecord.load(Path(session.run_dir)).live
    return gr.update(value=None) if live else gr.skip()


def run_picked(name: str | None, session: Session) -> tuple:
    """Another run in the menu: the previous run's summary, charts and tables go (they were about it)."""
    summary = f"Press **Evaluate** for **{name}**." if name else "Pick a run and press **Evaluate**."
    if not name and session.run_dir and RunRecord.load(Path(session.run_dir)).live:
        summary = (
            f"**{Path(session.run_dir).name}** is training: it can be evaluated here once it has finished. "
            "Meanwhile, pick a finished run to evaluate it."
        )
    return (
        summary,
        *empty_charts(EVALUATE_FIRST),
        pd.DataFrame(columns=MISTAKE_COLUMNS),
        pd.DataFrame(columns=SLICE_COLUMNS),
        gr.update(choices=_columns_or_none(name, session), value=None),
    )


def _columns_or_none(name: str | None, session: Session) -> list[str]:
    try:
        return slice_columns(open_run(runs_root(), name, session.viewer())) if name else []
    except InputError:
        return []
