"""Deriving comparison pairs (prompt, chosen, rejected) from rated answers, with full accounting.

Every input row ends with exactly one status: "used" (it is the chosen or rejected side of at
least one pair) or one drop reason from `DROP_REASONS`. So rows read = rows used + rows dropped,
always; the property tests check it on random files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rm_demo.agreement import agreement, describe
from rm_demo.feedback import FeedbackTable, ReadOptions, delimiter_name, read_feedback
from rm_demo.importers import IMPORT_REASONS
from rm_demo.pair_options import (  # noqa: F401  (the pairing settings: one shape, read everywhere from here too)
    AGGREGATIONS,
    DEFAULT_CHOSEN_MIN,
    DEFAULT_REJECTED_MAX,
    MAX_PAIRS_PER_QUESTION,
    STRATEGIES,
    PairOptions,
    scale_threshold,
)
from rm_demo.text import counted

# The cross join of small questions is built this many candidate rows at a time, so memory stays flat.
CROSS_CHUNK_ROWS = 2_000_000

DROP_REASONS: dict[str, str] = {
    # Given while reading a tool's export (rm_demo.importers), before any pairing.
    "cancelled": "the annotation was cancelled (Label Studio's was_cancelled)",
    "not_submitted": "the response is a draft or was discarded, not submitted",
    "no_judgment": "the record holds no rating or preference of the kind used (e.g. a task nobody annotated, "
    "a trace with no score of the chosen name)",
    "other_field": "a rating of another question or score name than the one used (choose it as the score column)",
    "no_trace": "a score whose trace (run) is not in the file",
    "missing_question": "the question is empty",
    "missing_answer": "the answer is empty",
    "missing_score": "the score is empty",
    "non_numeric_score": "the score is not a number",
    "duplicate_row": "same question and answer as an earlier row (counted once, scores averaged)",
    "single_answer": "the only answer to its question: nothing to compare it with",
    "all_tied": "every answer to its question has the same score",
    "below_thresholds": "its question has no answer pair passing the chosen/rejected thresholds",
    "not_best_or_worst": "neither the best nor the worst answer to its question (best-worst uses only those two)",
    "below_min_margin": "no other answer to its question differs from it by at least the minimum margin",
    "missing_chosen": "the chosen answer is empty",
    "missing_rejected": "the rejected answer is empty",
    "identical_answers": "chosen and rejected are the same text",
    "chosen_not_higher": "the chosen score is not above the rejected score",
    "pair_cap": "its question has more pairs than the per-question cap; this answer is in none of the pairs kept",
    "raters_disagree": "its raters disagree by more than the allowed spread (scores), or split evenly (preferences)",
    "outvoted": "other raters judged this pair the other way; the majority's judgment is the one trained on",
    "tie": "the rater judged both answers equally good: kept in the count, but a pairwise loss needs a winner, "
    "so a tie trains nothing",
}

# Row statuses are small integers while computing (fast over a million rows), names at the end.
STATUS_NAMES = ("", "used", *DROP_REASONS)
CODE = {name: code for code, name in enumerate(STATUS_NAMES)}
PENDING, USED = CODE[""], CODE["used"]

PAIR_COLUMNS = [
    "prompt",
    "chosen",
    "rejected",
    "chosen_score",
    "rejected_score",
    "margin",
    "chosen_row",
    "rejected_row",
]


@dataclass
class PairsReport:
    """What happened to every row; serialised as the CLI's `--report` JSON."""

    source: str
    kind: str
    format: str
    encoding: str
    encoding_detected: bool
    delimiter: str | None
    column_mapping: dict[str, str]
    ignored_columns: list[str]
    strategy: str
    chosen_min: float | None
    rejected_max: float | None
    min_margin: float
    rows_read: int
    rows_used: int
    dropped: dict[str, int]
    questions: int
    pairs: int
    score_distribution: dict[str, int] = field(default_factory=dict)
    score_min: float | None = None
    score_max: float | None = None
    scale_note: str | None = None
    suggested_thresholds: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)
    pairs_not_taken: int = 0  # all-pairs: pairs over the per-question cap
    max_pairs_per_question: int | None = None
    source_format: str | None = None  # the tool or data set recognised (None: a plain table)
    records_read: int | None = None  # its records; each row is one of its ratings or judgments
    record_unit: str = "row"
    aggregate: str = "mean"
    max_rater_spread: float | None = None
    agreement: dict | None = None  # rm_demo.agreement.agreement's result
    raters: int = 0
    extra_columns: list[str] = field(default_factory=list)  # a source's own columns, for slices
    score_choices: list[str] = field(default_factory=list)  # what the score column may name in this source

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rows_dropped"] = self.rows_dropped
        data["drop_reasons"] = {reason: DROP_REASONS[reason] for reason in self.dropped}
        return data

    def summary_lines(self) -> list[str]:
        """Plain-text accounting, for the CLI and the app."""
        lines = [f"recognised: {self.source_format}"] if self.source_format else []
        lines += [
            f"{self.source}: {self.format.upper()}, encoding {self.encoding}"
            + (" (detected)" if self.encoding_detected else "")
            + (f", delimiter {delimiter_name(self.delimiter)}" if self.delimiter else ""),
            "columns: "
            + ("as the source defines them; " if self.source_format else "")
            + ", ".join(f"{role} <- {col!r}" for role, col in self.column_mapping.items())
            + (f"; ignored: {', '.join(map(repr, self.ignored_columns))}" if self.ignored_columns else ""),
            f"rows read {self.rows_read}, used {self.rows_used}, dropped {self.rows_dropped}; "
            f"{counted(self.questions, 'question')} -> {counted(self.pairs, 'pair')} ({self.strategy})",
        ]
        for reason, count in self.dropped.items():
            lines.append(f"  dropped {count}: {DROP_REASONS[reason]} [{reason}]")
        lines.extend(self.source_lines())
        if self.scale_note:
            lines.append(self.scale_note)
        lines.extend(self.notes)
        return lines

    def source_lines(self, with_source: bool = True) -> list[str]:
        """What the file was (unless `with_source` is off: the Data tab says it in its own words), how
        several raters were combined, and how much they agree."""
        lines = []
        if self.source_format and with_source:
            lines.append(
                f"Read as {self.source_format}: {counted(self.records_read or 0, 'record')} -> "
                f"{counted(self.rows_read, self.record_unit)} (each one a row of this accounting)."
            )
        if self.raters:
            how = "majority vote per pair" if self.kind == "pairs" else f"{self.aggregate} of an answer's scores"
            spread = (
                f"; answers whose scores differ by more than {self.max_rater_spread:g} dropped"
                if self.max_rater_spread is not None and self.kind == "feedback"
                else ""
            )
            lines.append(f"{counted(self.raters, 'rater')}; several ratings combined by {how}{spread}.")
        found = describe(self.agreement)
        if found:
            lines.append(found)
        if self.dropped.get("tie"):
            lines.append(
                f"{counted(self.dropped['tie'], 'tie')} kept in the count as `tie`: training leaves them out "
                "(the pairwise loss needs a winner)."
            )
        return lines

    def to_markdown(self, warnings: list[str] = ()) -> str:
        """The accounting for the app: a headline, rows read = used + dropped, a table of reasons.

        `warnings`: the app's own words about the thresholds and the scale (its buttons; `scale_note`
        is the CLI's, in flags)."""
        thresholds = self.chosen_min is not None and self.rejected_max is not None
        lines = [
            f"### {self.pairs} pairs from {self.questions} questions",
            f"**{self.rows_read}** rows read = **{self.rows_used}** used + "
            f"**{self.rows_dropped}** dropped ({self.strategy}"
            + (f", chosen ≥ {self.chosen_min:g}, rejected < {self.rejected_max:g}" if thresholds else "")
            + (f", gap ≥ {self.min_margin:g}" if self.strategy == "all-pairs" else "")
            + ")",
        ]
        if self.dropped:
            lines += ["", "| dropped | rows | why |", "|---|---:|---|"]
            lines += [f"| `{reason}` | {count} | {DROP_REASONS[reason]} |" for reason, count in self.dropped.items()]
        lines.extend(f"\n{line}" for line in self.source_lines())
        if self.agreement and self.agreement.get("warning"):
            lines.append(f"\n> ⚠️ {self.agreement['warning']}")
        lines.extend(f"\n> ⚠️ {warning}" for warning in warnings)
        lines.extend(f"\n> {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass
class PairsResult:
    pairs: pd.DataFrame  # PAIR_COLUMNS
    rows: pd.DataFrame  # every input row with its `status` ("used" or a drop reason)
    report: PairsReport
    # A scored file's distinct rated answers, several ratings combined (prompt, answer, score, row): what a
    # pointwise objective fits, every one of them, not only the pairs' (train --objective). None for pairs.
    answers: pd.DataFrame | None = None

    @property
    def dropped_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["status"] != "used"]


# ---------------------------------------------------------------------------------------------


def parse_scores(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (values, missing, non_numeric). Accepts " 5 ", "4.0", "4,5" (decimal comma).

    Tried cheapest first: one Arrow cast of the text as it is (the usual clean column), then
    stripped with blanks marked missing, then the decimal comma through pandas.
    """
    text = text.astype("str")
    missing = np.zeros(len(text), dtype=bool)
    try:
        values = pc.cast(pa.array(text), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = text.str.strip()
        missing = (text == "").to_numpy(dtype=bool)
        try:
            values = pc.cast(pa.array(text.where(~missing, "nan")), pa.float64()).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = text.str.replace(r"^([+-]?[0-9]+),([0-9]+)$", r"\1.\2", regex=True)
            values = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    values = np.array(values, dtype="float64")  # a writable copy
    finite = np.isfinite(values)
    non_numeric = ~missing & ~finite
    values[~finite] = np.nan
    return values, missing, non_numeric


def _suggest_scale(scores: np.ndarray, options: PairOptions) -> tuple[str | None, dict | None]:
    """A note when the scores are not on the 1-to-5 scale the default thresholds assume."""
    if options.strategy != "best-worst" or options.chosen_min is not None or options.rejected_max is not None:
        return None, None
    if scores.size == 0:
        return None, None
    lo, hi = float(scores.min()), float(scores.max())
    if lo >= 0 and hi <= 5 and hi > 1:
        return None, None
    if lo >= 0 and hi <= 1:
        scale = (0.0, 1.0)
    elif lo >= 1 and hi <= 7:  # a 7-point scale (2 to 7 was read as 0 to 10: 7.5, above every score)
        scale = (1.0, 7.0)
    elif lo >= 0 and hi <= 10:
        scale = (0.0, 10.0)
    elif lo >= 0 and hi <= 100:
        scale = (0.0, 100.0)
    else:
        scale = (lo, hi)
    threshold = scale_threshold(scale)
    if threshold > hi:  # never above every score the file has: that would make no pair at all
        scale = (lo, hi)
        threshold = scale_threshold(scale)
    note = (
        f"Scores run from {lo:g} to {hi:g}, which looks like a {scale[0]:g}-to-{scale[1]:g} scale, "
        f"but the default thresholds (chosen >= 4, rejected < 4) assume 1 to 5. "
        f"The equivalent here is --chosen-min {threshold} --rejected-max {threshold}."
    )
    return note, {"chosen_min": float(threshold), "rejected_max": float(threshold)}


def _mark(status: np.ndarray, mask: np.ndarray, reason: str) -> None:
    """Give `reason` to rows in `mask` that have no status yet."""
    status[mask & (status == PENDING)] = CODE[reason]


def _is_empty(values: pd.Series) -> np.ndarray:
    return pc.binary_length(pa.array(values)).to_numpy(zero_copy_only=False) == 0  # off Arrow's offsets


def _subset(values: pd.Series, pos: np.ndarray) -> pd.Series:
    return values if pos.size == len(values) else values.iloc[pos]  # usually every row is valid


def _codes(values: pd.Series) -> np.ndarray:
    """Integer code per string, numbered in order of first appearance (Arrow's hash table)."""
    encoded = pc.dictionary_encode(pa.array(values))
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    # One hash table across chunks, so the indices agree from chunk to chunk.
    indices = [chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunks]
    return np.concatenate(indices or [np.zeros(0, dtype=np.int32)]).astype(np.int64, copy=False)


def _mark_imported(status: np.ndarray, frame: pd.DataFrame) -> None:
    """Reasons a tool's export gave while it was read (rm_demo.importers) come first."""
    if "import_status" not in frame:
        return
    given = frame["import_status"].to_numpy(dtype=object)
    for reason in IMPORT_REASONS:
        _mark(status, given == reason, reason)


def _has_raters(frame: pd.DataFrame) -> bool:
    return "rater" in frame and bool((frame["rater"].astype("str") != "").any())


def _pairs_from_feedback(
    frame: pd.DataFrame, options: PairOptions, scale: tuple[float, float] | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int, int, pd.DataFrame]:
    # Vectorised over integer codes: strings are hashed once, everything after is numpy.
    n = len(frame)
    status = np.full(n, PENDING, dtype=np.int8)
    _mark_imported(status, frame)
    question, answer = frame["question"].astype("str"), frame["answer"].astype("str")
    values, missing, non_numeric = parse_scores(frame["score"])

    _mark(status, _is_empty(question), "missing_question")
    _mark(status, _is_empty(answer), "missing_answer")
    _mark(status, missing, "missing_score")
    _mark(status, non_numeric, "non_numeric_score")

    pos = np.flatnonzero(status == PENDING)
    qid = _codes(_subset(question, pos))  # question order: first appearance
    questions = int(qid.max()) + 1 if qid.size else 0
    score = values[pos]
    pos, qid, score, members, representatives = _merge_repeats(pos, qid, score, answer, status, options, frame)
    answers = pd.DataFrame(
        {
            "prompt": question.take(pos).reset_index(drop=True),
            "answer": answer.take(pos).reset_index(drop=True),
            "score": score,
            "row": frame["row"].to_numpy()[pos],
        }
    )

    size = np.bincount(qid)
    high = np.full(size.size, -np.inf)
    low = np.full(size.size, np.inf)
    np.maximum.at(high, qid, score)
    np.minimum.at(low, qid, score)
    single = size[qid] == 1
    tied = ~single & (high[qid] == low[qid])
    status[pos[single]] = CODE["single_answer"]
    status[pos[tied]] = CODE["all_tied"]
    keep = ~single & ~tied
    pos, qid, score = pos[keep], qid[keep], score[keep]
    chosen_min, rejected_max = options.resolved_thresholds(scale)

    not_taken = 0
    if options.strategy == "best-worst":
        pairs = _best_worst(pos, qid, score, high, low, chosen_min, rejected_max)
        has_pair = np.zeros(size.size, dtype=bool)
        has_pair[pairs["qid"]] = True
        in_pair = np.zeros(n, dtype=bool)
        in_pair[pairs["chosen_pos"]] = in_pair[pairs["rejected_pos"]] = True
        status[pos[~has_pair[qid]]] = CODE["below_thresholds"]
        status[pos[has_pair[qid] & ~in_pair[pos]]] = CODE["not_best_or_worst"]
    else:
        pairs, margin_ok, capped, not_taken = _all_pairs(pos, qid, score, options)
        in_pair = np.zeros(n, dtype=bool)
        in_pair[pairs["chosen_pos"]] = in_pair[pairs["rejected_pos"]] = True
        rest = pos[~in_pair[pos]]
        status[rest[np.isin(rest, capped)]] = CODE["pair_cap"]
        rest = rest[status[rest] == PENDING]
        partner = np.isin(rest, margin_ok)
        status[rest[partner]] = CODE["below_thresholds"]
        status[rest[~partner]] = CODE["below_min_margin"]
    status[status == PENDING] = USED
    status[members] = status[representatives]  # every rating of an answer shares what became of it

    chosen_pos, rejected_pos = pairs["chosen_pos"], pairs["rejected_pos"]
    # Texts stay Arrow-backed: turning 2 x 200k answers into Python objects would cost more than the rest.
    out = pd.DataFrame(
        {
            "prompt": question.take(chosen_pos).reset_index(drop=True),
            "chosen": answer.take(chosen_pos).reset_index(drop=True),
            "rejected": answer.take(rejected_pos).reset_index(drop=True),
            "chosen_score": pairs["chosen_score"],
            "rejected_score": pairs["rejected_score"],
        }
    )
    out["margin"] = out["chosen_score"] - out["rejected_score"]
    rows = frame["row"].to_numpy()
    out["chosen_row"] = rows[chosen_pos]
    out["rejected_row"] = rows[rejected_pos]
    return out, status, values, questions, not_taken, answers


def _merge_repeats(
    pos, qid, score, answer: pd.Series, status, options: PairOptions, frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows repeating an earlier (question, answer) become one answer with one combined score.

    Without a rater column a repeat is a duplicate row (dropped as `duplicate_row`; the first keeps the
    combined score). With raters the repeats are its other ratings: they share the answer's fate, and are
    returned as (members, their representative) so the caller can give them its status. An answer whose
    scores lie further apart than `max_rater_spread` is dropped whole as `raters_disagree`.
    Only rows whose (question, answer length) collides can repeat, so only those get hashed.
    """
    none = np.zeros(0, dtype=np.int64)
    length = pc.binary_length(pa.array(_subset(answer, pos))).to_numpy(zero_copy_only=False).astype(np.int64)
    key = qid * (int(length.max(initial=0)) + 1) + length
    candidates = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    if candidates.size == 0:
        return pos, qid, score, none, none
    aid = _codes(answer.iloc[pos[candidates]])
    pair_key = pd.DataFrame({"q": qid[candidates], "a": aid})
    group = pair_key.groupby(["q", "a"], sort=False).ngroup().to_numpy()
    combined, spread = combine_scores(group, score[candidates], options.aggregate)
    score = score.copy()
    score[candidates] = combined[group]
    repeat = np.zeros(pos.size, dtype=bool)
    repeat[candidates] = pd.Series(group).duplicated(keep="first").to_numpy()
    drop = np.zeros(pos.size, dtype=bool)
    if options.max_rater_spread is not None:
        drop[candidates] = spread[group] > options.max_rater_spread + 1e-9
        status[pos[drop]] = CODE["raters_disagree"]
    members = representatives = none
    if _has_raters(frame):
        first = np.full(int(group.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, group, pos[candidates])  # each group's first row in the file
        shared = repeat[candidates] & ~drop[candidates]
        members, representatives = pos[candidates][shared], first[group[shared]]
    else:
        status[pos[repeat & ~drop]] = CODE["duplicate_row"]
    keep = ~repeat & ~drop
    return pos[keep], qid[keep], score[keep], members, representatives


def combine_scores(group: np.ndarray, values: np.ndarray, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per group: (the combined score, the spread max - min).

    mean; median; majority: the score most ratings gave, a tie between several going to the middle one
    of them (the lower middle of an even count), so the result is always a score someone gave."""
    frame = pd.DataFrame({"g": group, "v": values})
    by_group = frame.groupby("g", sort=True)["v"]
    spread = (by_group.max() - by_group.min()).to_numpy()
    if how == "mean":
        return by_group.mean().to_numpy(), spread
    if how == "median":
        return by_group.median().to_numpy(), spread
    counts = frame.groupby(["g", "v"], sort=True).size().rename("n").reset_index()
    modes = counts[counts["n"] == counts.groupby("g")["n"].transform("max")]
    middle = modes.groupby("g")["v"].agg(lambda v: v.iloc[(len(v) - 1) // 2])
    return middle.to_numpy(), spread


def _best_worst(pos, qid, score, high, low, chosen_min: float, rejected_max: float) -> dict[str, np.ndarray]:
    """The seed's rule, vectorised: highest score chosen, lowest rejected, per question.

    Ties at the top or bottom break as the seed's stable sort does: the last of the best in file
    order is chosen, the first of the worst is rejected.
    """
    groups = high.size
    chosen_pos = np.full(groups, -1, dtype=np.int64)
    rejected_pos = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    top, bottom = score == high[qid], score == low[qid]
    np.maximum.at(chosen_pos, qid[top], pos[top])
    np.minimum.at(rejected_pos, qid[bottom], pos[bottom])
    present = chosen_pos >= 0
    keep = present & (high >= chosen_min) & (low < rejected_max)
    ids = np.flatnonzero(keep)  # ascending code = question order of first appearance
    return {
        "qid": ids,
        "chosen_pos": chosen_pos[ids],
        "rejected_pos": rejected_pos[ids],
        "chosen_score": high[ids],
        "rejected_score": low[ids],
    }


def _all_pairs(pos, qid, score, options: PairOptions) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """Every (higher, lower) pair within a question whose score gap is at least the minimum margin.

    Returns (pairs, rows with a partner at that margin, rows left out by the cap, pairs not taken).
    Memory stays bounded: small questions are cross-joined a chunk at a time; a question that could
    make more than `max_pairs_per_question` pairs is counted without building them, then sampled.
    """
    chosen_min, rejected_max = options.resolved_thresholds()
    cap = options.max_pairs_per_question
    size = np.bincount(qid) if qid.size else np.zeros(0, dtype=np.int64)
    big = size * (size - 1) // 2 > cap
    parts, margin_ok, capped, not_taken = [], [], [], 0
    small = ~big[qid] if qid.size else np.zeros(0, dtype=bool)
    for chunk in _question_chunks(qid[small], size):
        rated = pd.DataFrame({"qid": qid[small][chunk], "pos": pos[small][chunk], "score": score[small][chunk]})
        pairs, ok = _cross_pairs(rated, chosen_min, rejected_max, options.min_margin)
        parts.append(pairs)
        margin_ok.append(ok)
    if big.any():
        rng = np.random.default_rng(0)  # the same file always gives the same pairs
        order = np.argsort(qid, kind="stable")
        ends = np.cumsum(size)
        for q in np.flatnonzero(big):
            rows = order[ends[q] - size[q] : ends[q]]
            pairs, ok, left_out, skipped = sampled_pairs(
                q, pos[rows], score[rows], chosen_min, rejected_max, options.min_margin, cap, rng
            )
            parts.append(pairs)
            margin_ok.append(ok)
            capped.append(left_out)
            not_taken += skipped
    pairs = (
        pd.concat(parts, ignore_index=True)
        if parts
        else _cross_pairs(pd.DataFrame({"qid": [], "pos": [], "score": []}), None, None, 1.0)[0]
    )
    pairs = pairs.assign(neg=-pairs["score_c"]).sort_values(["qid", "neg", "pos_c", "score_r", "pos_r"], kind="stable")
    out = {
        "qid": pairs["qid"].to_numpy(dtype=np.int64),
        "chosen_pos": pairs["pos_c"].to_numpy(dtype=np.int64),
        "rejected_pos": pairs["pos_r"].to_numpy(dtype=np.int64),
        "chosen_score": pairs["score_c"].to_numpy(dtype=np.float64),
        "rejected_score": pairs["score_r"].to_numpy(dtype=np.float64),
    }
    return out, _concat(margin_ok), _concat(capped), not_taken


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)


def _question_chunks(qid: np.ndarray, size: np.ndarray):
    """Index arrays over `qid` (rows of small questions), whole questions at a time, each chunk's
    cross join at most about CROSS_CHUNK_ROWS rows."""
    if qid.size == 0:
        return
    order = np.argsort(qid, kind="stable")
    cost = size[qid[order]]  # each row joins every row of its question
    chunk = np.cumsum(cost) // CROSS_CHUNK_ROWS
    # a question never straddles two chunks: every row takes the chunk of its question's first row
    first = np.r_[True, qid[order][1:] != qid[order][:-1]]
    chunk = np.maximum.accumulate(np.where(first, chunk, 0))
    for c in np.unique(chunk):
        yield order[chunk == c]


def _cross_pairs(rated: pd.DataFrame, chosen_min, rejected_max, min_margin: float) -> tuple[pd.DataFrame, np.ndarray]:
    cross = rated.merge(rated, on="qid", suffixes=("_c", "_r"))
    gap = cross["score_c"] - cross["score_r"]
    cross = cross[(gap > 0) & (gap >= min_margin)]
    margin_ok = np.concatenate([cross["pos_c"].to_numpy(), cross["pos_r"].to_numpy()])
    if chosen_min is not None:
        cross = cross[cross["score_c"] >= chosen_min]
    if rejected_max is not None:
        cross = cross[cross["score_r"] < rejected_max]
    return cross[["qid", "pos_c", "score_c", "pos_r", "score_r"]], margin_ok


def sampled_pairs(q: int, pos, score, chosen_min, rejected_max, min_margin: float, cap: int, rng):
    """One big question: count its qualifying pairs from sorted scores, keep all or a uniform sample of `cap`.

    In ascending score order, the rejected partners of answer i are a prefix [0, u_i) of the answers.
    """
    order = np.argsort(score, kind="stable")
    a, p = score[order], pos[order]
    upper = np.searchsorted(a, a - min_margin, side="right") if min_margin > 0 else np.searchsorted(a, a, side="left")
    if rejected_max is not None:
        upper = np.minimum(upper, np.searchsorted(a, rejected_max, side="left"))
    if chosen_min is not None:
        upper[a < chosen_min] = 0
    step = max(min_margin, np.finfo(float).tiny)
    margin_ok = p[((a - a[0]) >= step) | ((a[-1] - a) >= step)]
    total = int(upper.sum())
    flat = np.sort(rng.choice(total, size=cap, replace=False)) if total > cap else np.arange(total)
    ends = np.cumsum(upper)
    chosen = np.searchsorted(ends, flat, side="right")
    rejected = flat - (ends - upper)[chosen]
    pairs = pd.DataFrame(
        {
            "qid": np.full(flat.size, q, dtype=np.int64),
            "pos_c": p[chosen],
            "score_c": a[chosen],
            "pos_r": p[rejected],
            "score_r": a[rejected],
        }
    )
    qualifies = (upper > 0) | (np.arange(a.size) < upper.max(initial=0))
    return pairs, margin_ok, p[qualifies], total - flat.size


def _pairs_from_pairs(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, int]:
    """A file that is already pairs: check each row and pass it through the same accounting."""
    n = len(frame)
    status = np.full(n, PENDING, dtype=np.int8)
    _mark_imported(status, frame)
    chosen = frame["chosen"].to_numpy(dtype=object)
    rejected = frame["rejected"].to_numpy(dtype=object)
    _mark(status, chosen == "", "missing_chosen")
    _mark(status, rejected == "", "missing_rejected")
    _mark(status, chosen == rejected, "identical_answers")
    if "tie" in frame:
        _mark(status, is_tie(frame["tie"]), "tie")

    nan = np.full(n, np.nan)
    chosen_score, rejected_score, margin = nan, nan.copy(), nan.copy()
    if "chosen_score" in frame and "rejected_score" in frame:
        chosen_score, missing_c, bad_c = parse_scores(frame["chosen_score"])
        rejected_score, missing_r, bad_r = parse_scores(frame["rejected_score"])
        _mark(status, bad_c | bad_r, "non_numeric_score")
        both = ~(missing_c | missing_r) & ~(bad_c | bad_r)
        _mark(status, both & (chosen_score <= rejected_score), "chosen_not_higher")
        margin = chosen_score - rejected_score
    if "margin" in frame:
        given, missing_m, bad_m = parse_scores(frame["margin"])
        _mark(status, bad_m, "non_numeric_score")
        margin = np.where(missing_m, margin, given)

    if _has_raters(frame):
        used = _majority(frame["question"].to_numpy(dtype=object), chosen, rejected, status)
    else:
        keys = pd.DataFrame({"q": frame["question"], "c": chosen, "r": rejected})
        _mark(status, keys.duplicated(keep="first").to_numpy(), "duplicate_row")
        used = status == PENDING
        status[used] = USED
    rows = frame["row"].to_numpy()
    out = pd.DataFrame(
        {
            "prompt": frame["question"].to_numpy(dtype=object)[used],
            "chosen": chosen[used],
            "rejected": rejected[used],
            "chosen_score": chosen_score[used],
            "rejected_score": rejected_score[used],
            "margin": margin[used],
            "chosen_row": rows[used],
            "rejected_row": rows[used],
        }
    )
    scores = np.concatenate([chosen_score[used], rejected_score[used]])
    questions = int(frame["question"][~np.isin(status, (CODE["missing_chosen"], CODE["missing_rejected"]))].nunique())
    return out, status, scores, questions


def is_tie(values: pd.Series) -> np.ndarray:
    """A tie flag: True, or text such as 1 / true / yes / tie."""
    if values.dtype == bool:
        return values.to_numpy()
    return values.astype("str").str.strip().str.lower().isin(("1", "true", "yes", "tie")).to_numpy()


def preference_units(prompts, chosen, rejected) -> tuple[np.ndarray, np.ndarray]:
    """(unit, direction) per judgment: the same two answers to a prompt are one unit whichever way round,
    and the direction is +1 when the first in text order won."""
    first_wins = chosen.astype(str) <= rejected.astype(str)
    low = np.where(first_wins, chosen, rejected)
    high = np.where(first_wins, rejected, chosen)
    unit = pd.DataFrame({"q": prompts, "a": low, "b": high}).groupby(["q", "a", "b"], sort=False).ngroup()
    return unit.to_numpy(), np.where(first_wins, 1, -1)


def _majority(prompts, chosen, rejected, status) -> np.ndarray:
    """Several raters' judgments of the same pair: the majority's direction is trained on, once.

    Judgments the other way are `outvoted`; an even split drops them all as `raters_disagree`. Returns
    which rows become pairs (the first judgment of each winning direction); the others that agree are used."""
    open_ = np.flatnonzero(status == PENDING)
    unit, direction = preference_units(prompts[open_], chosen[open_], rejected[open_])
    net = np.bincount(unit, weights=direction)[unit]
    status[open_[np.sign(direction) != np.sign(net)]] = CODE["outvoted"]
    status[open_[net == 0]] = CODE["raters_disagree"]
    winners = open_[(net != 0) & (np.sign(direction) == np.sign(net))]
    status[winners] = USED
    first = ~pd.Series(unit[(net != 0) & (np.sign(direction) == np.sign(net))]).duplicated().to_numpy()
    used = np.zeros(len(status), dtype=bool)
    used[winners[first]] = True
    return used


def rater_agreement(table: FeedbackTable, status: np.ndarray, scores: np.ndarray | None) -> dict | None:
    """Krippendorff's alpha over the file's raters, on the judgments that were read without fault."""
    frame = table.frame
    if table.judgments is not None and len(table.judgments):
        return agreement(table.judgments["row"], table.judgments["value"], "interval", pairwise=True)
    if not _has_raters(frame):
        return None
    fault = {CODE[r] for r in (*IMPORT_REASONS, "missing_question", "missing_answer", "missing_score")}
    fault |= {CODE[r] for r in ("non_numeric_score", "missing_chosen", "missing_rejected", "identical_answers")}
    ok = ~np.isin(status, list(fault)) & (frame["rater"].astype("str") != "").to_numpy()
    if frame["rater"][ok].nunique() < 2:  # one rater's repeats are not agreement between raters
        return None
    if table.kind == "feedback":
        units = pd.DataFrame({"q": frame["question"], "a": frame["answer"]}).groupby(["q", "a"], sort=False).ngroup()
        return agreement(units.to_numpy()[ok], scores[ok], "interval")
    prompts = frame["question"].to_numpy(dtype=object)[ok]
    unit, direction = preference_units(
        prompts, frame["chosen"].to_numpy(dtype=object)[ok], frame["rejected"].to_numpy(dtype=object)[ok]
    )
    tie = is_tie(frame["tie"])[ok] if "tie" in frame else np.zeros(len(unit), dtype=bool)
    return agreement(unit, np.where(tie, 0, direction), "nominal", pairwise=True)


def _rater_count(frame: pd.DataFrame, status: np.ndarray) -> int:
    """Raters behind the judgments read (a cancelled annotation's author rated nothing)."""
    if "rater" not in frame:
        return 0
    read = ~np.isin(status, [CODE[r] for r in IMPORT_REASONS]) & (frame["rater"].astype("str") != "").to_numpy()
    return int(frame["rater"][read].nunique())


def derive_pairs(table: FeedbackTable, options: PairOptions | None = None) -> PairsResult:
    """Turn a read file into pairs plus the report that accounts for every row."""
    options = options or PairOptions()
    options.validate()
    frame = table.frame
    not_taken, answers = 0, None
    if table.kind == "feedback":
        pairs, status, scores, questions, not_taken, answers = _pairs_from_feedback(frame, options, table.scale)
    else:
        pairs, status, scores, questions = _pairs_from_pairs(frame)
    agreed = rater_agreement(table, status, scores if table.kind == "feedback" else None)
    notes = list(table.notes)
    if table.scale is not None and table.kind == "feedback" and options.strategy == "best-worst":
        if options.chosen_min is None or options.rejected_max is None:  # a default threshold is in force
            notes.append(
                f"The source scores on {table.scale[0]:g} to {table.scale[1]:g}: the default thresholds sit three "
                f"quarters of the way up it ({scale_threshold(table.scale):g}), as 4 does on 1 to 5."
            )
    if not_taken:
        notes.append(cap_note(not_taken, options))
    used_scores = scores[~np.isnan(scores)]  # every parseable score, for the distribution

    rows = frame.assign(status=pd.Categorical.from_codes(status, categories=STATUS_NAMES))
    counts = np.bincount(status, minlength=len(STATUS_NAMES))
    dropped = {reason: int(counts[CODE[reason]]) for reason in DROP_REASONS if counts[CODE[reason]]}
    chosen_min, rejected_max = options.resolved_thresholds(table.scale) if table.kind == "feedback" else (None, None)
    distribution = pd.Series(used_scores).value_counts().to_dict()
    scores_seen = score_summary(distribution, options, suggest=table.kind == "feedback" and table.scale is None)
    report = PairsReport(
        source=table.source,
        kind=table.kind,
        format=table.format,
        encoding=table.encoding,
        encoding_detected=table.encoding_detected,
        delimiter=table.delimiter,
        column_mapping=dict(table.column_mapping),
        ignored_columns=list(table.ignored_columns),
        strategy=options.strategy if table.kind == "feedback" else "given-pairs",
        chosen_min=chosen_min,
        rejected_max=rejected_max,
        min_margin=options.min_margin,
        rows_read=len(frame),
        rows_used=int(counts[USED]),
        dropped=dropped,
        questions=questions,
        pairs=len(pairs),
        **scores_seen,
        notes=notes,
        pairs_not_taken=not_taken,
        max_pairs_per_question=options.max_pairs_per_question if options.strategy == "all-pairs" else None,
        source_format=table.source_format,
        records_read=table.records,
        record_unit=table.record_unit,
        aggregate=options.aggregate,
        max_rater_spread=options.max_rater_spread,
        agreement=agreed,
        raters=_rater_count(frame, status),
        extra_columns=list(table.extra_columns),
        score_choices=list(table.score_choices),
    )
    return PairsResult(pairs=pairs.reset_index(drop=True), rows=rows, report=report, answers=answers)


def cap_note(not_taken: int, options: PairOptions) -> str:
    return (
        f"{not_taken:,} more pairs were possible but not taken: a question may give at most "
        f"{options.max_pairs_per_question:,} pairs (a uniform sample of its pairs; --max-pairs-per-question)."
    )


def score_summary(distribution: dict[float, int], options: PairOptions, suggest: bool) -> dict:
    """The report's fields on the scores read (every parseable one): how many of each, their range, and where
    `suggest`, a note with thresholds when they are not on the 1-to-5 scale the defaults assume."""
    values = np.array(sorted(distribution), dtype=np.float64)
    scale_note, suggestion = _suggest_scale(values, options) if suggest else (None, None)
    return {
        "score_distribution": {f"{value:g}": int(distribution[value]) for value in values},
        "score_min": float(values[0]) if values.size else None,
        "score_max": float(values[-1]) if values.size else None,
        "scale_note": scale_note,
        "suggested_thresholds": suggestion,
    }


def split_by_question(pairs: pd.DataFrame, eval_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out split by question: no prompt is in both train and eval."""
    prompts = pd.unique(pairs["prompt"])
    if eval_fraction <= 0 or len(prompts) < 2:
        return pairs, pairs.iloc[0:0]
    rng = np.random.default_rng(seed)
    n_eval = min(len(prompts) - 1, max(1, round(len(prompts) * eval_fraction)))
    held_out = set(rng.permutation(prompts)[:n_eval])
    is_eval = pairs["prompt"].isin(held_out)
    return pairs[~is_eval].reset_index(drop=True), pairs[is_eval].reset_index(drop=True)


def pairs_from_file(
    path, read_options: ReadOptions | None = None, pair_options: PairOptions | None = None, *, name: str | None = None
) -> PairsResult:
    """Read a feedback or pairs file and derive pairs: the whole data path in one call."""
    return derive_pairs(read_feedback(path, read_options, name=name), pair_options)


def pairs_with_raters(result: PairsResult) -> pd.DataFrame:
    """The pairs for download, with who judged them where the file names raters: `chosen_raters` and
    `rejected_raters` (every rater of that answer, a scored file) or `raters` (those who judged the pair
    the way it is trained, a preference file), each a "; "-joined, sorted list. Without raters: as they are."""
    from rm_demo.feedback import normalize_answer, normalize_question

    rows, pairs = result.rows, result.pairs
    if "rater" not in rows or not len(pairs):
        return pairs
    judged = rows[(rows["status"] == "used") & (rows["rater"].astype("str") != "")]
    if not len(judged):
        return pairs

    def key(*columns: pd.Series) -> pd.Series:
        question, *answers = columns
        text = normalize_question(question.astype("str").reset_index(drop=True))
        for answer in answers:
            text = text.str.cat(normalize_answer(answer.astype("str").reset_index(drop=True)), sep="\x00")
        return text

    def who(keys: pd.Series) -> dict:
        raters = pd.DataFrame({"key": keys, "rater": judged["rater"].astype("str").to_numpy()})
        return raters.groupby("key")["rater"].agg(lambda names: "; ".join(sorted(set(names)))).to_dict()

    out = pairs.copy()
    if "answer" in judged:  # scored answers: each side's raters
        raters = who(key(judged["question"], judged["answer"]))
        out["chosen_raters"] = key(pairs["prompt"], pairs["chosen"]).map(raters).fillna("").to_numpy()
        out["rejected_raters"] = key(pairs["prompt"], pairs["rejected"]).map(raters).fillna("").to_numpy()
    else:  # judged pairs: the judges of the trained direction (the outvoted are not "used")
        raters = who(key(judged["question"], judged["chosen"], judged["rejected"]))
        out["raters"] = key(pairs["prompt"], pairs["chosen"], pairs["rejected"]).map(raters).fillna("").to_numpy()
    return out


def write_pairs(pairs: pd.DataFrame, path) -> None:
    """Write pairs (or any table of records): JSONL by default, formula-safe CSV when the name ends in .csv."""
    from rm_demo.tables import write_table

    write_table(pairs, path)
