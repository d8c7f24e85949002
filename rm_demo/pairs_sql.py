"""The pairs derivation as SQL, for a SQL engine of any size (Spark, DuckDB, ...): `rm_demo pairs-sql`.

rm_demo derives pairs in process with vectorised numpy over Arrow (`rm_demo.pairs`). For a feedback log too
big for one machine this module writes the same derivation as one relational plan, every drop reason
included. It reads a table `feedback(pos, question, answer, score, import_status)`: `pos` numbers the rows
from 0 in file order, texts as read, `score` as text, `import_status` '' or a tool import's reason. The steps:

1. `rated`: each row's score read as a number (blank-stripped, a decimal comma taken), its first fault.
2. `valid`: the rows without a fault, with their question's first row (questions keep file order) and their
   answer's first row (several ratings of one answer become one), in three steps of one join each.
3. `answers`: one row per distinct answer: its ratings combined (mean, median or majority), their spread, and
   whether the raters disagree too much.
4. `kept`: the answers that stay, with their question's size, best and worst score.
5. `pairs`: best-worst (the seed's rule: the last of the best in file order chosen, the first of the worst
   rejected, thresholds on both) or all-pairs (every higher-lower pair with a gap of at least the minimum
   margin, thresholds on each side) for questions under the per-question cap. A question that could make
   more pairs than the cap is left with status NULL: rm_demo samples it from sorted scores, which a join
   cannot do in less than n^2.
6. `answer_status` and `row_status`: what became of each answer, then of each row (every rating of an answer
   shares its fate).

tests/test_pairs_sql.py runs the plan on DuckDB against `rm_demo.pairs` on generated files (every status and
pair, every option), and on Spark in local mode where Java is present.
"""

from __future__ import annotations

from dataclasses import dataclass

# Python's str.strip() removes these (str.isspace): ASCII and Unicode spaces, separators, and the information
# separators \x1c-\x1f. RE2 spells them out.
SPACE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]"
# What the Arrow / pandas float parsers accept as a finite number (inf and nan are read, then refused).
NUMBER = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
DECIMAL_COMMA = r"^([+-]?[0-9]+),([0-9]+)$"


def _sql_number(value: float | None) -> str:
    return "NULL" if value is None else repr(float(value))


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL engines the plan runs on; everything else is standard SQL (window
    functions, FILTER, any_value, median)."""

    name: str
    create: str  # how a step's result is named
    raw: str  # the prefix of a string literal whose backslashes are taken as they are
    backref: str  # how a replacement names a regex group
    replace_flags: str  # regexp_replace's argument for "every match", if it needs one

    def literal(self, text: str) -> str:
        return f"{self.raw}'{text}'"

    def replace_all(self, expr: str, pattern: str, replacement: str) -> str:
        replacement = replacement.replace("\\", self.backref)
        return f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)}{self.replace_flags})"

    def full_match(self, expr: str, pattern: str) -> str:
        if self.name == "duckdb":
            return f"regexp_full_match({expr}, {self.literal(pattern)})"
        return f"{expr} RLIKE {self.literal('^(?:' + pattern + ')$')}"

    def finite(self, expr: str) -> str:
        if self.name == "duckdb":
            return f"isfinite({expr})"
        return f"NOT isnan({expr}) AND abs({expr}) < double('Infinity')"


DUCKDB = Dialect("duckdb", "CREATE OR REPLACE TEMP TABLE", "", "\\", ", 'g'")
# Spark 3.4+ (any_value, median): steps are views, Java's regex names groups $1, r'' keeps backslashes.
SPARK = Dialect("spark", "CREATE OR REPLACE TEMP VIEW", "r", "$", "")
DIALECTS = {dialect.name: dialect for dialect in (DUCKDB, SPARK)}


def score_text_sql(column: str, dialect: Dialect = DUCKDB) -> str:
    """SQL: a score's text with blanks stripped at both ends ('' is a missing score)."""
    return dialect.replace_all(column, f"^{SPACE}+|{SPACE}+$", "")


def score_value_sql(source: str, score: str, dialect: Dialect = DUCKDB) -> str:
    """SQL: a query over the table `source` adding `text` (the `score` column's text, blanks stripped: '' is a
    missing score) and `value` (that text as a finite number, a decimal comma taken; NULL when it is no such
    number). Each step is its own level, so that every expression is computed once per row."""
    number = dialect.replace_all("text", DECIMAL_COMMA, "\\1.\\2")
    return f"""SELECT *, CASE WHEN {dialect.finite("parsed")} THEN parsed END AS value FROM (
              SELECT *, CASE WHEN {dialect.full_match("number", NUMBER)} THEN TRY_CAST(number AS DOUBLE) END AS parsed
              FROM (SELECT *, {number} AS number
                    FROM (SELECT *, {score_text_sql(score, dialect)} AS text FROM {source}) AS s1) AS s2) AS s3"""


def aggregate_sql(how: str, source: str, keys: str = "rep") -> str:
    """SQL: one row per answer (`rep`, the first key) of `source(rep, value, ...)`: its ratings combined by
    mean, median or majority (the score most ratings gave; a tie between several goes to the middle one of
    them, the lower middle of an even count, so the result is always a score someone gave), and their spread."""
    if how in ("mean", "median"):
        combined = "avg(value)" if how == "mean" else "median(value)"
        return f"SELECT {keys}, {combined} AS score, max(value) - min(value) AS spread FROM {source} GROUP BY {keys}"
    return f"""SELECT s.*, m.value AS score FROM
        (SELECT {keys}, max(value) - min(value) AS spread FROM {source} GROUP BY {keys}) AS s
        JOIN (SELECT rep, value FROM (
                SELECT rep, value, row_number() OVER (PARTITION BY rep ORDER BY value) AS k,
                       count(*) OVER (PARTITION BY rep) AS modes
                FROM (SELECT rep, value, n, max(n) OVER (PARTITION BY rep) AS top
                      FROM (SELECT rep, value, count(*) AS n FROM {source} GROUP BY rep, value) AS c) AS t
                WHERE n = top) AS u
              WHERE 2 * (k - 1) IN (modes - 1, modes - 2)) AS m ON m.rep = s.rep"""


def plan_sql(
    code: dict[str, int],
    import_reasons: tuple[str, ...],
    options,
    thresholds: tuple[float | None, float | None],
    raters: bool,
    dialect: Dialect = DUCKDB,
    keys: tuple[str, str] = ("question", "answer"),
) -> list[tuple[str, str]]:
    """The plan's steps in order, as (name, query): each names its result `name`. `code`: status name ->
    number; `thresholds`: (chosen_min, rejected_max) in force, either may be None (all-pairs without one);
    `raters`: whether the file names raters (then a repeated answer is another rating, not a duplicate row);
    `keys`: the columns of `feedback` that rows are grouped by, the texts themselves or (rm_demo.pairs_big)
    128-bit hashes of them, which group and join in a fraction of the memory."""
    pairing = _best_worst_steps if options.strategy == "best-worst" else _all_pairs_steps
    return [
        *_answer_steps(code, import_reasons, options, dialect, keys),
        *pairing(code, options, thresholds),
        _row_status_step(code, raters),
    ]


def _answer_steps(code: dict[str, int], import_reasons: tuple[str, ...], options, dialect: Dialect, keys) -> list:
    """Steps 1-4: each row's fault, the rows that can be paired, the distinct answers, those that stay. From
    step 1 on, `question` and `answer` are the grouping keys."""
    imported = "".join(f" WHEN '{reason}' THEN {code[reason]}" for reason in import_reasons)
    spread = options.max_rater_spread
    disagree = "false" if spread is None else f"spread > {float(spread) + 1e-9!r}"
    return [
        # 1. every row: its score as a number, its first fault
        (
            "rated",
            f"""SELECT pos, {keys[0]} AS question, {keys[1]} AS answer, text, value, fault FROM (
              SELECT *, CASE import_status{imported}
                    ELSE CASE WHEN question = '' THEN {code["missing_question"]}
                              WHEN answer = '' THEN {code["missing_answer"]}
                              WHEN text = '' THEN {code["missing_score"]}
                              WHEN value IS NULL THEN {code["non_numeric_score"]} END END AS fault
              FROM ({score_value_sql("feedback", "score", dialect)}) AS g) AS f""",
        ),
        # 2. the rows that can be paired: each answer's first row (`rep`), each question's (`qid`, which orders
        # the questions). Grouped and joined back, one join a step, numbers only carried through the joins: a
        # window partitioned by text cost twice as much on DuckDB, and one step of both joins, carrying the
        # question's text, ran out of memory out of core (rm_demo.pairs_big).
        (
            "first_rows",
            "SELECT question, answer, min(pos) AS rep FROM rated WHERE fault IS NULL GROUP BY question, answer",
        ),
        (
            "answer_firsts",
            """SELECT a.question, a.answer, a.rep, q.qid FROM first_rows a
            JOIN (SELECT question, min(rep) AS qid FROM first_rows GROUP BY question) AS q
                 ON q.question = a.question""",
        ),
        (
            "valid",
            """SELECT r.pos, r.value, f.qid, f.rep FROM rated r
            JOIN answer_firsts f ON f.question = r.question AND f.answer = r.answer WHERE r.fault IS NULL""",
        ),
        # 3. one row per distinct answer (its first rating), its ratings combined
        (
            "answers",
            f"""SELECT rep AS pos, qid, score, {disagree} AS disagree
            FROM ({aggregate_sql(options.aggregate, "valid", "rep, qid")}) AS a""",
        ),
        # 4. the answers that stay, with what their question holds
        (
            "kept",
            """SELECT pos, qid, score, count(*) OVER (PARTITION BY qid) AS size,
                      max(score) OVER (PARTITION BY qid) AS high, min(score) OVER (PARTITION BY qid) AS low
            FROM answers WHERE NOT disagree""",
        ),
    ]


def _best_worst_steps(code: dict[str, int], options, thresholds) -> list:
    """Steps 5-6, the seed's rule: the last of the best is chosen, the first of the worst rejected."""
    chosen_min, rejected_max = thresholds
    return [
        (
            "pairs",
            f"""SELECT qid, chosen_pos, rejected_pos, high AS chosen_score, low AS rejected_score FROM (
              SELECT qid, max(pos) FILTER (WHERE score = high) AS chosen_pos,
                     min(pos) FILTER (WHERE score = low) AS rejected_pos, any_value(high) AS high,
                     any_value(low) AS low
              FROM kept WHERE size > 1 AND high > low GROUP BY qid) AS b
            WHERE high >= {_sql_number(chosen_min)} AND low < {_sql_number(rejected_max)}""",
        ),
        (
            "answer_status",
            f"""SELECT k.pos, CASE WHEN k.size = 1 THEN {code["single_answer"]}
                               WHEN k.high = k.low THEN {code["all_tied"]}
                               WHEN p.qid IS NULL THEN {code["below_thresholds"]}
                               WHEN k.pos IN (p.chosen_pos, p.rejected_pos) THEN {code["used"]}
                               ELSE {code["not_best_or_worst"]} END AS status
            FROM kept k LEFT JOIN pairs p ON p.qid = k.qid""",
        ),
    ]


def _all_pairs_steps(code: dict[str, int], options, thresholds) -> list:
    """Steps 5-6: every higher-lower pair at the margin, in questions whose pairs fit under the cap (a question
    over it is left open: status NULL)."""
    chosen_min, rejected_max = thresholds
    at_least = "true" if chosen_min is None else f"c.score >= {_sql_number(chosen_min)}"
    below = "true" if rejected_max is None else f"r.score < {_sql_number(rejected_max)}"

    def small(table: str) -> str:  # its question's pairs fit under the cap
        return f"{table}.size * ({table}.size - 1) <= {2 * int(options.max_pairs_per_question)}"

    return [
        (
            "gaps",
            f"""SELECT c.qid, c.pos AS chosen_pos, r.pos AS rejected_pos, c.score AS chosen_score,
                   r.score AS rejected_score, ({at_least}) AND ({below}) AS passes
            FROM kept c JOIN kept r ON c.qid = r.qid
            WHERE {small("c")} AND c.high > c.low
              AND c.score - r.score > 0 AND c.score - r.score >= {float(options.min_margin)!r}""",
        ),
        ("pairs", "SELECT qid, chosen_pos, rejected_pos, chosen_score, rejected_score FROM gaps WHERE passes"),
        (
            "answer_status",
            f"""SELECT k.pos, CASE WHEN k.size = 1 THEN {code["single_answer"]}
                               WHEN k.high = k.low THEN {code["all_tied"]}
                               WHEN NOT {small("k")} THEN NULL
                               WHEN u.pos IS NOT NULL THEN {code["used"]}
                               WHEN g.pos IS NOT NULL THEN {code["below_thresholds"]}
                               ELSE {code["below_min_margin"]} END AS status
            FROM kept k
            LEFT JOIN (SELECT chosen_pos AS pos FROM pairs UNION SELECT rejected_pos FROM pairs) AS u
                   ON u.pos = k.pos
            LEFT JOIN (SELECT chosen_pos AS pos FROM gaps UNION SELECT rejected_pos FROM gaps) AS g
                   ON g.pos = k.pos""",
        ),
    ]


def _row_status_step(code: dict[str, int], raters: bool) -> tuple[str, str]:
    """Step 7, each row: its fault, or its answer's fate (a repeat without raters is a duplicate row)."""
    repeat = "false" if raters else "v.pos <> v.rep"
    return (
        "row_status",
        f"""SELECT r.pos, r.value, v.rep, coalesce(r.fault, CASE
                 WHEN a.disagree THEN {code["raters_disagree"]}
                 WHEN {repeat} THEN {code["duplicate_row"]}
                 ELSE s.status END) AS status
        FROM rated r LEFT JOIN valid v ON v.pos = r.pos LEFT JOIN answers a ON a.pos = v.rep
             LEFT JOIN answer_status s ON s.pos = v.rep""",
    )


def plan_script(steps: list[tuple[str, str]], dialect: Dialect = DUCKDB) -> str:
    """The steps as one SQL script, each a statement naming its result."""
    return "\n\n".join(f"{dialect.create} {name} AS\n{query};" for name, query in steps)
