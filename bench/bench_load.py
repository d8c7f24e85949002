"""Many visitors on one app: latency of Compare and of the training poll, errors, app memory, training time.

Starts the app as a workshop would (`python app.py`, a facilitator secret set), then N simulated
visitors (gradio_client, one session each) load the workshop sample; visitor 0 starts a training run
and polls it every second; every visitor compares two answers (before/after: the base and a model)
`--compares` times. Reports p50/p95/max of Compare and of the poll, errors, the app process's peak
memory (VmHWM; the training runs in its own process) and the training run's wall time, from Start to
completed, beside the same run trained with no visitors (`--baseline`), so a quicker app cannot
simply starve the training.

`--own-runs`: every visitor also has a finished run of their own (a copy of the embedded model, as
`bench_scorer_cache.py` makes them) and compares it against its base: 30 models, not one.
`--repeat N`: N runs in a row, each with a fresh app, and a table of all of them.

    python bench/bench_load.py [--visitors 30] [--compares 5] [--repeat 5] [--own-runs] [--baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The Data tab's settings in order (DataTab.settings): reading, pairing, format, raters.
SETTINGS = ("auto", "auto", "(auto)", "(auto)", "(auto)", "best-worst", "", "", "", "auto", "mean", "")
FORM = ("embedded default", "", 3, 5e-5, 16, 128, 0.2, False, 0, "cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        RM_DEMO_RUNS=str(runs),
        RM_DEMO_FACILITATOR_SECRET="bench",
        RM_DEMO_SECRET=BENCH_SECRET,
        HF_HUB_OFFLINE="1",
        GRADIO_ANALYTICS_ENABLED="False",
    )
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not start")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def wait_until_warm(url: str) -> float:
    """What the first visitor waits: one Compare as soon as the page answers (the default scorer loads
    in the background from start-up)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    start = time.perf_counter()
    client.predict("default", "q", "a", "b", False, api_name="/compare")
    return time.perf_counter() - start


BENCH_SECRET = "bench-load-secret"  # the app's RM_DEMO_SECRET here: the visitors' ids are signed with it


def visitor_id(index: int) -> str:
    """An id as the app issues them (signed with its secret): the app takes an unsigned one for a stranger's
    and gives the page a new id, so a visitor's own run was "not available here" (every click an error)."""
    os.environ["RM_DEMO_SECRET"] = BENCH_SECRET
    from rm_demo.app.identity import issued_id

    return issued_id(f"{index:08x}{os.getpid():08x}".ljust(32, "0"))


def own_runs(runs: Path, visitors: int) -> list[str]:
    """A finished run for each visitor (their owner key), its model folder as training saves one: the embedded
    model as a reward model (`load_reward_model`, `save_pretrained` of model and tokenizer), every weight moved
    (seeded noise) except the word embeddings, which training keeps frozen by default. (Exact copies would
    be identical to the base, which no trained run is; copies of the embedded folder itself are a
    sentence-transformers `BertModel` with no classifier, which no run is either: the app loaded each of
    those in full, and the benchmark measured that fallback, not a run's Compare.)"""
    import torch

    from rm_demo.access import owner_key
    from rm_demo.config import TrainConfig
    from rm_demo.models import default_model_path, load_reward_model, quiet_weight_bars

    model, tokenizer = load_reward_model(str(default_model_path()))
    start = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    models = []
    for index in range(visitors):
        folder = runs / f"own-{index:04d}"
        generator = torch.Generator().manual_seed(index)
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                moved = "word_embeddings" not in name and tensor.is_floating_point()
                noise = 1e-3 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) if moved else 0
                tensor.copy_(start[name] + noise)
        with quiet_weight_bars():  # thirty "Writing model shards" bars say nothing here
            model.save_pretrained(folder / "model")
        tokenizer.save_pretrained(folder / "model")
        config = TrainConfig(output_dir=str(folder))
        (folder / "config.json").write_text(config.to_json())
        record = {
            "status": "completed",
            "owner": owner_key(visitor_id(index)),
            "created_at": time.time(),
            "config": json.loads(config.to_json()),
            "final_metrics": {"eval_accuracy": 0.7, "eval_pairs": 39, "steps": 30},
            "data": {"train_pairs": 154, "eval_pairs": 39},
        }
        (folder / "run.json").write_text(json.dumps(record))
        models.append(str(folder / "model"))
    from rm_demo.score import Scorer

    if models and Scorer.beside(Scorer("default"), models[0]) is None:
        raise SystemExit("the runs made here are not what training saves: the app would load each in full")
    return models


def connect(url: str, kind: str, config: dict | None):
    """A visitor's `call(api_name, *values) -> outputs`: the light HTTP client, or gradio_client."""
    if kind == "light":
        from gradio_http import Visitor

        return Visitor(url, config).call
    from gradio_client import Client

    client = Client(url, verbose=False)
    return lambda api_name, *values: client.predict(*values, api_name="/" + api_name)


def visitor(url: str, index: int, args, results: dict, stop: threading.Event, model: str, config) -> None:
    rng = random.Random(index)
    try:
        call = connect(url, args.client, config)
        call("load", visitor_id(index))  # as a page load: its id
        call("use_workshop_sample", *SETTINGS)
        if index == 0 and not args.no_training:
            call("start_training", *FORM)
            results["training_started"] = time.time()
            threading.Thread(target=poller, args=(call, results, stop), daemon=True).start()
        time.sleep(args.settle)  # reading their finished run before the first Compare
        for i in range(args.compares):
            time.sleep(rng.uniform(*args.think))  # a person reads the result before the next click
            start = time.perf_counter()
            question = f"How do I water a cactus? ({index}.{i})"
            message = call("compare", model, question, "Sparingly, when the soil is dry.", "Every hour.", True)[0]
            took = time.perf_counter() - start
            results["compare"].append(took)
            results["compare_at"].append((round(time.time() - results["began"], 1), round(took, 2)))
            if "prefers" not in message:
                results["errors"].append(f"visitor {index}: {message[:120]}")
    except Exception as exc:  # counted, not raised: the benchmark reports errors
        results["errors"].append(f"visitor {index}: {type(exc).__name__}: {exc}")


def poller(call, results: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        try:
            call("poll")
            results["poll"].append(time.perf_counter() - start)
        except Exception as exc:
            if not stop.is_set():  # a poll cut by the app's shutdown at the end of a run is no error of the app
                at = time.time() - results["began"]
                results["errors"].append(f"poll at {at:.1f} s: {type(exc).__name__}: {exc}")
        time.sleep(1.0)


def training_wall_s(runs: Path, started: float | None, timeout_s: float = 900) -> float | None:
    """From the Start click to the run's completed record (waited for), or None without a run."""
    if started is None:
        return None
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for record in runs.glob("*/run.json"):
            data = json.loads(record.read_text() or "{}")
            if data.get("status") in ("completed", "failed", "cancelled") and not record.parent.name.startswith(
                "own-"
            ):
                return data.get("finished_at", time.time()) - started
        time.sleep(0.5)
    return None


class CpuMeter(threading.Thread):
    """CPU seconds used while the visitors click: the app, its training child, and these clients."""

    def __init__(self, app_pid: int):
        super().__init__(daemon=True)
        import psutil

        self.app, self.me, self.stop = psutil.Process(app_pid), psutil.Process(), threading.Event()
        self.start_app, self.start_me = self._cpu(self.app), self._cpu(self.me)
        self.children: dict[int, float] = {}

    @staticmethod
    def _cpu(process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def run(self) -> None:
        import psutil

        while not self.stop.wait(0.5):
            for child in self.app.children(recursive=True):
                try:
                    self.children.setdefault(child.pid, 0.0)
                    self.children[child.pid] = self._cpu(child)
                except psutil.Error:
                    pass

    def seconds(self) -> dict:
        self.stop.set()
        return {
            "app": round(self._cpu(self.app) - self.start_app, 1),
            "training": round(sum(self.children.values()), 1),
            "clients": round(self._cpu(self.me) - self.start_me, 1),
        }


def one_run(args, visitors: int) -> dict:
    """One app, `visitors` visitors (0: the training alone); the figures of that run."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        models = own_runs(runs, visitors) if args.own_runs else ["default"] * visitors
        proc, url = start_app(runs)
        first = wait_until_warm(url)
        config = None
        if args.client == "light":
            from gradio_http import app_config

            config = app_config(url)
        meter = CpuMeter(proc.pid)
        meter.start()
        started = time.time()
        results: dict = {"compare": [], "compare_at": [], "poll": [], "errors": [], "training_started": None}
        results["began"] = started
        stop = threading.Event()
        if visitors:
            threads = [
                threading.Thread(target=visitor, args=(url, i, args, results, stop, models[i], config))
                for i in range(visitors)
            ]
        else:  # the training alone: one page starts it and polls, nobody compares
            quiet = argparse.Namespace(**{**vars(args), "compares": 0})
            threads = [threading.Thread(target=visitor, args=(url, 0, quiet, results, stop, "default", config))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clicks_s = time.time() - started
        wall = training_wall_s(runs, results["training_started"]) if not args.no_training else None
        stop.set()
        cpu = meter.seconds()
        memory = peak_memory_mb(proc.pid)
        proc.terminate()
        proc.wait(timeout=30)
    c, p = results["compare"], results["poll"]
    return {
        "visitors": visitors,
        "own_runs": bool(args.own_runs),
        "clicks_s": round(clicks_s, 1),
        "first_compare_s": round(first, 3),
        "compares": len(c),
        "compare_p50": round(statistics.median(c), 3) if c else None,
        "compare_p95": round(percentile(c, 0.95), 3) if c else None,
        "compare_max": round(max(c), 3) if c else None,
        "poll_p95": round(percentile(p, 0.95), 3) if p else None,
        "errors": len(results["errors"]),
        "error_samples": results["errors"][:5],
        "training_wall_s": round(wall, 1) if wall is not None else None,
        "app_peak_mb": round(memory),
        "cpu_s": cpu,  # from the visitors' arrival to the training's end, on a machine of os.cpu_count() cores
        # when the slowest tenth of the clicks began (seconds after the visitors arrived), and how long they took
        "slowest": sorted(results["compare_at"], key=lambda x: -x[1])[: max(1, len(c) // 10)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=30)
    parser.add_argument("--compares", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1, help="runs in a row, each with a fresh app")
    parser.add_argument("--own-runs", action="store_true", help="every visitor compares a run of their own")
    parser.add_argument("--baseline", action="store_true", help="first train the same run with no visitors")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds each visitor spends between opening the page and the first Compare (with --own-runs: "
        "the app preloads each visitor's model on page load, as it does when their run finishes)",
    )
    parser.add_argument("--no-training", action="store_true", help="compare only, no run training meanwhile")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(2.0, 8.0),
        metavar=("MIN", "MAX"),
        help="seconds a visitor waits before each click, uniform in [MIN, MAX] (0 0: a burst)",
    )
    parser.add_argument(
        "--client",
        choices=("light", "gradio_client"),
        default="light",
        help="light: gradio's queue protocol over plain HTTP, as a page speaks it (gradio_client polls every "
        "50 ms per call, and its 30 visitors took twice the app's CPU on the app's own machine)",
    )
    parser.add_argument("--out", type=Path, help="append each run's JSON line to this file too")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    pace = f"{args.think[0]:g}-{args.think[1]:g} s before each click" if args.think[1] else "all at once"
    training = "no training" if args.no_training else "one run training meanwhile"
    models = "each visitor's own run against its base" if args.own_runs else "the base model"
    print(f"{args.visitors} visitors x {args.compares} compares ({pace}), {training}, comparing {models}")
    print(f"client: {args.client}")
    rows = []
    if args.baseline and not args.no_training:
        alone = one_run(args, 0)
        print(f"the training run alone (no visitors): {alone['training_wall_s']} s from Start to completed")
        rows.append({"run": "alone", **alone})
    for index in range(1, args.repeat + 1):
        row = {"run": index, **one_run(args, args.visitors)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({**row, "args": {k: str(v) for k, v in vars(args).items()}}) + "\n")
    print()
    print("| run | Compare p50 | Compare p95 | max | poll p95 | errors | training wall | app peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row["run"] == "alone":
            print(f"| training alone | | | | | | {row['training_wall_s']} s | {row['app_peak_mb']} MB |")
            continue
        print(
            f"| {row['run']} | {row['compare_p50']} s | **{row['compare_p95']} s** | {row['compare_max']} s | "
            f"{row['poll_p95']} s | {row['errors']} | {row['training_wall_s']} s | {row['app_peak_mb']} MB |"
        )


if __name__ == "__main__":
    main()
