"""Per-browser state, and the app's settings as its tabs read them: plain data, no gradio import.

`Session` lives in a `gr.State`, so each browser tab has its own copy. It keeps exactly what the
pairs preview used (read and pairing options), and training receives those same options: one
settings source for preview and training.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rm_demo.access import Viewer, open_model
from rm_demo.errors import InputError
from rm_demo.feedback import ReadOptions
from rm_demo.limits import Limits
from rm_demo.pair_options import PairOptions
from rm_demo.settings import current

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SAMPLES = {"workshop": ASSETS / "workshop_feedback.csv", "seed": ASSETS / "seed_feedback.csv"}
ENCODINGS = ["auto", "utf-8", "utf-8-sig", "utf-16", "utf-32", "cp1252", "mac_roman", "latin-1", "cp932", "gb18030"]
DELIMITERS = {"auto": None, "comma": ",", "tab": "\t", "semicolon": ";", "pipe": "|"}
AUTO = "(auto)"


def runs_root() -> Path:
    return current().runs_root


def facilitator_secret() -> str:
    return current().facilitator_secret


def limits() -> Limits:
    return current().limits


def is_private() -> bool:
    """One person's app: not public and no facilitator secret (then runs made by the CLI are theirs)."""
    return current().private


def max_upload_mb() -> float:
    return current().max_upload_mb


def number_or_none(value) -> float | None:
    """A widget's number: blank means "not set" (the library's default applies), never 0."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"{value!r} is not a number", fix="type a number, or leave the box empty for the default"
        ) from None
    if not math.isfinite(number):
        raise InputError(
            f"{value!r} is not a finite number", fix="type a number, or leave the box empty for the default"
        )
    return number


@dataclass
class DataSettings:
    """What the Data tab's controls say, as plain values (menus' "(auto)" and blanks become None)."""

    encoding: str = "auto"
    delimiter: str = "auto"
    question_col: str | None = None
    answer_col: str | None = None
    score_col: str | None = None
    strategy: str = "best-worst"
    chosen_min: float | None = None
    rejected_max: float | None = None
    min_margin: float | None = None
    file_format: str = "auto"  # rm_demo.importers.FORMATS
    aggregate: str = "mean"
    max_rater_spread: float | None = None
    rater_col: str | None = None

    @classmethod
    def from_widgets(
        cls,
        encoding,
        delimiter,
        question_col,
        answer_col,
        score_col,
        strategy,
        chosen_min,
        rejected_max,
        min_margin,
        file_format="auto",
        aggregate="mean",
        max_rater_spread=None,
        rater_col=None,
    ) -> DataSettings:
        pick = lambda v: None if v in (None, "", AUTO) else str(v)  # noqa: E731
        if not isinstance(encoding or "auto", str):
            raise InputError(f"{encoding!r} is not an encoding's name", fix="pick an encoding from the menu")
        if not isinstance(delimiter or "auto", str) or (delimiter or "auto") not in DELIMITERS:
            raise InputError(
                f"{str(delimiter)[:40]!r} is not a delimiter offered here",
                fix=f"pick one of: {', '.join(DELIMITERS)}",
            )
        return cls(
            encoding or "auto",
            delimiter or "auto",
            pick(question_col),
            pick(answer_col),
            pick(score_col),
            strategy or "best-worst",
            number_or_none(chosen_min),
            number_or_none(rejected_max),
            number_or_none(min_margin),
            file_format or "auto",
            aggregate or "mean",
            number_or_none(max_rater_spread),
            pick(rater_col),
        )

    def read_options(self) -> ReadOptions:
        rules = limits()
        return ReadOptions(
            max_bytes=int(max_upload_mb() * 1e6),  # a small .gz must not grow past the upload limit
            # a public app's budgets, checked while the file is read (a 30 MB cell, 5 million tiny rows)
            max_rows=rules.max_feedback_rows,
            max_cell_chars=rules.max_cell_chars,
            encoding=self.encoding,
            delimiter=DELIMITERS.get(self.delimiter),
            question_col=self.question_col,
            answer_col=self.answer_col,
            score_col=self.score_col,
            rater_col=self.rater_col,
            format=self.file_format,
        )

    def pair_options(self) -> PairOptions:
        margin = PairOptions().min_margin if self.min_margin is None else self.min_margin
        return PairOptions(
            strategy=self.strategy,
            chosen_min=self.chosen_min,
            rejected_max=self.rejected_max,
            min_margin=margin,
            aggregate=self.aggregate,
            max_rater_spread=self.max_rater_spread,
        )


# A browser's id, issued by the page load (app.identity, kept in localStorage); shorter is not one of ours.
MIN_OWNER_ID_CHARS = 16


def is_owner_id(value) -> bool:
    """Set by the page load only (a gr.State is the server's): any id of the right size is one it issued."""
    return isinstance(value, str) and MIN_OWNER_ID_CHARS <= len(value) <= 128


@dataclass
class Session:
    """One browser's state. Plain data: Gradio keeps one per page and hands the same object to every
    event of that page, so two events that overlap see each other's changes.

    What depends on what, and which transition clears it:
      file loaded      -> the preview, its settings and pairs, thresholds suggested for the old file,
                          the Compare example taken from the old pairs (compare_tab.after_data_change)
      settings changed -> the preview, its settings and pairs
      run started      -> the run followed by the Train tab, what its timer has seen
    `data_version` counts data transitions; a preview that finishes after a newer one began is stale
    and is thrown away (`is_current`), so the last edit on screen is the one that trains.
    """

    owner: str = ""  # this browser's id (kept in its localStorage by gr.BrowserState)
    address: str = ""  # a hash of the network address the page loaded from (app.identity.client_address)
    facilitator: bool = False  # unlocked with the facilitator secret
    data_path: str | None = None
    data_name: str | None = None
    # The file names as the visitor uploaded them: one, or a tracing export's two (joined into data_path).
    input_names: tuple[str, ...] = ()
    data_version: int = 0
    # The settings the current preview was made with; training uses exactly these.
    settings: DataSettings | None = None
    preview_caught_up: bool = False  # Start derived the preview again with the settings on screen
    pairs: int = 0
    pairs_jsonl: str | None = None
    pairs_csv: str | None = None
    # Thresholds the current preview suggests for its file's scale (the "suggested" button offers them).
    offered_thresholds: dict | None = None
    # Thresholds the "suggested" button put in the boxes, and the file they were suggested for.
    suggested_thresholds: tuple[float, float] | None = None
    suggested_for: str | None = None
    # What this file's previews say besides the file itself: kept, so that a later preview of the same file
    # (a setting event that comes after the file's own, as the boxes the file reset fire) says it too.
    joined_note: str = ""  # the two files of a tracing export joined into this one
    cleared_note: str = ""  # the previous file's suggested thresholds emptied (said while the boxes are empty)
    work_dir: str | None = None
    run_dir: str | None = None
    run_seen_finished: bool = False  # a timer tick has seen this run's end
    just_finished: bool = False  # the latest tick was the first to see it end
    metrics_seen: int = -1  # metrics lines already drawn (-1: nothing drawn yet)
    example_index: int = 0
    example_source: str | None = None  # where the Compare example came from: "file:<path>" or "run:<path>"

    # ---- transitions

    def file_loaded(self, path: str | None, name: str | None) -> int:
        """A new file: everything derived from the old one goes. Returns this transition's version."""
        self.data_path, self.data_name, self.input_names = path, name, (name,) if name else ()
        self.settings, self.pairs, self.pairs_csv, self.pairs_jsonl = None, 0, None, None
        self.offered_thresholds = None
        self.joined_note = self.cleared_note = ""
        return self.begin_data_change()

    def begin_data_change(self) -> int:
        self.data_version += 1
        return self.data_version

    def is_current(self, version: int) -> bool:
        """False once a newer file or settings change has begun: this result is stale."""
        return version == self.data_version

    def previewed(self, settings: DataSettings | None, pairs: int, offered_thresholds: dict | None = None) -> None:
        self.settings, self.pairs, self.offered_thresholds = settings, pairs, offered_thresholds
        self.pairs_csv = self.pairs_jsonl = None

    def thresholds_suggested(self, chosen_min: float, rejected_max: float) -> None:
        self.suggested_thresholds, self.suggested_for = (chosen_min, rejected_max), self.data_path

    def stale_suggestion(self, chosen_min, rejected_max) -> bool:
        """The threshold boxes still hold what was suggested for another file than the current one."""
        if self.suggested_thresholds is None or self.suggested_for == self.data_path:
            return False
        try:
            shown = (number_or_none(chosen_min), number_or_none(rejected_max))
        except InputError:
            return False
        return shown == self.suggested_thresholds

    def run_started(self, run_dir: str) -> None:
        self.run_dir, self.run_seen_finished, self.just_finished, self.metrics_seen = run_dir, False, False, -1

    # ---- reading

    def workdir(self) -> Path:
        """This session's folder for downloads, made on first use and removed with the session."""
        if not self.work_dir or not Path(self.work_dir).is_dir():
            self.work_dir = tempfile.mkdtemp(prefix="rm_demo_")
        return Path(self.work_dir)

    def viewer(self) -> Viewer:
        return Viewer(owner=self.owner, facilitator=self.facilitator, private=is_private())

    def usable_model(self, model: str | None) -> str:
        """The model a request names, if this visitor may use it (a visitor id, and one of the menu's
        choices); anything else (another visitor's run, a server path) raises InputError. The one owner
        check of every endpoint that takes a model."""
        self.require_owner()
        return open_model(runs_root(), model, self.viewer())

    def require_owner(self) -> None:
        """Every action is some visitor's: a client that skipped the page load (no id) is refused, so no
        limit per visitor can be dodged by never having one."""
        if not is_owner_id(self.owner):
            raise InputError(
                "this page has no visitor id yet", fix="reload the page (a gradio_client calls /load first)"
            )

    def read_options_dict(self) -> dict:
        return asdict(self.settings.read_options()) if self.settings else {}


def clean_up(session: Session | None) -> None:
    """gr.State's delete callback: a closed page leaves no files behind."""
    if session is not None and session.work_dir:
        shutil.rmtree(session.work_dir, ignore_errors=True)
