"""End to end in Debian's Chromium, driven by Playwright: sample -> pairs -> train -> compare.

Screenshots of each step go to test-artifacts/ (set RM_DEMO_SCREENSHOTS to change where).
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path):
    port = _free_port()
    env = dict(os.environ, RM_DEMO_RUNS=str(tmp_path / "runs"), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("the app did not start:\n" + (tmp_path / "app.log").read_text()[-3000:])
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)")
def test_sample_to_compared_pair(app_url):
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("RM_DEMO_SCREENSHOTS", ROOT / "test-artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url)

        # 1. Data: one click on the sample.
        page.click("#use-seed")
        expect(page.locator("#data-message")).to_contain_text("mac_roman", timeout=30_000)
        page.screenshot(path=shots / "1-data.png", full_page=True)

        # 2. Pairs: three rows in the table.
        page.get_by_role("tab", name="2 · Pairs").click()
        expect(page.locator("#pairs-summary")).to_contain_text("3 pairs from 3 questions")
        expect(page.locator("#pairs-table [role=grid]")).to_have_attribute("aria-rowcount", "4")  # header + 3 pairs
        expect(page.locator("#pairs-table [role=grid]")).to_contain_text("Answer : My name is Amit")
        page.screenshot(path=shots / "2-pairs.png", full_page=True)

        # 3. Train: a short run; the loss chart gets points; it finishes.
        page.get_by_role("tab", name="3 · Train").click()
        page.get_by_label("Epochs").fill("4")
        page.get_by_label("Batch size (pairs)").fill("2")
        page.click("#start-train")
        expect(page.locator("#loss-plot .scatterlayer .trace").first).to_be_attached(timeout=120_000)
        page.screenshot(path=shots / "3-training.png", full_page=True)
        expect(page.locator('#rm-progress[data-status="completed"]')).to_be_attached(timeout=240_000)
        expect(page.locator("#run-status")).to_contain_text("ready in step 4")
        page.screenshot(path=shots / "3-trained.png", full_page=True)

        # 4. Compare: an example from the data, two rewards.
        page.get_by_role("tab", name="4 · Compare").click()
        page.get_by_role("button", name="Fill in an example from my pairs").click()
        expect(page.locator("#question textarea")).not_to_have_value("", timeout=10_000)
        page.click("#compare-btn")
        expect(page.locator("#compare-message")).to_contain_text("The model prefers", timeout=60_000)
        reward_a, reward_b = page.locator("#reward-a input"), page.locator("#reward-b input")
        expect(reward_a).to_have_value(re.compile(r"^-?\d"), timeout=60_000)
        expect(reward_b).to_have_value(re.compile(r"^-?\d"))
        values = [float(reward_a.input_value()), float(reward_b.input_value())]
        assert values[0] != values[1]
        assert "held-out acc" in page.locator("#model-pick input").input_value() or page.locator("#model-pick").inner_text()
        page.screenshot(path=shots / "4-compare.png", full_page=True)
        browser.close()
