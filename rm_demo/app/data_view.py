"""What the Data tab shows for a file and its settings, as plain values (no gradio import), so the handlers'
logic is tested without a browser and the tab module stays small."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from rm_demo import plots
from rm_demo.app.messages import problem
from rm_demo.app.pairs_tab import dropped_table, placeholder_figures, preview_note
from rm_demo.app.state import DataSettings, max_upload_mb
from rm_demo.errors import InputError
from rm_demo.feedback import delimiter_name, read_table
from rm_demo.pairs import PairsResult, pairs_from_file


@dataclass
class DataView:
    ok: bool
    message: str
    summary: str = "Load data in step 1."
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)
    columns: list[str] = field(default_factory=list)
    figures: tuple = field(default_factory=placeholder_figures)
    suggestion: dict | None = None
    result: PairsResult | None = None
    score_choices: list[str] = field(default_factory=list)  # a tool export's scores, for the score menu


def derive_view(path: str | None, name: str | None, settings: DataSettings) -> DataView:
    """Read the file with these settings and derive pairs; every error becomes a message."""
    if not path:
        return DataView(False, "Upload a feedback file, or click a sample.")
    size_mb = os.path.getsize(path) / 1e6
    if size_mb > max_upload_mb():
        return DataView(
            False,
            f"**{name}** is {size_mb:.0f} MB; the limit here is {max_upload_mb():.0f} MB. "
            "Use the CLI (`python -m rm_demo pairs`) for big files, or raise RM_DEMO_MAX_UPLOAD_MB.",
        )
    read = settings.read_options()
    try:
        result = pairs_from_file(path, read, settings.pair_options(), name=name)
    except InputError as exc:
        message = problem(exc, "Could not use this file")
        return DataView(False, message, columns=_columns_of(path, read, name))
    r = result.report
    notes = threshold_notes(r)
    return DataView(
        True,
        reading_markdown(result) + "".join(f"\n\n> ⚠️ {note}" for note in notes),
        summary=r.to_markdown(notes) + preview_note(result),
        pairs=result.pairs,
        dropped=dropped_table(result),
        columns=[*r.column_mapping.values(), *r.ignored_columns],
        score_choices=r.score_choices,
        figures=(
            plots.score_distribution(r.score_distribution),
            plots.answers_per_question(result.rows),
            plots.margins(result.pairs),
        ),
        suggestion=r.suggested_thresholds,
        result=result,
    )


def threshold_notes(report) -> list[str]:
    """What the app says about the thresholds and this file's scores, in the app's words (buttons, not
    flags): shown on the Data tab, where the thresholds are set, and above the pairs."""
    notes = []
    lo, hi = report.score_min, report.score_max
    if report.suggested_thresholds and lo is not None:
        s = report.suggested_thresholds
        notes.append(
            f"Scores here run from {lo:g} to {hi:g}, but the default thresholds (chosen ≥ 4, rejected < 4) "
            f"assume a 1-to-5 scale. Press **Use the suggested thresholds** for the equivalent here "
            f"(chosen ≥ {s['chosen_min']:g}, rejected < {s['rejected_max']:g})."
        )
    if report.kind == "feedback" and not report.pairs and hi is not None:
        if report.chosen_min is not None and report.chosen_min > hi:
            notes.append(
                f"No answer can be chosen: the chosen threshold is {report.chosen_min:g}, above this file's "
                f"top score of {hi:g}. Lower it, or clear both threshold boxes for the defaults."
            )
        elif report.rejected_max is not None and report.rejected_max <= lo:
            notes.append(
                f"No answer can be rejected: it must score below {report.rejected_max:g}, and this file's "
                f"lowest score is {lo:g}. Raise it, or clear both threshold boxes for the defaults."
            )
    return notes


def reading_markdown(result: PairsResult) -> str:
    r = result.report
    mapping = ", ".join(f"{role} ← `{col}`" for role, col in r.column_mapping.items())
    what = (
        f"Recognised: **{r.source_format}**, {r.records_read} records → {r.rows_read} {r.record_unit}s"
        if r.source_format
        else f"Recognised: a table of {'pairs (prompt, chosen, rejected)' if r.kind == 'pairs' else 'rated answers'}"
    )
    return (
        f"**{r.source}**: {r.format.upper()}, encoding **{r.encoding}**{' (detected)' if r.encoding_detected else ''}"
        + (f", delimiter **{delimiter_name(r.delimiter)}**" if r.delimiter else "")
        + f"  \n{what}"
        + f"  \nColumns: {mapping}"
        + (f"; ignored: {', '.join(f'`{c}`' for c in r.ignored_columns)}" if r.ignored_columns else "")
        + "".join(f"  \n{line}" for line in r.source_lines(with_source=False))
    )


def _columns_of(path: str, read, name: str | None) -> list[str]:
    """The file's column names, so the menus can offer them when automatic mapping failed."""
    try:
        return [c for c in read_table(path, read, name=name).frame.columns if c != "row"]
    except InputError:
        return []
