"""Writing tables people open: formula-safe CSVs, and files that appear whole or not at all.

Both the CLI and the app write through these, so a pairs, dropped-rows or scored CSV is safe in a
spreadsheet whichever way it was made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    # A header is a cell too (a column named "=cmd|..." from an uploaded file).
    out.columns = ["'" + str(c) if re.match(FORMULA_START, str(c)) else c for c in out.columns]
    return out


# The process's umask, read once (reading it means setting it, which must not race other threads).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _kind(mode: int) -> str:
    return {stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFIFO: "a pipe", stat.S_IFSOCK: "a socket"}.get(
        stat.S_IFMT(mode), "not a regular file"
    )


def regular_input(path: str | os.PathLike, source: str | None = None) -> Path:
    """`path` if it is a regular file (through symlinks). A device (/dev/zero), a pipe (`<(cat f)`, a
    FIFO with no writer) or a socket would be read without end, or hang: they are refused."""
    source = source or str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError("file not found", source=source, fix="check the path") from None
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", source=source, fix="check the path") from None
    if stat.S_ISDIR(mode):
        raise InputError("is a folder, not a file", source=source, fix="give the path of a file")
    if not stat.S_ISREG(mode):
        raise InputError(
            f"is {_kind(mode)}, not a regular file",
            source=source,
            fix="save the data to a file first and give that file's path",
        )
    return Path(path)


def output_target(path: str | os.PathLike) -> Path:
    """Where writing `path` lands: through a symlink to the file it names (the link stays a link); a
    device, pipe or socket is refused, never replaced by a plain file."""
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return target  # a new file
    if stat.S_ISDIR(mode):
        raise InputError("is a folder, not a file", source=str(path), fix="give a file name, e.g. pairs.jsonl")
    if not stat.S_ISREG(mode):
        raise InputError(
            f"is {_kind(mode)}, not a file: an output never replaces one",
            source=str(path),
            fix="give a file name, e.g. pairs.jsonl",
        )
    return target


def run_folder_holding(target: Path) -> Path | None:
    """The run folder (a folder with a run.json) that `target` lies in, at any depth, or None."""
    for folder in target.parents:
        if (folder / "run.json").is_file():
            return folder
    return None


def check_outputs(inputs: dict[str, str | None], outputs: dict[str, str | None]) -> None:
    """Before any work: no output is an input (it would be destroyed), no two outputs are one file, and
    none lands inside a run folder (its data copy, record, checkpoints and weights are the run itself)."""
    seen: dict[Path, str] = {}
    real_inputs = {Path(os.path.realpath(p)): name for name, p in inputs.items() if p}
    for name, path in outputs.items():
        if not path:
            continue
        target = output_target(path)
        run = run_folder_holding(target)
        if run is not None:
            raise InputError(
                f"{name} lies inside the run folder {run}: writing it could replace a file of the run",
                source=str(path),
                fix=f"write {name} outside the run folder, e.g. {Path(path).name} in the current folder",
            )
        if target in real_inputs:
            raise InputError(
                f"{name} is the input file {real_inputs[target]}: writing it would destroy the input",
                source=str(path),
                fix=f"give {name} another file name",
            )
        if target in seen:
            raise InputError(
                f"{name} and {seen[target]} are the same file: one would overwrite the other",
                source=str(path),
                fix="give each output its own file name",
            )
        seen[target] = name


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`'s target; it replaces the target only if the block succeeds.

    A failure (a full disk, an interrupt) leaves no partial file behind. A symlink is written through
    (its target changes, the link stays); the file gets the mode a plain `open` would give it (the
    umask; an existing file keeps its mode), not mkstemp's 0600.
    """
    target = output_target(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:  # a full disk names the file it was writing
            exc.filename = str(path)
        raise


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """JSONL by default (data kept as is); CSV, formula-safe, when the name ends in .csv."""
    with atomic_path(path) as tmp:
        if str(path).lower().endswith(".csv"):
            safe_for_spreadsheets(frame).to_csv(tmp, index=False)
        else:
            write_jsonl(frame, tmp)


# JSON's named escapes; any other control character is written as \u00XX.
JSON_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def write_jsonl(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """One JSON object per row, UTF-8 as is; text, whole-number, float and boolean columns.

    Built column-wise by Arrow's string kernels and written from one buffer: on 182,000 pairs it
    takes a tenth of the time of `DataFrame.to_json`, whose line splitting copies the whole text.
    Any other column type falls back to pandas.
    """
    try:
        columns = [pa.Array.from_pandas(frame[name]) for name in frame.columns]
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. an object column mixing numbers and text
        columns = None
    if columns is None or not all(_has_json_form(values.type) for values in columns):
        if len(frame) == 0:  # (pandas writes one empty line, which a JSONL reader takes for a broken record)
            Path(path).write_bytes(b"")
            return
        frame.to_json(path, orient="records", lines=True, force_ascii=False, date_format="iso")
        return
    # The line is one join of constant pieces and columns; a text column without nulls gets its
    # quotes from the pieces around it, which saves a copy of the column.
    template, pieces = "{", []
    for i, (name, values) in enumerate(zip(frame.columns, columns)):
        template += ("" if i == 0 else ",") + _json_string(str(name)) + ":"
        text, quote = _json_values(values)
        pieces += [_text(template + quote), text]
        template = quote
    pieces.append(_text(template + "}\n"))
    with open(path, "wb") as out:
        if len(frame) == 0:
            return
        if not columns:
            out.write(b"{}\n" * len(frame))
            return
        lines = pc.binary_join_element_wise(*pieces, _text(""))
        _write_string_buffer(lines, out)


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _text(value: str) -> pa.Scalar:
    return pa.scalar(value, pa.large_string())


def _has_json_form(kind: pa.DataType) -> bool:
    return any(
        test(kind)
        for test in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_integer,
            pa.types.is_boolean,
            pa.types.is_floating,
            pa.types.is_null,
        )
    )


def _json_values(values: pa.Array) -> tuple[pa.Array, str]:
    """Each value as JSON text (large_string, no nulls): numbers, true/false, null, escaped strings.

    The second item is the quote the caller must put around each value: '"' for a text column
    without nulls (its values come back unquoted), else "".
    """
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = _escaped(values.cast(pa.large_string()))
        if not values.null_count:
            return text, '"'
        text = pc.binary_join_element_wise(_text('"'), text, _text('"'), _text(""))
    elif pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        text = values.cast(pa.large_string())
    elif pa.types.is_floating(kind):
        values = pc.if_else(pc.is_finite(values), values, None)  # JSON has no NaN or infinity
        text = values.cast(pa.large_string())
        whole = pc.match_substring_regex(text, r"^-?[0-9]+$")  # 4.0 is written "4": keep it a float
        text = pc.if_else(whole, pc.binary_join_element_wise(text, _text(".0"), _text("")), text)
    else:  # all null
        text = pa.nulls(len(values), pa.large_string())
    return pc.fill_null(text, _text("null")), ""


def _escaped(text: pa.Array) -> pa.Array:
    """JSON string escapes, a whole column per pass; a pass runs only for a character the text holds.

    Which bytes occur is read off Arrow's byte buffer with numpy (a replace copies the column even
    when it finds nothing). UTF-8 never uses these bytes inside a multi-byte character.
    """
    present = set()
    for chunk in text.chunks if isinstance(text, pa.ChunkedArray) else [text]:
        data = chunk.buffers()[2]
        if data is not None and len(chunk):
            present |= set(np.unique(_byte_classes(np.frombuffer(data, dtype=np.uint8))).tolist())
    if ord("\\") in present:
        text = pc.replace_substring(text, "\\", "\\\\")
    if ord('"') in present:
        text = pc.replace_substring(text, '"', '\\"')
    for code in sorted(c for c in present if c < 0x20):
        char = chr(code)
        text = pc.replace_substring(text, char, JSON_ESCAPES.get(char, f"\\u{code:04x}"))
    if 0xE2 in present:  # the first byte of U+2028/U+2029: valid JSON, but line breaks to many readers
        for char in ("\u2028", "\u2029"):
            if pc.any(pc.match_substring(text, char)).as_py():
                text = pc.replace_substring(text, char, f"\\u{ord(char):04x}")
    return text


def _byte_classes(data: np.ndarray) -> np.ndarray:
    """The bytes in `data` that need an escape."""
    special = (data < 0x20) | (data == 0x22) | (data == 0x5C) | (data == 0xE2)
    return np.unique(data[special]) if special.any() else np.zeros(0, np.uint8)


def _write_string_buffer(lines: pa.Array, out) -> None:
    """Write a large_string array's characters, which already end in newlines, straight from its buffer."""
    lines = lines.cast(pa.large_string())
    if isinstance(lines, pa.ChunkedArray):
        chunks = lines.chunks
    else:
        chunks = [lines]
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        bounds = memoryview(offsets).cast("q")[chunk.offset : chunk.offset + len(chunk) + 1]
        out.write(memoryview(data)[bounds[0] : bounds[-1]])


def check_writable(path: str | os.PathLike | None) -> None:
    """Fail before any work when an output path cannot be written: a folder, or a folder that is missing."""
    if not path:
        return
    target = output_target(path)
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
