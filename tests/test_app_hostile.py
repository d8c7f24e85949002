"""Hostile input to a public app (issue 26): every entry point that scores text checks one budget per
kind of input before any model runs, and refuses with a plain message."""

from __future__ import annotations

import gzip
import time

import pytest

from rm_demo.app import compare_tab, rank_explain, runs_tab
from rm_demo.app.menus import menu
from rm_demo.app.state import Session
from rm_demo.errors import InputError

VISITOR = "v" * 32


@pytest.fixture
def public_app(tmp_path, monkeypatch):
    monkeypatch.setenv("RM_DEMO_PUBLIC", "1")
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("RM_DEMO_MAX_UPLOAD_MB", "5")
    return tmp_path


def _score_upload(tmp_path, name: str, rows: int):
    """*Score a file* with the untrained base, on a .csv.gz of `rows` rows."""
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"question,answer\n" + b"Why?,Because.\n" * rows))
    viewer = Session(owner=VISITOR).viewer()
    return runs_tab.score_view(tmp_path / "runs", None, viewer, str(path), "auto", "auto", tmp_path)


# what, call(tmp_path) that must raise, a part of the message
CASES = [
    (
        "score: a gzip bomb (34 MB of CSV in a small file)",
        lambda t: _score_upload(t, "bomb.csv.gz", 2_400_000),
        "over 5 MB once decompressed",
    ),
    ("score: more rows than the limit", lambda t: _score_upload(t, "rows.csv.gz", 30_000), "limit of 20,000"),
    ("explain: a 1 MB answer", lambda t: rank_explain.explain_view("default", "Q?", "x" * 10**6, "b", False), "limit"),
    (
        "explain: a 200 KB question",
        lambda t: rank_explain.explain_view("default", "q" * 200_000, "a", "b", False),
        "question",
    ),
    ("rank: 20,000 answers", lambda t: rank_explain.rank_view("default", "Q?", "a\n" * 20_000), "20,000 answers"),
    (
        "rank: one answer of 20,000 characters",
        lambda t: rank_explain.rank_view("default", "Q?", "a\n" + "b" * 20_000),
        "answer 2",
    ),
    ("rank: 51 short answers", lambda t: rank_explain.rank_view("default", "Q?", "a\n" * 51), "limit of 50"),
]


@pytest.mark.parametrize("what, call, message", CASES, ids=[c[0] for c in CASES])
def test_over_limit_input_is_refused_before_any_model_runs(public_app, monkeypatch, what, call, message):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was asked for")

    for module in (runs_tab, rank_explain, compare_tab):
        monkeypatch.setattr(module, "get_scorer", no_model)
    started = time.monotonic()
    with pytest.raises(InputError, match=message):
        call(public_app)
    assert time.monotonic() - started < 5


def test_compare_refuses_an_over_limit_text_with_a_message(public_app):
    view = compare_tab.compare_view("default", "Q?", "a" * 10_001, "b")
    assert view.results is None and "10,001 characters" in view.message


def test_every_action_needs_the_page_loads_visitor_id(public_app):
    from rm_demo.app import eval_tab

    nobody = Session(owner="")
    assert "no visitor id" in eval_tab.evaluated("some-run", None, nobody)[0]
    with pytest.raises(InputError, match="no visitor id"):
        nobody.usable_model("default")
    with pytest.raises(InputError, match="no visitor id"):
        nobody.require_owner()


def test_a_value_outside_a_menu_reaches_the_handler_which_refuses_it_in_one_line(public_app):
    dropdown = menu(["default"], value="default")
    assert dropdown.preprocess("/etc/passwd") == "/etc/passwd"  # gradio's own refusal logged a traceback
    session = Session(owner=VISITOR)
    message, table, _ = compare_tab.compare_answers("/etc/passwd", "Q?", "A.", "B.", True, session)
    assert not table and "not available here" in message
    with pytest.raises(InputError, match="not available here"):
        session.usable_model("/etc/passwd")


def test_public_mode_caps_batch_size_and_max_length(public_app, seed_csv, monkeypatch):
    from rm_demo.app import data_tab, train_tab
    from rm_demo.app.state import DataSettings
    from rm_demo.app.train_form import TrainForm

    started = []
    monkeypatch.setattr(train_tab, "start_job", lambda run, **_: started.append(run))
    session = data_tab.load_data(Session(owner=VISITOR), str(seed_csv), "seed.csv", DataSettings())[0]
    session, message = train_tab.start_run(session, TrainForm(batch_size=100_000, max_length=32_768))
    assert "within this app's limits of 64 pairs and 512 tokens" in message and not started
