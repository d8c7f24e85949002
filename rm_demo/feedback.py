"""Reading feedback files: bytes -> text -> table with known roles, normalised.

A feedback file has one row per rated answer (`question, answer, score`); a pairs file already has
`prompt, chosen, rejected`. Real files come from spreadsheets, so this module guesses the encoding,
the delimiter and the column names, says what it guessed, and lets every guess be overridden.
"""

from __future__ import annotations

import codecs
import csv
import json
import mmap
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from rm_demo.columns import ROLE_ALIASES
from rm_demo.errors import InputError
from rm_demo.importers import BOOKKEEPING_COLUMNS, Imported, import_records, recognise, source_named
from rm_demo.sniff import COMPRESSED_SUFFIXES, GZIP_MAGIC, gunzip, lf_line_endings, not_text
from rm_demo.text import LONE_SURROGATE_ESCAPE, header_key

FEEDBACK_REQUIRED = ("question", "answer", "score")
FEEDBACK_ROLES = (*FEEDBACK_REQUIRED, "rater")
PAIRS_ROLES = ("question", "chosen", "rejected", "chosen_score", "rejected_score", "margin", "rater", "tie")

# Encodings tried, in order of preference, when the bytes are not valid UTF-8.
SINGLE_BYTE_CANDIDATES = ("cp1252", "mac_roman", "latin-1")
DELIMITERS = (",", "\t", ";", "|")
NEWLINE = b"\n"

# Every Unicode space (Python's \s plus the ones spreadsheets leave: no-break, narrow, ideographic)
# and zero-width marks. Written out so the same pattern works in Python's re and in pyarrow's RE2.
_SPACE_CLASS = "[ \t\n\r\f\v\u0085\u00a0\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000\ufeff]"
_SPACE_RUN = _SPACE_CLASS + "+"
_EDGE_SPACE = f"^{_SPACE_CLASS}+|{_SPACE_CLASS}+$"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file; `None` / "auto" means detect."""

    encoding: str = "auto"
    delimiter: str | None = None
    question_col: str | None = None
    answer_col: str | None = None
    score_col: str | None = None
    chosen_col: str | None = None
    rejected_col: str | None = None
    rater_col: str | None = None  # who gave the score: several raters of one answer are combined
    # Refuse a file bigger than this once decompressed (the app's upload limit); None: no limit.
    max_bytes: int | None = None
    # Refuse more rows (records) than this, or a cell longer than this many characters, while reading,
    # before the table is built (a public app's budgets); None: no limit.
    max_rows: int | None = None
    max_cell_chars: int | None = None
    # "auto": recognise an annotation or tracing tool's export by its keys (rm_demo.importers);
    # "table": read the columns as they are; or one source's key (label-studio, argilla, ...).
    format: str = "auto"

    @classmethod
    def from_dict(cls, data: dict | None) -> ReadOptions:
        """From a run's saved config; keys this version does not know are ignored."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def explicit_columns(self) -> dict[str, str]:
        given = {
            "question": self.question_col,
            "answer": self.answer_col,
            "score": self.score_col,
            "chosen": self.chosen_col,
            "rejected": self.rejected_col,
            "rater": self.rater_col,
        }
        return {role: col for role, col in given.items() if col}


@dataclass
class FeedbackTable:
    """A file read into a table whose columns are roles, plus how it was read.

    `frame` has a `row` column (the row number a spreadsheet or editor shows: the header is row 1
    in CSV, line numbers in JSONL) and string columns for each role found, already normalised
    (scores are still text: parsing them is part of the accounting).
    """

    frame: pd.DataFrame
    kind: str  # "feedback" or "pairs"
    source: str
    format: str  # "csv" or "jsonl" or "json"
    encoding: str
    encoding_detected: bool
    delimiter: str | None
    column_mapping: dict[str, str]
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The tool or data set the file came from (None: a plain table), and how many records it held.
    source_format: str | None = None
    records: int | None = None
    record_unit: str = "row"  # what one row of `frame` is: a row, or an annotation, a response, ...
    scale: tuple[float, float] | None = None  # the source's documented score scale
    judgments: pd.DataFrame | None = None  # raters' judgments summed up in one row (row, value)
    extra_columns: list[str] = field(default_factory=list)  # a source's own columns (model, ...): for slices
    score_choices: list[str] = field(default_factory=list)  # what --score-col may name in this source


# ---------------------------------------------------------------------------------------------
# Encoding


def _implausibility(text: str) -> float:
    """How unlikely a decoding is, judged by its non-ASCII characters in context.

    Mis-decoded text shows capitals inside words ("donÕt"), control characters and stray symbols;
    right decoding shows typographic punctuation (’ “ — no-break space) and lower-case accents.
    """
    penalty = 0.0
    for match in re.finditer(r"[^\x00-\x7f]", text):
        ch = match.group()
        start = match.start()
        prev = text[start - 1] if start else " "
        cat = unicodedata.category(ch)
        if ch == "\ufffd" or cat == "Cc":
            penalty += 20
        elif ch in "’‘“”–—…•€£©®°·§«»\u00a0™":
            continue
        elif cat.startswith("L"):
            penalty += 3 if (ch.isupper() and prev.islower()) else 0.5
        else:
            penalty += 1.5
    return penalty


def detect_encoding(raw: bytes) -> str:
    """Name the encoding of `raw`: BOMs first, then strict UTF-8, then the likeliest 8-bit code page."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: FF FE starts both
        return "utf-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = raw[:4096]
    if head and head.count(0) > len(head) // 2:  # UTF-32 without a BOM: three NULs in four bytes
        return "utf-32-le" if head[1:4] == b"\x00\x00\x00" else "utf-32-be"
    if head and head.count(0) > len(head) // 4:  # UTF-16 without a BOM: every other byte is NUL
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    sample = raw[:1_000_000]
    multibyte = _multibyte_encoding(sample)
    if multibyte:
        return multibyte
    scored = []
    for rank, name in enumerate(SINGLE_BYTE_CANDIDATES):
        try:
            raw.decode(name)
        except UnicodeDecodeError:
            continue  # cp1252 leaves five bytes undefined
        scored.append((_implausibility(sample.decode(name, errors="replace")), rank, name))
    return min(scored)[2]


# Encodings charset-normalizer is trusted for. Every byte sequence is valid Mac Roman or Latin-1, so
# the byte rules above read a Shift-JIS file as Mac Roman without a complaint; a maintained detector
# tells these apart. For single-byte files its guesses (cp775 for the article's Mac Roman sample)
# are worse than the plausibility score, so it is asked only about multi-byte encodings.
MULTIBYTE_ENCODINGS = {
    "cp932",
    "shift_jis",
    "euc_jp",
    "iso2022_jp",
    "gb2312",
    "gbk",
    "gb18030",
    "big5",
    "cp949",
    "euc_kr",
}


def _multibyte_encoding(sample: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(sample[:200_000]).best()
    return best.encoding if best is not None and best.encoding in MULTIBYTE_ENCODINGS else None


def decode_bytes(raw: bytes, encoding: str, source: str) -> tuple[str, str, bool]:
    """Return (text, encoding used, whether it was detected)."""
    detected = encoding in ("", "auto", None)
    name = detect_encoding(raw) if detected else encoding
    try:
        codecs.lookup(name)
    except (LookupError, TypeError, ValueError):  # an API client can send a number, a NUL, half a character
        raise InputError(
            f"unknown encoding {ascii(name)[:60]}",
            source=source,
            fix="use a Python codec name such as utf-8, cp1252, mac_roman, latin-1 or utf-16",
        ) from None
    try:
        text = raw.decode(name)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"the bytes at line {line} are not valid {name}",
            source=source,
            fix="leave the encoding on auto, or pick the one the file was saved in "
            "(cp1252 for Windows Excel, mac_roman for old Mac spreadsheets)",
        ) from None
    if text.startswith("\ufeff"):  # a BOM left by utf-16 or utf-32 decoding
        text = text[1:]
    return text, name, detected


# ---------------------------------------------------------------------------------------------
# Normalisation (vectorised: these run over a million rows in the benchmark)


def normalize_question(values: pd.Series) -> pd.Series:
    """NFC, every kind of space collapsed to one ASCII space, trimmed: variants group together."""
    values, arrow, texts, work = _needs_work(values)
    # The per-string regex runs only if the column holds a tab, line break or double space at all.
    if any(text.size and (text.min() < 0x20 or _has_double_space(text)) for text in texts):
        work |= pc.match_substring_regex(arrow, "[\t\n\r\f\v]|  ").to_numpy(zero_copy_only=False)
    return _rewrite(
        values, work, lambda v: v.str.normalize("NFC").str.replace(_SPACE_RUN, " ", regex=True).str.strip(" ")
    )


def normalize_answer(values: pd.Series) -> pd.Series:
    """NFC and trimmed at both ends; inside, the text stays as written (indentation, line breaks)."""
    values, _, _, work = _needs_work(values)
    return _rewrite(values, work, lambda v: v.str.normalize("NFC").str.replace(_EDGE_SPACE, "", regex=True))


# Whole-column checks first: on a clean column (the usual case) a few vectorised passes over
# Arrow's byte buffer replace a pass per string, and no string is looked at one by one.


def _needs_work(values: pd.Series) -> tuple[pd.Series, pa.Array, list[np.ndarray], np.ndarray]:
    """(values as str, as Arrow, their bytes per chunk, which strings have an edge space or a non-ASCII byte).

    The bytes are views of Arrow's buffers: a copy of a 200 MB column costs more than reading it.
    """
    values = values.astype("str")
    arrow = pa.array(values)
    texts = [data[offsets[0] : offsets[-1]] for offsets, data in _string_buffers(arrow)]
    work = _edge_space(arrow)
    if any(text.size and text.max() >= 0x80 for text in texts):  # some string is not ASCII: find which
        work |= ~values.str.isascii()
    return values, arrow, texts, work


def _string_buffers(strings: pa.Array | pa.ChunkedArray):
    """Per chunk: (offsets of its strings, the bytes they index), as numpy views without a copy."""
    for chunk in strings.chunks if isinstance(strings, pa.ChunkedArray) else [strings]:
        _, offsets_buf, data_buf = chunk.buffers()[:3]
        offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=offset_type)[chunk.offset : chunk.offset + len(chunk) + 1]
        data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, dtype=np.uint8)
        yield (offsets if len(offsets) else np.zeros(1, dtype=offset_type)), data


def _has_double_space(text: np.ndarray) -> bool:
    """Two spaces in a row anywhere: as 16-bit words "  " is 0x2020, at even and at odd offsets."""
    even = text[: text.size // 2 * 2].view(np.uint16)
    odd = text[1 : 1 + (text.size - 1) // 2 * 2].view(np.uint16)
    return bool((even == 0x2020).any() or (odd == 0x2020).any())


_IS_ASCII_SPACE = np.zeros(256, dtype=bool)  # a lookup table: byte -> is it an ASCII space
_IS_ASCII_SPACE[[9, 10, 11, 12, 13, 32]] = True


def _edge_space(strings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which strings start or end with an ASCII space, read straight off Arrow's offsets.

    A regex anchored at the end scans every string; this looks at two bytes per string.
    (Non-ASCII edges, such as a no-break space, are caught by the is-ASCII test.)
    """
    parts = [np.zeros(0, dtype=bool)]
    for offsets, data in _string_buffers(strings):
        start, end = offsets[:-1], offsets[1:]
        if data.size == 0:  # only empty strings
            parts.append(np.zeros(len(start), dtype=bool))
            continue
        first = data.take(start, mode="clip")  # "clip": an empty string's index may point past the end
        last = data.take(end - 1, mode="clip")
        parts.append((end > start) & (_IS_ASCII_SPACE[first] | _IS_ASCII_SPACE[last]))
    return np.concatenate(parts)


def _rewrite(values: pd.Series, work: pd.Series, clean) -> pd.Series:
    """Apply `clean` only where needed: most rows of a real file are already clean ASCII."""
    if not work.any():
        return values
    values = values.copy()
    values[work] = clean(values[work])
    return values


# ---------------------------------------------------------------------------------------------
# Parsing


def _guess_delimiter(text: str) -> str:
    """The delimiter that appears most in the header line (headers are rarely quoted prose)."""
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _check_rows(count: int, options: ReadOptions | None, source: str) -> None:
    if options is not None and options.max_rows is not None and count > options.max_rows:
        raise InputError(
            f"{count:,} rows is over this app's limit of {options.max_rows:,}",
            source=source,
            fix="use a sample of the file here, or the CLI (python -m rm_demo) for any size",
        )


def _check_cells(columns: dict, options: ReadOptions | None, source: str, first_row: int) -> None:
    """No cell over `max_cell_chars`, checked column by column on Arrow arrays (no Python loop)."""
    limit = options.max_cell_chars if options is not None else None
    if not limit:
        return
    for name, values in columns.items():
        lengths = pc.utf8_length(values)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            at = pc.index(lengths, longest).as_py()
            raise InputError(
                f"row {first_row + at}: the {name!r} cell is {longest:,} characters; the limit here is {limit:,}",
                source=source,
                fix="shorten it (a reward model reads only its first few hundred tokens anyway), or use the CLI",
            )


def _parse_csv(
    data: bytes,
    delimiter: str,
    source: str,
    path: Path | None = None,
    quoted: bool = True,
    options: ReadOptions | None = None,
) -> pd.DataFrame:
    """UTF-8 CSV -> string table. pyarrow's reader: multi-threaded, and quotes like pandas'.

    With `path`, pyarrow reads the file itself (and checks it is valid UTF-8); `data` then only
    needs to hold the beginning, for the header. `quoted=False` (no double quote anywhere in the
    file) means no field can hold a line break, so pyarrow may cut blocks at any newline.
    """
    end = data.find(NEWLINE)
    header_line = data[: end if end >= 0 else len(data)].decode("utf-8", errors="replace").rstrip("\r")
    try:
        header = next(csv.reader([header_line], delimiter=delimiter), [])
    except csv.Error as exc:  # e.g. a first "line" of megabytes: over the csv module's field limit
        raise InputError(
            f"the first line (the header) cannot be read as column names ({exc})",
            source=source,
            fix="put the column names on the first line, e.g. question,answer,score",
        ) from None
    if not any(h.strip() for h in header):
        raise InputError(
            "the first line (the header) is empty", source=source, fix="put the column names on the first line"
        )
    slots = [f"c{i}" for i in range(len(header))]
    read = pv.ReadOptions(block_size=16 << 20, skip_rows=1, column_names=slots)
    bad_rows: list = []

    def on_bad_row(row) -> str:
        bad_rows.append(row)
        return "error"

    parse = pv.ParseOptions(delimiter=delimiter, newlines_in_values=quoted, invalid_row_handler=on_bad_row)
    # large_string: what pandas' str columns hold, so nothing is converted (a copy of the file) later
    convert = pv.ConvertOptions(
        strings_can_be_null=False, null_values=[], column_types={c: pa.large_string() for c in slots}
    )
    try:
        table = pv.read_csv(
            str(path) if path is not None else pa.BufferReader(data),
            read_options=read,
            parse_options=parse,
            convert_options=convert,
        )
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise InputError("the file is not valid UTF-8", source=source, fix="pick its encoding") from None
        detail = ""
        if bad_rows:
            bad = bad_rows[0]
            at = data.find(bad.text.encode("utf-8"))
            line = f"line {data.count(NEWLINE, 0, at) + 1}" if at >= 0 else "a row"
            detail = f" ({line} has {bad.actual_columns} fields, the header has {bad.expected_columns})"
        raise InputError(
            f"could not split the rows into columns with delimiter {delimiter_name(delimiter)}{detail}",
            source=source,
            fix="put double quotes around fields that contain the delimiter, or choose the right delimiter",
        ) from None
    names = _unique_names([h.strip().lstrip("\ufeff") for h in header])
    _check_rows(table.num_rows, options, source)  # the budgets, before pandas builds the table
    _check_cells(dict(zip(names, table.columns)), options, source, first_row=2)
    # One chunk per column: later takes and hashing on a many-chunk column re-concatenate it each time.
    frame = table.rename_columns(names).combine_chunks().to_pandas()
    frame.insert(0, "row", np.arange(2, len(frame) + 2))  # the header is row 1
    return frame


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}.{count}")
    return out


def _records_frame(records: list, rows: list[int], source: str, options: ReadOptions | None = None) -> pd.DataFrame:
    bad = [r for rec, r in zip(records, rows) if not isinstance(rec, dict)]
    if bad:
        raise InputError(
            f"row {bad[0]} is not a JSON object",
            source=source,
            fix='write one object per record, e.g. {"question": ..., "answer": ..., "score": ...}',
        )
    frame = pd.DataFrame(records, dtype=object)  # object: keep 5 as "5", not "5.0"
    for col in frame.columns:
        frame[col] = frame[col].map(_json_cell).astype("str")
    _check_cells(
        {str(c): pa.array(frame[c], pa.large_string()) for c in frame.columns}, options, source, first_row=rows[0]
    )
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.insert(0, "row", rows)
    return frame


def _json_cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _check_json_text(text: str, source: str) -> None:
    """JSON that parses but holds no text: a lone surrogate escape ("\\ud800" without its pair) would
    fail later, in the tokenizer or a writer, far from its line. Named here, with its line."""
    found = LONE_SURROGATE_ESCAPE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise InputError(
            f"line {line} holds {found.group()}, half of a UTF-16 pair: not text",
            source=source,
            fix="export the file again as UTF-8 (the tool that wrote it cut a character in two)",
        )


def _parse_json(text: str, source: str, where: str = "the file"):
    try:
        return json.loads(text)
    except RecursionError:
        raise InputError(
            f"{where} is nested too deeply to be records", source=source, fix="save a list of flat objects"
        ) from None


def _jsonl_records(text: str, source: str) -> tuple[list, list[int]]:
    _check_json_text(text, source)
    records, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(_parse_json(line, source, f"line {number}"))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"line {number} is not valid JSON ({exc.msg})",
                source=source,
                fix="each line must hold one JSON object",
            ) from None
        rows.append(number)
    if not records:
        raise InputError("the file has no records", source=source, fix="add one JSON object per line")
    return records, rows


# A tracing tool's two exports saved as one object: {"traces": [...], "scores": [...]}.
JOINED_EXPORTS = ({"traces", "scores"}, {"runs", "feedback"})


def _json_records(text: str, source: str) -> tuple[list, list[int]]:
    _check_json_text(text, source)
    try:
        data = _parse_json(text, source)
    except json.JSONDecodeError:
        return _jsonl_records(text, source)  # .json files are often JSON Lines
    if isinstance(data, dict):  # {"data": [...]} or {"records": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        joined = next((keys for keys in JOINED_EXPORTS if keys <= data.keys()), None)
        if joined:
            lists = [sum((data[k] for k in sorted(joined, reverse=True) if isinstance(data[k], list)), [])]
        if len(lists) != 1:
            raise InputError(
                "the JSON is an object, not a list of records",
                source=source,
                fix="save a list of objects, or JSON Lines (one object per line)",
            )
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise InputError("the JSON holds no records", source=source, fix="save a list of objects")
    return data, list(range(1, len(data) + 1))


def export_records(path: str | os.PathLike, max_bytes: int | None = None) -> list:
    """The records of one JSON or JSON Lines file (optionally .gz; a list, an API response's `data`, ...)."""
    path = Path(path)
    source = path.name
    check_memory_for(path.stat().st_size, source)
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        raw = gunzip(raw, source, max_bytes)
    if max_bytes is not None and len(raw) > max_bytes:
        raise InputError(f"the file is over {max_bytes / 1e6:g} MB", source=source, fix="use a smaller file")
    text, _, _ = decode_bytes(raw, "auto", source)
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    if _detect_format(_base_name(source), text[:65536]) == "csv":
        raise InputError(
            "this is a table: two files are joined only as a tracing tool's export (traces, then scores), "
            "each JSON or JSON Lines as its API or SDK writes it",
            source=source,
            fix="to read one file, give it alone (in the app, clear the Scores file box); for a tracing tool, save "
            "both halves with json.dump",
        )
    records, _ = (
        _jsonl_records(text, source)
        if _base_name(source).endswith((".jsonl", ".ndjson"))
        else _json_records(text, source)
    )
    return records


def join_exports(
    first: str | os.PathLike, second: str | os.PathLike, folder: str | os.PathLike, max_bytes: int | None = None
) -> Path:
    """A tracing tool's export that came as two files (traces or runs, then scores or feedback) as one file
    of both, `{"traces": [...], "scores": [...]}`, written in `folder`: every reader (the preview, a run's
    copy of its data, the evaluation) then reads one file. Records are numbered through: the second file's
    follow the first's."""
    first, second = Path(first), Path(second)
    joined = {"traces": export_records(first, max_bytes), "scores": export_records(second, max_bytes)}
    out = Path(folder) / f"{_stem(first.name)}+{_stem(second.name)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(joined, ensure_ascii=False), encoding="utf-8")
    return out


def _stem(name: str) -> str:
    for suffix in (".gz", ".jsonl", ".ndjson", ".json"):
        name = name.removesuffix(suffix)
    return name[:60] or "export"


def _detect_format(name: str, text: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix not in (".csv", ".tsv", ".txt") and text.lstrip()[:1] in ("{", "["):
        return "json"
    return "csv"


# ---------------------------------------------------------------------------------------------
# Columns


def _resolve_columns(columns: list[str], options: ReadOptions, source: str) -> tuple[str, dict[str, str]]:
    """Return (kind, role -> column name)."""
    explicit = options.explicit_columns()
    for role, col in explicit.items():
        if col not in columns:
            raise InputError(
                f"there is no column {col!r} (asked for as the {role} column)",
                source=source,
                fix=f"use one of the file's columns: {', '.join(map(repr, columns))}",
            )
    roles_of: dict[str, str] = {}
    for role, col in explicit.items():
        if col in roles_of:
            raise InputError(
                f"the column {col!r} is asked for as both the {roles_of[col]} and the {role}",
                source=source,
                fix="give each role its own column",
            )
        roles_of[col] = role
    by_key: dict[str, str] = {}
    for col in columns:
        by_key.setdefault(header_key(col), col)
    mapping: dict[str, str] = {}
    taken = set(explicit.values())
    for role, aliases in ROLE_ALIASES.items():
        if role in explicit:
            mapping[role] = explicit[role]
            continue
        for alias in aliases:
            col = by_key.get(alias)
            if col is not None and col not in taken:
                mapping[role] = col
                taken.add(col)
                break

    wants_feedback = bool({"answer", "score"} & explicit.keys())
    is_pairs = not wants_feedback and "chosen" in mapping and "rejected" in mapping
    kind = "pairs" if is_pairs else "feedback"
    roles = PAIRS_ROLES if is_pairs else FEEDBACK_ROLES
    mapping = {role: col for role, col in mapping.items() if role in roles}

    required = ("chosen", "rejected") if is_pairs else FEEDBACK_REQUIRED
    missing = [role for role in required if role not in mapping]
    if missing:  # every missing role at once: one round trip, not one per column
        roles = " and ".join(f"the {role}" for role in missing).replace(" and the", ", the", len(missing) - 2)
        names = "; ".join(f"{role}: {'/'.join(ROLE_ALIASES[role])}" for role in missing)
        flags = " ".join(f"--{role}-col NAME" for role in missing)
        menus = ", ".join(f"*{role.capitalize()} column*" for role in missing)
        raise InputError(
            f"no column for {roles}. Columns found: {', '.join(map(repr, columns))}",
            source=source,
            fix=f"name the columns as they are known ({names}), or choose them explicitly ({flags} in the "
            "CLI, the column menus in the app)",
            app_fix=f"choose them in the {menus} menus under **Reading and pairing settings** (or name the "
            f"columns as they are known: {names})"
            if set(missing) <= set(FEEDBACK_REQUIRED)
            else None,
        )
    return kind, mapping


# ---------------------------------------------------------------------------------------------
# Pairs files without a prompt column (HH-RLHF style: two transcripts sharing the conversation)


def split_shared_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two transcripts into (shared prompt, chosen answer, rejected answer).

    The prompt is the longest common prefix, cut back to the end of its last "Assistant:" marker
    when there is one, else to a word boundary, so neither answer starts mid-word.
    """
    prefix = os.path.commonprefix([chosen, rejected])
    marker = prefix.rfind("Assistant:")
    if marker >= 0:
        cut = marker + len("Assistant:")
    elif len(prefix) in (len(chosen), len(rejected)):
        cut = 0  # one is a prefix of the other: no shared prompt to split off
    else:
        cut = max(prefix.rfind(" "), prefix.rfind("\n")) + 1
    return prefix[:cut], chosen[cut:], rejected[cut:]


# ---------------------------------------------------------------------------------------------
# Entry point


@dataclass
class RawTable:
    """A file parsed into string columns, as written (plus `row`), and how it was read."""

    frame: pd.DataFrame
    source: str
    format: str
    encoding: str
    encoding_detected: bool
    delimiter: str | None
    notes: list[str] = field(default_factory=list)
    imported: Imported | None = None  # a tool's export, read into rm_demo's columns (`frame` is its table)


def read_table(path: str | os.PathLike, options: ReadOptions | None = None, *, name: str | None = None) -> RawTable:
    """Bytes on disk -> a table of strings: compression, encoding, format, line endings, delimiter.

    An annotation or tracing tool's export is recognised and read into rm_demo's columns
    (`RawTable.imported`); `options.format` names the source, or "table" to read columns as they are."""
    options = options or ReadOptions()
    source_named(options.format)  # an unknown --format is named before any reading
    table = _read_table(path, options, name)
    if table.imported is None and table.format == "csv" and options.format != "table":
        _import_flat(table, options)
    return table


def _import_flat(table: RawTable, options: ReadOptions) -> None:
    """A CSV of a flat source (HelpSteer2, TRL unpaired): its header is enough to recognise it."""
    frame = table.frame
    columns = [c for c in frame.columns if c != "row"]
    head = [dict(zip(columns, frame[columns].iloc[0].tolist()))] if len(frame) else []
    wanted = source_named(options.format)
    if not head or (wanted is None and recognise(head, flat_only=True) is None):
        return
    records = frame[columns].to_dict("records")
    table.imported = import_records(
        records,
        frame["row"].tolist(),
        options.format,
        options.score_col,
        table.source,
        flat_only=True,
        answer_field=options.answer_col,
    )
    if table.imported is not None:
        table.frame = table.imported.frame


def _read_table(path: str | os.PathLike, options: ReadOptions, name: str | None) -> RawTable:
    path = Path(path)
    source = name or path.name
    head_bytes = _head(path, source)
    if options.max_bytes is not None and head_bytes[:2] != GZIP_MAGIC and path.stat().st_size > options.max_bytes:
        raise InputError(
            f"the file is over {options.max_bytes / 1e6:g} MB",
            source=source,
            fix="use a smaller file; the command line reads bigger ones with --max-input-mb",
        )
    what = not_text(head_bytes) if head_bytes[:2] != GZIP_MAGIC else None
    if what:  # said from the first 64 KB: a 3 GB file of zeros is not read whole to be refused
        raise InputError(
            f"this is {what}, not a text table",
            source=source,
            fix="save the sheet as CSV (or TSV, JSON Lines) with question, answer and score columns",
        )
    check_memory_for(path.stat().st_size if head_bytes[:2] != GZIP_MAGIC else 0, source)
    fast = _plain_ascii_csv(path, source, head_bytes, options)
    if fast is not None:
        return fast
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:  # by content, not by name: data.jsonl.gz, or a .gz that is not
        raw = gunzip(raw, source, options.max_bytes)
    elif options.max_bytes is not None and len(raw) > options.max_bytes:
        raise InputError(
            f"the file is over {options.max_bytes / 1e6:g} MB",
            source=source,
            fix="use a smaller file; the command line reads bigger ones with --max-input-mb",
        )
    what = not_text(raw[:65536])
    if what:
        raise InputError(
            f"this is {what}, not a text table",
            source=source,
            fix="save the sheet as CSV (or TSV, JSON Lines) with question, answer and score columns",
        )
    if not raw or raw.isspace() or raw in (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise InputError(
            "the file is empty" + (" (it holds only a byte-order mark)" if raw.strip() else ""),
            source=source,
            fix="upload a file with a header row and data rows",
        )
    if options.encoding in ("", "auto", None) and raw.isascii() and b"\x00" not in raw[:4096]:
        text, encoding, detected, utf8 = None, "utf-8", True, raw  # ASCII is UTF-8: skip decoding
    else:
        text, encoding, detected = decode_bytes(raw, options.encoding, source)
        utf8 = raw if encoding in ("utf-8", "utf-8-sig") else text.encode("utf-8")
        utf8 = utf8.removeprefix(codecs.BOM_UTF8)  # else a quoted first header reads as '"question"'
    utf8 = lf_line_endings(utf8)
    head = utf8[:65536].decode("utf-8", errors="ignore").lstrip("\ufeff")
    fmt = _detect_format(_base_name(source), head)
    if fmt != "csv":
        if fmt == "jsonl" and options.max_rows is not None and utf8.count(NEWLINE) > options.max_rows:
            # one record a line: counted before any is parsed (blank lines are no records)
            _check_rows(sum(1 for line in utf8.split(NEWLINE) if line.strip()), options, source)
        text = utf8.decode("utf-8")
        records, numbers = _jsonl_records(text, source) if fmt == "jsonl" else _json_records(text, source)
        _check_rows(len(records), options, source)
        imported = import_records(
            records, numbers, options.format, options.score_col, source, answer_field=options.answer_col
        )
        if imported is not None:
            frame = imported.frame
            _check_cells(
                {str(c): pa.array(frame[c].astype(str), pa.large_string()) for c in frame.columns if c != "row"},
                options,
                source,
                first_row=1,
            )
            return RawTable(frame, source, fmt, encoding, detected, None, imported=imported)
        return RawTable(_records_frame(records, numbers, source, options), source, fmt, encoding, detected, None)
    delimiter = options.delimiter or ("\t" if _base_name(source).lower().endswith(".tsv") else _guess_delimiter(head))
    frame = _parse_csv(utf8, delimiter, source, options=options)
    notes = _suspicious_quotes(frame, delimiter) if b'"' in utf8 else []
    return RawTable(frame, source, fmt, encoding, detected, delimiter, notes)


# Reading a table holds the file's bytes several times over at its peak (the bytes, UTF-8 text, Arrow's
# columns, pandas' strings): measured on the CLI at 3-5x the file's size.
READ_MEMORY_FACTOR = 5


def check_memory_for(size: int, source: str) -> None:
    """Refuse, before reading, a file this process cannot hold: the memory free on the machine or left
    under the process's own address-space limit (ulimit -v), whichever is smaller."""
    if size <= 0:
        return
    import psutil

    free = psutil.virtual_memory().available
    try:
        import resource  # POSIX only: Windows has no address-space limit to read
    except ImportError:
        resource = None
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            free = min(free, soft - psutil.Process().memory_info().vms)
    needed = size * READ_MEMORY_FACTOR
    if needed > free:
        raise InputError(
            f"reading {size / 1e6:,.0f} MB needs about {needed / 1e9:,.1f} GB of memory; "
            f"{max(free, 0) / 1e9:,.1f} GB is free for this process",
            source=source,
            fix="split the file, or run on a machine with more memory",
        )


def _head(path: Path, source: str | None = None) -> bytes:
    from rm_demo.tables import regular_input

    regular_input(path, source)  # a device or a pipe is never read
    try:
        with path.open("rb") as fh:
            return fh.read(65536)
    except FileNotFoundError:
        raise InputError("file not found", source=str(path), fix="check the path") from None
    except IsADirectoryError:
        raise InputError(
            "is a folder, not a file", source=str(path), fix="give the path of a CSV or JSONL file"
        ) from None
    except PermissionError:
        raise InputError(
            "cannot be read (permission denied)", source=str(path), fix="check the file's permissions"
        ) from None


def _base_name(source: str) -> str:
    for suffix in COMPRESSED_SUFFIXES:
        if source.lower().endswith(suffix):
            return source[: -len(suffix)]
    return source


def _plain_ascii_csv(path: Path, source: str, head: bytes, options: ReadOptions) -> RawTable | None:
    """Fast path for big plain files: pyarrow reads the file itself and checks it is UTF-8.

    Only for an ASCII start with LF line endings, no NUL, no size limit to enforce, and a name that
    pyarrow would not take for a compressed file; anything else goes the careful way.
    """
    if (
        not head
        or head.isspace()
        or not head.isascii()
        or b"\x00" in head
        or options.encoding not in ("", "auto", None)
    ):
        return None
    if path.suffix.lower() in COMPRESSED_SUFFIXES or b"\n" not in head:
        return None  # (the size limit of a plain file was checked from its size before: read_table)
    text = head.decode("ascii")
    if _detect_format(source, text) != "csv":
        return None
    delimiter = options.delimiter or ("\t" if source.lower().endswith(".tsv") else _guess_delimiter(text))
    quoted = _has_quote(path)
    try:
        frame = _parse_csv(head, delimiter, source, path=path, quoted=quoted, options=options)
    except InputError as exc:
        if "UTF-8" in str(exc):
            return None  # not UTF-8 after all (a Windows file with ASCII in its first 64 KB)
        raise
    notes = _suspicious_quotes(frame, delimiter) if quoted else []
    return RawTable(frame, source, "csv", "utf-8", True, delimiter, notes)


def _score_at_line_end(delimiter: str) -> str:
    """A number closing a line, as a score column ends a row (a decimal comma only where it is no delimiter)."""
    decimal = "[.]" if delimiter == "," else "[.,]"
    return rf"[ \t]*[-+]?[0-9]+(?:{decimal}[0-9]+)?[ \t]*"


def _row_like_line(delimiter: str, fields: int) -> str:
    """A whole line inside a quoted field that reads as a row of its own: as many fields as the header,
    the last a number (a score). Prose with a comma before a number ("2, 3") has too few fields."""
    d = re.escape(delimiter)
    return rf"\n(?:[^{d}\n]*{d}){{{fields - 1}}}{_score_at_line_end(delimiter)}(?:\n|$)"


def _row_tail_first_line(delimiter: str, fields: int) -> str:
    """A field's first line that ends with `fields` more fields of a row, the last a number: what a quote
    left open at the start of the field swallows of its own row before it reaches the next line."""
    d = re.escape(delimiter)
    return rf"^[^\n]*(?:{d}[^{d}\n]*){{{fields - 1}}}{d}{_score_at_line_end(delimiter)}\n"


def _suspicious_quotes(frame: pd.DataFrame, delimiter: str) -> list[str]:
    """A stray quote makes the CSV rules swallow the following rows into one field. The file's meaning
    is kept as the rules give it; this names where a field spans lines that look like rows."""
    columns = [c for c in frame.columns if c != "row"]
    if len(columns) < 2:
        return []
    pattern = _row_like_line(delimiter, len(columns))
    hits = np.zeros(len(frame), dtype=bool)
    for index, col in enumerate(columns):
        values = pa.array(frame[col].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        if pc.any(pc.match_substring(values, "\n")).as_py():
            found = pc.match_substring_regex(values, pattern)
            after = len(columns) - index - 1
            if after:  # a stray quote also swallows the rest of its own row: the field's first line ends like it
                found = pc.and_(found, pc.match_substring_regex(values, _row_tail_first_line(delimiter, after)))
            hits |= found.to_numpy(zero_copy_only=False)
    if not hits.any():
        return []
    # The line a record starts on: the header's line, plus one per record and per line break before it.
    breaks = sum(frame[col].astype(str).str.count("\n").to_numpy() for col in columns)
    start_line = 2 + np.arange(len(frame)) + np.concatenate([[0], np.cumsum(breaks)[:-1]])
    where = [f"row {frame['row'].iloc[i]} (from line {start_line[i]})" for i in np.flatnonzero(hits)[:5]]
    return [
        f"Check the quotes: {', '.join(where)}{' and more' if hits.sum() > 5 else ''} holds a quoted field spanning "
        "lines that look like rows of their own. A quote without its closing partner joins the rows after it into "
        "one field; if that is not meant, fix the stray quote."
    ]


def _has_quote(path: Path) -> bool:
    """Whether the file holds a double quote anywhere (memory-mapped: no copy, memchr speed)."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(b'"') >= 0


def find_column(columns: list[str], role: str, explicit: str | None, source: str) -> str:
    """The column for one role: the explicit name, else the first alias present."""
    if explicit:
        if explicit not in columns:
            raise InputError(
                f"there is no column {explicit!r}", source=source, fix=f"use one of: {', '.join(map(repr, columns))}"
            )
        return explicit
    by_key = {header_key(c): c for c in reversed(columns)}
    for alias in ROLE_ALIASES[role]:
        if alias in by_key:
            return by_key[alias]
    raise InputError(
        f"no column for the {role}. Columns found: {', '.join(map(repr, columns))}",
        source=source,
        fix=f"name the column one of {'/'.join(ROLE_ALIASES[role])}, or pass --{role}-col NAME",
    )


def read_feedback(
    path: str | os.PathLike, options: ReadOptions | None = None, *, name: str | None = None
) -> FeedbackTable:
    """Read a feedback or pairs file into a normalised `FeedbackTable`.

    Raises `InputError` with a plain message for anything the user must fix.
    """
    options = options or ReadOptions()
    raw_table = read_table(path, options, name=name)
    if raw_table.imported is not None:
        return _imported_table(raw_table)
    frame, source = raw_table.frame, raw_table.source

    data_columns = [c for c in frame.columns if c != "row"]
    kind, mapping = _resolve_columns(data_columns, options, source)
    ignored = [c for c in data_columns if c not in mapping.values()]

    table = pd.DataFrame({"row": frame["row"].to_numpy()})
    notes: list[str] = list(raw_table.notes)
    if kind == "feedback":
        table["question"] = normalize_question(frame[mapping["question"]])
        table["answer"] = normalize_answer(frame[mapping["answer"]])
        table["score"] = frame[mapping["score"]].astype("str")  # stripped and parsed when pairs are derived
    else:
        chosen = normalize_answer(frame[mapping["chosen"]])
        rejected = normalize_answer(frame[mapping["rejected"]])
        # Pair prompts are never grouped, so they keep their line breaks (conversation turns).
        if "question" in mapping:
            table["question"] = normalize_answer(frame[mapping["question"]])
            table["chosen"], table["rejected"] = chosen.to_numpy(), rejected.to_numpy()
        else:
            split = [split_shared_prompt(c, r) for c, r in zip(chosen, rejected)]
            prompts, chosen_only, rejected_only = zip(*split) if split else ((), (), ())
            table["question"] = normalize_answer(pd.Series(prompts, dtype="str"))
            table["chosen"] = normalize_answer(pd.Series(chosen_only, dtype="str")).to_numpy()
            table["rejected"] = normalize_answer(pd.Series(rejected_only, dtype="str")).to_numpy()
            notes.append("no prompt column: the prompt is the text the chosen and rejected transcripts share")
        for role in ("chosen_score", "rejected_score", "margin", "tie"):
            if role in mapping:
                table[role] = frame[mapping[role]].astype("str").to_numpy()  # parse_scores strips
    if "rater" in mapping:
        table["rater"] = frame[mapping["rater"]].astype("str").str.strip().to_numpy()
    return FeedbackTable(
        frame=table,
        kind=kind,
        source=source,
        format=raw_table.format,
        encoding=raw_table.encoding,
        encoding_detected=raw_table.encoding_detected,
        delimiter=raw_table.delimiter,
        column_mapping=mapping,
        ignored_columns=ignored,
        notes=notes,
    )


def _imported_table(raw_table: RawTable) -> FeedbackTable:
    """A tool's export, already in rm_demo's columns: normalised like a plain file's."""
    imported = raw_table.imported
    frame = imported.frame
    table = pd.DataFrame({"row": frame["row"].to_numpy(), "record": frame["record"].to_numpy()})
    if imported.kind == "feedback":
        table["question"] = normalize_question(frame["question"])
        table["answer"] = normalize_answer(frame["answer"]).to_numpy()
        table["score"] = frame["score"].to_numpy()
        roles = FEEDBACK_ROLES
    else:
        table["question"] = normalize_answer(frame["question"])
        table["chosen"] = normalize_answer(frame["chosen"]).to_numpy()
        table["rejected"] = normalize_answer(frame["rejected"]).to_numpy()
        table["margin"] = frame["margin"].to_numpy()
        table["tie"] = frame["tie"].to_numpy()
        roles = PAIRS_ROLES
    table["rater"] = frame["rater"].to_numpy()
    table["import_status"] = frame["import_status"].to_numpy()
    extras = list(frame.columns.difference(table.columns, sort=False))
    for col in extras:  # the source's own columns: model, attributes, trace, ...
        table[col] = frame[col].to_numpy()
    mapping = {role: role for role in roles if role in frame.columns and (frame[role].astype("str") != "").any()}
    return FeedbackTable(
        frame=table,
        kind=imported.kind,
        source=raw_table.source,
        format=raw_table.format,
        encoding=raw_table.encoding,
        encoding_detected=raw_table.encoding_detected,
        delimiter=raw_table.delimiter,
        column_mapping=mapping,
        ignored_columns=[],
        notes=[*raw_table.notes, *imported.notes],
        source_format=imported.format,
        records=imported.records,
        record_unit=imported.unit,
        scale=imported.scale,
        judgments=imported.judgments,
        extra_columns=[c for c in extras if c not in BOOKKEEPING_COLUMNS],
        score_choices=list(imported.score_choices),
    )


def delimiter_name(delimiter: str | None) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", None: "none (JSON)"}.get(
        delimiter, repr(delimiter)
    )


__all__ = [
    "FeedbackTable",
    "ReadOptions",
    "InputError",
    "decode_bytes",
    "detect_encoding",
    "normalize_answer",
    "normalize_question",
    "read_feedback",
    "split_shared_prompt",
    "delimiter_name",
]
