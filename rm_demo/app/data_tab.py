"""Step 1: load a feedback file, choose how to read and pair it; the preview goes to the Pairs tab.

Handlers are module-level functions of plain values (`derive_view`, `load_data`); `DataTab.build`
and `PairsTab.build` lay out the components, and `wire` connects them.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from rm_demo.app.data_form import PER_FILE, SETTINGS, DataTab
from rm_demo.app.data_view import DataView, derive_view
from rm_demo.app.messages import problem
from rm_demo.app.pairs_tab import PairsTab, export_pairs, pairs_table, placeholder_figures
from rm_demo.app.state import AUTO, SAMPLES, DataSettings, Session, max_upload_mb
from rm_demo.errors import InputError
from rm_demo.feedback import join_exports

THRESHOLDS = [SETTINGS.index("chosen_min"), SETTINGS.index("rejected_max")]  # the two boxes among the settings


def load_data(
    session: Session, path: str | None, name: str | None, settings: DataSettings
) -> tuple[Session, DataView]:
    """Preview `path` with `settings` and remember both in the session (what training will use)."""
    if (path, name) != (session.data_path, session.data_name):
        session.file_loaded(path, name)
    view = derive_view(path, name, settings)
    _keep(session, settings, view)
    return session, view


def _keep(session: Session, settings: DataSettings, view: DataView) -> None:
    session.previewed(settings if view.ok else None, len(view.pairs) if view.ok else 0, view.suggestion)
    if view.ok:
        export_pairs(session, view.result)


# Once the tab is shown (the next frames), every plotly chart on the page fits its box again.
FIT_CHARTS_JS = """(...args) => {
    for (const ms of [50, 300]) setTimeout(() => window.dispatchEvent(new Event("resize")), ms);
    return args;
}"""


# ---------------------------------------------------------------------------------------------
# Components


def fresh_widgets(widgets) -> list:
    """The widgets' values for a new file: the per-file settings afresh, the others as they are."""
    given = dict(zip(SETTINGS, widgets))
    return [PER_FILE[name] if name in PER_FILE else given.get(name) for name in SETTINGS]


# ---------------------------------------------------------------------------------------------
# Wiring


# What every data event returns, in this order (the tests read the tuple by these names).
OUTPUT_NAMES = (
    "session",
    "figures",
    "message",
    "summary",
    "pairs_table",
    "dropped",
    "fig_scores",
    "fig_counts",
    "fig_margins",
    "dl_csv",
    "dl_jsonl",
    "question_col",
    "answer_col",
    "score_col",
    "rater_col",
    "suggest_btn",
    "chosen_min",
    "rejected_max",
)


def data_outputs(data: DataTab, pairs: PairsTab, session, figures) -> list:
    components = {
        "session": session,
        "figures": figures,
        "pairs_table": pairs.table,
        "summary": pairs.summary,
        "dropped": pairs.dropped,
        "fig_scores": pairs.fig_scores,
        "fig_counts": pairs.fig_counts,
        "fig_margins": pairs.fig_margins,
        "dl_csv": pairs.dl_csv,
        "dl_jsonl": pairs.dl_jsonl,
    }
    return [components[name] if name in components else getattr(data, name) for name in OUTPUT_NAMES]


def _view_updates(session: Session, view: DataView, thresholds: tuple | None = None) -> tuple:
    """The outputs for `view`. The threshold boxes are left alone (the visitor may be typing in them)
    unless `thresholds` says what to put there."""
    columns = gr.update(choices=[AUTO, *view.columns]) if view.columns else gr.update()
    downloads = [
        gr.update(value=p, visible=True) if view.ok else gr.update(visible=False)
        for p in (session.pairs_csv, session.pairs_jsonl)
    ]
    suggest = gr.update(visible=bool(view.suggestion))
    return (
        session,
        view.figures,
        view.message,
        view.summary,
        pairs_table(view.pairs),
        view.dropped,
        *view.figures,
        *downloads,
        columns,
        columns,
        # A tool's export: the score menu offers the source's own scores (controls, aspects, score names).
        gr.update(choices=[AUTO, *view.score_choices]) if view.score_choices else columns,
        columns,
        suggest,
        *(thresholds or (gr.skip(), gr.skip())),
    )


def unchanged() -> tuple:
    """A stale event's outputs: it changes nothing on screen or in the session."""
    return tuple(gr.skip() for _ in OUTPUT_NAMES)


def on_settings(session: Session, *widgets) -> tuple:
    """Any reading or pairing setting edited: the preview again, with every widget's current value.

    A setting event can start while a new file's own event is still running (a box the new file reset,
    under load): it begins the newer preview, so the file's event ends stale and shows nothing. Such an event
    clears thresholds suggested for the previous file too, or they would stay on screen and train."""
    version = session.begin_data_change()
    widgets, thresholds = _without_stale_suggestion(session, widgets)
    return _load(session, version, session.data_path, session.data_name, widgets, thresholds)


def on_file(session: Session, path: str | None, name: str | None, *widgets) -> tuple:
    """A new file: the per-file settings start afresh (PER_FILE); pairing settings are kept, except
    thresholds that were suggested for the previous file (they belong to it) and are still untouched."""
    version = session.file_loaded(path, name)
    widgets, thresholds = _without_stale_suggestion(session, fresh_widgets(widgets))
    return _load(session, version, path, name, widgets, thresholds)


def _without_stale_suggestion(session: Session, widgets) -> tuple[list, tuple | None]:
    """(the widgets, the threshold boxes' new values or None): thresholds suggested for the previous file,
    still as suggested, are emptied (this file uses the defaults), and the file's previews say so
    (`Session.cleared_note`). The session forgets the suggestion only when this preview is shown (`_load`)."""
    widgets = list(widgets)
    if not session.stale_suggestion(*(widgets[i] for i in THRESHOLDS)):
        return widgets, None
    chosen_min, rejected_max = session.suggested_thresholds
    for i in THRESHOLDS:
        widgets[i] = ""
    session.cleared_note = (
        f"\n\nThe thresholds suggested for the previous file (chosen ≥ {chosen_min:g}, rejected < "
        f"{rejected_max:g}) were cleared: this file uses the defaults until you set others."
    )
    return widgets, ("", "")


def on_files(session: Session, first: str | None, second: str | None, *widgets) -> tuple:
    """The upload boxes: one file, or a tracing tool's two (traces first, then scores), joined into one file
    of this session's (`feedback.join_exports`) that the preview, the run and its evaluation all read."""
    if not second:
        return on_file(session, first, Path(first).name if first else None, *widgets)
    if not first:
        return _shown(session, "Upload the traces, observations or runs in the first box; this box takes the scores.")
    try:
        joined = join_exports(first, second, session.workdir() / "joined", int(max_upload_mb() * 1e6))
    except (InputError, OSError) as exc:
        session.file_loaded(None, None)
        return _shown(session, problem(exc) if isinstance(exc, InputError) else f"Cannot read the files: {exc}")
    version = session.file_loaded(str(joined), joined.name)
    session.input_names = (Path(first).name, Path(second).name)
    session.joined_note = f"\n\nJoined: **{Path(first).name}** (records first) and **{Path(second).name}**."
    return _load(session, version, str(joined), joined.name, fresh_widgets(widgets))


def _shown(session: Session, message: str) -> tuple:
    return _view_updates(session, DataView(False, message))


def _load(session: Session, version: int, path, name, widgets, thresholds=None) -> tuple:
    try:
        settings = DataSettings.from_widgets(*widgets)
    except InputError as exc:
        view, settings = DataView(False, problem(exc)), None
    else:
        view = derive_view(path, name, settings)
    if not session.is_current(version):  # a newer file or edit began meanwhile: its preview will show
        return unchanged()
    if thresholds is not None:  # the previous file's suggested thresholds were emptied on screen: forget them
        session.suggested_thresholds = session.suggested_for = None
    _keep(session, settings, view)
    view.message += session.joined_note
    if settings is not None and settings.chosen_min is None and settings.rejected_max is None:  # none set yet
        view.message += session.cleared_note
    return _view_updates(session, view, thresholds)


def catch_up(session: Session, *widgets) -> tuple:
    """Start's first part: a preview older than the settings on screen (an edit whose event was lost, or
    still on its way) is derived again with them, so that what trains is what the screen shows."""
    if not session.data_path or not is_behind(session, widgets):
        return unchanged()
    session.preview_caught_up = True  # Start says so
    return on_settings(session, *widgets)


def is_behind(session: Session, widgets) -> bool:
    """Whether the settings on screen differ from those the current preview was made with."""
    try:
        return DataSettings.from_widgets(*widgets) != session.settings
    except InputError:
        return True


def suggested(session: Session) -> tuple:
    """The thresholds the current preview suggests, into the two number boxes; they belong to this file.
    (Taken from the preview, not read again: the file may be 50 MB.)"""
    s = session.offered_thresholds
    if not s:
        return gr.skip(), gr.skip()
    session.thresholds_suggested(s["chosen_min"], s["rejected_max"])
    return f"{s['chosen_min']:g}", f"{s['rejected_max']:g}"


def wire(data: DataTab, pairs: PairsTab, session, figures, also_per_file: dict | None = None) -> list:
    """Connect the Data and Pairs tabs; returns the events that change the data (for other tabs to follow).
    `also_per_file`: other tabs' controls that belong to one file (component -> its fresh value), reset with
    the Data tab's own when another file comes."""
    outputs = data_outputs(data, pairs, session, figures)
    elsewhere = also_per_file or {}
    reset = (lambda: (*PER_FILE.values(), *elsewhere.values()), None, [*data.reading, *elsewhere])
    events = [
        data.upload.upload(*reset).then(
            on_files, [session, data.upload, data.second_upload, *data.settings], outputs, api_name="load_file"
        ),
        data.second_upload.upload(*reset).then(
            on_files, [session, data.upload, data.second_upload, *data.settings], outputs, api_name="load_two_files"
        ),
        # The second file taken away: the first is read alone again (the joined data was the preview's).
        data.second_upload.clear(*reset).then(
            on_files, [session, data.upload, data.second_upload, *data.settings], outputs
        ),
    ]
    for button, key in ((data.workshop_btn, "workshop"), (data.seed_btn, "seed")):
        events.append(
            button.click(*reset).then(
                lambda s, *w, k=key: on_file(s, str(SAMPLES[k]), SAMPLES[k].name, *w),
                [session, *data.settings],
                outputs,
                api_name=f"use_{key}_sample",
            )
        )
    # One event for every setting, sent again with the widgets' final values if they changed while a
    # preview was running: a quick second edit is never lost to the first one's late answer.
    # A text box's `input` misses a paste and a select-all-delete in Chromium: its `change` sees every way the
    # value changes (a programmatic one too: a stale answer is dropped by data_version). Menus and radios keep
    # `input`, which is the visitor's own pick only (their choices are updated by every preview).
    triggers = [control.change if isinstance(control, gr.Textbox) else control.input for control in data.settings]
    # The progress overlay goes on the views only: over the settings it swallowed a click and a typed
    # value for as long as the preview took (1 s, 9 s under load).
    views = [data.message, pairs.summary, pairs.table]
    events.append(
        gr.on(
            triggers,
            on_settings,
            [session, *data.settings],
            outputs,
            trigger_mode="always_last",
            show_progress_on=views,
        )
    )
    events.append(
        data.suggest_btn.click(suggested, session, [data.chosen_min, data.rejected_max]).then(
            on_settings, [session, *data.settings], outputs, show_progress_on=views
        )
    )
    # A plot drawn while its tab is hidden takes plotly's default width; drawing again on show fits it.
    # Redrawing the same figure is a no-op for the browser, so a chart drawn while hidden (700 px, plotly's
    # default) stayed clipped after a second file; plotly resizes its charts on a window resize event.
    pairs.tab.select(
        lambda figs: tuple(figs or placeholder_figures()),
        figures,
        pairs.figures,
        show_progress="hidden",
        js=FIT_CHARTS_JS,
    )
    return events
