"""Hostile input, measured as the whole process a user or an attacker meets (issues 26 and 42).

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


BILLION_LAUGHS = (
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefg", "bcdefgh"))
    + "epochs: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
)


def cli_cases(tmp: Path) -> list[tuple[str, list[str]]]:
    gz = bomb(tmp / "bomb.csv.gz", 1024)
    link = tmp / "zero.csv"
    link.symlink_to("/dev/zero")
    (tmp / "laughs.yaml").write_text(BILLION_LAUGHS)
    with open(tmp / "sparse.csv", "wb") as fh:
        fh.truncate(3 * 10**9)
    (tmp / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp / "surrogate.jsonl").write_text('{"question": "Q", "answer": "a\\ud800", "score": 5}\n')
    (tmp / "long.csv").write_text("question,answer\nWhy?," + "word " * 6_000_000 + "\n")
    run = tmp / "a-run"
    (run / "model").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    (run / "data.csv").write_text("question,answer,score\nQ,a,5\nQ,b,1\n")
    return [
        ("pairs on a 1 GiB gzip bomb", ["pairs", str(gz), "-o", str(tmp / "p.jsonl")]),
        ("pairs /dev/zero", ["pairs", "/dev/zero", "-o", str(tmp / "p.jsonl")]),
        ("pairs on a .csv link to /dev/zero", ["pairs", str(link), "-o", str(tmp / "p.jsonl")]),
        ("rank --answers-file /dev/zero", ["rank", "--question", "Q", "--answers-file", "/dev/zero"]),
        ("score --input /dev/urandom", ["score", "--input", "/dev/urandom", "-o", str(tmp / "s.csv")]),
        # issue 42
        ("train --config /dev/zero", ["train", "--config", "/dev/zero"]),
        ("train --config with a YAML billion laughs", ["train", "--config", str(tmp / "laughs.yaml")]),
        (
            "pairs on a 3 GB sparse file, --max-input-mb 5000",
            ["pairs", str(tmp / "sparse.csv"), "-o", str(tmp / "p.jsonl"), "--max-input-mb", "5000"],
        ),
        ("pairs on JSON nested 100,000 deep", ["pairs", str(tmp / "deep.json"), "-o", str(tmp / "p.jsonl")]),
        ("pairs on JSONL with a lone surrogate", ["pairs", str(tmp / "surrogate.jsonl"), "-o", str(tmp / "p.jsonl")]),
        ("score --input with one 30 MB answer", ["score", "--input", str(tmp / "long.csv"), "-o", str(tmp / "s.csv")]),
        ("explain with a 120 KB answer", ["explain", "--question", "Q", "--answer", "word " * 24_000]),
        (
            "compare with byte 0xff in an answer",
            ["compare", "--question", "Q", "--answer-a", b"a\xffb", "--answer-b", "b"],
        ),
        ("export onto the run's own data.csv", ["export", str(run), "-o", str(run / "data.csv")]),
    ]


def run_cli(name: str, argv: list[str]) -> dict:
    started = time.time()
    process = subprocess.Popen(
        [sys.executable.encode(), b"-m", b"rm_demo", *(a if isinstance(a, bytes) else a.encode() for a in argv)],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
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
        # issue 42
        cell = tmp / "one_cell.csv"
        cell.write_text("question,answer\nWhy?," + "w" * 30_000_000 + "\n")
        tiny = tmp / "tiny_rows.csv"
        tiny.write_text("question,answer,score\n" + "q,a,1\n" * 5_000_000)
        langfuse = tmp / "langfuse_scores.json"  # compact: 1,000,000 scores in 44 MB, every trace missing
        langfuse.write_text(
            '{"traces": [], "scores": ['
            + ",".join(f'{{"traceId":"t{i}","name":"q","value":1}}' for i in range(1_000_000))
            + "]}"
        )
        cases += [
            (
                "Data: a Langfuse file of 1,000,000 scores naming missing traces",
                lambda: _load_file(client, handle_file(langfuse)),
            ),
            ("Score a file: one 30 MB cell", lambda: _score(client, handle_file(cell))),
            ("Data: 5,000,000 tiny rows (30 MB)", lambda: _load_file(client, handle_file(tiny))),
            (
                "Explain: 9,999 characters of one-letter words",
                lambda: client.predict("default", "Why?", "a " * 4_999, "No.", False, api_name="/explain")[0],
            ),
            ("A 20 MB request body", lambda: _big_body(app.url)),
        ]
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


def _load_file(client, file) -> str:
    settings = ["auto", "auto", "(auto)", "(auto)", "(auto)", "best-worst", "", "", "", "auto", "mean", "", "(auto)"]
    return str(client.predict(file, *settings, api_name="/load_file")[0])


def _big_body(url: str) -> str:
    import socket
    from urllib.parse import urlparse

    with socket.create_connection((urlparse(url).hostname, urlparse(url).port), timeout=30) as conn:
        head = "POST /gradio_api/queue/join HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n"
        conn.sendall(head.encode() + b"{" + b" " * 1023)
        return conn.recv(4096).split(b"\r\n")[0].decode()


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
