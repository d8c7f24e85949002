"""Writing tables people open: formula-safe CSVs, and files that appear whole or not at all.

Both the CLI and the app write through these, so a pairs, dropped-rows or scored CSV is safe in a
spreadsheet whichever way it was made.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd

from rm_demo.errors import InputError

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = r"^[=+\-@\t\r]"


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """Neutralise text cells a spreadsheet would run as a formula, by a leading apostrophe."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            text = out[col].astype(str)
            risky = text.str.match(FORMULA_START)
            out[col] = text.where(~risky, "'" + text)
    return out


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    A failure (a full disk, an interrupt) leaves no partial file behind.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """JSONL by default (data kept as is); CSV, formula-safe, when the name ends in .csv."""
    with atomic_path(path) as tmp:
        if str(path).lower().endswith(".csv"):
            safe_for_spreadsheets(frame).to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)


def check_writable(path: str | os.PathLike | None) -> None:
    """Fail before any work when an output path cannot be written: a folder, or a folder that is missing."""
    if not path:
        return
    target = Path(path)
    if target.is_dir():
        raise InputError("is a folder, not a file", source=str(target), fix="give a file name, e.g. pairs.jsonl")
    parent = target.parent
    if not parent.is_dir():
        raise InputError(
            f"the folder {str(parent)!r} does not exist",
            source=str(target),
            fix="create the folder first, or write somewhere else",
        )
    if not os.access(parent, os.W_OK):
        raise InputError(
            f"the folder {str(parent)!r} is not writable",
            source=str(target),
            fix="write somewhere else, or check the folder's permissions",
        )
