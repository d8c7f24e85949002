"""Pairs from a feedback file bigger than memory: the plan of `rm_demo.pairs_sql` run by DuckDB out of core.

`rm_demo pairs` holds a file in memory (about 300 MB per million short rows, more for long answers) and derives
pairs with numpy, the faster way for every file that fits (bench/bench_pairs.py, bench/bench_pairs_big.py). A
plain UTF-8 CSV that does not fit (a production log of tens of millions of ratings) goes here instead: DuckDB
reads the file itself, normalises the texts as `rm_demo.feedback` does, runs the same relational plan that
`pairs-sql` prints (tested against the numpy engine on generated files), and writes the pairs, the dropped rows
and the report straight to disk, spilling to a temporary folder beyond a memory limit. Every row is still
accounted for.

What the file is (its columns, delimiter, and that it is a plain table rather than a tool's export) is decided
by the ordinary reader on the file's first rows, so both engines read a file by the same rules.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rm_demo.errors import InputError
from rm_demo.feedback import READ_MEMORY_FACTOR, ReadOptions, read_feedback
from rm_demo.importers import IMPORT_REASONS
from rm_demo.pair_options import PairOptions
from rm_demo.pairs import CODE, DROP_REASONS, STATUS_NAMES, USED, PairsReport, cap_note, score_summary
from rm_demo.pairs_sql import DUCKDB, plan_sql

# Bytes of the file's start the ordinary reader decides the file's shape from.
SAMPLE_BYTES = 1 << 20
# DuckDB's memory for the plan, in MB; beyond it, it spills to the temporary folder. The whole process peaked
# about 550 MB above it at 100M rows (bench/bench_pairs_big.py: 2.12 GB with 1,500; the goal is under 2 GB).
MEMORY_MB = 1200
# DuckDB wants about a gigabyte per thread for joins and aggregates beyond memory: under 150 MB, a 10M-row
# file paired with one thread and ran out of memory with two.
MB_PER_THREAD = 1000
# Below this DuckDB cannot hold even a small file's plan (its blocks are 256 KB, a few per operator): the
# CLI's floor. The library call takes less (a test runs out of 8 MB on purpose), never 0 or below.
MIN_MEMORY_MB = 32
# The longest CSV line DuckDB accepts: a few megabytes, so that its read buffers (two per thread) stay small.
MAX_LINE_BYTES = 8 << 20
# Python's str.isspace() spaces that rm_demo.feedback collapses and trims (its _SPACE_CLASS), spelled for RE2.
_SPACES = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"
SPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _SPACES) + "\\x{2000}-\\x{200b}]"


@dataclass(frozen=True)
class PlainCsv:
    """A plain feedback CSV: what the ordinary reader found in its first rows."""

    path: Path
    source: str
    delimiter: str
    header_count: int  # fields in the header
    columns: dict[str, str]  # role -> header slot (c0, c1, ...)
    report: PairsReport  # the sample's report: how the file was read (source, mapping, ignored columns)


def needs_out_of_core(path: str | os.PathLike) -> bool:
    """Whether reading the file whole would take more than half the memory free now."""
    import psutil

    size = Path(path).stat().st_size
    return size * READ_MEMORY_FACTOR > psutil.virtual_memory().available / 2


def plain_csv(path: str | os.PathLike, read: ReadOptions, pairing: PairOptions) -> PlainCsv | InputError:
    """The file's shape if it is a plain UTF-8 feedback CSV, else an InputError saying why it is not."""
    from rm_demo.pairs import derive_pairs

    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(SAMPLE_BYTES)
    if head[:2] == b"\x1f\x8b":
        return _refusal("a compressed file", path, "decompress it first (gunzip)")
    if head.startswith(b"\xef\xbb\xbf"):
        return _refusal("a file that starts with a byte-order mark", path, "save it as UTF-8 without BOM")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not only a character cut at the sample's end
            return _refusal("a file that is not UTF-8", path, "save it as UTF-8")
    if b"\n" not in head:  # one line, or an old Mac file (CR alone), which the ordinary reader rewrites
        return _refusal("a file without LF line endings", path, "save it with LF (or CRLF) line endings")
    cut = head.rfind(b"\n") + 1 if len(head) == SAMPLE_BYTES else len(head)
    with tempfile.TemporaryDirectory(prefix="rm_demo-sample-") as folder:
        sample = Path(folder) / path.name
        sample.write_bytes(head[:cut])
        try:
            table = read_feedback(sample, replace(read, max_bytes=None), name=path.name)
        except InputError as exc:
            return exc
    if table.encoding != "utf-8":
        return _refusal(f"a file read as {table.encoding}", path, "save it as UTF-8")
    if table.kind != "feedback" or table.format != "csv" or table.source_format is not None:
        return _refusal("anything but a plain CSV of question, answer, score", path, "export one from the tool")
    if "rater" in table.column_mapping:  # combining raters (and their agreement) needs the file in memory
        return _refusal("a file with a rater column", path, "split it by question into files that fit in memory")
    header = _header(head, table.delimiter)
    columns = {role: f"c{header.index(name)}" for role, name in table.column_mapping.items()}
    report = derive_pairs(table, pairing).report
    return PlainCsv(path, path.name, table.delimiter, len(header), columns, report)


def _refusal(what: str, path: Path, fix: str) -> InputError:
    return InputError(
        f"pairing out of core does not read {what}",
        source=path.name,
        fix=f"{fix}; or pair it in memory (--engine memory), which reads it if it fits",
    )


def _header(head: bytes, delimiter: str) -> list[str]:
    import csv

    from rm_demo.feedback import _unique_names

    line = head[: head.find(b"\n")].decode("utf-8")
    return _unique_names([h.strip() for h in next(csv.reader([line], delimiter=delimiter))])


def _text(column: str, question: bool) -> str:
    """SQL: a text normalised as rm_demo.feedback does (NFC, trimmed; a question's space runs made one space).
    The regular expressions run only on texts that may need them (they cost 5x the rest of the reading)."""
    text = f"coalesce({column}, '')"
    if question:  # printable ASCII with single inner spaces is already normal
        needs_work = f"regexp_matches({text}, '[^ -~]|  |^ | $')"
        cleaned = f"trim(regexp_replace(nfc_normalize({text}), '{SPACE_CLASS}+', ' ', 'g'), ' ')"
        return f"CASE WHEN {needs_work} THEN {cleaned} ELSE {text} END"
    printable = "BETWEEN '!' AND '~'"  # a visible ASCII character at both ends: nothing to trim
    needs_work = f"{text} = '' OR NOT (left({text}, 1) {printable} AND right({text}, 1) {printable})"
    cleaned = f"regexp_replace(nfc_normalize({text}), '^{SPACE_CLASS}+|{SPACE_CLASS}+$', '', 'g')"
    return f"CASE WHEN {needs_work} THEN {cleaned} ELSE nfc_normalize({text}) END"


def _load(con, csv: PlainCsv) -> None:
    """The table `feedback` of the plan, read from the file in one pass: texts normalised, `pos` its row order."""
    slots = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(csv.header_count))
    path = str(csv.path).replace("'", "''")
    delimiter = csv.delimiter.replace("'", "''")
    role = csv.columns
    # auto_detect off: the reader's own decision (delimiter, header) holds. Rows keep the file's order
    # (preserve_insertion_order), so a row's rowid is its position.
    con.execute(
        f"""CREATE TABLE rows AS SELECT {_text(role["question"], True)} AS question,
            {_text(role["answer"], False)} AS answer, coalesce({role["score"]}, '') AS score
        FROM read_csv('{path}', auto_detect=false, header=true, delim='{delimiter}', quote='"', escape='"',
                      columns={{{slots}}}, strict_mode=true, max_line_size={MAX_LINE_BYTES},
                      buffer_size={2 * MAX_LINE_BYTES})"""
    )
    # Rows are grouped by 128-bit hashes of their texts (md5): a collision between two of 100M texts has odds
    # of about 1 in 10^22; grouping and joining by the texts themselves ran out of memory at 100M rows.
    con.execute(
        """CREATE VIEW feedback AS SELECT rowid AS pos, question, answer, score, '' AS import_status,
            md5_number(question) AS question_key, md5_number(answer) AS answer_key FROM rows"""
    )


def check_memory_mb(memory_mb: int, minimum: int = MIN_MEMORY_MB) -> None:
    """Refuse a memory limit DuckDB cannot work in, before anything is read."""
    if memory_mb < minimum:
        raise InputError(
            f"--out-of-core-mb must be at least {minimum}, not {memory_mb}",
            fix=f"leave it out ({MEMORY_MB:,} MB), or give DuckDB more",
        )


def pairs_out_of_core(
    csv: PlainCsv,
    pairing: PairOptions,
    output: str | os.PathLike,
    dropped: str | os.PathLike | None = None,
    *,
    memory_mb: int = MEMORY_MB,
    progress=None,
) -> PairsReport:
    """Derive pairs from `csv` on DuckDB within `memory_mb` of memory, writing the pairs (and the dropped rows,
    each with its reason) as `rm_demo.tables.write_table` does; returns the report that accounts for every row."""
    check_memory_mb(memory_mb, minimum=1)  # 0 ran and then said it ran out; a negative limit was taken
    import duckdb

    with tempfile.TemporaryDirectory(prefix="rm_demo-out-of-core-") as folder:
        # A database file in the temporary folder, so that its tables too may leave memory.
        con = duckdb.connect(str(Path(folder) / "pairs.duckdb"))
        try:
            con.execute("SET enable_progress_bar = false")  # (unlabelled, one per statement, on stdout)
            con.execute(f"SET memory_limit = '{int(memory_mb)}MB'")
            con.execute(f"SET threads = {max(1, min(os.cpu_count() or 1, int(memory_mb) // MB_PER_THREAD))}")
            con.execute(f"SET temp_directory = '{folder}'")
            con.execute("SET preserve_insertion_order = true")  # rowid: the file's row order
            return _pairs_in(con, csv, pairing, output, dropped, _Progress(progress))
        except duckdb.InvalidInputException as exc:
            raise _csv_error(exc, csv) from None
        except duckdb.OutOfMemoryException:
            raise InputError(
                f"pairing out of core needed more than its memory limit of {int(memory_mb)} MB",
                source=csv.source,
                fix="raise --out-of-core-mb, or free disk for the temporary folder (TMPDIR), where DuckDB spills",
            ) from None
        finally:
            con.close()


class _Progress:
    """Each stage of a long run as one line (with the seconds so far), for a caller that shows them."""

    def __init__(self, show=None):
        self.show, self.start = show, time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.show is not None:
            self.show(f"  {time.perf_counter() - self.start:6.0f} s  {stage}")


def _pairs_in(con, csv: PlainCsv, pairing: PairOptions, output, dropped, progress: _Progress) -> PairsReport:
    from rm_demo.tables import atomic_path

    progress("reading the file, its texts normalised")
    _load(con, csv)
    con.execute("SET preserve_insertion_order = false")  # every later order is an ORDER BY: spill freely
    not_taken = _derive(con, pairing, progress)
    for write, path, what in ((_write_pairs, output, "the pairs"), (_write_dropped, dropped, "the dropped rows")):
        if path:
            progress(f"writing {what}")
            with atomic_path(path) as tmp:
                write(con, tmp, csv_output=str(path).lower().endswith(".csv"))
    progress("done")
    return _report(con, csv, pairing, not_taken)


def _csv_error(exc: Exception, csv: PlainCsv) -> InputError:
    """DuckDB's reading error said as the in-memory reader says it: the line, what is wrong, how to fix it."""
    import re

    from rm_demo.feedback import delimiter_name

    message = str(exc)
    line = re.search(r"CSV Error on Line: (\d+)", message)
    where = f"line {line.group(1)}" if line else "a line"
    fields = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
    if fields:
        return InputError(
            f"could not split the rows into columns with delimiter {delimiter_name(csv.delimiter)} ({where} has "
            f"{fields.group(2)} fields, the header has {fields.group(1)})",
            source=csv.source,
            fix="put double quotes around fields that contain the delimiter, or choose the right delimiter",
        )
    if "unicode" in message.lower():
        return InputError(
            f"{where} is not valid UTF-8",
            source=csv.source,
            fix="save the file as UTF-8, or pair it in memory, which reads other encodings: --engine memory",
        )
    if "unterminated quote" in message:
        return InputError(
            f"a quote opened on {where} is never closed", source=csv.source, fix="close the quote or remove it"
        )
    if "Maximum line size" in message:
        return InputError(
            f"{where} is over {MAX_LINE_BYTES >> 20} MB",
            source=csv.source,
            fix="shorten that row (a reward model reads at most a few thousand tokens of it), or --engine memory",
        )
    return InputError(f"could not be read out of core: {message.splitlines()[0]}", source=csv.source)


# What each of the plan's steps (rm_demo.pairs_sql) does, as a progress line says it.
STEP_WORDS = {
    "rated": "scores read, each row's fault found",
    "first_rows": "each answer's first row found",
    "answer_firsts": "questions numbered",
    "valid": "the rows that can be paired",
    "answers": "each answer's ratings combined",
    "kept": "the answers that stay",
    "gaps": "every higher-lower pair at the margin",
    "pairs": "chosen and rejected picked",
    "answer_status": "what became of each answer",
    "row_status": "what became of each row",
}


def _derive(con, pairing: PairOptions, progress: _Progress) -> int:
    """The plan's steps; questions over the all-pairs cap are sampled as rm_demo.pairs samples them. Returns
    the pairs not taken for the cap."""
    keys = ("question_key", "answer_key")
    steps = plan_sql(CODE, IMPORT_REASONS, pairing, pairing.resolved_thresholds(), False, DUCKDB, keys)
    for name, query in steps[:-1]:
        progress(f"pairing: {STEP_WORDS.get(name, name)} ({name})")
        con.execute(f"CREATE TABLE {name} AS {query}")
    not_taken = _sample_capped(con, pairing) if pairing.strategy == "all-pairs" else 0
    name, query = steps[-1]
    progress(f"pairing: {STEP_WORDS.get(name, name)} ({name})")
    con.execute(f"CREATE TABLE {name} AS {query}")
    return not_taken


def _sample_capped(con, pairing: PairOptions) -> int:
    """A question that could make more pairs than the cap (status NULL in the plan): its pairs sampled from
    sorted scores by rm_demo.pairs itself, in the same order and with the same seed."""
    import pandas as pd

    from rm_demo.pairs import sampled_pairs

    capped = con.execute(
        "SELECT k.qid, k.pos, k.score FROM kept k JOIN answer_status s ON s.pos = k.pos WHERE s.status IS NULL "
        "ORDER BY k.qid, k.pos"
    ).fetchnumpy()
    if not len(capped["pos"]):
        return 0
    chosen_min, rejected_max = pairing.resolved_thresholds()
    rng = np.random.default_rng(0)  # as rm_demo.pairs._all_pairs: one generator over the questions in order
    qid, pos, score = (np.asarray(capped[k]) for k in ("qid", "pos", "score"))
    starts = np.flatnonzero(np.r_[True, qid[1:] != qid[:-1]])
    parts, margin_ok, left_out, not_taken = [], [], [], 0
    for start, end in zip(starts, [*starts[1:], qid.size]):
        pairs, ok, out, skipped = sampled_pairs(
            qid[start],
            pos[start:end],
            score[start:end],
            chosen_min,
            rejected_max,
            pairing.min_margin,
            pairing.max_pairs_per_question,
            rng,
        )
        parts.append(pairs)
        margin_ok.append(ok)
        left_out.append(out)
        not_taken += skipped
    sampled = pd.concat(parts, ignore_index=True)[["qid", "pos_c", "pos_r", "score_c", "score_r"]]
    status = np.full(pos.size, CODE["below_min_margin"], dtype=np.int64)
    status[np.isin(pos, np.concatenate(margin_ok))] = CODE["below_thresholds"]
    status[np.isin(pos, np.concatenate(left_out))] = CODE["pair_cap"]
    status[np.isin(pos, np.concatenate([sampled["pos_c"], sampled["pos_r"]]))] = USED
    fates = pd.DataFrame({"pos": pos, "status": status})
    con.register("sampled", sampled)
    con.register("fates", fates)
    con.execute("INSERT INTO pairs SELECT qid, pos_c, pos_r, score_c, score_r FROM sampled")
    con.execute("UPDATE answer_status SET status = f.status FROM fates f WHERE answer_status.pos = f.pos")
    return not_taken


def _safe(column: str, csv_output: bool) -> str:
    """A text column, with a leading apostrophe where a spreadsheet would run it as a formula (CSV only)."""
    if not csv_output:
        return column
    return f"CASE WHEN regexp_matches({column}, '^[=+\\-@\\t\\r]') THEN '''' || {column} ELSE {column} END"


def _write_pairs(con, path: Path, csv_output: bool) -> None:
    """The pairs with their texts, in rm_demo.pairs' order. Each side's texts are fetched by one join of its
    own, numbers only sorted until the last step (a join and sort of texts at once ran out of memory)."""
    con.execute(
        """CREATE TABLE chosen_side AS SELECT p.*, r.question AS prompt, r.answer AS chosen FROM pairs p
        JOIN (SELECT rowid AS pos, question, answer FROM rows) r ON r.pos = p.chosen_pos"""
    )
    con.execute(
        """CREATE TABLE pair_texts AS SELECT c.*, r.answer AS rejected FROM chosen_side c
        JOIN (SELECT rowid AS pos, answer FROM rows) r ON r.pos = c.rejected_pos"""
    )
    _copy(
        con,
        f"""SELECT {_safe("prompt", csv_output)} AS prompt, {_safe("chosen", csv_output)} AS chosen,
                  {_safe("rejected", csv_output)} AS rejected, chosen_score, rejected_score,
                  chosen_score - rejected_score AS margin, chosen_pos + 2 AS chosen_row,
                  rejected_pos + 2 AS rejected_row
            FROM pair_texts ORDER BY qid, chosen_score DESC, chosen_pos, rejected_score, rejected_pos""",
        path,
        csv_output,
    )


def _write_dropped(con, path: Path, csv_output: bool) -> None:
    """Every dropped row with its reason, in file order: the statuses sorted by position, then set beside the
    rows by position (no join of 100M rows by key)."""
    names = ", ".join(f"'{name}'" for name in STATUS_NAMES)
    con.execute("SET preserve_insertion_order = true")
    con.execute("CREATE TABLE status_in_order AS SELECT pos, status FROM row_status ORDER BY pos")
    _copy(
        con,
        f"""SELECT s.pos + 2 AS row, {_safe("r.question", csv_output)} AS question,
                  {_safe("r.answer", csv_output)} AS answer, {_safe("r.score", csv_output)} AS score,
                  list_extract([{names}], s.status + 1) AS status
            FROM rows r POSITIONAL JOIN status_in_order s WHERE s.status <> {USED}""",
        path,
        csv_output,
    )
    con.execute("SET preserve_insertion_order = false")


def _copy(con, query: str, path: Path, csv_output: bool) -> None:
    target = str(path).replace("'", "''")
    how = "FORMAT csv, HEADER true" if csv_output else "FORMAT json"
    con.execute(f"COPY ({query}) TO '{target}' ({how})")


def _report(con, csv: PlainCsv, pairing: PairOptions, not_taken: int) -> PairsReport:
    """The sample's report (how the file was read) with the whole file's counts."""
    counts = dict(con.execute("SELECT status, count(*) FROM row_status GROUP BY status").fetchall())
    dropped = {reason: counts[CODE[reason]] for reason in DROP_REASONS if counts.get(CODE[reason])}
    distribution = con.execute("SELECT value, count(*) FROM rated WHERE value IS NOT NULL GROUP BY value").fetchall()
    notes = [note for note in csv.report.notes if note != cap_note(csv.report.pairs_not_taken, pairing)]
    if not_taken:
        notes.append(cap_note(not_taken, pairing))
    return replace(
        csv.report,
        rows_read=sum(counts.values()),
        rows_used=counts.get(USED, 0),
        dropped=dropped,
        questions=con.execute("SELECT count(DISTINCT qid) FROM valid").fetchone()[0],
        pairs=con.execute("SELECT count(*) FROM pairs").fetchone()[0],
        **score_summary(dict(distribution), pairing, suggest=True),
        notes=notes,
        pairs_not_taken=not_taken,
    )
