"""The training curves: what the live plots draw from metrics.jsonl records."""

from rm_demo import plots

METRICS = [
    {"step": 0, "eval_accuracy": 0.5, "eval_loss": 0.69},
    {"step": 5, "loss": 0.6, "train_accuracy": 0.7},
    {"step": 10, "eval_accuracy": 0.64, "eval_loss": 0.62},
    {"step": 10, "eval_accuracy": 0.67, "eval_loss": 0.60, "final": True},  # the saved, averaged model
]


def test_saved_model_is_a_star_apart_from_the_curve():
    for fig, value in ((plots.accuracy_curves(METRICS), 0.67), (plots.loss_curves(METRICS), 0.60)):
        traces = {t.name: t for t in fig.data}
        curve = traces["held-out"] if "held-out" in traces else traces["eval loss"]
        assert list(curve.x) == [0, 10] and 0.67 not in curve.y and 0.60 not in curve.y
        assert list(traces["saved model"].y) == [value] and traces["saved model"].marker.symbol == "star"


def test_no_star_while_training():
    fig = plots.accuracy_curves(METRICS[:3])
    assert [t.name for t in fig.data] == ["train (batch)", "held-out"]


def test_run_overlay_ends_each_curve_with_its_saved_model_star():
    fig = plots.overlay_curves({"a": METRICS, "b": METRICS[:3]})
    a, b = fig.data  # one trace per run
    assert list(a.x) == [0, 10, None, 10] and list(a.y) == [0.5, 0.64, None, 0.67]  # a gap, then the star
    assert list(a.marker.symbol) == ["circle", "circle", "circle", "star"]
    assert list(b.y) == [0.5, 0.64] and "star" not in b.marker.symbol


def test_each_chart_in_the_app_shows_its_title_once_and_says_what_will_fill_it(runs):
    """The figures carry their own titles; gradio's label above them would say it a second time. Before
    there is data, each chart is its title and a line on what fills it, not a blank box."""
    import json

    import gradio as gr

    from rm_demo.app.build import build

    charts = [block for block in build().blocks.values() if isinstance(block, gr.Plot)]
    assert len(charts) == 11
    assert [chart.label for chart in charts if chart.show_label] == []
    for chart in charts:
        figure = json.loads(chart.value["plot"])
        assert figure["data"] == [] and figure["layout"]["title"]["text"], chart.label
        assert figure["layout"]["annotations"][0]["text"], chart.label
    assert all(fig.layout.title.text for fig in (plots.loss_curves(METRICS), plots.accuracy_curves(METRICS)))


def test_charts_built_without_validation_are_the_ones_plotly_validates():
    """The quick figure (no validation of the template) sends the browser the very JSON of the checked one."""
    import json

    import plotly.graph_objects as go

    checked = go.Figure()
    checked.update_layout(title="T", xaxis_title="x", yaxis_title="y", template="plotly_white", **plots._LAYOUT)
    checked.add_bar(x=["base", "run"], y=[0.1, 0.5], name="Answer A")
    quick = plots._figure("T", "x", "y")
    quick.add_bar(x=["base", "run"], y=[0.1, 0.5], name="Answer A")
    assert json.loads(quick.to_json()) == json.loads(checked.to_json())


def test_several_raters_count_as_ratings_not_as_more_answers():
    import pandas as pd

    from rm_demo import plots

    rows = pd.DataFrame(
        {
            "question": ["Q"] * 4,
            "answer": ["good", "bad", "good", "bad"],  # two raters, two answers
            "status": ["used"] * 4,
        }
    )
    counts = plots.answers_per_question(rows)
    assert list(counts.data[0].x) == ["2"] and list(counts.data[0].y) == [1]  # one question with 2 answers
    assert plots.score_distribution({"5": 2, "1": 2}).layout.yaxis.title.text == "ratings"
