"""The Data tab's components: the uploads, the samples and the reading and pairing settings, laid out
(data_tab wires them)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm_demo.app.menus import menu
from rm_demo.app.state import AUTO, DELIMITERS, ENCODINGS, SAMPLES
from rm_demo.config import default, label
from rm_demo.importers import FORMATS
from rm_demo.pair_options import AGGREGATIONS


def settings_widgets() -> dict:
    """The reading and pairing settings, by name (DataTab's fields)."""
    with gr.Accordion("Reading and pairing settings", open=True):
        with gr.Row():
            encoding = menu(ENCODINGS, value="auto", label="Encoding")
            delimiter = menu(list(DELIMITERS), value="auto", label="Delimiter")
            question_col = menu(
                [AUTO], value=AUTO, label="Question column", allow_custom_value=True, elem_id="question-col"
            )
            answer_col = menu([AUTO], value=AUTO, label="Answer column", allow_custom_value=True, elem_id="answer-col")
            score_col = menu([AUTO], value=AUTO, label="Score column", allow_custom_value=True, elem_id="score-col")
            file_format = menu(
                list(FORMATS),
                value="auto",
                label="Format",
                info="auto: a tool's export is recognised by its keys",
                elem_id="file-format",
            )
        with gr.Row():
            strategy = gr.Radio(
                ["best-worst", "all-pairs"],
                value=default("strategy"),
                label=label("strategy"),
                info="best-worst: one pair per question (the article's rule); all-pairs: every pair with a score gap",
            )
            # Text boxes, not gr.Number: a blank number box is sent as 0, and blank must mean "the default".
            chosen_min = gr.Textbox(
                label=label("chosen_min"), placeholder="default: 4 for best-worst", elem_id="chosen-min"
            )
            rejected_max = gr.Textbox(
                label=label("rejected_max"), placeholder="default: 4 for best-worst", elem_id="rejected-max"
            )
            min_margin = gr.Textbox(
                label=label("min_margin"), placeholder=f"default: {default('min_margin'):g}", elem_id="min-margin"
            )
        with gr.Row():
            rater_col = menu([AUTO], value=AUTO, label="Rater column", allow_custom_value=True, elem_id="rater-col")
            aggregate = gr.Radio(
                list(AGGREGATIONS),
                value=default("aggregate"),
                label=label("aggregate"),
                info="how several raters' scores of one answer become one",
                elem_id="aggregate",
            )
            max_rater_spread = gr.Textbox(
                label=label("max_rater_spread"),
                placeholder="default: keep every answer",
                info="drop an answer whose raters' scores lie further apart (HelpSteer2 used 2)",
                elem_id="max-rater-spread",
            )
        suggest_btn = gr.Button("Use the suggested thresholds", visible=False, elem_id="use-suggested")
    return {
        "encoding": encoding,
        "delimiter": delimiter,
        "question_col": question_col,
        "answer_col": answer_col,
        "score_col": score_col,
        "strategy": strategy,
        "chosen_min": chosen_min,
        "rejected_max": rejected_max,
        "min_margin": min_margin,
        "file_format": file_format,
        "aggregate": aggregate,
        "max_rater_spread": max_rater_spread,
        "rater_col": rater_col,
        "suggest_btn": suggest_btn,
    }


# The Data tab's settings in the order DataSettings.from_widgets takes them.
SETTINGS = (
    "encoding",
    "delimiter",
    "question_col",
    "answer_col",
    "score_col",
    "strategy",
    "chosen_min",
    "rejected_max",
    "min_margin",
    "file_format",
    "aggregate",
    "max_rater_spread",
    "rater_col",
)
# Those that belong to one file, and the value each starts from when another file comes: how it is read
# (detected again), and its raters' column, rule and spread. The pairing settings stay.
PER_FILE = {
    "encoding": "auto",
    "delimiter": "auto",
    "question_col": AUTO,
    "answer_col": AUTO,
    "score_col": AUTO,
    "file_format": "auto",
    "rater_col": AUTO,
    "aggregate": "mean",
    "max_rater_spread": "",
}


def sample_rows(key: str) -> int:
    """Rows in a shipped sample, for its button (counted, so the label cannot go stale)."""
    return len(pd.read_csv(SAMPLES[key]))


@dataclass
class DataTab:
    upload: gr.File
    second_upload: gr.File
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
    file_format: gr.Dropdown
    aggregate: gr.Radio
    max_rater_spread: gr.Textbox
    rater_col: gr.Dropdown
    suggest_btn: gr.Button
    go_pairs: gr.Button

    @property
    def settings(self) -> list:
        return [getattr(self, name) for name in SETTINGS]

    @property
    def reading(self) -> list:
        """The settings that belong to one file (PER_FILE): a new file starts them afresh."""
        return [getattr(self, name) for name in PER_FILE]

    @classmethod
    def build(cls) -> DataTab:
        with gr.Row():
            with gr.Column(scale=3):
                upload = gr.File(
                    label="Feedback file: question, answer, score (CSV, TSV, JSONL), pairs, or a tool's export "
                    "(Label Studio, Argilla, Langfuse, ...)",
                    file_types=[".csv", ".tsv", ".txt", ".jsonl", ".json", ".gz"],
                    type="filepath",
                    elem_id="upload",
                )
                second_upload = gr.File(
                    # A short label and room for the whole drop zone: a wrapped label at 90 px hid "Click to Upload".
                    label="Scores file, when an export comes in two parts",
                    file_types=[".json", ".jsonl", ".gz"],
                    type="filepath",
                    height=170,
                    elem_id="second-upload",
                )
                with gr.Row():
                    workshop_btn = gr.Button(
                        f"Use the workshop sample ({sample_rows('workshop')} rows)",
                        variant="primary",
                        elem_id="use-workshop",
                    )
                    seed_btn = gr.Button("Use the article's 6 rows", elem_id="use-seed")
            with gr.Column(scale=4):
                message = gr.Markdown("Upload a feedback file, or click a sample.", elem_id="data-message")
        widgets = settings_widgets()
        go_pairs = gr.Button("See the pairs →")
        return cls(
            upload=upload,
            second_upload=second_upload,
            workshop_btn=workshop_btn,
            seed_btn=seed_btn,
            message=message,
            go_pairs=go_pairs,
            **widgets,
        )
