"""A presenter's whole journey, timed as the room waits for it: start `python app.py`, open the page in
Chromium, press *Use the workshop sample*, train with the form's defaults, fill in an example on the
Compare tab and compare it before and after; then Evaluate the run.

Reports the time from the sample click to the first compared pair (and its parts), the run's
held-out pairs and accuracy against the untrained base, as the Evaluate tab shows them.

    python bench/bench_journey.py [--repeat 2] [--out results.jsonl] [--shots docs]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_server import serving  # noqa: E402
from results import emit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def one(shots: Path | None = None) -> dict:
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp) / "runs") as app:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app.url)
            start = time.time()
            page.click("#use-workshop")
            expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=60_000)
            loaded = time.time() - start
            page.get_by_role("tab", name="3 · Train").click()
            page.click("#start-train")
            expect(page.locator("#train-message")).to_contain_text("Started", timeout=30_000)
            expect(page.locator('#rm-progress[data-status="completed"]')).to_be_attached(timeout=900_000)
            trained = time.time() - start
            page.get_by_role("tab", name="4 · Compare").click()
            page.click("#example-btn")
            expect(page.locator("#question textarea")).not_to_have_value("", timeout=30_000)
            page.click("#compare-btn")
            expect(page.locator("#compare-results tbody tr")).to_have_count(2, timeout=120_000)
            compared = time.time() - start
            if shots:
                page.screenshot(path=shots / "4-compare.png", full_page=True)
            page.get_by_role("tab", name="6 · Evaluate").click()
            run = page.locator("#eval-run-pick input")
            run.click()
            page.get_by_role("option").first.click()
            page.click("#eval-btn")
            summary = page.locator("#eval-summary")
            expect(summary).to_contain_text("held-out accuracy", timeout=120_000)
            text = summary.inner_text()
            if shots:
                page.wait_for_timeout(1000)  # the charts' drawing
                page.screenshot(path=shots / "6-evaluate.png", full_page=True)
            browser.close()
    shown = r"accuracy ([\d.]+)% of (\d+) pairs \(95% interval ([\d.]+)-([\d.]+)%\) \(untrained base: ([\d.]+)%"
    accuracy, pairs, low, high, base = re.search(shown, text).groups()
    return {
        "bench": "journey",
        "sample_loaded_s": round(loaded, 1),
        "trained_s": round(trained, 1),
        "first_compared_pair_s": round(compared, 1),
        "held_out_pairs": int(pairs),
        "held_out_accuracy": float(accuracy) / 100,
        "held_out_interval": [float(low) / 100, float(high) / 100],
        "base_accuracy": float(base) / 100,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--shots", type=Path, help="save the Compare and Evaluate pages here (docs/ for the README)")
    args = parser.parse_args()
    for i in range(args.repeat):
        emit({"run": i + 1, **one(args.shots if i == 0 else None)}, args.out)


if __name__ == "__main__":
    main()
