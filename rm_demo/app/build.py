"""Assemble the tabs into one Gradio Blocks app, and serve it."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import threading

import gradio as gr

from rm_demo.app import compare_tab, data_tab, eval_tab, facilitator_tab, request_limit, runs_tab, train_tab
from rm_demo.app.compare_tab import CompareTab
from rm_demo.app.data_tab import DataTab
from rm_demo.app.eval_tab import EvalTab
from rm_demo.app.facilitator_tab import FacilitatorTab
from rm_demo.app.identity import browser_secret, client_address, issued_id, mint_id
from rm_demo.app.model_menu import model_choices
from rm_demo.app.pairs_tab import PairsTab
from rm_demo.app.preload import preload_own_run
from rm_demo.app.runs_tab import RunsTab
from rm_demo.app.state import Session, clean_up, facilitator_secret, runs_root
from rm_demo.app.train_tab import TrainTab
from rm_demo.config import default
from rm_demo.limits import prune_runs
from rm_demo.models import choose_device
from rm_demo.settings import Settings, configure, current

INTRO = (
    "# Reward Model Studio\nTurn `question, answer, score` feedback into a trained reward model: **1** load data → "
    "**2** check the pairs → **3** train → **4** compare answers → **5** your runs → **6** what the model learned."
)


def build() -> gr.Blocks:
    device = choose_device()
    if current().zero_gpu:  # the GPU is attached per slice (rm_demo.zero_gpu); known to spaces from start-up
        from rm_demo.zero_gpu import gpu_function

        gpu_function()
    # delete_cache: gradio's own copies of uploads and downloads older than 2 h go, checked every 30 min.
    with gr.Blocks(title="Reward Model Studio", delete_cache=(1800, 7200)) as demo:
        session = gr.State(Session(), delete_callback=clean_up)
        # This browser's id, kept in its localStorage: a reload is the same visitor, another browser is not.
        owner = gr.BrowserState("", storage_key="rm_demo_owner", secret=browser_secret())
        figures = gr.State(None)  # the Pairs charts, drawn again whenever that tab is shown
        gr.Markdown(INTRO)
        with gr.Tabs() as tabs:
            with gr.Tab("1 · Data", id="data"):
                data = DataTab.build()
            with gr.Tab("2 · Pairs", id="pairs") as pairs_tab_item:
                pairs = PairsTab.build(pairs_tab_item)
            with gr.Tab("3 · Train", id="train"):
                train = TrainTab.build("ZeroGPU: a GPU borrowed per slice" if current().zero_gpu else device.name)
            with gr.Tab("4 · Compare", id="compare"):
                compare = CompareTab.build()
            with gr.Tab("5 · Runs", id="runs"):
                runs = RunsTab.build()
            with gr.Tab("6 · Evaluate", id="evaluate"):
                evaluation = EvalTab.build()
                eval_tab.wire(evaluation, session)
            if facilitator_secret():
                with gr.Tab("Facilitator", id="facilitator"):
                    facilitator_tab.wire(FacilitatorTab.build(), session)
        run_menus = [*runs.listing, evaluation.run_pick]  # filled together whenever the runs change
        _wire(demo, tabs, session, figures, data, pairs, train, compare, runs, run_menus)
        _wire_load(demo, session, owner, train, compare, run_menus)
    return demo


def _wire(
    demo,
    tabs,
    session,
    figures,
    data: DataTab,
    pairs: PairsTab,
    train: TrainTab,
    compare: CompareTab,
    runs: RunsTab,
    run_menus: list,
):
    example = [session, compare.question, compare.answer_a, compare.answer_b, compare.example_note]
    # The held-out share is chosen for a file's size: the next file starts from the default again.
    per_file = {train.eval_fraction: default("eval_fraction")}
    for event in data_tab.wire(data, pairs, session, figures, also_per_file=per_file):
        event.then(train_tab.form_notes, [session, *train.form], [train.epochs_note, train.gpu_note, train.command])
        event.then(compare_tab.after_data_change, session, example, show_progress="hidden")
    train_tab.wire(
        train,
        session,
        on_finished=[
            (train_tab.after_run, [train.message]),
            (compare_tab.after_run, [compare.model_pick, compare.pick_note]),
            (runs_tab.after_run, run_menus),
        ],
        screen=data.settings,
        catch_up=(data_tab.catch_up, data_tab.data_outputs(data, pairs, session, figures)),
        on_started=[(eval_tab.run_started, run_menus[-1:])],
    )
    compare_tab.wire(compare, session)
    runs_tab.wire(runs, session, run_menus)

    data.go_pairs.click(lambda: gr.Tabs(selected="pairs"), None, tabs)
    pairs.go_train.click(lambda: gr.Tabs(selected="train"), None, tabs)
    train.go_compare.click(lambda: gr.Tabs(selected="compare"), None, tabs)


def _wire_load(demo, session, owner, train: TrainTab, compare: CompareTab, run_menus: list) -> None:
    def on_load(sess: Session, owner_id: str, request: gr.Request):
        # Only an id this app issued is taken back; anything else a client sends gets a new one.
        sess.owner = issued_id(owner_id) or mint_id()
        sess.address = client_address(request)
        sess = train_tab.reattach(sess)
        viewer = sess.viewer()
        preload_own_run(sess)
        return (
            sess,
            sess.owner,
            gr.Timer(active=bool(sess.run_dir)),
            gr.update(choices=model_choices(runs_root(), viewer)),
            *runs_tab.refresh(runs_root(), viewer),
        )

    # api_name: a client without a browser (gradio_client) calls /load first, as a page does, to get its id.
    demo.load(
        on_load, [session, owner], [session, owner, train.timer, compare.model_pick, *run_menus], api_name="load"
    )


def theme() -> gr.themes.Base:
    # System fonts: the default theme fetches web fonts, which hangs a page on workshop Wi-Fi.
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "Segoe UI", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The app's flags; each one left out falls back to its RM_DEMO_* variable (rm_demo.settings)."""
    parser = argparse.ArgumentParser(description="Reward Model Studio (Gradio app)")
    parser.add_argument("--host", help="address to listen on (RM_DEMO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (RM_DEMO_PORT, default 7860)")
    parser.add_argument(
        "--share",
        action="store_true",
        default=None,
        help="also serve through a public gradio.live link (needs internet)",
    )
    parser.add_argument(
        "--public", action="store_true", default=None, help="public limits (automatic on a Hugging Face Space)"
    )
    parser.add_argument(
        "--facilitator-secret",
        default=None,
        help="turn on the facilitator view, unlocked by this secret (or set RM_DEMO_FACILITATOR_SECRET)",
    )
    parser.add_argument("--runs", dest="runs_root", help="where runs are kept (RM_DEMO_RUNS, default runs/)")
    return parser.parse_args(argv)


GIL_SWITCH_S = 0.0005
# Events waiting in the queue at most. Said explicitly: on a ZeroGPU Space gradio makes an unset max_size 1
# (blocks.py, `is_zero_gpu_space`), and every visitor's click beyond the one waiting got "Queue is full"
# (bench/bench_zero_gpu_close.py: 8 of 10 visitors refused at once).
QUEUE_MAX_EVENTS = 512


def keep_startup_objects() -> None:
    """Take what start-up made (modules, the default model, the built app: ~535,000 objects) out of the
    garbage collector's full passes, which walked all of them with the GIL held: 0.2-0.4 s in which every
    visitor's click stood still, the slowest clicks of a room's cold Compare. They live as long as the
    app; objects made later are collected as before (`gc.freeze`)."""
    gc.collect()
    gc.freeze()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # One Settings object from the flags and the environment, read by every tab from here on.
    settings = Settings.from_env(**vars(args))
    configure(settings)
    prune_runs(settings.runs_root, settings.limits.run_ttl_hours)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # A Compare's forward pass takes the GIL back ~150 times between torch ops; behind a thread running
    # Python (a model loading, a file previewed) each retake waited up to the default 5 ms.
    sys.setswitchinterval(GIL_SWITCH_S)
    # The first Compare must not wait for a model to load: the default scorer loads in the background
    # while the app is built, and the server opens once it is ready (or after 60 s, whichever is first).
    preload = threading.Thread(target=compare_tab.warm_up, daemon=True)
    preload.start()
    demo = build()
    preload.join(timeout=60)
    keep_startup_objects()
    demo.queue(default_concurrency_limit=4, max_size=QUEUE_MAX_EVENTS).launch(
        server_name=settings.host,
        server_port=settings.port,
        share=settings.share,
        theme=theme(),
        max_file_size=f"{settings.max_upload_mb:g}mb",
        show_error=False,
        # Bodies over the cap are refused before gradio parses them (rm_demo.app.request_limit).
        app_kwargs={"middleware": request_limit.middleware(settings.max_request_mb)},
    )
