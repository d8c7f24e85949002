"""Compare tab: before/after in one click, cleared results, examples from the session's pairs."""

import json

import pytest

from rm_demo.app import compare_tab, data_tab
from rm_demo.app.model_menu import BASE_MODEL_LABEL
from rm_demo.app.state import DataSettings, Session
from rm_demo.score import get_scorer

Q, A, B = "What is your name?", "My name is Amit", "Bananas"

VISITOR = "v" * 32  # a browser id, as the page load gives every visitor


def test_compare_needs_all_fields():
    view = compare_tab.compare_view("default", "q", "", "b")
    assert "Fill in" in view.message and view.results is None
    assert not view.figure.data and view.figure.layout.annotations[0].text == "press Compare"  # no bars at 0


def test_compare_with_the_base_model_only():
    view = compare_tab.compare_view("default", Q, A, B, with_base=True)
    assert list(view.results) == [BASE_MODEL_LABEL]  # the base is not scored twice
    r = view.results[BASE_MODEL_LABEL]
    assert r["p_a_preferred"] == pytest.approx(
        1 / (1 + pytest.importorskip("math").exp(-(r["reward_a"] - r["reward_b"])))
    )
    assert "prefers" in view.message and "<table" in view.table_html
    assert get_scorer("default") is get_scorer("default")  # loaded once


def test_before_and_after_side_by_side(monkeypatch):
    """A trained model beside the base in one click; the message says how P(A) moved."""
    base = {"reward_a": 0.1, "reward_b": 0.0, "difference": 0.1, "p_a_preferred": 0.525}
    trained = {"reward_a": 2.0, "reward_b": -1.0, "difference": 3.0, "p_a_preferred": 0.9526}

    class Fake:
        def __init__(self, result):
            self.result = result

        def compare(self, *texts):
            return self.result

    monkeypatch.setattr(compare_tab, "get_scorer", lambda m, length=None: Fake(base if m == "default" else trained))
    view = compare_tab.compare_view("runs/r1/model", Q, A, B, with_base=True)
    assert list(view.results) == [BASE_MODEL_LABEL, "trained: r1"]
    assert "Before training, the untrained base (embedded MiniLM) gave 52.5%" in view.message
    assert "+42.8 percentage points" in view.message
    assert view.table_html.count("<tr>") == 3 and len(view.figure.data) == 2
    alone = compare_tab.compare_view("runs/r1/model", Q, A, B, with_base=False)
    assert list(alone.results) == ["trained: r1"] and "Before" not in alone.message


def test_a_broken_model_is_a_message(tmp_path):
    view = compare_tab.compare_view(str(tmp_path / "missing"), Q, A, B, with_base=False)
    assert "Could not score" in view.message or "no model" in view.message.lower()


def test_nothing_shows_zeros_before_a_comparison():
    # Defect 5: 0 / 0 / 0 / P = 0 before any comparison.
    import gradio as gr

    with gr.Blocks():
        tab = compare_tab.CompareTab.build()
    assert tab.message.value == compare_tab.PLACEHOLDER and not tab.results.value
    chart = json.loads(tab.plot.value["plot"])
    assert chart["data"] == [] and chart["layout"]["annotations"][0]["text"] == "press Compare"  # no bars at 0


def test_examples_come_from_the_session_pairs_in_turn(seed_csv):
    session = data_tab.load_data(Session(owner=VISITOR), str(seed_csv), "seed.csv", DataSettings())[0]
    session, q1, a1, b1, note = compare_tab.example_from_pairs(session)
    session, q2, *_ = compare_tab.example_from_pairs(session)
    assert q1 != q2 and "preferred" in note and a1 and b1


def test_examples_need_data():
    session, q, a, b, note = compare_tab.example_from_pairs(Session(owner=VISITOR))
    assert q is None and "Load data" in note


def test_a_preloaded_model_is_served_from_the_cache(tmp_path):
    from rm_demo import score

    score.forget_scorer()
    compare_tab.preload("default").result()
    hits, misses = score.scorer_cache.hits, score.scorer_cache.misses
    get_scorer("default")
    assert (score.scorer_cache.hits, score.scorer_cache.misses) == (hits + 1, misses)  # the click finds it loaded


def test_a_model_that_cannot_load_fails_quietly_in_the_background(tmp_path, caplog):
    (tmp_path / "model").mkdir()
    compare_tab.preload(str(tmp_path / "model")).result()  # no exception escapes the load
    assert "could not preload" in caplog.text


def test_a_page_that_opens_preloads_its_visitors_newest_finished_model_only(runs, monkeypatch):
    import time

    from rm_demo.access import owner_key
    from rm_demo.app import preload

    loading = []
    monkeypatch.setattr(preload, "preload", loading.append)
    for name, owner, status, age in (
        ("old", VISITOR, "completed", 60),
        ("new", VISITOR, "completed", 10),
        ("running", VISITOR, "running", 0),
        ("theirs", "t" * 32, "completed", 0),
    ):
        (runs / name / "model").mkdir(parents=True)
        (runs / name / "model" / "config.json").write_text("{}")
        record = {"status": status, "owner": owner_key(owner), "created_at": time.time() - age}
        (runs / name / "run.json").write_text(json.dumps(record))
    preload.preload_own_run(Session(owner=VISITOR))
    preload.preload_own_run(Session(owner="s" * 32))  # nothing of this visitor's: nothing loads
    assert loading == [str(runs / "new" / "model")]


def test_another_model_or_text_clears_the_old_ranking_and_explanation(tmp_path, monkeypatch):
    """Issue 37: after a new run finished (its model selected), the old Rank table and Explain panel stayed
    and read as the new model's. A change of the model or of a text now clears them, as Compare's result."""
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path / "runs"))
    from rm_demo.app.build import build

    demo = build()
    names = {block._id: getattr(block, "label", None) for block in demo.blocks.values()}
    ids = {block._id: getattr(block, "elem_id", None) for block in demo.blocks.values()}
    views = {"rank-table", "rank-message", "explain-message", "explain-a", "explain-b"}
    cleared = {}
    for fn in demo.fns.values():
        if {ids.get(c._id) for c in fn.outputs} & views:
            for target, event in fn.targets:
                if event == "change":
                    cleared.setdefault(names.get(target), []).append(fn)
    assert {"Reward model", "Question", "Answer A", "Answer B"} <= set(cleared), cleared.keys()
    for fns in cleared.values():
        for fn in fns:
            result = fn.fn()
            assert all((getattr(v, "empty", False) or v == "") for v in result), result


def test_what_start_up_made_is_out_of_the_collectors_full_passes(runs, monkeypatch):
    """A full garbage collection walked every object start-up made (~535,000: modules, the default model, the
    built app), 0.2-0.4 s with the GIL held, every visitor's click waiting: the slowest clicks of a room's
    cold Compare. `main` freezes them once the app is built and the default model warm."""
    import gc

    import gradio as gr

    from rm_demo import settings
    from rm_demo.app import main

    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda demo, **kwargs: launched.append(demo))
    monkeypatch.setattr(settings, "_configured", None)  # main installs its own; the next test reads the env again
    try:
        main([])
        assert launched and gc.get_freeze_count() > 100_000
        tracked = {id(obj) for obj in gc.get_objects()}  # the frozen generation is not among them
        assert id(launched[0]) not in tracked and id(get_scorer("default").model) not in tracked
        made_after = [object()]
        assert id(made_after) in {id(obj) for obj in gc.get_objects()}  # what clicks make is collected as before
    finally:
        gc.unfreeze()
