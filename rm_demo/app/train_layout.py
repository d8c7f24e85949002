"""The Train tab's components, laid out (train_tab wires them)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from rm_demo import plots
from rm_demo.app.menus import menu
from rm_demo.app.state import limits
from rm_demo.app.train_form import CUSTOM, EMBEDDED
from rm_demo.config import OBJECTIVES, default, label
from rm_demo.settings import current
from rm_demo.zero_gpu import DEFAULT_SLICE_S, ON_QUOTA

LOG_LINES = 8


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
    slice_seconds: gr.Number
    on_gpu_quota: gr.Radio
    objective: gr.Radio
    epochs_note: gr.Markdown
    gpu_note: gr.Markdown
    command: gr.Markdown
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
            self.slice_seconds,
            self.on_gpu_quota,
            self.objective,
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
                custom_model = menu(offered, value=offered[0] if offered else None, label="Offered models")
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
            eval_fraction = gr.Slider(
                0, 0.5, value=default("eval_fraction"), step=0.05, label=label("eval_fraction"), elem_id="held-out"
            )
            lora = gr.Checkbox(default("lora"), label=label("lora"))
        slice_seconds, on_gpu_quota = _slice_controls(current().zero_gpu)
        epochs_note, gpu_note, objective, command = _notes_and_more()
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
        log_tail = gr.Textbox(
            label=f"Log (last {LOG_LINES} lines)", lines=LOG_LINES, max_lines=LOG_LINES, elem_id="log-tail"
        )
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
            slice_seconds,
            on_gpu_quota,
            objective,
            epochs_note,
            gpu_note,
            command,
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


def _slice_controls(zero_gpu: bool) -> tuple[gr.Number, gr.Radio]:
    """Training in slices (any machine) and, on ZeroGPU, what happens when the visitor's GPU time runs out."""
    with gr.Row():
        slice_seconds = gr.Number(
            default("slice_seconds"),
            label=label("slice_seconds"),
            minimum=0,
            info="each slice ends in a checkpoint; the next resumes from it"
            + (f" (on this Space 0 means slices of {DEFAULT_SLICE_S:g} s)" if zero_gpu else ""),
            elem_id="slice-seconds",
        )
        on_gpu_quota = gr.Radio(
            [(text, key) for key, text in ON_QUOTA.items()],
            value="cpu",
            label="When your GPU quota runs out",
            visible=zero_gpu,
            elem_id="on-gpu-quota",
        )
    return slice_seconds, on_gpu_quota


def _notes_and_more() -> tuple[gr.Markdown, gr.Markdown, gr.Radio, gr.Markdown]:
    """Under the form: its notes (train_tab.form_notes fills them), then off the beaten path the objective
    (pairwise unless asked) and the command Start runs, shown before Start."""
    epochs_note = gr.Markdown(elem_id="epochs-note")
    gpu_note = gr.Markdown(visible=current().zero_gpu, elem_id="gpu-note")
    with gr.Accordion("More settings", open=False):
        objective = gr.Radio(
            list(OBJECTIVES),
            value=default("objective"),
            label=label("objective"),
            info="pointwise fits every rated answer's score (a scored file); both adds the pairwise loss",
            elem_id="objective",
        )
    with gr.Accordion("Command", open=False):
        command = gr.Markdown(elem_id="command-preview")
    return epochs_note, gpu_note, objective, command
