"""The Data tab's reading and pairing settings: the widgets, laid out (data_tab wires them)."""

from __future__ import annotations

import gradio as gr

from rm_demo.app.menus import menu
from rm_demo.app.state import AUTO, DELIMITERS, ENCODINGS
from rm_demo.config import default, label
from rm_demo.importers import FORMATS
from rm_demo.pairs import AGGREGATIONS


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
