"""End to end in Debian's Chromium, driven by Playwright, as a presenter uses the app.

Data twice (charts must fit their boxes), a file whose columns are mapped by hand, training to the
end, the untrained base staying picked, before/after Compare, the Runs tab. Screenshots of each step
go to test-artifacts/ (RM_DEMO_SCREENSHOTS changes where).
"""

import math
import os
import re
import time
import zipfile
from pathlib import Path

import pytest
from conftest import serve_app

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (make test installs it)"
    ),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    proc, url = serve_app(tmp_path_factory.mktemp("app"))
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def workshop_url(tmp_path_factory):
    """One app for a room: a facilitator secret is set, runs belong to the browser that started them."""
    tmp = tmp_path_factory.mktemp("workshop")
    (tmp / "tmp").mkdir()
    # GRADIO_IS_E2E_TEST: gradio drops a closed page's state after 1 s instead of an hour (the clean-up below).
    proc, url = serve_app(tmp, RM_DEMO_FACILITATOR_SECRET="room-42", TMPDIR=str(tmp / "tmp"), GRADIO_IS_E2E_TEST="1")
    yield url, tmp / "tmp"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("RM_DEMO_SCREENSHOTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _choose(page, elem_id: str, option: str) -> None:
    """Pick an option of one dropdown (its list is found through the input's aria-controls)."""
    box = page.locator(f"#{elem_id} input")
    box.click()
    listbox = box.get_attribute("aria-controls")
    scope = page.locator(f"[id='{listbox}']") if listbox else page
    scope.get_by_role("option", name=option, exact=True).click()
    box.press("Escape")


def _stars_file(tmp_path) -> Path:
    """A header no automatic mapping knows: q, a, stars."""
    rows = ["q,a,stars"]
    for i in range(8):
        rows += [
            f"Question {i}: how do I reset my password?,Open settings and choose Reset password {i}.,5",
            f"Question {i}: how do I reset my password?,No idea {i}.,1",
        ]
    path = tmp_path / "stars.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _ten_point_file(tmp_path) -> Path:
    """Scores out of ten, under a header with its scale in it."""
    rows = ["question,answer,Rating (0-10)"]
    for i in range(3):
        rows += [f"Ten-point question {i}?,A careful answer {i}.,9", f"Ten-point question {i}?,Nope {i}.,3"]
    path = tmp_path / "ten.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _charts_fit(page) -> None:
    """Every Pairs chart's drawing lies inside its box (it was 700 px wide in a 395 px box)."""
    from playwright.sync_api import expect

    charts = page.locator(".pairs-chart")
    expect(charts.first.locator(".main-svg").first).to_be_visible(timeout=20_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('.pairs-chart')].every(box => {
        const svg = box.querySelector('.main-svg'); if (!svg) return false;
        const b = box.getBoundingClientRect(), s = svg.getBoundingClientRect();
        return s.width > 100 && s.left >= b.left - 1 && s.right <= b.right + 1; })""",
        timeout=20_000,
    )
    for i in range(charts.count()):
        box, svg = charts.nth(i).bounding_box(), charts.nth(i).locator(".main-svg").first.bounding_box()
        assert svg["x"] >= box["x"] - 1 and svg["x"] + svg["width"] <= box["x"] + box["width"] + 1, (i, box, svg)


def test_a_presenters_session(app_url, browser, shots, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)

    # A 0-10 file, its suggested thresholds, then a *different* file: the suggestion stays with its
    # file, and the charts drawn while their tab was hidden still fit their boxes (issue 24: 3 and 4).
    page.set_input_files("#upload input[type=file]", str(_ten_point_file(tmp_path)))
    expect(page.locator("#data-message")).to_contain_text("score ← Rating (0-10)", timeout=30_000)
    expect(page.locator("#data-message")).to_contain_text("Use the suggested thresholds")
    page.click("#use-suggested")
    expect(page.locator("#chosen-min textarea, #chosen-min input").first).to_have_value("7.5", timeout=10_000)
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("3 pairs from 3 questions", timeout=30_000)
    page.get_by_role("tab", name="1 · Data").click()
    page.click("#use-workshop")
    expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=30_000)
    expect(page.locator("#data-message")).to_contain_text("were cleared", timeout=30_000)
    expect(page.locator("#chosen-min textarea, #chosen-min input").first).to_have_value("")
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("pairs from 193 questions")
    _charts_fit(page)
    page.screenshot(path=shots / "2-pairs.png", full_page=True)

    # Switch the strategy and type a gap at once: the preview and training use the gap typed (issue 24: 2).
    page.get_by_role("tab", name="1 · Data").click()
    page.get_by_role("radio", name="all-pairs").check()
    gap = page.locator("#min-margin textarea, #min-margin input").first
    gap.press_sequentially("2", delay=0)
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("gap ≥ 2", timeout=30_000)
    page.wait_for_timeout(1500)  # a late answer of the first edit would show "gap ≥ 1" here
    expect(page.locator("#pairs-summary")).to_contain_text("gap ≥ 2")
    page.get_by_role("tab", name="1 · Data").click()
    gap.fill("")
    page.get_by_role("radio", name="best-worst").check()
    expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv")

    # A file with an unknown header: the menus offer its columns; mapped by hand, it gives pairs.
    page.get_by_role("tab", name="1 · Data").click()
    page.get_by_role("button", name="Clear").first.click()  # the first upload's file, shown in the box
    page.set_input_files("#upload input[type=file]", str(_stars_file(tmp_path)))
    expect(page.locator("#data-message")).to_contain_text("Could not use this file", timeout=30_000)
    for elem_id, column in (("question-col", "q"), ("answer-col", "a"), ("score-col", "stars")):
        _choose(page, elem_id, column)
    expect(page.locator("#data-message")).to_contain_text("score ← stars", timeout=30_000)
    page.screenshot(path=shots / "1-data.png", full_page=True)
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("8 pairs from 8 questions")

    # Train with the mapped columns; the epochs note explains the raised epochs; the job completes.
    page.get_by_role("tab", name="3 · Train").click()
    page.locator("#batch-size input").fill("4")
    page.locator("#batch-size input").press("Tab")
    expect(page.locator("#epochs-note")).to_contain_text("epochs instead of", timeout=10_000)
    # The command, before Start: the mapped columns and the batch size typed a moment ago are in it.
    page.get_by_text("Command", exact=True).first.click()
    preview = page.locator("#command-preview")
    expect(preview).to_contain_text("--batch-size 4", timeout=10_000)
    expect(preview).to_contain_text("--question-col q --answer-col a --score-col stars")
    page.click("#start-train")
    expect(page.locator("#train-message")).to_contain_text("Started")
    expect(page.locator("#loss-plot .scatterlayer .trace").first).to_be_attached(timeout=120_000)
    expect(page.locator('#rm-progress[data-status="completed"]')).to_be_attached(timeout=240_000)
    expect(page.locator("#run-status")).to_contain_text("ready in step 4")
    expect(page.locator("#run-status")).not_to_contain_text("Held-out accuracy")  # 2 held-out pairs: no headline
    expect(page.locator("#run-status")).to_contain_text("The command for this run")  # the CLI line that redoes it
    page.screenshot(path=shots / "3-trained.png", full_page=True)

    # Compare: the finished run is picked; the untrained base, once chosen, stays chosen.
    page.get_by_role("tab", name="4 · Compare").click()
    picker = page.locator("#model-pick input")
    expect(picker).to_have_value(re.compile(r"^\d{8}-\d{6}-stars"), timeout=10_000)
    _choose(page, "model-pick", "untrained base (embedded MiniLM)")
    page.wait_for_timeout(10_000)  # the old timer re-sent the run's model every second
    expect(picker).to_have_value("untrained base (embedded MiniLM)")
    page.click("#compare-btn")
    expect(page.locator("#compare-message")).to_contain_text("Fill in")

    # Before / after on an example from the data: two rows, and P(A) agrees with the rewards.
    page.click("#model-pick input")
    page.get_by_role("option").filter(has_text="-stars", visible=True).first.click()
    page.click("#example-btn")
    expect(page.locator("#question textarea")).not_to_have_value("", timeout=10_000)
    page.click("#compare-btn")
    rows = page.locator("#compare-results tbody tr")
    expect(rows).to_have_count(2, timeout=60_000)
    expect(page.locator("#compare-message")).to_contain_text("Before training")
    for i in range(2):
        cells = rows.nth(i).locator("td").all_inner_texts()
        reward_a, reward_b, p_a = float(cells[1]), float(cells[2]), float(cells[4].rstrip("%")) / 100
        assert p_a == pytest.approx(1 / (1 + math.exp(-(reward_a - reward_b))), abs=0.001)
    page.screenshot(path=shots / "4-compare.png", full_page=True)

    # Rank several answers (best-of-N) with the trained run: sorted, P(best) adds up to 100%.
    page.get_by_text("Rank several answers (best-of-N)").click()
    page.locator("#rank-answers textarea").fill(
        "Open settings and choose Reset password 3.\nNo idea.\nTry turning it off."
    )
    page.click("#rank-btn")
    expect(page.locator("#rank-message")).to_contain_text("3 answers", timeout=30_000)
    expect(page.locator("#rank-table [role=grid]")).to_have_attribute("aria-rowcount", "4")  # header + 3
    text = page.locator("#rank-table [role=grid]").inner_text()
    assert text.index("Open settings") < text.index("No idea")  # what this run learned to prefer
    shares = [float(s) for s in re.findall(r"(\d+\.\d)%", text)]
    assert len(shares) == 3 and shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(100, abs=0.2)
    page.screenshot(path=shots / "4-rank.png", full_page=True)

    # Explain: each word's colour is its effect's sign, read from the page (issue 24: 1).
    page.get_by_text("Explain: which words move each reward").click()
    page.click("#explain-btn")
    words = page.locator("#explain-a .explained-word")
    expect(words.first).to_be_attached(timeout=60_000)
    expect(page.locator("#explain-message")).to_contain_text("green")
    checked = 0
    for i in range(words.count()):
        word = words.nth(i)
        contribution = float(word.get_attribute("data-contribution"))
        red, green, _ = map(int, re.findall(r"\d+", word.evaluate("e => getComputedStyle(e).backgroundColor"))[:3])
        if contribution:
            assert (green > red) == (contribution > 0), (word.inner_text(), contribution, red, green)
            checked += 1
    assert checked, "no word moved the reward"
    page.screenshot(path=shots / "4-explain.png", full_page=True)

    # Editing an answer clears the old result.
    page.locator("#answer-b textarea").fill("Something else entirely.")
    expect(page.locator("#compare-message")).to_contain_text("Rewards appear here")
    expect(rows).to_have_count(0)

    # Runs: listed without a refresh, the upload's own name, the run preselected.
    page.reload()
    page.get_by_role("tab", name="5 · Runs").click()
    expect(page.locator("#runs-table")).to_contain_text("stars.csv", timeout=20_000)
    expect(page.locator("#run-pick input")).to_have_value(re.compile(r"-stars-[0-9a-f]{6}$"))
    page.screenshot(path=shots / "5-runs.png", full_page=True)
    # Export: the zip box appears with the run's zip, and what downloads is the model and its card.
    expect(page.locator("#run-zip")).to_be_hidden()
    page.get_by_role("button", name="Export zip").click()
    link = page.locator("#run-zip a[download]").first
    expect(link).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        link.click()
    with zipfile.ZipFile(download.value.path()) as exported:
        names = exported.namelist()
    assert any(name.endswith("README.md") for name in names) and any("model" in name for name in names), names
    # Score a file of answers with the run: a preview, then the scored CSV appears to download.
    answers = tmp_path / "to-score.csv"
    answers.write_text(
        "question,answer\nHow do I reset my password?,Open settings.\nHow do I reset my password?,No.\n"
    )
    page.get_by_text("Score a file of answers").click()
    expect(page.locator("#scored-file")).to_be_hidden()
    page.set_input_files("#score-upload input[type=file]", str(answers))
    page.click("#score-btn")
    expect(page.locator("#score-message")).to_contain_text("Scored 2", timeout=60_000)
    scored = page.locator("#scored-file a[download]").first
    expect(scored).to_be_visible(timeout=20_000)
    with page.expect_download() as download:
        scored.click()
    assert Path(download.value.path()).read_text().splitlines()[0].split(",")[-1] == "reward"

    # Evaluate: a run of 2 held-out pairs shows no percentage, says why.
    page.get_by_role("tab", name="6 · Evaluate").click()
    _choose(page, "eval-run-pick", page.locator("#run-pick input").input_value())
    page.click("#eval-btn")
    expect(page.locator("#eval-summary")).to_contain_text("held out only", timeout=60_000)
    page.screenshot(path=shots / "6-evaluate-too-few.png", full_page=True)
    page.close()


def test_two_visitors_one_app(workshop_url, browser, shots, tmp_path):
    workshop_url, app_tmp = workshop_url
    """A uploads and trains; B opens every tab, refreshes, opens the menus and presses Stop. B never sees
    A's run or data, and A's run completes."""
    from playwright.sync_api import expect

    private = tmp_path / "alice-private-feedback.csv"
    rows = ["question,answer,score"]
    for i in range(6):
        rows += [f"ALICE-ONLY question {i}?,A careful answer {i}.,5", f"ALICE-ONLY question {i}?,Nope {i}.,1"]
    private.write_text("\n".join(rows) + "\n")
    alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    alice.goto(workshop_url)
    bob.goto(workshop_url)

    alice.set_input_files("#upload input[type=file]", str(private))
    expect(alice.locator("#data-message")).to_contain_text("alice-private-feedback.csv", timeout=30_000)
    session_files = list(app_tmp.glob("rm_demo_*"))
    assert len(session_files) == 1  # Alice's session folder: her pairs downloads
    alice.get_by_role("tab", name="3 · Train").click()
    alice.locator("#batch-size input").fill("4")
    alice.click("#start-train")
    expect(alice.locator("#train-message")).to_contain_text("Started")
    run_name = alice.locator("#train-message strong").inner_text()

    def bob_sees_nothing_of_alice():
        text = bob.content()
        assert run_name not in text and "ALICE-ONLY" not in text and "alice-private" not in text

    for tab in ("1 · Data", "2 · Pairs", "3 · Train", "4 · Compare", "5 · Runs", "Facilitator"):
        bob.get_by_role("tab", name=tab).click()
        bob_sees_nothing_of_alice()
    bob.get_by_role("tab", name="5 · Runs").click()
    bob.get_by_role("button", name="↻ Refresh").first.click()
    bob.click("#run-pick input")
    bob_sees_nothing_of_alice()
    bob.keyboard.press("Escape")
    bob.get_by_role("tab", name="4 · Compare").click()
    bob.get_by_role("button", name="↻ runs").click()
    bob.click("#model-pick input")
    expect(bob.get_by_role("option")).to_have_count(1)  # the untrained base only
    bob.keyboard.press("Escape")
    bob.get_by_role("tab", name="3 · Train").click()
    bob.click("#stop-train")
    expect(bob.locator("#train-message")).to_contain_text("No run to stop")
    bob.get_by_role("tab", name="Facilitator").click()
    bob.fill("#facilitator-secret input", "a guess")
    bob.click("#facilitator-unlock")
    expect(bob.locator("#facilitator-message")).to_contain_text("not the facilitator secret", timeout=10_000)
    bob.reload()
    bob_sees_nothing_of_alice()

    expect(alice.locator('#rm-progress[data-status="completed"]')).to_be_attached(timeout=240_000)
    alice.reload()  # a reload is the same visitor: the run is still Alice's
    # ... but a new page session: the old one's folder goes with it (gradio drops closed sessions' state)
    deadline = time.time() + 30
    while session_files[0].exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not session_files[0].exists()
    alice.get_by_role("tab", name="5 · Runs").click()
    expect(alice.locator("#runs-table")).to_contain_text(run_name, timeout=20_000)
    expect(alice.locator("#runs-table")).to_contain_text("alice-private-feedback.csv")
    alice.screenshot(path=shots / "6-alice-runs.png", full_page=True)
    bob.get_by_role("tab", name="5 · Runs").click()
    bob.get_by_role("button", name="↻ Refresh").first.click()
    bob.wait_for_timeout(1000)
    bob_sees_nothing_of_alice()
    bob.screenshot(path=shots / "6-bob-runs.png", full_page=True)


def test_two_visitors_two_exports(app_url, browser, shots):
    """Two visitors upload different tools' exports at once: each page says what it recognised, and a
    rater setting changed on one page changes that page's accounting only."""
    from playwright.sync_api import expect

    formats = ROOT / "tests" / "data" / "formats"
    ann = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    bo = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for page in (ann, bo):
        page.goto(app_url)
    ann.set_input_files("#upload input[type=file]", str(formats / "label_studio_ratings.json"))
    bo.set_input_files("#upload input[type=file]", str(formats / "chatbot_arena.json"))
    expect(ann.locator("#data-message")).to_contain_text("Recognised: Label Studio JSON export", timeout=30_000)
    expect(ann.locator("#data-message")).to_contain_text("Krippendorff's alpha (interval) 0.850, too few items")
    expect(bo.locator("#data-message")).to_contain_text("Recognised: Chatbot Arena conversations", timeout=30_000)
    ann.locator("#aggregate").get_by_text("median", exact=True).click()
    expect(ann.locator("#data-message")).to_contain_text("median of an answer's scores", timeout=30_000)
    ann.screenshot(path=str(shots / "formats-data.png"))
    bo.get_by_role("tab", name="2 · Pairs").click()
    expect(bo.locator("#pairs-summary")).to_contain_text("2 ties kept in the count", timeout=30_000)
    assert "label_studio_ratings" not in bo.content() and "median" not in bo.locator("#data-message").inner_text()
    bo.screenshot(path=str(shots / "formats-pairs.png"), full_page=True)


def test_a_pasted_or_deleted_threshold_reaches_the_preview(app_url, browser):
    """Issue 37: a real Ctrl+V of 4.5 into *Chosen score at least*, then select-all and Backspace, each
    change the Pairs preview (before, only typing did: the screen showed 4.5 while the pairs said 4)."""
    from playwright.sync_api import expect

    clipboard = ["clipboard-read", "clipboard-write"]
    visitor = browser.new_context(viewport={"width": 1400, "height": 1000}, permissions=clipboard)
    page = visitor.new_page()
    page.goto(app_url)
    page.click("#use-workshop")
    expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=30_000)

    def pairs_say(text: str) -> None:
        page.get_by_role("tab", name="2 · Pairs").click()
        expect(page.locator("#pairs-summary")).to_contain_text(text, timeout=20_000)
        page.get_by_role("tab", name="1 · Data").click()

    pairs_say("chosen ≥ 4,")
    box = page.locator("#chosen-min textarea, #chosen-min input").first
    page.evaluate("navigator.clipboard.writeText('4.5')")
    box.click()
    page.keyboard.press("Control+V")
    expect(box).to_have_value("4.5")
    pairs_say("chosen ≥ 4.5")
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    expect(box).to_have_value("")
    pairs_say("chosen ≥ 4,")  # blank: the default again
    visitor.close()


def test_a_value_typed_while_the_preview_runs_is_kept(app_url, browser, tmp_path):
    """Issue 37: right after a strategy click the preview runs (seconds on a big file); a click and a value
    typed into a threshold box meanwhile must land there and reach the pairs (the progress overlay
    covered the box and took them)."""
    from playwright.sync_api import expect

    rows = ["question,answer,score"] + [f"Q{i},answer {j} to {i},{j + 1}" for i in range(20_000) for j in range(5)]
    big = tmp_path / "big.csv"
    big.write_text("\n".join(rows) + "\n")
    visitor = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = visitor.new_page()
    page.goto(app_url)
    page.set_input_files("#upload input[type=file]", str(big))
    expect(page.locator("#data-message")).to_contain_text("big.csv", timeout=60_000)
    box = page.locator("#chosen-min textarea, #chosen-min input").first
    where = box.bounding_box()
    page.get_by_role("radio", name="all-pairs").check()  # a preview of 100,000 rows starts
    expect(page.locator("#data-message")).to_contain_text("processing", timeout=10_000)  # it is running
    # as a person clicks: now, where the box is (Playwright's own click would wait for an overlay to go)
    page.mouse.click(where["x"] + where["width"] / 2, where["y"] + where["height"] / 2)
    page.keyboard.type("4")
    expect(box).to_have_value("4")
    page.get_by_role("tab", name="2 · Pairs").click()
    # all-pairs with chosen >= 4: 7 of the 10 pairs of each question (200000 without the threshold)
    expect(page.locator("#pairs-summary")).to_contain_text("140000 pairs from 20000 questions", timeout=60_000)
    visitor.close()


def test_zero_gpu_a_closed_page_pauses_the_run_and_resume_finishes_it(browser, shots, tmp_path):
    """On a ZeroGPU Space (its GPU worker played by a forked stand-in) the page drives the GPU slices:
    closing it mid-slice leaves a paused run with a checkpoint, and Resume on a new page completes it."""
    import json

    from playwright.sync_api import expect

    tests = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    proc, url = serve_app(tmp_path, "tests/zero_gpu_app.py", PYTHONPATH=tests)
    try:
        visitor = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = visitor.new_page()
        page.goto(url)
        page.click("#use-workshop")
        expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=30_000)
        page.get_by_role("tab", name="3 · Train").click()
        expect(page.locator("#device")).to_contain_text("ZeroGPU")
        page.locator("#slice-seconds input").fill("3")
        page.locator("#slice-seconds input").press("Tab")
        expect(page.locator("#gpu-note")).to_contain_text("GPU seconds")
        expect(page.locator("#gpu-note")).to_contain_text("of at most 3 s")
        page.click("#start-train")
        expect(page.locator("#train-message")).to_contain_text("Training on the borrowed GPU: step", timeout=60_000)
        # the run's folder, not the browser secret or a lock file kept beside it
        run = next(path for path in (tmp_path / "runs").iterdir() if path.is_dir() and not path.name.startswith("."))
        deadline = time.time() + 120
        while max((json.loads(line).get("step", 0) for line in _lines(run / "metrics.jsonl")), default=0) < 5:
            assert time.time() < deadline, "no step 5 in two minutes"
            time.sleep(0.2)
        page.screenshot(path=shots / "zero-gpu-1-training.png", full_page=True)
        page.close()  # the visitor closes the tab mid-run
        deadline = time.time() + 60
        while json.loads((run / "run.json").read_text()).get("status") != "paused":
            assert time.time() < deadline, (run / "run.json").read_text()
            time.sleep(0.2)
        record = json.loads((run / "run.json").read_text())
        assert record["paused_at_step"] < 30 and list((run / "trainer").glob("checkpoint-*"))

        again = visitor.new_page()  # the same browser comes back
        again.goto(url)
        again.get_by_role("tab", name="3 · Train").click()
        expect(again.locator('#rm-progress[data-status="paused"]')).to_be_attached(timeout=20_000)
        again.click("#resume-train")
        expect(again.locator("#train-message")).to_contain_text("Resuming", timeout=20_000)
        expect(again.locator('#rm-progress[data-status="completed"]')).to_be_attached(timeout=240_000)
        expect(again.locator("#train-message")).to_contain_text("Trained on the GPU")
        # the log box shows the slices' lines (they went to the app's stderr and the box stayed empty)
        expect(again.locator("#log-tail textarea")).to_have_value(re.compile("the saved model, every held-out pair"))
        again.screenshot(path=shots / "zero-gpu-2-resumed.png", full_page=True)
        final = json.loads((run / "run.json").read_text())
        assert final["status"] == "completed" and final["slices"] >= 2 and final["final_metrics"]["steps"] == 30
        assert "Traceback" not in (tmp_path / "app.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_second_file_starts_from_its_own_settings(app_url, browser):
    """Issue 37: the held-out share (0.5) and the raters' rule (median) set for one file stayed when the next
    file came; each is the default again, and the notes and pairs read back are the new file's."""
    from playwright.sync_api import expect

    from rm_demo.config import default

    visitor = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = visitor.new_page()
    page.goto(app_url)
    page.click("#use-workshop")
    expect(page.locator("#data-message")).to_contain_text("workshop_feedback.csv", timeout=30_000)
    page.locator("#aggregate").get_by_label("median").check()
    page.get_by_role("tab", name="3 · Train").click()
    held_out = page.locator("#held-out input[type=number]")
    held_out.fill("0.5")
    held_out.press("Enter")
    expect(page.locator("#epochs-note")).to_contain_text("held out", timeout=20_000)
    workshop_note = page.locator("#epochs-note").inner_text()

    page.get_by_role("tab", name="1 · Data").click()
    page.click("#use-seed")
    expect(page.locator("#data-message")).to_contain_text("seed_feedback.csv", timeout=30_000)
    expect(page.locator("#aggregate").get_by_label("mean")).to_be_checked()
    page.get_by_role("tab", name="3 · Train").click()
    expect(held_out).to_have_value(f"{default('eval_fraction'):g}")
    expect(page.locator("#epochs-note")).not_to_have_text(workshop_note, timeout=20_000)
    # the article's 3 pairs at the default share (at 0.5: "1 training pairs, 2 held out")
    expect(page.locator("#epochs-note")).to_contain_text("2 training pairs, 1 held out")
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("6 rows read = 6 used + 0 dropped", timeout=20_000)
    visitor.close()


def _drop_zone_shown(page, box: str) -> None:
    """An empty upload box shows its whole drop zone (icon, "Drop File Here", "Click to Upload") below its
    label and inside the box: a wrapped label in a 90 px box once covered the icon and cut off the words."""
    page.wait_for_selector(f"{box} button svg", timeout=30_000)
    parts = page.eval_on_selector(
        box,
        """box => {
        const rect = r => ({top: r.top, bottom: r.bottom});
        const out = {box: rect(box.getBoundingClientRect()),
                     label: rect(box.querySelector('label').getBoundingClientRect()),
                     icon: rect(box.querySelector('button svg').getBoundingClientRect()), words: {}};
        const walker = document.createTreeWalker(box.querySelector('button'), NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            const text = n.textContent.trim();
            if (text) { const range = document.createRange(); range.selectNode(n);
                        out.words[text] = rect(range.getBoundingClientRect()); }
        }
        return out; }""",
    )
    assert {"Drop File Here", "Click to Upload"} <= set(parts["words"]), parts
    for name, part in [("icon", parts["icon"]), *parts["words"].items()]:
        assert part["top"] >= parts["label"]["bottom"] - 1, (name, parts)
        assert part["bottom"] <= parts["box"]["bottom"] + 1, (name, parts)


def test_a_tracing_export_in_two_files_is_two_uploads(app_url, browser):
    """Issue 36: Langfuse's observations and its v3 scores, as the SDK writes them, in the two upload boxes:
    the first alone says what is missing; both read to the three pairs a person makes by hand."""
    from playwright.sync_api import expect

    real = ROOT / "tests" / "data" / "formats" / "real"
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.goto(app_url)
    _drop_zone_shown(page, "#second-upload")
    page.set_input_files("#upload input[type=file]", str(real / "langfuse_v2_observations.json"))
    expect(page.locator("#data-message")).to_contain_text("Langfuse traces or observations alone", timeout=30_000)
    page.set_input_files("#second-upload input[type=file]", str(real / "langfuse_v3_scores.json"))
    expect(page.locator("#data-message")).to_contain_text("Joined: langfuse_v2_observations.json", timeout=30_000)
    expect(page.locator("#data-message")).to_contain_text("Recognised: Langfuse scores and traces")
    page.click("#use-suggested")  # the scores run 0 to 1
    page.get_by_role("tab", name="2 · Pairs").click()
    expect(page.locator("#pairs-summary")).to_contain_text("3 pairs from 3 questions", timeout=20_000)
    # the second file taken away: the first is read alone again, not the joined data
    page.get_by_role("tab", name="1 · Data").click()
    page.locator("#second-upload").get_by_role("button", name="Clear").click()
    expect(page.locator("#data-message")).to_contain_text("Langfuse traces or observations alone", timeout=30_000)
    page.context.close()
