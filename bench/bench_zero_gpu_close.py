"""A page closed mid-slice on a ZeroGPU Space, as the other visitors feel it (issue 35).

`tests/zero_gpu_app.py` is started (the app as a ZeroGPU Space runs it, its GPU worker played by the
stand-in that keeps one forked worker and, closed, waits for it to end its step and checkpoint as spaces
0.51 does). One visitor in Chromium starts a sliced run on the workshop sample; ten visitors compare at a
person's pace through gradio's queue protocol (bench/gradio_http.py). Compare's latencies are taken in
two windows of the same run: while the run trains with its page open, and from the moment that page
closes mid-slice. Reported: p50, p95 and the slowest of each window.

    python bench/bench_zero_gpu_close.py [--window 10] [--visitors 10] [--out results.jsonl]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import ROOT, serving  # noqa: E402
from gradio_http import Visitor, app_config  # noqa: E402
from results import emit  # noqa: E402

errors: list[str] = []


def comparing(url: str, config: dict, stop: threading.Event, latencies: list, pace_s: float) -> None:
    visitor = Visitor(url, config)
    visitor.call("load", "")
    while not stop.is_set():
        started = time.time()
        try:
            visitor.call("compare", "default", "Why is the sky blue?", "Rayleigh scattering.", "It is not.", True)
        except Exception as exc:  # noqa: BLE001 (counted, and the first of each kind said)
            errors.append(f"{type(exc).__name__}: {getattr(getattr(exc, 'response', None), 'text', exc)}"[:300])
            time.sleep(pace_s)
            continue
        latencies.append((started, time.time() - started))
        time.sleep(pace_s)
    visitor.close()


def summary(name: str, latencies: list, since: float, until: float) -> dict:
    taken = np.array([s for t, s in latencies if since <= t < until])
    return {
        "bench": "zero_gpu_close",
        "window": name,
        "compares": int(taken.size),
        "p50_s": round(float(np.percentile(taken, 50)), 3) if taken.size else None,
        "p95_s": round(float(np.percentile(taken, 95)), 3) if taken.size else None,
        "max_s": round(float(taken.max()), 3) if taken.size else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=10.0, help="seconds of each window")
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--pace", type=float, default=0.5, help="seconds between one visitor's compares")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright

    tests = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    with (
        tempfile.TemporaryDirectory() as tmp,
        serving(
            Path(tmp) / "runs",
            script="tests/zero_gpu_app.py",
            env_extra={"PYTHONPATH": tests},
            log=Path(tmp) / "app.log",
        ) as app,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(app.url)
        page.click("#use-workshop")
        expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=60_000)
        page.get_by_role("tab", name="3 · Train").click()
        page.locator("#slice-seconds input").fill("30")
        page.locator("#slice-seconds input").press("Tab")
        page.click("#start-train")
        expect(page.locator("#train-message")).to_contain_text("Training on the borrowed GPU: step", timeout=120_000)
        config, stop, latencies = app_config(app.url), threading.Event(), []
        threads = [
            threading.Thread(target=comparing, args=(app.url, config, stop, latencies, args.pace), daemon=True)
            for _ in range(args.visitors)
        ]
        for thread in threads:
            thread.start()
        time.sleep(2)  # every visitor loaded and comparing
        open_from = time.time()
        time.sleep(args.window)
        closed_at = time.time()
        page.close()  # mid-slice: the slice's close waits for the worker's step and checkpoint
        time.sleep(args.window)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        browser.close()
        emit(summary("training, its page open", latencies, open_from, closed_at), args.out)
        emit(summary("from the page's close", latencies, closed_at, closed_at + args.window), args.out)
        log = (Path(tmp) / "app.log").read_text()
        emit(
            {
                "bench": "zero_gpu_close",
                "errors": len(errors),
                "first_errors": sorted(set(errors))[:3],
                "tracebacks_in_the_app_log": log.count("Traceback"),
            },
            args.out,
        )


if __name__ == "__main__":
    main()
