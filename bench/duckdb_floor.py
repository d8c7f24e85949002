"""The floor of best-worst pairing on DuckDB as a whole process: no accounting, no text normalisation, no
checks, just read, group, pick and write. What issue 41's 8x goal against the article's script asks of any
engine on this machine.

    python bench/duckdb_floor.py FEEDBACK.csv OUT.jsonl     # a file from bench/bench_pairs.py's generator

Prints the import, read and derive-and-write seconds on stderr.
"""

import sys
import time

start = time.perf_counter()
import duckdb  # noqa: E402  (timed)

imported = time.perf_counter()
source, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("CREATE TABLE r AS SELECT * FROM read_csv(?, header = true)", [source])
read = time.perf_counter()
con.execute(
    f"""COPY (
    WITH g AS (SELECT question, arg_max(answer, feedback) AS chosen, max(feedback) AS high,
                      arg_min(answer, feedback) AS rejected, min(feedback) AS low FROM r GROUP BY question)
    SELECT question AS prompt, chosen, rejected FROM g WHERE high >= 4 AND low < 4 ORDER BY question
) TO '{out}' (FORMAT json)"""
)
done = time.perf_counter()
print(
    f"import {imported - start:.2f} s, read {read - imported:.2f} s, derive and write {done - read:.2f} s",
    file=sys.stderr,
)
