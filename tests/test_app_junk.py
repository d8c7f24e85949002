"""Junk through the API (issue 42): every endpoint of the real app, every input of it in turn, each value a
client can send as JSON. Gradio's own preprocessing runs first, as on a request (a value it refuses itself
never reaches a handler); then the handler must answer, never raise: an exception is a traceback in the
server's log and `success: false` with no message for the client.

The endpoints are found in the built app, so a new one is covered by being added.
"""

from __future__ import annotations

import copy
import inspect

import gradio as gr
import pytest

from rm_demo.app import data_tab, train_tab
from rm_demo.app.state import DataSettings, Session

VISITOR = "v" * 32
JUNK = ["abc", -5, float("inf"), float("nan"), -0.0, "", None, [1, 2], {"a": 1}, True, "\x00", "\ud800", "x" * 5000]


@pytest.fixture
def app(tmp_path, monkeypatch, seed_csv):
    monkeypatch.setenv("RM_DEMO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("RM_DEMO_PUBLIC", "1")
    monkeypatch.setenv("RM_DEMO_FACILITATOR_SECRET", "open sesame")
    monkeypatch.delenv("SPACE_ID", raising=False)
    started = []
    monkeypatch.setattr(train_tab, "start_job", lambda run, **_: started.append(run))
    from rm_demo.app.build import build

    demo = build()
    # A visitor whose data is loaded: Start, the notes and the pairs go as deep as they can.
    session = data_tab.load_data(Session(owner=VISITOR), str(seed_csv), "seed.csv", DataSettings())[0]
    return demo, session, started


def _default(component, session: Session):
    if isinstance(component, gr.State):
        return copy.deepcopy(session) if isinstance(component.value, Session) else component.value
    if isinstance(component, gr.BrowserState):
        return VISITOR
    return component.value


def _calls(demo, session):
    for fn in demo.fns.values():
        if fn.fn is None:
            continue
        for slot, component in enumerate(fn.inputs):
            if isinstance(component, (gr.State, gr.BrowserState, gr.File, gr.UploadButton)):
                continue  # not sent by the client as a value (a file is uploaded first, then named)
            for value in JUNK:
                try:
                    value = component.preprocess(value)
                except Exception:  # noqa: BLE001 (gradio refuses it itself, before any handler)
                    continue
                args = [_default(c, session) for c in fn.inputs]
                args[slot] = value
                yield fn, component, value, args


def test_no_endpoint_raises_on_junk_in_any_input(app):
    demo, session, _ = app
    failures, calls = [], 0
    for fn, component, value, args in _calls(demo, session):
        calls += 1
        try:
            result = fn.fn(*args)
            if inspect.isgenerator(result):
                for _, _item in zip(range(20), result):
                    pass
        except Exception as exc:  # noqa: BLE001
            shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
            failures.append(
                f"{fn.api_name or fn.name}({component.label or type(component).__name__}={shown}): "
                f"{type(exc).__name__}: {str(exc)[:120]}"
            )
    assert calls > 500, f"only {calls} calls: the harness lost the endpoints"
    assert not failures, f"{len(failures)} of {calls} calls raised:\n" + "\n".join(sorted(set(failures)))


def _xlsx(path):
    """A real spreadsheet file as Excel writes it (a zip of XML parts), made with pandas' own writer when it
    has one, else the minimal parts by hand."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData/></worksheet>")
    return path


UPLOADS = {
    "nested.json": lambda p: p.write_text("[" * 100_000 + "]" * 100_000),
    "nested.jsonl": lambda p: p.write_text('{"a":' * 100_000 + "1" + "}" * 100_000 + "\n"),
    "surrogates.jsonl": lambda p: p.write_text(
        '{"question": "Q", "answer": "a\\ud800", "score": 5}\n{"question": "Q", "answer": "b", "score": 1}\n'
    ),
    "sheet.xlsx": _xlsx,
    "nul.csv": lambda p: p.write_bytes(b"question,answer,score\nQ,a\x00b,5\nQ,b,1\n"),
}


@pytest.mark.parametrize("name", list(UPLOADS))
def test_uploads_of_junk_files_are_a_message_in_the_data_tab_and_in_score(app, tmp_path, name):
    demo, session, _ = app
    path = tmp_path / name
    UPLOADS[name](path)
    uploads = [fn for fn in demo.fns.values() if fn.fn is not None and any(isinstance(c, gr.File) for c in fn.inputs)]
    assert {fn.api_name for fn in uploads} >= {"score_file"} and len(uploads) >= 2
    for fn in uploads:
        args = [_default(c, session) for c in fn.inputs]
        for slot, component in enumerate(fn.inputs):
            if isinstance(component, gr.File):
                args[slot] = str(path)
        result = fn.fn(*args)  # must not raise
        text = str(result)
        assert name in text or "nested" in text or "not text" in text or "ZIP" in text or "spreadsheet" in text, (
            fn.api_name,
            text[:500],
        )
