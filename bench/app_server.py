"""`python app.py` as a user starts it, for the benchmarks: a free port, its own runs folder, offline."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    process: subprocess.Popen
    url: str
    ready_s: float  # from the start of the process to the first page it served


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(
    runs: Path, *flags: str, log: Path | None = None, script: str = "app.py", env_extra: dict | None = None
) -> Iterator[Served]:
    """The app (`script`), serving once it answers; stopped on leaving. `log`: its output, else none kept."""
    port = free_port()
    env = dict(os.environ, RM_DEMO_RUNS=str(runs), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env.update(env_extra or {})
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log, "wb")) if log else subprocess.DEVNULL
        started = time.time()
        process = subprocess.Popen(
            [sys.executable, script, "--port", str(port), *flags],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            while True:
                try:
                    urllib.request.urlopen(url, timeout=2)
                    break
                except OSError:
                    if process.poll() is not None:
                        raise SystemExit(f"the app exited with code {process.returncode}") from None
                    time.sleep(0.2)
            yield Served(process, url, time.time() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
