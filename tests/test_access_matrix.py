"""Who reads whose run, as a matrix (issue 42): every endpoint of the real app that takes a run or a model,
called as gradio calls it, by a visitor who owns none of the runs named, with each way of naming them.

The endpoints are found in the built app (`demo.fns`), not listed by hand: a new event that takes a run or
model menu joins the matrix by itself. Each call must come back without an exception, with nothing of the
other run in any output (texts, tables, charts, files, the visitor's own state), without that run's model
being loaded, and with the run's folder unchanged. Positive controls show the harness sees a leak: the same
endpoints given the visitor's own run do return its data.
"""

from __future__ import annotations

import inspect
import json
import os
import zipfile
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from records import leave_record

from rm_demo.access import owner_key
from rm_demo.app import compare_tab, rank_explain, runs_tab
from rm_demo.app.state import Session
from rm_demo.config import TrainConfig
from rm_demo.errors import InputError
from rm_demo.runs import RunFolder, prepare_run

ALICE, BOB = "a" * 32, "b" * 32
SECRET = "ALICESECRET"  # in the other visitor's data and file name: must reach no output of Bob's
OWN = "BOBMARK"

# The menus that name a run or a model (their labels in the app).
RUN_OR_MODEL_MENUS = {"Run", "Reward model", "Overlay curves of runs"}
# Endpoints that take one of those menus today; the matrix must find at least these.
KNOWN = {"compare", "rank", "explain", "evaluate", "score_file", "zip_run", "fill_example", "run_picked"}


def _feedback(path: Path, marker: str) -> Path:
    rows = ["question,answer,score"]
    for i in range(12):
        rows += [f"{marker} question {i}?,{marker} good answer {i},5", f"{marker} question {i}?,{marker} bad {i},1"]
    path.write_text("\n".join(rows) + "\n")
    return path


def _run(folder: Path, owner: str, marker: str) -> Path:
    """A finished run as the app leaves one: its data copy, config, record, curves and a model folder."""
    data = _feedback(folder.parent / f"{marker}_feedback.csv", marker)
    prepare_run(TrainConfig(eval_fraction=0.25), data, folder, owner=owner_key(owner) if owner else "")
    (folder / "model").mkdir()
    (folder / "model" / "config.json").write_text(json.dumps({"note": marker}))
    (folder / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss": 0.5, "eval_accuracy": 0.6}) + "\n")
    leave_record(
        RunFolder(folder),
        status="completed",
        final_metrics={"eval_accuracy": 0.75, "eval_pairs": 3},
        data={"train_pairs": 9, "eval_pairs": 3, "note": marker},
    )
    return folder


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(params=["workshop", "public"])
def app(request, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("RM_DEMO_RUNS", str(root))
    monkeypatch.setenv("RM_DEMO_FACILITATOR_SECRET", "open sesame")  # the facilitator tab's endpoints too
    monkeypatch.delenv("SPACE_ID", raising=False)
    if request.param == "public":
        monkeypatch.setenv("RM_DEMO_PUBLIC", "1")
    else:
        monkeypatch.delenv("RM_DEMO_PUBLIC", raising=False)
    (tmp_path / "cli").mkdir()
    others = {
        "alice": _run(root / "20261207-101010-feedback", ALICE, SECRET),
        "cli_in_root": _run(root / "cli-run", "", SECRET),  # trained by the CLI into the app's folder
        "cli_outside": _run(tmp_path / "cli" / "elsewhere", "", SECRET),  # a CLI run outside the runs folder
    }
    own = _run(root / "20261207-111111-mine", BOB, OWN)
    loaded = []

    class Base:  # the untrained base, answering without a model
        def compare(self, question, a, b):
            return {"reward_a": 0.0, "reward_b": 0.0, "difference": 0.0, "p_a_preferred": 0.5}

    def recording_scorer(path, *args, **kwargs):  # which run model each endpoint asked for; none is loaded
        if str(path) == "default":
            return Base()
        loaded.append(str(path))
        raise InputError("no model is loaded in this test")

    for module in (compare_tab, rank_explain, runs_tab):
        monkeypatch.setattr(module, "get_scorer", recording_scorer)
    from rm_demo.app.build import build

    demo = build()
    return demo, root, others, own, loaded, tmp_path


def _hostile_values(root: Path, others: dict) -> list:
    alice, cli_root, cli_out = others["alice"], others["cli_in_root"], others["cli_outside"]
    values = []
    for run in (alice, cli_root, cli_out):
        values += [run.name, str(run), str(run / "model"), f"{run}/", str(run / "model" / "config.json")]
    values += [
        f"{root}/../{root.name}/{alice.name}/model",  # `..` back into the runs folder
        f"../{root.name}/{alice.name}",
        f"./{alice.name}",
        f"{alice.name}/model",
        f"{alice.name}\x00",
        f"{alice.name}\x00/model",
        "\x00",
        "x" * 5000,
        "/" * 300,
        "..",
        ".",
        "/etc/passwd",
    ]
    return values


def _endpoints(demo) -> list:
    found = []
    for fn in demo.fns.values():
        if fn.fn is None:
            continue
        slots = [i for i, c in enumerate(fn.inputs) if isinstance(c, gr.Dropdown) and c.label in RUN_OR_MODEL_MENUS]
        if slots:
            found.append((fn, slots))
    return found


def _args(fn, slots, value, tmp_path: Path) -> list:
    upload = tmp_path / "answers.csv"
    upload.write_text("question,answer\nWhy?,Because.\n")
    args = []
    for i, component in enumerate(fn.inputs):
        if i in slots:
            args.append([value] if component.multiselect else value)
        elif isinstance(component, gr.State) and isinstance(component.value, Session):
            args.append(Session(owner=BOB))
        elif isinstance(component, gr.BrowserState):
            args.append(BOB)
        elif isinstance(component, gr.Textbox):
            args.append("Why?\nBecause.\nNo.")
        elif isinstance(component, gr.Checkbox):
            args.append(True)  # "I am sure" ticked: a delete is really asked for
        elif isinstance(component, gr.File):
            args.append(str(upload))
        else:
            args.append(component.value)
    return args


def _text_of(value, depth: int = 0) -> str:
    """Everything an output holds, as text: files it names are read (zips member by member)."""
    if depth > 6 or value is None:
        return ""
    if isinstance(value, (list, tuple, set)):
        return "\n".join(_text_of(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return "\n".join(_text_of(k, depth + 1) + _text_of(v, depth + 1) for k, v in value.items())
    if isinstance(value, pd.DataFrame):
        return value.to_csv()
    if isinstance(value, Session):
        return json.dumps(vars(value), default=str)
    if hasattr(value, "to_json"):  # a plotly figure
        return value.to_json()
    text = str(value)
    if isinstance(value, (str, os.PathLike)) and 0 < len(text) < 1024 and "\n" not in text and _is_file(text):
        path = Path(text)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return text + "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
        return text + path.read_bytes().decode("utf-8", "replace")
    if hasattr(value, "constructor_args"):  # a component returned as an update: its value's files read too
        return json.dumps(value.constructor_args, default=str) + _text_of(value.constructor_args, depth + 1)
    return text


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def _call(fn, args) -> str:
    result = fn.fn(*args)
    if inspect.isgenerator(result):
        result = [item for _, item in zip(range(50), result)]
    return _text_of(result) + _text_of([a for a in args if isinstance(a, Session)])


def test_no_endpoint_gives_a_visitor_anything_of_a_run_they_do_not_own(app):
    demo, root, others, own, loaded, tmp_path = app
    endpoints = _endpoints(demo)
    names = {fn.api_name for fn, _ in endpoints} | {fn.name for fn, _ in endpoints}
    assert KNOWN <= names, f"the matrix lost endpoints: {KNOWN - names}"
    before = {name: _snapshot(folder) for name, folder in others.items()}
    failures = []
    for fn, slots in endpoints:
        for value in _hostile_values(root, others):
            loaded.clear()
            label = f"{fn.api_name or fn.name} <- {value if len(value) < 200 else value[:40] + '...'!r}"
            try:
                text = _call(fn, _args(fn, slots, value, tmp_path))
            except Exception as exc:  # gradio would log a traceback and send the client no message
                failures.append(f"{label}: raised {type(exc).__name__}: {exc}")
                continue
            if SECRET in text:
                failures.append(f"{label}: returned the other run's data")
            if any(str(folder) in path for path in loaded for folder in others.values()):
                failures.append(f"{label}: loaded the other run's model ({loaded})")
    assert not failures, "\n".join(failures)
    assert {name: _snapshot(folder) for name, folder in others.items()} == before, "another's run was changed"


def test_the_same_endpoints_do_return_the_visitors_own_run(app):
    """The positive control: were the check gone, the matrix above would see the data."""
    demo, root, others, own, loaded, tmp_path = app
    by_name = {fn.api_name: (fn, slots) for fn, slots in _endpoints(demo)}
    for api_name in ("fill_example", "compare", "rank", "explain", "score_file"):
        fn, slots = by_name[api_name]
        value = str(own / "model") if fn.inputs[slots[0]].label == "Reward model" else own.name
        loaded.clear()
        text = _call(fn, _args(fn, slots, value, tmp_path))
        assert OWN in text or str(own / "model") in loaded, f"{api_name} gave nothing of the visitor's own run"
