"""Who may see and change which run, when many people share one app.

Each browser has an owner id (kept in the browser, sent with each request). A run records the hash
of its owner's id, never the id itself: run.json travels in exports, and the id is what proves
ownership. A visitor sees their own runs and runs shared as examples; a facilitator (who knows the
secret given at launch) sees and changes all. In a private app (one person on their own machine:
no facilitator secret, not public) runs made outside the app, by the CLI, belong to that person too.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

from rm_demo.errors import InputError
from rm_demo.lifecycle import MODEL_STATUSES
from rm_demo.runs import RunRecord, list_runs, resolve_run, shown_name


def owner_key(owner_id: str | None) -> str:
    """What a run records of its owner: a one-way hash of the browser's id ("" for none). A signed id
    (app.identity) is hashed without its signature, so a browser's runs from before ids were signed stay
    its own."""
    if not owner_id:
        return ""
    return hashlib.sha256(("rm_demo-owner:" + owner_id.split(".")[0]).encode()).hexdigest()[:24]


def secret_matches(given: str | None, secret: str | None) -> bool:
    return bool(secret) and bool(given) and hmac.compare_digest(given.encode(), secret.encode())


@dataclass(frozen=True)
class Viewer:
    owner: str = ""  # the browser's owner id
    facilitator: bool = False
    private: bool = True  # a one-person app: runs made outside the app are this person's too

    @property
    def key(self) -> str:
        return owner_key(self.owner)

    def owns(self, run: RunRecord) -> bool:
        if run.owner:
            return bool(self.key) and hmac.compare_digest(run.owner, self.key)
        return self.private

    def can_see(self, run: RunRecord) -> bool:
        return self.facilitator or self.owns(run) or run.shared

    def can_change(self, run: RunRecord) -> bool:
        """Stop, delete, push: the owner or the facilitator, never a visitor of a shared example."""
        return self.facilitator or self.owns(run)


def visible_runs(root: Path, viewer: Viewer) -> list[RunRecord]:
    return [run for run in list_runs(root) if viewer.can_see(run)]


def open_run(root: Path, name: str | None, viewer: Viewer, change: bool = False) -> Path:
    """The folder of a run this viewer may see (or change). Someone else's run reads exactly like a
    missing one, so names and existence are not revealed."""
    path = resolve_run(root, name)
    run = RunRecord.load(path)
    allowed = viewer.can_change(run) if change else viewer.can_see(run)
    if not allowed:
        if change and viewer.can_see(run):
            raise InputError(f"{name} is a shared example", fix="only its owner or the facilitator can change it")
        raise InputError(f"no run named {shown_name(name)}", fix="pick a run from the list")
    return path


# A model path the app itself offers is a few hundred characters; anything longer is not one of its menus'.
MAX_MODEL_CHARS = 4096


def open_model(root: Path, model: str | None, viewer: Viewer) -> str:
    """The model a viewer may score with, as its menu offers it: the untrained base or the saved model
    of a run they may see. Every endpoint that takes a model goes through here; any other value (another
    visitor's run, a CLI run's path, a path on the server, a name with NUL) is refused alike."""
    model = model or "default"
    if model == "default":
        return model
    refused = InputError("that model is not available here", fix="pick one from the menu (↻ runs refreshes it)")
    if not isinstance(model, str) or len(model) > MAX_MODEL_CHARS or "\x00" in model:
        raise refused
    # The menu offers `<root>/<run>/model` of the runs it lists (model_choices): that one run is read,
    # not the whole store on every click.
    name = Path(model).parent.name
    if model != str(Path(root) / name / "model"):
        raise refused
    try:
        run = RunRecord.load(open_run(root, name, viewer))
    except InputError:
        raise refused from None
    if run.status not in MODEL_STATUSES or not run.has_model:
        raise refused
    return model


def check_base_model(root: Path, model: str, viewer: Viewer) -> None:
    """A run's model typed as the base to train from (a folder path, where the app takes free text): only
    a run this viewer may see. A path elsewhere or a hub id is not a run, and is not checked here."""
    if model == "default" or "\x00" in model or len(model) > MAX_MODEL_CHARS or not Path(model).exists():
        return  # not a folder here: a hub id, or a path the model loader refuses on its own
    try:
        inside = Path(model).resolve().relative_to(Path(root).resolve())
    except (ValueError, OSError):  # not under the runs folder (or not a path at all)
        return
    if not inside.parts:
        raise InputError("the runs folder is not a model", fix="pick the embedded default or give a model folder")
    open_run(root, inside.parts[0], viewer)
