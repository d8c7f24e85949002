"""Hostile input, measured as the whole process a user or an attacker meets (issue 26).

CLI: each case runs `python -m rm_demo ...` as its own process; its peak memory (RSS of the process
and its children, sampled every 20 ms with psutil) and wall time are reported with its exit code.
App: `python app.py --public` is started; one gradio_client session sends the three bombs that took
the app down before (a 1 MB .csv.gz of 1.1 GB of CSV to *Score a file*, a 1 MB answer to Explain,
20,000 answers to Rank); for each, the seconds to the refusal and the app's peak memory.

    python bench/bench_hostile_memory.py [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import serving  # noqa: E402
from results import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")


class PeakMemory:
    """The largest RSS of a process and its children, sampled in a thread while it runs."""

    def __init__(self, pid: int):
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                pass
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def bomb(path: Path, megabytes: int) -> Path:
    """A small .csv.gz that holds `megabytes` MB of CSV rows once decompressed."""
    row = b"Why is the sky blue?,Because of Rayleigh scattering.\n"
    chunk = row * (2**20 // len(row))
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"question,answer,score\n")
        for _ in range(megabytes):
            fh.write(chunk)
    return path


def cli_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    gz = bomb(tmp / "bomb.csv.gz", 1024)
    link = tmp / "zero.csv"
    link.symlink_to("/dev/zero")
    return [
        ("pairs on a 1 GiB gzip bomb", ["pairs", str(gz), "-o", str(tmp / "p.jsonl")]),
        ("pairs /dev/zero", ["pairs", "/dev/zero", "-o", str(tmp / "p.jsonl")]),
        ("pairs on a .csv link to /dev/zero", ["pairs", str(link), "-o", str(tmp / "p.jsonl")]),
        ("rank --answers-file /dev/zero", ["rank", "--question", "Q", "--answers-file", "/dev/zero"]),
        ("score --input /dev/urandom", ["score", "--input", "/dev/urandom", "-o", str(tmp / "s.csv")]),
    ]


def run_cli(name: str, argv: list[str]) -> dict:
    started = time.time()
    process = subprocess.Popen(
        [sys.executable, "-m", "rm_demo", *argv], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    memory = PeakMemory(process.pid)
    try:
        _, err = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    peak = memory.stop()
    return {
        "bench": "hostile_cli",
        "case": name,
        "exit": process.returncode,
        "seconds": round(time.time() - started, 2),
        "peak_mb": round(peak),
        "message": err.decode(errors="replace").strip().splitlines()[0] if err else "",
    }


def app_cases(tmp: Path, out: Path | None) -> None:
    from gradio_client import Client, handle_file

    with serving(tmp / "runs", "--public", log=tmp / "app.log") as app:
        client = Client(app.url, verbose=False)
        client.predict("b" * 32, api_name="/load")
        score_bomb = bomb(tmp / "answers.csv.gz", 1100)
        cases = [
            ("Score a file: 1 MB .csv.gz of 1.1 GB", lambda: _score(client, handle_file(score_bomb))),
            (
                "Explain: a 1 MB answer",
                lambda: client.predict("default", "Why?", "word " * 200_000, "No.", True, api_name="/explain")[0],
            ),
            (
                "Rank: 20,000 answers",
                lambda: client.predict(
                    "default", "Why?", "\n".join(f"answer {i}" for i in range(20_000)), api_name="/rank"
                )[0],
            ),
        ]
        cases.append(("Compare with a model outside the menu", lambda: _refused(client)))
        for name, call in cases:
            memory = PeakMemory(app.process.pid)
            started = time.time()
            message = str(call())
            seconds = time.time() - started
            emit(
                {
                    "bench": "hostile_app",
                    "case": name,
                    "seconds": round(seconds, 2),
                    "app_peak_mb": round(memory.stop()),
                    "message": message.splitlines()[0][:160],
                },
                out,
            )
    emit({"bench": "hostile_app", "tracebacks_in_the_app_log": (tmp / "app.log").read_text().count("Traceback")}, out)


def _refused(client) -> str:
    try:
        return client.predict("/etc/passwd", "Why?", "A.", "B.", True, api_name="/compare")[0]
    except Exception as exc:  # gradio_client raises the app's one-line refusal
        return f"{type(exc).__name__}: {exc}"


def _score(client, file) -> str:
    return client.predict(None, file, "auto", "auto", api_name="/score_file")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--skip-app", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in cli_cases(Path(tmp)):
            emit(run_cli(name, argv), args.out)
        if not args.skip_app:
            app_cases(Path(tmp), args.out)


if __name__ == "__main__":
    main()
