"""A command's wall time and peak memory, measured from a small launcher process.

Linux counts in a process's peak (ru_maxrss) the memory of the process it was forked from, up to the exec: a
command started by a benchmark that holds a generated file's million rows (Python forks with vfork, sharing the
parent's memory) reports the benchmark's peak, not its own. Here a bare interpreter (`python -S`, ~10 MB) forks
and execs the command and reports what wait4 says of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

LAUNCHER = """
import json, os, sys
report = int(sys.argv[1])
pid = os.fork()
if pid == 0:
    os.close(report)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
os.write(report, json.dumps({"code": os.waitstatus_to_exitcode(status), "peak": usage.ru_maxrss * 1024}).encode())
"""


def run_measured(command: list[str], **popen) -> tuple[int, float, int, subprocess.CompletedProcess]:
    """Run `command`; (exit code, wall seconds, peak resident bytes of the command alone, completed process)."""
    import os

    read, write = os.pipe()
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(write), *command], pass_fds=(write,), **popen)
    finally:
        os.close(write)
    wall = time.perf_counter() - start
    with os.fdopen(read) as result:
        measured = json.loads(result.read() or '{"code": -1, "peak": 0}')
    return measured["code"], wall, measured["peak"], done
