"""Compare, further: rank several answers to one question (best-of-N), and explain a reward by the
words that move it (occlusion), for the chosen model and the untrained base."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm_demo.app.messages import problem
from rm_demo.app.state import Session
from rm_demo.errors import InputError
from rm_demo.insight import occlusion, rank, read_answers
from rm_demo.score import get_scorer

RANK_COLUMNS = ["rank", "answer", "reward", "P(best)"]


def _allowed(model: str | None, session: Session) -> str:
    model = model or "default"
    if model not in session.model_paths():
        raise InputError("that model is not available here", fix="pick one from the menu (↻ runs refreshes it)")
    return model


def rank_view(model: str, question: str, answers_text: str) -> tuple[str, pd.DataFrame]:
    question = (question or "").strip()
    if not question:
        raise InputError("type the question first")
    answers = read_answers(answers_text or "")
    ranked = rank(get_scorer(model).score([question] * len(answers), answers), answers)
    table = pd.DataFrame(
        [
            {"rank": i + 1, "answer": r["answer"], "reward": round(r["reward"], 4), "P(best)": f"{r['p_best']:.1%}"}
            for i, r in enumerate(ranked)
        ],
        columns=RANK_COLUMNS,
    )
    message = f"**{len(answers)} answers**, best first. P(best) = softmax of the rewards: the chance each is the best."
    return message, table


def highlights(explained: dict) -> list[tuple[str, float | None]]:
    """Words with their contribution scaled to [-1, 1] (gradio colours the sign and strength)."""
    tokens = explained["tokens"]
    scale = max((abs(t["contribution"]) for t in tokens), default=0.0) or 1.0
    out: list[tuple[str, float | None]] = []
    for i, t in enumerate(tokens):
        out.append((t["text"], round(t["contribution"] / scale, 3)))
        if i < len(tokens) - 1:
            out.append((" ", None))
    return out


def explain_view(model: str, question: str, answer_a: str, answer_b: str, with_base: bool) -> tuple:
    """(message, A and B under the chosen model, A and B under the untrained base or None)."""
    question, answer_a, answer_b = ((t or "").strip() for t in (question, answer_a, answer_b))
    if not (question and answer_a and answer_b):
        raise InputError("fill in the question and both answers")
    chosen = get_scorer(model)
    shown = [highlights(occlusion(chosen, question, a)) for a in (answer_a, answer_b)]
    base = [None, None]
    if with_base and model != "default":
        base = [highlights(occlusion(get_scorer("default"), question, a)) for a in (answer_a, answer_b)]
    message = (
        "Green words raise the reward, red words lower it: each word's colour is how much the reward drops "
        "when that word is left out (scaled per answer)."
    )
    return (message, *shown, *base)


@dataclass
class RankExplain:
    explain_btn: gr.Button
    explain_message: gr.Markdown
    a_model: gr.HighlightedText
    b_model: gr.HighlightedText
    a_base: gr.HighlightedText
    b_base: gr.HighlightedText
    answers: gr.Textbox
    rank_btn: gr.Button
    rank_message: gr.Markdown
    ranking: gr.Dataframe

    @classmethod
    def build(cls) -> RankExplain:
        with gr.Accordion("Explain: which words move each reward", open=False):
            explain_btn = gr.Button("Explain A and B", elem_id="explain-btn")
            explain_message = gr.Markdown(elem_id="explain-message")
            with gr.Row():
                a_model = gr.HighlightedText(label="A, chosen model", elem_id="explain-a")
                b_model = gr.HighlightedText(label="B, chosen model", elem_id="explain-b")
            with gr.Row():
                a_base = gr.HighlightedText(label="A, untrained base")
                b_base = gr.HighlightedText(label="B, untrained base")
        with gr.Accordion("Rank several answers (best-of-N)", open=False):
            answers = gr.Textbox(label="Answers to the question above, one per line", lines=5, elem_id="rank-answers")
            rank_btn = gr.Button("Rank", elem_id="rank-btn")
            rank_message = gr.Markdown(elem_id="rank-message")
            ranking = gr.Dataframe(
                pd.DataFrame(columns=RANK_COLUMNS), interactive=False, wrap=True, elem_id="rank-table"
            )
        return cls(
            explain_btn, explain_message, a_model, b_model, a_base, b_base, answers, rank_btn, rank_message, ranking
        )


def wire(tab: RankExplain, model_pick, question, answer_a, answer_b, with_base, session) -> None:
    def do_rank(model, q, text, sess: Session):
        try:
            return rank_view(_allowed(model, sess), q, text)
        except InputError as exc:
            return problem(exc), pd.DataFrame(columns=RANK_COLUMNS)

    def do_explain(model, q, a, b, base, sess: Session):
        try:
            return explain_view(_allowed(model, sess), q, a, b, base)
        except InputError as exc:
            return problem(exc), None, None, None, None

    tab.rank_btn.click(
        do_rank, [model_pick, question, tab.answers, session], [tab.rank_message, tab.ranking], api_name="rank"
    )
    tab.explain_btn.click(
        do_explain,
        [model_pick, question, answer_a, answer_b, with_base, session],
        [tab.explain_message, tab.a_model, tab.b_model, tab.a_base, tab.b_base],
        api_name="explain",
    )
