"""Compare, further: rank several answers to one question (best-of-N), and explain a reward by the
words that move it (occlusion), for the chosen model and the untrained base."""

from __future__ import annotations

import html
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from rm_demo.app.messages import problem
from rm_demo.app.model_menu import base_label
from rm_demo.app.state import Session, limits
from rm_demo.errors import InputError
from rm_demo.insight import occlusion, rank, read_answers
from rm_demo.limits import check_texts
from rm_demo.runs import base_model_of
from rm_demo.score import get_scorer

RANK_COLUMNS = ["rank", "answer", "reward", "P(best)"]


def rank_view(model: str, question: str, answers_text: str) -> tuple[str, pd.DataFrame]:
    question = (question or "").strip()
    if not question:
        raise InputError("type the question first")
    rules = limits()
    check_texts(rules, question=question)
    if len(answers_text or "") > rules.max_text_chars * rules.max_rank_answers:  # before splitting it
        raise InputError(
            f"the answers come to {len(answers_text):,} characters; the limit here is "
            f"{rules.max_text_chars * rules.max_rank_answers:,}",
            fix=f"rank at most {rules.max_rank_answers:,} answers of at most {rules.max_text_chars:,} characters",
        )
    answers = read_answers(answers_text or "", max_answers=rules.max_rank_answers)
    for number, answer in enumerate(answers, start=1):
        check_texts(rules, **{f"answer_{number}": answer})
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


RAISES, LOWERS = (22, 163, 74), (220, 38, 38)  # green, red: the key and the words use these same two


def _background(rgb: tuple, alpha: float) -> str:
    return f"background: rgba({rgb[0]}, {rgb[1]}, {rgb[2]}, {alpha:.3f})"


def _swatch(rgb: tuple, text: str) -> str:
    return f'<span style="{_background(rgb, 0.55)}; padding: 0 4px; border-radius: 3px">{text}</span>'


EXPLAIN_KEY = (
    f"{_swatch(RAISES, 'green')} words raise the reward, {_swatch(LOWERS, 'red')} words lower it; the stronger "
    "the colour, the more. Each word's effect is how much the reward drops when that word is left out "
    "(colours scaled per answer; hover a word for its number)."
)


def word_shades(explained: dict) -> list[tuple[str, float]]:
    """Words with their contribution scaled to [-1, 1]: the sign picks the colour, the size its strength."""
    tokens = explained["tokens"]
    scale = max((abs(t["contribution"]) for t in tokens), default=0.0) or 1.0
    return [(t["text"], t["contribution"] / scale) for t in tokens]


def explained_html(explained: dict, label: str, max_words: int | None = None) -> str:
    """One answer's words on a green (raises) / red (lowers) background; drawn here rather than by
    gr.HighlightedText, whose own colours (red for positive) contradicted the key."""
    words = []
    for token, shade in zip(explained["tokens"], word_shades(explained)):
        rgb = RAISES if shade[1] >= 0 else LOWERS
        words.append(
            f'<span class="explained-word" data-contribution="{token["contribution"]:.6g}" '
            f'title="{token["contribution"]:+.4f}" style="{_background(rgb, 0.08 + 0.62 * abs(shade[1]))}; '
            f'padding: 1px 2px; border-radius: 3px">{html.escape(token["text"])}</span>'
        )
    cut = ""
    if max_words is not None and len(explained["tokens"]) >= max_words:
        cut = f'<div style="opacity: 0.7; font-size: 0.9em">Only the first {max_words} words are explained.</div>'
    return (
        f'<div class="explained"><div style="font-weight: 600; margin-bottom: 4px">{html.escape(label)} · reward '
        f'{explained["reward"]:.4f}</div><div style="line-height: 1.9">{" ".join(words)}</div>{cut}</div>'
    )


EXPLAIN_WORDS = 200  # one forward pass per word: the first 200 words of an answer are explained


def unread_note(scorer, question: str, answer: str) -> str:
    """Said under an answer the model does not read to its end: words past its window show no effect
    because the model never sees them, not because they do not matter."""
    kept = len(scorer.encoder.encode([question], [answer]).input_ids[0])
    whole = sum(len(scorer.tokenizer(t, add_special_tokens=False).input_ids) for t in (question, answer))
    if whole < kept:
        return ""
    return (
        f'<div style="opacity: 0.7; font-size: 0.9em">The model reads {scorer.max_length} tokens of question '
        "and answer: words past that show no effect because it never sees them.</div>"
    )


def _explained(scorer, question: str, answers: tuple, label: str) -> list[str]:
    return [
        explained_html(occlusion(scorer, question, a, EXPLAIN_WORDS), f"{name}, {label}", EXPLAIN_WORDS)
        + unread_note(scorer, question, a)
        for name, a in zip("AB", answers)
    ]


def explain_view(model: str, question: str, answer_a: str, answer_b: str, with_base: bool) -> tuple:
    """(message, A and B under the chosen model, A and B under the untrained base or "")."""
    question, answer_a, answer_b = ((t or "").strip() for t in (question, answer_a, answer_b))
    if not (question and answer_a and answer_b):
        raise InputError("fill in the question and both answers")
    check_texts(limits(), question=question, answer_A=answer_a, answer_B=answer_b)
    shown = _explained(get_scorer(model), question, (answer_a, answer_b), "chosen model")
    base = ["", ""]
    if with_base and model != "default":
        base_model, base_length = base_model_of(model)  # the run's own base, at its own length
        base = _explained(get_scorer(base_model, base_length), question, (answer_a, answer_b), base_label(base_model))
    return (EXPLAIN_KEY, *shown, *base)


@dataclass
class RankExplain:
    explain_btn: gr.Button
    explain_message: gr.Markdown
    a_model: gr.HTML
    b_model: gr.HTML
    a_base: gr.HTML
    b_base: gr.HTML
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
                a_model = gr.HTML(elem_id="explain-a")
                b_model = gr.HTML(elem_id="explain-b")
            with gr.Row():
                a_base = gr.HTML(elem_id="explain-a-base")
                b_base = gr.HTML(elem_id="explain-b-base")
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


def cleared_rank() -> tuple:
    return "", pd.DataFrame(columns=RANK_COLUMNS)


def cleared_explain() -> tuple:
    return "", "", "", "", ""


def wire(tab: RankExplain, model_pick, question, answer_a, answer_b, with_base, session) -> None:
    def do_rank(model, q, text, sess: Session):
        try:
            return rank_view(sess.usable_model(model), q, text)
        except InputError as exc:
            return problem(exc), pd.DataFrame(columns=RANK_COLUMNS)

    def do_explain(model, q, a, b, base, sess: Session):
        try:
            return explain_view(sess.usable_model(model), q, a, b, base)
        except InputError as exc:
            return problem(exc), "", "", "", ""

    tab.rank_btn.click(
        do_rank, [model_pick, question, tab.answers, session], [tab.rank_message, tab.ranking], api_name="rank"
    )
    # A ranking or an explanation is about one model and its texts: another model picked (a new run just
    # finished selects its own) or another text clears it, as Compare's result is, so no old figure reads
    # as the new model's.
    rank_outputs = [tab.rank_message, tab.ranking]
    explain_outputs = [tab.explain_message, tab.a_model, tab.b_model, tab.a_base, tab.b_base]
    for box in (model_pick, question, tab.answers):
        box.change(cleared_rank, None, rank_outputs, show_progress="hidden")
    for box in (model_pick, question, answer_a, answer_b, with_base):
        box.change(cleared_explain, None, explain_outputs, show_progress="hidden")
    tab.explain_btn.click(
        do_explain,
        [model_pick, question, answer_a, answer_b, with_base, session],
        [tab.explain_message, tab.a_model, tab.b_model, tab.a_base, tab.b_base],
        api_name="explain",
    )
