"""Plotly figures for the app: data at a glance, live training curves, a comparison."""

from __future__ import annotations

import functools

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from rm_demo.text import counted

_TEMPLATE = "plotly_white"
_LAYOUT = dict(height=300, margin=dict(l=60, r=20, t=50, b=50), font=dict(size=13))
CHOSEN, REJECTED, ACCENT = "#2e7d32", "#c62828", "#1565c0"
_LEGEND = dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right")  # above the plot, clear of the lines
# Chart titles: the figures below and the placeholders the app shows before a chart has data.
SCORES_TITLE = "Score distribution"
ANSWER_COUNTS_TITLE = "Answers per question"
MARGINS_TITLE = "Score gap of each pair (margin)"
LOSS_TITLE = "Loss"
ACCURACY_TITLE = "Pairwise accuracy"
COMPARE_TITLE = "Rewards of A and B, by model"
REWARDS_TITLE = "Rewards of held-out answers"
CALIBRATION_TITLE = "Calibration"
LENGTH_TITLE = "Reward against answer length"


@functools.cache
def _template() -> dict:
    return pio.templates[_TEMPLATE].to_plotly_json()


def _figure(title: str, x_title: str, y_title: str) -> go.Figure:
    """An empty chart with this app's look. Built from a plain layout without plotly's validation: checking
    the template alone took 19 of a Compare chart's 40 ms (holding the GIL every other click waits on);
    the figure's JSON is the same."""
    layout = {
        **_LAYOUT,
        "template": _template(),
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
    }
    return go.Figure({"layout": layout}, _validate=False)


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14, color="#777")
    )
    return fig


def placeholder(title: str, message: str) -> go.Figure:
    """What a chart shows before there is anything to draw: its title, and what will fill it."""
    fig = _empty(_figure(title, "", ""), message)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def score_distribution(distribution: dict[str, int]) -> go.Figure:
    fig = _figure(SCORES_TITLE, "feedback score", "ratings")  # rows: with several raters, more than answers
    if not distribution:
        return _empty(fig, "no numeric scores")
    fig.add_bar(x=list(distribution.keys()), y=list(distribution.values()), marker_color=ACCENT)
    fig.update_xaxes(type="category")
    return fig


def answers_per_question(rows: pd.DataFrame) -> go.Figure:
    fig = _figure(ANSWER_COUNTS_TITLE, "answers to the question", "questions")
    usable = rows[
        ~rows["status"].isin(
            ["missing_question", "missing_answer", "missing_score", "non_numeric_score", "duplicate_row"]
        )
    ]
    if usable.empty or "answer" not in usable:
        return _empty(fig, "no rated answers")
    counts = usable.groupby("question")["answer"].nunique().value_counts().sort_index()  # answers, not ratings
    fig.add_bar(x=[str(k) for k in counts.index], y=counts.to_numpy(), marker_color=ACCENT)
    fig.update_xaxes(type="category")
    return fig


def margins(pairs: pd.DataFrame) -> go.Figure:
    fig = _figure(MARGINS_TITLE, "chosen score - rejected score", "pairs")
    values = pairs["margin"].dropna() if "margin" in pairs else pd.Series(dtype=float)
    if not len(pairs):
        return _empty(fig, "no pairs: the summary above says why")
    if values.empty:
        return _empty(fig, "no margins (pairs without scores)")
    counts = values.round(2).value_counts().sort_index()
    fig.add_bar(x=[f"{v:g}" for v in counts.index], y=counts.to_numpy(), marker_color=CHOSEN)
    fig.update_xaxes(type="category")
    return fig


def loss_curves(metrics: list[dict]) -> go.Figure:
    fig = _figure(LOSS_TITLE, "training step", "loss (lower is better)")
    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    evals = [(m["step"], m["eval_loss"]) for m in metrics if "eval_loss" in m and not m.get("final")]
    if not train and not evals:
        return _empty(fig, "waiting for the first step...")
    if train:
        fig.add_scatter(
            x=[s for s, _ in train],
            y=[v for _, v in train],
            mode="lines+markers",
            name="train loss",
            line_color=ACCENT,
        )
    if evals:
        fig.add_scatter(
            x=[s for s, _ in evals],
            y=[v for _, v in evals],
            mode="lines+markers",
            name="eval loss",
            line_color=REJECTED,
        )
    _saved_model_point(fig, metrics, "eval_loss", REJECTED)
    fig.update_layout(legend=_LEGEND)
    return fig


def _saved_model_point(fig: go.Figure, metrics: list[dict], key: str, color: str) -> None:
    """The evaluation after training scores the saved model (the epoch average): a star, not the curve's end."""
    final = [m for m in metrics if m.get("final") and key in m]
    if final:
        n = final[-1].get("eval_pairs")
        name = "saved model"
        if key == "eval_accuracy" and isinstance(n, int) and n > 0:
            from rm_demo.text import accuracy_phrase

            name = f"saved model: {accuracy_phrase(final[-1][key], n, short=True)}"
        fig.add_scatter(
            x=[final[-1]["step"]],
            y=[final[-1][key]],
            mode="markers",
            name=name,
            marker=dict(symbol="star", size=14, color=color, line=dict(color="#333", width=1)),
        )


def accuracy_curves(
    metrics: list[dict], eval_pairs: int | None = None, min_pairs: int = 10, curve_pairs: int | None = None
) -> go.Figure:
    """Train (batch) and held-out accuracy by step. With fewer than `min_pairs` held-out pairs the
    held-out line jumps between a few values by chance: it is drawn faint and the chart says so.
    `curve_pairs`: the evaluations during training scored a sample of that many held-out pairs."""
    fig = _figure(ACCURACY_TITLE, "training step", "share of pairs ranked right")
    train = [(m["step"], m["train_accuracy"]) for m in metrics if "train_accuracy" in m]
    evals = [(m["step"], m["eval_accuracy"]) for m in metrics if "eval_accuracy" in m and not m.get("final")]
    if not train and not evals:
        fig.update_yaxes(range=[0, 1.05])  # a share of pairs, even before there is one
        return _empty(fig, "waiting for the first evaluation...")
    few = eval_pairs is not None and eval_pairs < min_pairs
    if train:
        fig.add_scatter(
            x=[s for s, _ in train],
            y=[v for _, v in train],
            mode="lines",
            name="train (batch)",
            line=dict(color=ACCENT, width=3 if few else 1),
        )
    if evals:
        name = f"held-out ({counted(eval_pairs, 'pair')}: too few to judge)" if few else "held-out"
        if not few and curve_pairs and eval_pairs and curve_pairs < eval_pairs:
            name = f"held-out (a sample of {curve_pairs} of {eval_pairs} pairs)"
        fig.add_scatter(
            x=[s for s, _ in evals],
            y=[v for _, v in evals],
            mode="lines+markers",
            name=name,
            line=dict(color=CHOSEN, width=1 if few else 3, dash="dot" if few else "solid"),
            opacity=0.5 if few else 1,
        )
    if not few:
        _saved_model_point(fig, metrics, "eval_accuracy", CHOSEN)
    fig.add_hline(
        y=0.5, line_dash="dot", line_color="#999", annotation_text="chance", annotation_position="bottom right"
    )
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(legend=_LEGEND)
    return fig


def compare_models(results: dict[str, dict]) -> go.Figure:
    """Rewards of answers A and B under each model (untrained base beside the trained run)."""
    fig = _figure(COMPARE_TITLE, "model", "reward")
    names = list(results)
    for key, label, color in (("reward_a", "Answer A", CHOSEN), ("reward_b", "Answer B", REJECTED)):
        values = [results[n][key] for n in names]
        fig.add_bar(
            x=names,
            y=values,
            name=label,
            marker_color=color,
            text=[f"{v:.3f}" for v in values],
            textposition="outside",
        )
    fig.update_layout(barmode="group", height=320, legend=_LEGEND)
    # Room above and below the bars for their labels.
    values = [r[k] for r in results.values() for k in ("reward_a", "reward_b")] + [0.0]
    pad = 0.25 * (max(values) - min(values) or 1.0)
    fig.update_yaxes(range=[min(values) - pad, max(values) + pad])
    return fig


def reward_histograms(chosen: list[float], rejected: list[float]) -> go.Figure:
    fig = _figure(REWARDS_TITLE, "reward", "answers")
    if not chosen:
        return _empty(fig, "no held-out pairs")
    fig.add_histogram(x=chosen, name="chosen", marker_color=CHOSEN, opacity=0.65)
    fig.add_histogram(x=rejected, name="rejected", marker_color=REJECTED, opacity=0.65)
    fig.update_layout(barmode="overlay", legend=_LEGEND)
    return fig


def calibration_chart(bins: list[dict]) -> go.Figure:
    fig = _figure(CALIBRATION_TITLE, "predicted P(first answer preferred)", "observed rate")
    if not bins:
        return _empty(fig, "no held-out pairs")
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="#999"))
    fig.add_scatter(
        x=[b["predicted"] for b in bins],
        y=[b["observed"] for b in bins],
        mode="lines+markers",
        name="model",
        line_color=ACCENT,
        text=[f"{b['count']} pairs" for b in bins],
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(legend=_LEGEND)
    return fig


def overlay_curves(
    runs: dict[str, list[dict]],
    key: str = "eval_accuracy",
    title: str = "Held-out accuracy by run",
    too_few: dict[str, int] | None = None,
) -> go.Figure:
    """One trace per run. `too_few`: runs whose held-out pairs (the value) are too few to judge them,
    drawn faint and dotted and named so, as the Train tab's curve of such a run is."""
    fig = _figure(title, "training step", key.replace("_", " "))
    drawn = 0
    too_few = too_few or {}
    for name, metrics in runs.items():
        points = [(m["step"], m[key], "circle") for m in metrics if key in m and not m.get("final")]
        final = [m for m in metrics if m.get("final") and key in m]
        if final:  # the saved model's score: a star after a gap, in the run's own trace and colour
            points += [(None, None, "circle"), (final[-1]["step"], final[-1][key], "star")]
        if points:
            fig.add_scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=f"{name} ({counted(too_few[name], 'held-out pair')}: too few to judge)"
                if name in too_few
                else name,
                marker=dict(symbol=[p[2] for p in points], size=[14 if p[2] == "star" else 6 for p in points]),
                line=dict(dash="dot") if name in too_few else None,
                opacity=0.5 if name in too_few else 1,
            )
            drawn += 1
    if not drawn:
        return placeholder(title, "pick runs with metrics above")
    fig.update_layout(legend=dict(orientation="h", y=-0.3))
    fig.update_layout(height=340)
    return fig


def reward_vs_length(lengths: dict, rewards: dict) -> go.Figure:
    """Each held-out answer: its length in tokens against its reward, chosen and rejected apart."""
    fig = _figure(LENGTH_TITLE, "answer length (tokens)", "reward")
    if not lengths:
        return _empty(fig, "evaluate again to see lengths")
    for key, name, color in (("chosen", "chosen", CHOSEN), ("rejected", "rejected", REJECTED)):
        fig.add_scatter(
            x=lengths.get(key, []),
            y=rewards.get(key, []),
            mode="markers",
            name=name,
            marker=dict(color=color, size=7, opacity=0.6),
        )
    fig.update_layout(legend=_LEGEND)
    return fig
