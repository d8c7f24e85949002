"""A run's lifecycle (issue 39): the statuses and moves are data in rm_demo.lifecycle; every write of a status
goes through RunFolder.move, which allows exactly the moves listed. The test walks every pair of statuses."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from rm_demo import lifecycle
from rm_demo.lifecycle import ACTIVE, NEW, STATUSES, TRANSITIONS, LifecycleError
from rm_demo.runs import RunFolder

PACKAGE = Path(__file__).parent.parent / "rm_demo"


def _at(tmp_path: Path, status: str | None) -> RunFolder:
    run = RunFolder(tmp_path / "run")
    run.path.mkdir(parents=True, exist_ok=True)
    if status is not None:  # a record as a process would have left it
        (run.path / "run.json").write_text(json.dumps({"status": status, "owner": "o"}))
    return run


@pytest.mark.parametrize("new", STATUSES)
@pytest.mark.parametrize("current", [NEW, *STATUSES])
def test_every_move_is_allowed_exactly_when_the_table_lists_it(tmp_path, current, new):
    run = _at(tmp_path, current)
    if new in TRANSITIONS[current]:
        data = run.move(new, error="why")
        assert data["status"] == new and data["owner" if current else "error"] and run.read()["status"] == new
    else:
        before = run.run_json.read_bytes() if current else None
        with pytest.raises(LifecycleError, match=f"from {current or 'new'} to {new}"):
            run.move(new, error="why")
        assert (run.run_json.read_bytes() if current else None) == before  # nothing written


@pytest.mark.parametrize("current", STATUSES)
def test_a_fresh_start_replaces_a_finished_run_but_never_a_live_one(tmp_path, current):
    run = _at(tmp_path, current)
    for new in ("queued", "running"):
        if current in ACTIVE and new not in TRANSITIONS[current]:
            with pytest.raises(LifecycleError):
                run.move(new, fresh=True)
        else:
            assert run.move(new, fresh=True)["status"] == new
            run = _at(tmp_path, current)


def test_the_table_is_closed_and_every_status_can_end():
    assert set(TRANSITIONS) == {NEW, *STATUSES}
    assert all(set(moves) <= set(STATUSES) and all(moves.values()) for moves in TRANSITIONS.values())  # each says why
    assert TRANSITIONS["completed"] == {}  # a model was saved: only a new run replaces it
    for status in ACTIVE:
        assert {"failed", "cancelled"} <= set(TRANSITIONS[status])  # a live run can always be stopped or fail
    with pytest.raises(LifecycleError, match="not a run status"):
        lifecycle.check("running", "done")


def test_update_refuses_a_status(tmp_path):
    with pytest.raises(TypeError, match="RunFolder.move"):
        _at(tmp_path, "queued").update(status="running")


def test_nothing_in_the_package_sets_a_status_but_move_and_settle():
    """No `status=` keyword to any update() outside RunFolder.move and .settle (which asks the table itself):
    a new writer that bypasses the table fails here."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef) or function.name in ("move", "settle"):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "update":
                    if any(k.arg == "status" for k in node.keywords):
                        offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders


def test_a_move_only_from_live_statuses_leaves_a_run_that_ended_meanwhile(tmp_path):
    """Stop by force after the grace period: if the run completed in between, it stays completed."""
    run = _at(tmp_path, "completed")
    assert run.move("cancelled", when=ACTIVE, error="by force")["status"] == "completed"
    assert "error" not in run.read()
    run = _at(tmp_path, "running")
    assert run.move("cancelled", when=ACTIVE, error="by force")["status"] == "cancelled"
