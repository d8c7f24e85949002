"""Assemble the tabs into one Gradio Blocks app, and serve it."""

from __future__ import annotations

import argparse
import os

import gradio as gr

from rm_demo.app import compare_tab, data_tab, runs_tab, train_tab
from rm_demo.app.compare_tab import CompareTab
from rm_demo.app.data_tab import DataTab
from rm_demo.app.pairs_tab import PairsTab
from rm_demo.app.runs_tab import RunsTab
from rm_demo.app.state import Session, clean_up, max_upload_mb, runs_root
from rm_demo.app.train_tab import TrainForm, TrainTab
from rm_demo.models import choose_device
from rm_demo.runs import model_choices

INTRO = (
    "# Reward Model Studio\nTurn `question, answer, score` feedback into a trained reward model: **1** load data → "
    "**2** check the pairs → **3** train → **4** compare two answers."
)


def build() -> gr.Blocks:
    device = choose_device()
    with gr.Blocks(title="Reward Model Studio") as demo:
        session = gr.State(Session(), delete_callback=clean_up)
        figures = gr.State(None)  # the Pairs charts, drawn again whenever that tab is shown
        gr.Markdown(INTRO)
        with gr.Tabs() as tabs:
            with gr.Tab("1 · Data", id="data"):
                data = DataTab.build()
            with gr.Tab("2 · Pairs", id="pairs") as pairs_tab_item:
                pairs = PairsTab.build(pairs_tab_item)
            with gr.Tab("3 · Train", id="train"):
                train = TrainTab.build(device.name)
            with gr.Tab("4 · Compare", id="compare"):
                compare = CompareTab.build()
            with gr.Tab("5 · Runs", id="runs"):
                runs = RunsTab.build()
        _wire(demo, tabs, session, figures, data, pairs, train, compare, runs)
    return demo


def _wire(
    demo, tabs, session, figures, data: DataTab, pairs: PairsTab, train: TrainTab, compare: CompareTab, runs: RunsTab
):
    for event in data_tab.wire(data, pairs, session, figures):
        event.then(lambda s, *f: train_tab.epochs_note(s, TrainForm(*f)), [session, *train.form], train.epochs_note)
    train_tab.wire(
        train, session, on_finished=[(compare_tab.after_run, compare.model_pick), (runs_tab.after_run, runs.listing)]
    )
    compare_tab.wire(compare, session)
    runs_tab.wire(runs, session)

    data.go_pairs.click(lambda: gr.Tabs(selected="pairs"), None, tabs)
    pairs.go_train.click(lambda: gr.Tabs(selected="train"), None, tabs)
    train.go_compare.click(lambda: gr.Tabs(selected="compare"), None, tabs)

    def on_load(sess: Session):
        sess = train_tab.reattach(sess)
        return (
            sess,
            gr.Timer(active=bool(sess.run_dir)),
            gr.update(choices=model_choices(runs_root())),
            *runs_tab.refresh(runs_root()),
        )

    demo.load(on_load, session, [session, train.timer, compare.model_pick, *runs.listing])


def theme() -> gr.themes.Base:
    # System fonts: the default theme fetches web fonts, which hangs a page on workshop Wi-Fi.
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "Segoe UI", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Reward Model Studio (Gradio app)")
    parser.add_argument(
        "--host", default=os.environ.get("RM_DEMO_HOST") or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("RM_DEMO_PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    )
    parser.add_argument(
        "--share",
        action="store_true",
        default=os.environ.get("RM_DEMO_SHARE", "") == "1",
        help="also serve through a public gradio.live link (needs internet)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    demo = build()
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        theme=theme(),
        max_file_size=f"{max_upload_mb():g}mb",
        show_error=False,
    )
