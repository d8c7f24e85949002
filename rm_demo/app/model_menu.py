"""Which models the app's menus offer and how it names them: UI wording and policy, kept out of the run store."""

from __future__ import annotations

from pathlib import Path

from rm_demo.lifecycle import MODEL_STATUSES
from rm_demo.runs import list_runs
from rm_demo.text import MIN_HELD_OUT_PAIRS, accuracy_phrase

BASE_MODEL_LABEL = "untrained base (embedded MiniLM)"


def base_label(model: str) -> str:
    """How the app names an untrained model: "before" in Compare and Explain."""
    if model == "default":
        return BASE_MODEL_LABEL
    return f"untrained base ({Path(model).name or model})"


def model_choices(root: Path, viewer=None) -> list[tuple[str, str]]:
    """(label, model path) for every run with a saved model that `viewer` may see, after the untrained base."""
    choices = [(BASE_MODEL_LABEL, "default")]
    for run in list_runs(root):
        if viewer is not None and not viewer.can_see(run):
            continue
        if run.status in MODEL_STATUSES and run.has_model:
            acc = run.judged_accuracy(MIN_HELD_OUT_PAIRS)
            shown = f" · held-out acc {accuracy_phrase(acc, run.held_out_pairs, True)}" if acc is not None else ""
            choices.append((run.name + shown, str(run.path / "model")))
    return choices
