"""The first Compare after start-up, as a person meets it: start `python app.py`, open the page in
Chromium as soon as the server answers, press Compare, time the click until the result shows.

    python bench/bench_first_compare.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(port: int) -> tuple[float, float]:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ, RM_DEMO_RUNS=str(Path(tmp) / "runs"), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False"
        )
        start = time.time()
        app = subprocess.Popen(
            [sys.executable, "app.py", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            ready = time.time() - start
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.get_by_role("tab", name="4 · Compare").click()
                page.fill("#question textarea", "How do I water a cactus?")
                page.fill("#answer-a textarea", "Sparingly, when the soil is dry.")
                page.fill("#answer-b textarea", "Every hour.")
                click = time.time()
                page.click("#compare-btn")
                expect(page.locator("#compare-message")).to_contain_text("prefers", timeout=60_000)
                first = time.time() - click
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=30)
    return ready, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for i in range(args.repeat):
        ready, first = one(port)
        print(f"run {i + 1}: server answered after {ready:.1f} s; first Compare, click to result: {first:.2f} s")


if __name__ == "__main__":
    main()
