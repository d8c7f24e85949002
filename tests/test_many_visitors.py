"""Many people on one app: ownership, the facilitator, public limits, clean-up. Handlers, no browser."""

import json
import os
import time
from pathlib import Path

import pytest

from rm_demo.access import open_run, owner_key, visible_runs
from rm_demo.app import compare_tab, data_tab, eval_tab, facilitator_tab, runs_tab, train_tab
from rm_demo.app.model_menu import model_choices
from rm_demo.app.state import DataSettings, Session, clean_up
from rm_demo.app.train_tab import TrainForm
from rm_demo.config import TrainConfig
from rm_demo.errors import InputError
from rm_demo.limits import Limits, check_start, params_from_config, prune_runs
from rm_demo.runs import create_run, process_start
from rm_demo.settings import Settings

ALICE, BOB = "a" * 32, "b" * 32

VISITOR = "v" * 32  # a browser id, as the page load gives every visitor


@pytest.fixture
def shared_app(tmp_path, monkeypatch):
    """A workshop: a facilitator secret is set, so the app is not one person's."""
    root = tmp_path / "runs"
    monkeypatch.setenv("RM_DEMO_RUNS", str(root))
    monkeypatch.setenv("RM_DEMO_FACILITATOR_SECRET", "open sesame")
    monkeypatch.delenv("RM_DEMO_PUBLIC", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    return root


# A live run's record names a living process: this test's own.
THIS_PROCESS = {"pid": os.getpid(), "pid_started": process_start(os.getpid())}


def _run(root, name, owner="", status="completed", **extra):
    path = root / name
    (path / "model").mkdir(parents=True)
    (path / "model" / "config.json").write_text("{}")
    record = {
        "status": status,
        "created_at": time.time(),
        "config": {"owner": owner_key(owner), "model": "default"},
        "final_metrics": {"eval_accuracy": 0.7, "eval_pairs": 50},
        "data": {"train_pairs": 5, "eval_pairs": 50},
        **extra,
    }
    (path / "run.json").write_text(json.dumps(record))
    return path


def test_each_visitor_sees_only_their_runs_and_shared_examples(shared_app):
    _run(shared_app, "alice-run", ALICE)
    _run(shared_app, "bob-run", BOB)
    _run(shared_app, "example", BOB, shared=True)
    _run(shared_app, "cli-run", "")
    alice, bob = Session(owner=ALICE).viewer(), Session(owner=BOB).viewer()
    assert {r.name for r in visible_runs(shared_app, alice)} == {"alice-run", "example"}
    assert set(runs_tab.runs_table(shared_app, alice)["run"]) == {"alice-run", "example"}
    assert {path.split("/")[-2] for _, path in model_choices(shared_app, alice)[1:]} == {"alice-run", "example"}
    for action in (
        lambda: eval_tab.evaluate_view(shared_app, "bob-run", alice),
        lambda: runs_tab.export_zip(shared_app, "bob-run", alice, shared_app),
        lambda: runs_tab.remove_run(shared_app, "bob-run", True, alice),
        lambda: open_run(shared_app, "cli-run", alice),
    ):
        with pytest.raises(InputError, match="no run named"):  # reads exactly like a run that does not exist
            action()
    with pytest.raises(InputError, match="shared example"):
        runs_tab.remove_run(shared_app, "example", True, alice)
    assert "Deleted" in runs_tab.remove_run(shared_app, "bob-run", True, bob)


def test_the_run_records_a_hash_of_its_owner_never_the_id(seed_csv, shared_app, monkeypatch):
    started = []
    monkeypatch.setattr(train_tab, "start_job", started.append)
    session = data_tab.load_data(Session(owner=ALICE), str(seed_csv), "seed.csv", DataSettings())[0]
    train_tab.start_run(session, TrainForm())
    record = json.loads((Path(started[0]) / "run.json").read_text())
    assert record["owner"] == owner_key(ALICE) and ALICE not in json.dumps(record)


def test_compare_refuses_a_model_outside_the_visitors_menu(shared_app):
    bob_model = str(_run(shared_app, "bob-run", BOB) / "model")
    for model in (bob_model, "/etc"):
        message, table, _ = compare_tab.compare_answers(model, "q", "a", "b", True, Session(owner=ALICE))
        assert "not available" in message and not table


def test_a_page_load_reattaches_to_its_own_live_run_only(shared_app):
    for name, owner in (("alice-live", ALICE), ("bob-live", BOB)):
        path = shared_app / name
        path.mkdir(parents=True)
        (path / "run.json").write_text(
            json.dumps({"status": "running", "created_at": time.time(), "owner": owner_key(owner), **THIS_PROCESS})
        )
    assert train_tab.reattach(Session(owner=ALICE)).run_dir.endswith("alice-live")
    assert train_tab.reattach(Session(owner="c" * 32)).run_dir is None


def test_a_private_app_keeps_the_cli_runs_yours(tmp_path, monkeypatch):
    monkeypatch.delenv("RM_DEMO_FACILITATOR_SECRET", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("RM_DEMO_PUBLIC", raising=False)
    _run(tmp_path, "cli-run", "")
    assert [r.name for r in visible_runs(tmp_path, Session(owner=ALICE).viewer())] == ["cli-run"]


def test_the_facilitator_sees_and_controls_everything(shared_app, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(facilitator_tab, "guesses", facilitator_tab.GuessThrottle(clock=lambda: now[0]))
    _run(shared_app, "alice-run", ALICE)
    _run(shared_app, "bob-run", BOB)
    session = Session(owner="f" * 32)
    with pytest.raises(InputError, match="facilitator"):
        facilitator_tab.all_runs_table(session)
    session, message = facilitator_tab.unlock(session, "wrong")
    assert not session.facilitator and "not the facilitator secret" in message
    session, message = facilitator_tab.unlock(session, "open sesame")
    assert not session.facilitator and "try again in 1 s" in message  # not even checked yet
    now[0] += 1.0
    session, message = facilitator_tab.unlock(session, "open sesame")
    assert session.facilitator
    table = facilitator_tab.all_runs_table(session)
    assert set(table["run"]) == {"alice-run", "bob-run"} and ALICE not in table.to_string()
    assert "shared" in facilitator_tab.share(session, "alice-run", True)
    assert {r.name for r in visible_runs(shared_app, Session(owner=BOB).viewer())} == {"alice-run", "bob-run"}
    assert "Deleted" in facilitator_tab.delete_any(session, "bob-run", True)


def test_public_limits_each_say_what_the_limit_is(seed_csv, tmp_path):
    rules = Limits.public_defaults()
    ok = TrainConfig(input=str(seed_csv), output_dir=str(tmp_path / "r"))
    check_start(ok, 10, rules, tmp_path, owner_key(ALICE))
    cases = [
        (TrainConfig(model="/etc/passwd"), 10, "not offered here"),
        (TrainConfig(model="meta-llama/Llama-3.1-405B"), 10, "not offered here"),
        (TrainConfig(epochs=1000), 10, "over this app's limit of 20"),
        (TrainConfig(batch_size=1), 19_000, "steps; the limit here is 3,000"),
        (TrainConfig(batch_size=1000), 50_000, "limit of 20,000"),
        (TrainConfig(slice_seconds=0.5), 10, "shorter than this app's 10 s"),
    ]
    for config, pairs, message in cases:
        with pytest.raises(InputError, match=message):
            check_start(config, pairs, rules, tmp_path, owner_key(ALICE))


def test_one_live_run_per_visitor_and_a_full_queue(tmp_path):
    rules = Limits(live_per_visitor=1, live_total=2)
    _run(tmp_path, "alice-live", ALICE, status="running")
    with pytest.raises(InputError, match="already have 1 run"):
        check_start(TrainConfig(), 10, rules, tmp_path, owner_key(ALICE))
    check_start(TrainConfig(), 10, rules, tmp_path, owner_key(BOB))
    _run(tmp_path, "bob-live", BOB, status="queued")
    with pytest.raises(InputError, match="queue is full"):
        check_start(TrainConfig(), 10, rules, tmp_path, owner_key("c" * 32))


def test_no_training_without_free_disk(tmp_path):
    with pytest.raises(InputError, match="of disk is free"):
        check_start(TrainConfig(), 10, Limits(min_free_disk_mb=1e12), tmp_path, owner_key(ALICE))


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/space")
    monkeypatch.setenv("RM_DEMO_MODELS", "my/model, other/model")
    monkeypatch.setenv("RM_DEMO_MAX_EPOCHS", "5")
    rules = Settings.from_env().limits
    assert rules.public and rules.max_epochs == 5 and rules.models[-2:] == ("my/model", "other/model")
    assert "default" in rules.models and rules.run_ttl_hours == 24


def test_model_size_is_estimated_from_the_config_alone():
    from transformers import BertConfig, LlamaConfig

    minilm = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, intermediate_size=1536)
    assert 18 < params_from_config(minilm) / 1e6 < 28  # all-MiniLM-L6-v2 has 22.7M: an estimate within 20%
    big = LlamaConfig(vocab_size=128256, hidden_size=16384, num_hidden_layers=126, intermediate_size=53248)
    assert params_from_config(big) / 1e9 > 300  # a 405B model is refused long before any download


def test_old_finished_runs_are_pruned_live_and_shared_ones_kept(tmp_path):
    now = time.time()
    for name, status, extra in (
        ("old", "completed", {}),
        ("old-live", "running", THIS_PROCESS),
        ("old-shared", "completed", {"shared": True}),
    ):
        _run(tmp_path, name, ALICE, status=status, **extra)
        data = json.loads((tmp_path / name / "run.json").read_text())
        (tmp_path / name / "run.json").write_text(json.dumps({**data, "created_at": now - 48 * 3600}))
    _run(tmp_path, "new", ALICE)
    assert prune_runs(tmp_path, 24, now=now) == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "old-live", "old-shared"]


def test_same_second_same_name_gives_two_folders(tmp_path):
    folders = {create_run(tmp_path, "feedback.csv") for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() for f in folders)


def test_a_closed_page_leaves_no_files():
    session = Session(owner=VISITOR)
    folder = session.workdir()
    (folder / "pairs.csv").write_text("x")
    clean_up(session)
    assert not folder.exists()


def test_a_public_app_offers_its_model_list_not_a_path_box(monkeypatch):
    import gradio as gr

    from rm_demo.app.train_tab import TrainTab

    monkeypatch.setenv("RM_DEMO_PUBLIC", "1")
    with gr.Blocks():
        tab = TrainTab.build("CPU")
    assert isinstance(tab.custom_model, gr.Dropdown)
    assert "distilroberta-base" in [value for _, value in tab.custom_model.choices]
    monkeypatch.delenv("RM_DEMO_PUBLIC")
    with gr.Blocks():
        assert isinstance(TrainTab.build("CPU").custom_model, gr.Textbox)


def test_guesses_of_the_secret_are_throttled_per_visitor_without_sleeping(shared_app, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(facilitator_tab, "guesses", facilitator_tab.GuessThrottle(clock=lambda: now[0]))
    guesser = Session(owner="g" * 32)
    for expected_wait in (1, 2, 4, 8):
        guesser, message = facilitator_tab.unlock(guesser, "guess")
        assert "not the facilitator secret" in message
        guesser, message = facilitator_tab.unlock(guesser, "open sesame")  # refused unchecked, at once
        assert not guesser.facilitator and f"try again in {expected_wait} s" in message
        now[0] += expected_wait
    # A flood from many other pages changes nothing for the facilitator's own page.
    for i in range(200):
        facilitator_tab.unlock(Session(owner=f"{i:032d}"), "guess")
    facilitator, message = facilitator_tab.unlock(Session(owner="f" * 32), "open sesame")
    assert facilitator.facilitator
    nobody, message = facilitator_tab.unlock(Session(owner=""), "open sesame")  # no page load: no id
    assert not nobody.facilitator and "no visitor id" in message
