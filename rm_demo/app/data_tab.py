"""Step 1: load a feedback file, choose how to read and pair it; the preview goes to the Pairs tab.

Handlers are module-level functions of plain values (`derive_view`, `load_data`); `DataTab.build`
and `PairsTab.build` lay out the components, and `wire` connects them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.app.messages import problem
from rm_demo.app.pairs_tab import (
    PairsTab,
    dropped_table,
    export_pairs,
    pairs_table,
    placeholder_figures,
    preview_note,
)
from rm_demo.app.state import AUTO, DELIMITERS, ENCODINGS, SAMPLES, DataSettings, Session, max_upload_mb
from rm_demo.config import default, label
from rm_demo.errors import InputError
from rm_demo.feedback import delimiter_name, read_table
from rm_demo.pairs import PairsResult, pairs_from_file


@dataclass
class DataView:
    ok: bool
    message: str
    summary: str = "Load data in step 1."
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    columns: list[str] = field(default_factory=list)
    figures: tuple = field(default_factory=placeholder_figures)
    suggestion: dict | None = None
    result: PairsResult | None = None


def derive_view(path: str | None, name: str | None, settings: DataSettings) -> DataView:
    """Read the file with these settings and derive pairs; every error becomes a message."""
    if not path:
        return DataView(False, "Upload a feedback file, or click a sample.")
    size_mb = os.path.getsize(path) / 1e6
    if size_mb > max_upload_mb():
        return DataView(
            False,
            f"**{name}** is {size_mb:.0f} MB; the limit here is {max_upload_mb():.0f} MB. "
            "Use the CLI (`python -m rm_demo pairs`) for big files, or raise RM_DEMO_MAX_UPLOAD_MB.",
        )
    read = settings.read_options()
    try:
        result = pairs_from_file(path, read, settings.pair_options(), name=name)
    except InputError as exc:
        message = problem(exc, "Could not use this file")
        return DataView(False, message, columns=_columns_of(path, read, name))
    r = result.report
    return DataView(
        True,
        reading_markdown(result),
        summary=r.to_markdown() + preview_note(result),
        pairs=result.pairs,
        dropped=dropped_table(result),
        columns=[*r.column_mapping.values(), *r.ignored_columns],
        figures=(
            plots.score_distribution(r.score_distribution),
            plots.answers_per_question(result.rows),
            plots.margins(result.pairs),
        ),
        suggestion=r.suggested_thresholds,
        result=result,
    )


def reading_markdown(result: PairsResult) -> str:
    r = result.report
    mapping = ", ".join(f"{role} ← `{col}`" for role, col in r.column_mapping.items())
    return (
        f"**{r.source}**: {r.format.upper()}, encoding **{r.encoding}**{' (detected)' if r.encoding_detected else ''}"
        + (f", delimiter **{delimiter_name(r.delimiter)}**" if r.delimiter else "")
        + f"  \nColumns: {mapping}"
        + (f"; ignored: {', '.join(f'`{c}`' for c in r.ignored_columns)}" if r.ignored_columns else "")
    )


def _columns_of(path: str, read, name: str | None) -> list[str]:
    """The file's column names, so the menus can offer them when automatic mapping failed."""
    try:
        return [c for c in read_table(path, read, name=name).frame.columns if c != "row"]
    except InputError:
        return []


def load_data(
    session: Session, path: str | None, name: str | None, settings: DataSettings
) -> tuple[Session, DataView]:
    """Preview `path` with `settings` and remember both in the session (what training will use)."""
    view = derive_view(path, name, settings)
    session.data_path, session.data_name = path, name
    session.settings = settings if view.ok else None
    session.pairs = len(view.pairs) if view.ok else 0
    session.pairs_csv = session.pairs_jsonl = None
    if view.ok:
        export_pairs(session, view.result.pairs)
    return session, view


# ---------------------------------------------------------------------------------------------
# Components


@dataclass
class DataTab:
    upload: gr.File
    workshop_btn: gr.Button
    seed_btn: gr.Button
    message: gr.Markdown
    encoding: gr.Dropdown
    delimiter: gr.Dropdown
    question_col: gr.Dropdown
    answer_col: gr.Dropdown
    score_col: gr.Dropdown
    strategy: gr.Radio
    chosen_min: gr.Textbox
    rejected_max: gr.Textbox
    min_margin: gr.Textbox
    suggest_btn: gr.Button
    go_pairs: gr.Button

    @property
    def settings(self) -> list:
        return [
            self.encoding,
            self.delimiter,
            self.question_col,
            self.answer_col,
            self.score_col,
            self.strategy,
            self.chosen_min,
            self.rejected_max,
            self.min_margin,
        ]

    @property
    def reading(self) -> list:
        return [self.encoding, self.delimiter, self.question_col, self.answer_col, self.score_col]

    @classmethod
    def build(cls) -> DataTab:
        with gr.Row():
            with gr.Column(scale=3):
                upload = gr.File(
                    label="Feedback file (CSV, TSV, JSONL, JSON; question, answer, score)",
                    file_types=[".csv", ".tsv", ".txt", ".jsonl", ".json", ".gz"],
                    type="filepath",
                )
                with gr.Row():
                    workshop_btn = gr.Button(
                        "Use the workshop sample (47 rows)", variant="primary", elem_id="use-workshop"
                    )
                    seed_btn = gr.Button("Use the article's 6 rows", elem_id="use-seed")
            with gr.Column(scale=4):
                message = gr.Markdown("Upload a feedback file, or click a sample.", elem_id="data-message")
        with gr.Accordion("Reading and pairing settings", open=True):
            with gr.Row():
                encoding = gr.Dropdown(ENCODINGS, value="auto", label="Encoding")
                delimiter = gr.Dropdown(list(DELIMITERS), value="auto", label="Delimiter")
                question_col = gr.Dropdown(
                    [AUTO], value=AUTO, label="Question column", allow_custom_value=True, elem_id="question-col"
                )
                answer_col = gr.Dropdown(
                    [AUTO], value=AUTO, label="Answer column", allow_custom_value=True, elem_id="answer-col"
                )
                score_col = gr.Dropdown(
                    [AUTO], value=AUTO, label="Score column", allow_custom_value=True, elem_id="score-col"
                )
            with gr.Row():
                strategy = gr.Radio(
                    ["best-worst", "all-pairs"],
                    value=default("strategy"),
                    label=label("strategy"),
                    info="best-worst: one pair per question (the article's rule); "
                    "all-pairs: every pair with a score gap",
                )
                # Text boxes, not gr.Number: a blank number box is sent as 0, and blank must mean "the default".
                chosen_min = gr.Textbox(
                    label=label("chosen_min"), placeholder="default: 4 for best-worst", elem_id="chosen-min"
                )
                rejected_max = gr.Textbox(
                    label=label("rejected_max"), placeholder="default: 4 for best-worst", elem_id="rejected-max"
                )
                min_margin = gr.Textbox(label=label("min_margin"), placeholder=f"default: {default('min_margin'):g}")
            suggest_btn = gr.Button("Use the suggested thresholds", visible=False, elem_id="use-suggested")
        go_pairs = gr.Button("See the pairs →")
        return cls(
            upload,
            workshop_btn,
            seed_btn,
            message,
            encoding,
            delimiter,
            question_col,
            answer_col,
            score_col,
            strategy,
            chosen_min,
            rejected_max,
            min_margin,
            suggest_btn,
            go_pairs,
        )


# ---------------------------------------------------------------------------------------------
# Wiring


def _outputs(data: DataTab, pairs: PairsTab, session, figures) -> list:
    return [
        session,
        figures,
        data.message,
        pairs.summary,
        pairs.table,
        pairs.dropped,
        *pairs.figures,
        pairs.dl_csv,
        pairs.dl_jsonl,
        data.question_col,
        data.answer_col,
        data.score_col,
        data.suggest_btn,
    ]


def _view_updates(session: Session, view: DataView) -> tuple:
    columns = gr.update(choices=[AUTO, *view.columns]) if view.columns else gr.update()
    downloads = [
        gr.update(value=p, visible=True) if view.ok else gr.update(visible=False)
        for p in (session.pairs_csv, session.pairs_jsonl)
    ]
    suggest = gr.update(visible=bool(view.suggestion))
    return (
        session,
        view.figures,
        view.message,
        view.summary,
        pairs_table(view.pairs),
        view.dropped,
        *view.figures,
        *downloads,
        columns,
        columns,
        columns,
        suggest,
    )


def on_settings(session: Session, *widgets) -> tuple:
    return _load(session, session.data_path, session.data_name, widgets)


def on_file(session: Session, path: str | None, name: str | None, *widgets) -> tuple:
    """A new file: reading settings start from automatic detection; pairing settings are kept."""
    session.example_index = 0
    return _load(session, path, name, ("auto", "auto", AUTO, AUTO, AUTO, *widgets[5:]))


def _load(session: Session, path: str | None, name: str | None, widgets) -> tuple:
    try:
        settings = DataSettings.from_widgets(*widgets)
    except InputError as exc:
        session.settings = None  # nothing can be trained until the settings make sense
        return _view_updates(session, DataView(False, problem(exc)))
    session, view = load_data(session, path, name, settings)
    return _view_updates(session, view)


def suggested(session: Session) -> tuple:
    """The thresholds the scale note suggests, into the two number boxes."""
    view = derive_view(session.data_path, session.data_name, session.settings or DataSettings())
    s = view.suggestion or {}
    return s.get("chosen_min", gr.skip()), s.get("rejected_max", gr.skip())


def wire(data: DataTab, pairs: PairsTab, session, figures) -> list:
    """Connect the Data and Pairs tabs; returns the events that change the data (for other tabs to follow)."""
    outputs = _outputs(data, pairs, session, figures)
    reset = (lambda: ("auto", "auto", AUTO, AUTO, AUTO), None, data.reading)
    events = [
        data.upload.upload(*reset).then(
            lambda s, f, *w: on_file(s, f, Path(f).name if f else None, *w),
            [session, data.upload, *data.settings],
            outputs,
        )
    ]
    for button, key in ((data.workshop_btn, "workshop"), (data.seed_btn, "seed")):
        events.append(
            button.click(*reset).then(
                lambda s, *w, k=key: on_file(s, str(SAMPLES[k]), SAMPLES[k].name, *w),
                [session, *data.settings],
                outputs,
                api_name=f"use_{key}_sample",
            )
        )
    for control in data.settings:
        events.append(control.input(on_settings, [session, *data.settings], outputs))
    events.append(
        data.suggest_btn.click(suggested, session, [data.chosen_min, data.rejected_max]).then(
            on_settings, [session, *data.settings], outputs
        )
    )
    # A plot drawn while its tab is hidden takes plotly's default width; drawing again on show fits it.
    pairs.tab.select(lambda figs: tuple(figs or placeholder_figures()), figures, pairs.figures, show_progress="hidden")
    return events
