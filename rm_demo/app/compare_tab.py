"""Step 4: the rewards of two answers to one question, before and after training, side by side."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from rm_demo import plots
from rm_demo.app import rank_explain
from rm_demo.app.menus import menu
from rm_demo.app.messages import problem
from rm_demo.app.model_menu import BASE_MODEL_LABEL, base_label, model_choices
from rm_demo.app.preload import preload
from rm_demo.app.rank_explain import RankExplain
from rm_demo.app.state import Session, limits, runs_root
from rm_demo.errors import InputError
from rm_demo.limits import check_texts
from rm_demo.runs import RunRecord, base_model_of, run_of_model
from rm_demo.score import get_scorer
from rm_demo.text import MIN_HELD_OUT_PAIRS, counted

PLACEHOLDER = "Rewards appear here after **Compare**."


def empty_chart():
    """The rewards chart with nothing compared yet: its title and what fills it, not a blank box."""
    return plots.placeholder(plots.COMPARE_TITLE, "press Compare")


@dataclass
class CompareView:
    message: str
    table_html: str = ""
    figure: object = field(default_factory=empty_chart)
    results: dict | None = None


def compare_view(
    model: str | None, question: str, answer_a: str, answer_b: str, with_base: bool = True
) -> CompareView:
    """Score A and B with the chosen model (already checked as the visitor's: `compare`) and, when asked,
    with the untrained base too."""
    question, answer_a, answer_b = ((text or "").strip() for text in (question, answer_a, answer_b))
    if not (question and answer_a and answer_b):
        return CompareView("**Fill in the question and both answers.**")
    model = model or "default"
    try:
        check_texts(limits(), question=question, answer_A=answer_a, answer_B=answer_b)
    except InputError as exc:
        return CompareView(problem(exc, "Cannot compare"))
    # "Before" is the model this run started from, at the length it trained with (not always MiniLM).
    base, base_length = base_model_of(model) if model != "default" else ("default", None)
    before_name = base_label(base)
    models = {before_name: (base, base_length)} if with_base or model == "default" else {}
    if model != "default":
        models[_label(model)] = (model, None)
    try:
        results = {
            name: get_scorer(path, length).compare(question, answer_a, answer_b)
            for name, (path, length) in models.items()
        }
    except (InputError, OSError) as exc:
        return CompareView(problem(exc, "Could not score with this model"))
    final = results[list(results)[-1]]
    verdict = "A" if final["p_a_preferred"] >= 0.5 else "B"
    trained = "trained " if model != "default" else ""
    caveat = small_sample_caveat(model) if model != "default" else ""
    bold = "" if caveat else "**"  # no bold claim for a model too little data can vouch for
    message = f"The {trained}model prefers **{verdict}** (P(A preferred) = {final['p_a_preferred']:.1%})."
    if len(results) == 2:
        before = results[before_name]["p_a_preferred"]
        message += (
            # the change of a percentage is in points: 51% to 99% is +48 points, not +48%
            f" Before training, the {before_name} gave {before:.1%}, so training moved P(A) by "
            f"{bold}{100 * (final['p_a_preferred'] - before):+.1f} percentage points{bold}."
        )
    message += caveat
    return CompareView(message, results_html(results), plots.compare_models(results), results)


def warm_up() -> None:
    """What the first Compare would otherwise pay for: loading the default model, torch's first forward
    pass, plotly's figure machinery. Run once at start-up."""
    result = get_scorer("default").compare("What is a cactus?", "A plant that stores water.", "A fish.")
    plots.compare_models({BASE_MODEL_LABEL: result}).to_json()


COMPARE_CONCURRENCY = 16


def _label(model_path: str) -> str:
    path = Path(model_path)
    return f"trained: {path.parent.name}" if path.name == "model" else f"model: {path.name or model_path}"


def results_html(results: dict[str, dict]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{r['reward_a']:.4f}</td><td>{r['reward_b']:.4f}</td>"
        f"<td>{r['difference']:+.4f}</td><td><b>{r['p_a_preferred']:.1%}</b></td></tr>"
        for name, r in results.items()
    )
    return (
        '<table id="compare-results" style="width:100%"><thead><tr><th>model</th><th>reward A</th><th>reward B</th>'
        f"<th>A − B</th><th>P(A preferred) = σ(A − B)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def example_pairs(session: Session, model: str | None) -> tuple[pd.DataFrame, str, str]:
    """Where *Fill in an example* takes its pairs from: (pairs, their source, how to describe one).

    A run's model is shown a pair it never trained on (its held-out questions) when there is one: a
    pair from its own training says little about it."""
    run = run_of_model(model or "default")
    if run is not None:
        from rm_demo.evaluate import run_split

        try:
            trained, held = run_split(run)  # the run's own data, pairing and split: read once
        except (OSError, ValueError):  # (InputError is a ValueError)
            pass  # the run's data is gone or unreadable: the visitor's own pairs still make examples
        else:
            if len(held):
                return held, f"run:{run.path}", f"a **held-out** pair of **{run.name}**: it never trained on it"
            return (
                trained,
                f"run:{run.path}",
                f"a pair **{run.name}** trained on (it held out none), so expect it to be right",
            )
    if not session.pairs_jsonl or not Path(session.pairs_jsonl).exists():
        return pd.DataFrame(), "", ""
    pairs = pd.read_json(session.pairs_jsonl, lines=True, dtype=False)
    return pairs, f"file:{session.data_path}", f"a pair from **{session.data_name}** (the base model saw none)"


def example_from_pairs(
    session: Session, model: str | None = None
) -> tuple[Session, str | None, str | None, str | None, str]:
    """The next example pair for `model`: question, chosen (as A), rejected (as B), and what kind it is."""
    pairs, source, kind = example_pairs(session, model)
    if not source:
        return session, None, None, None, "Load data in step 1, or pick a trained run, to get examples."
    if pairs.empty:
        return session, None, None, None, "Your data gave no pairs."
    if session.example_source != source:
        session.example_source, session.example_index = source, 0
    row = pairs.iloc[session.example_index % len(pairs)]
    session.example_index += 1
    return (
        session,
        str(row["prompt"]),
        str(row["chosen"]),
        str(row["rejected"]),
        f"Example: {kind}. **A** is the answer people preferred.",
    )


def after_data_change(session: Session) -> tuple:
    """A new file: an example taken from the old file's pairs is cleared, not left labelled as yours."""
    source = session.example_source or ""
    if not source.startswith("file:") or source == f"file:{session.data_path}":
        return (gr.skip(),) * 5
    session.example_source, session.example_index = None, 0
    return session, "", "", "", "The example came from your previous file and was cleared."


def small_sample_caveat(model: str) -> str:
    """Said beside a trained run's Compare result when it held out too few pairs to be judged."""
    run = run_of_model(model)
    if run is None:
        return ""
    record = RunRecord.load(run.path)
    if record.judged_accuracy(MIN_HELD_OUT_PAIRS) is not None:
        return ""
    held = record.held_out_pairs or 0
    trained = record.data.get("train_pairs")
    return (
        f"\n\n> ⚠️ **{record.name}** trained on {counted(trained or 0, 'pair')} and held out "
        f"{counted(held, 'pair')}: too few to tell whether it learned anything general (at least "
        f"{MIN_HELD_OUT_PAIRS} held-out pairs needed). One comparison shows what it does, not how good it is."
    )


def after_run(session: Session) -> tuple:
    """When this session's run has just ended: offer its model and select it (once, not every tick),
    and say so beside the menu, so that the pick does not change behind the presenter's back."""
    if not session.just_finished:
        return gr.skip(), gr.skip()
    model = Path(session.run_dir or "") / "model"
    choices = model_choices(runs_root(), session.viewer())
    offered = any(path == str(model) for _, path in choices)  # completed, and this visitor's
    if not offered:
        return gr.update(choices=choices), gr.skip()
    preload(str(model))
    note = f"**{model.parent.name}** has finished: Compare now uses its model (the menu above picks another)."
    return gr.update(choices=choices, value=str(model)), note


# ---------------------------------------------------------------------------------------------
# Components


@dataclass
class CompareTab:
    model_pick: gr.Dropdown
    refresh: gr.Button
    example_btn: gr.Button
    question: gr.Textbox
    answer_a: gr.Textbox
    answer_b: gr.Textbox
    with_base: gr.Checkbox
    compare_btn: gr.Button
    example_note: gr.Markdown
    pick_note: gr.Markdown
    message: gr.Markdown
    results: gr.HTML
    plot: gr.Plot
    more: RankExplain

    @property
    def result_outputs(self) -> list:
        return [self.message, self.results, self.plot]

    @classmethod
    def build(cls) -> CompareTab:
        with gr.Row():
            model_pick = menu(
                [(BASE_MODEL_LABEL, "default")], value="default", label="Reward model", elem_id="model-pick", scale=3
            )
            refresh = gr.Button("↻ runs", scale=0)
            example_btn = gr.Button("Fill in an example", scale=0, elem_id="example-btn")
        pick_note = gr.Markdown(elem_id="pick-note")
        example_note = gr.Markdown(elem_id="example-note")
        question = gr.Textbox(label="Question", lines=2, elem_id="question")
        with gr.Row():
            answer_a = gr.Textbox(label="Answer A", lines=5, elem_id="answer-a")
            answer_b = gr.Textbox(label="Answer B", lines=5, elem_id="answer-b")
        with gr.Row():
            with_base = gr.Checkbox(
                True, label="Before / after: also score with the untrained base", elem_id="with-base"
            )
            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        message = gr.Markdown(PLACEHOLDER, elem_id="compare-message")
        results = gr.HTML(elem_id="compare-table")
        plot = gr.Plot(
            empty_chart(),
            label="Rewards",
            show_label=False,
            elem_id="compare-plot",
        )
        more = RankExplain.build()
        return cls(
            model_pick,
            refresh,
            example_btn,
            question,
            answer_a,
            answer_b,
            with_base,
            compare_btn,
            example_note,
            pick_note,
            message,
            results,
            plot,
            more,
        )


def compare_answers(model, question, answer_a, answer_b, with_base, session: Session) -> tuple:
    """The Compare button: the visitor's own model (or the base) only, then `compare_view`."""
    try:
        model = session.usable_model(model)
    except InputError as exc:
        return problem(exc), "", empty_chart()
    view = compare_view(model, question, answer_a, answer_b, with_base)
    return view.message, view.table_html, view.figure


def fill_example(session: Session, model: str | None) -> tuple:
    """*Fill in an example*: a pair from the visitor's own data, or from a run they may see, never
    another's (the same owner check as Compare)."""
    try:
        model = session.usable_model(model)
    except InputError as exc:
        return session, gr.skip(), gr.skip(), gr.skip(), problem(exc)
    return example_from_pairs(session, model)


def wire(compare: CompareTab, session) -> None:
    compare.compare_btn.click(
        compare_answers,
        [compare.model_pick, compare.question, compare.answer_a, compare.answer_b, compare.with_base, session],
        compare.result_outputs,
        api_name="compare",
        # A Compare on a loaded model takes ~20 ms; with the app's default of 4 at a time, four clicks
        # that each load a visitor's model (a second or more on a busy CPU) held every other click.
        concurrency_limit=COMPARE_CONCURRENCY,
    )
    cleared = (PLACEHOLDER, "", empty_chart())
    for box in (compare.question, compare.answer_a, compare.answer_b, compare.model_pick, compare.with_base):
        box.change(lambda: cleared, None, compare.result_outputs, show_progress="hidden")
    # Any change of the texts or the model (typed, or filled from an example) clears the old result.
    compare.example_btn.click(
        fill_example,
        [session, compare.model_pick],
        [session, compare.question, compare.answer_a, compare.answer_b, compare.example_note],
    )
    rank_explain.wire(
        compare.more,
        compare.model_pick,
        compare.question,
        compare.answer_a,
        compare.answer_b,
        compare.with_base,
        session,
    )
    compare.model_pick.input(lambda: "", None, compare.pick_note, show_progress="hidden")  # the visitor's own pick
    compare.refresh.click(
        lambda sess: gr.update(choices=model_choices(runs_root(), sess.viewer())), session, compare.model_pick
    )
