"""The first Compare after start-up, as a person meets it: start `python app.py`, open the page in
Chromium as soon as the server answers, press Compare, time the click until the result shows.

    python bench/bench_first_compare.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import serving  # noqa: E402


def one() -> tuple[float, float]:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp) / "runs") as app:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.goto(app.url)
            page.get_by_role("tab", name="4 · Compare").click()
            page.fill("#question textarea", "How do I water a cactus?")
            page.fill("#answer-a textarea", "Sparingly, when the soil is dry.")
            page.fill("#answer-b textarea", "Every hour.")
            click = time.time()
            page.click("#compare-btn")
            expect(page.locator("#compare-message")).to_contain_text("prefers", timeout=60_000)
            first = time.time() - click
            browser.close()
    return app.ready_s, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for i in range(args.repeat):
        ready, first = one()
        print(f"run {i + 1}: server answered after {ready:.1f} s; first Compare, click to result: {first:.2f} s")


if __name__ == "__main__":
    main()
