"""After training: evaluation report, scoring, compare, export (zip loads back), run history."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from transformers import AutoModelForSequenceClassification

from rm_demo.access import Viewer
from rm_demo.app import eval_tab, runs_tab
from rm_demo.errors import InputError
from rm_demo.evaluate import evaluate_run, heldout_pairs, run_split
from rm_demo.export import export_run, push_to_hub
from rm_demo.runs import RunFolder, list_runs
from rm_demo.text import MIN_HELD_OUT_PAIRS
from rm_demo.text import wilson_interval as wilson
from rm_demo.train import TrainConfig, train

pytestmark = pytest.mark.slow
# 47 hand-written rows with a `rater` column that varies within a question (the slices need one).
WORKSHOP = Path(__file__).parent / "data" / "rated_feedback.csv"
ME = Viewer()  # a private app: runs made outside the app (here, by train()) are this person's


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    final = train(
        TrainConfig(
            input=str(WORKSHOP),
            output_dir=str(root / "workshop"),
            epochs=1,
            batch_size=4,
            min_steps=10,
            learning_rate=1e-4,
            eval_fraction=0.3,
            max_length=128,
            source_name="my feedback.csv",
        ),
        progress=False,
    )
    assert final["status"] == "completed"
    return root / "workshop"


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "rm_demo", *args], capture_output=True, text=True)


def test_the_record_the_curves_and_evaluate_give_one_held_out_accuracy(run_dir):
    """The model menu, the Runs table and the card read run.json; the Evaluate tab reads eval.json; the
    chart's star reads metrics.jsonl. TRL's own figure (batch-averaged, bf16) differed from all of them."""
    final = json.loads((run_dir / "run.json").read_text())["final_metrics"]
    saved = json.loads((run_dir / "eval.json").read_text())  # written when training ended
    star = [m for m in RunFolder(run_dir).metrics() if m.get("final") and "eval_accuracy" in m]
    assert final["eval_accuracy"] == saved["accuracy"] == star[-1]["eval_accuracy"]
    assert "trainer_eval_accuracy" in final
    from rm_demo import plots
    from rm_demo.text import accuracy_phrase

    names = [trace.name for trace in plots.accuracy_curves(RunFolder(run_dir).metrics()).data]
    shown = accuracy_phrase(saved["accuracy"], saved["pairs"], short=True)
    assert f"saved model: {shown}" in names  # the star says its figure with n and the interval


def test_evaluation_report(run_dir):
    report = evaluate_run(run_dir)
    saved = json.loads((run_dir / "eval.json").read_text())
    chosen, rejected = np.array(report["rewards"]["chosen"]), np.array(report["rewards"]["rejected"])
    assert saved["accuracy"] == report["accuracy"] == report["correct"] / report["pairs"]
    assert report["correct"] == int(np.sum(chosen > rejected))  # the rewards it reports give its figure
    low, high = report["accuracy_interval"]
    assert low < report["accuracy"] < high and (low, high) == pytest.approx(wilson(report["correct"], report["pairs"]))
    assert report["pairs"] == json.loads((run_dir / "run.json").read_text())["data"]["eval_pairs"]
    assert report["base"]["model"] == "default" and report["base"]["pairs"] == report["pairs"]
    assert sum(b["count"] for b in report["calibration"]) == 2 * report["pairs"]
    assert all(m["margin"] <= 0 for m in report["worst_mistakes"])
    assert len(report["rewards"]["chosen"]) == report["pairs"]
    assert ("note" in report) == (report["pairs"] < MIN_HELD_OUT_PAIRS)


def test_an_evaluation_on_a_handful_of_pairs_says_so(run_dir, tmp_path):
    pairs = tmp_path / "three.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"prompt": f"Q{i}?", "chosen": "A good answer.", "rejected": "No."}) + "\n" for i in range(3)
        )
    )
    result = _cli("evaluate", "--model", str(run_dir / "model"), str(pairs))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["note"] == "only 3 pairs: too few for the accuracy to mean much (at least 10 needed)"
    assert report["length_warning"] is None  # 3 pairs make no length pattern either


def test_cli_compare_and_score(run_dir, tmp_path):
    proc = _cli(
        "compare",
        "--model",
        str(run_dir / "model"),
        "--question",
        "Why is the sky blue?",
        "--answer-a",
        "Rayleigh scattering of sunlight.",
        "--answer-b",
        "Nobody knows.",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert set(result) == {"reward_a", "reward_b", "p_a_preferred"} and 0 < result["p_a_preferred"] < 1
    answers = tmp_path / "answers.csv"
    answers.write_text('id,question,answer\n1,Why?,Because.\n2,Why?,=HYPERLINK("x")\n')
    proc = _cli(
        "score", "--model", str(run_dir / "model"), "--input", str(answers), "-o", str(tmp_path / "scored.csv")
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = (tmp_path / "scored.csv").read_text().splitlines()
    assert lines[0] == "id,question,answer,reward" and len(lines) == 3 and "'=HYPERLINK" in lines[2]


def test_export_zip_loads_back(run_dir, tmp_path):
    (run_dir / "eval.json").unlink(missing_ok=True)  # export evaluates when the report is missing
    archive = export_run(run_dir, tmp_path / "run.zip")
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "unzipped")
    assert {
        "workshop/run.json",
        "workshop/eval.json",
        "workshop/model/README.md",
        "workshop/model/config.json",
    } <= names
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "unzipped" / "workshop" / "model")
    assert model.config.num_labels == 1
    card = (tmp_path / "unzipped" / "workshop" / "model" / "README.md").read_text()
    assert "pairwise accuracy" in card and "from_pretrained" in card


def test_cli_export_says_what_it_wrote_and_nothing_else(run_dir, tmp_path, capsys):
    """Its reload check (the card's snippet, transformers alone) printed a "Loading weights" bar."""
    from rm_demo import cli

    assert cli.main(["export", str(run_dir), "-o", str(tmp_path / "first.zip")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("wrote") and "first.zip" in out and "Loading weights" not in err, err


def test_push_offline_is_a_clear_message(run_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="could not push to the Hub"):
        push_to_hub(run_dir, "someone/rm", "hf_fake")


def test_history_and_the_runs_tab(run_dir):
    root = run_dir.parent
    (root / "half-written").mkdir()
    (root / "half-written" / "run.json").write_text("{ not json")
    statuses = {r.name: r.status for r in list_runs(root)}
    assert statuses == {"workshop": "completed", "half-written": "unreadable"}
    table, overlay_menu, run_menu, eval_menu = runs_tab.refresh(root, ME)
    row = table.set_index("run").loc["workshop"]
    # Defect 6: the uploaded name (not data.csv), every pair (train + held out), a rounded accuracy.
    info = json.loads((run_dir / "run.json").read_text())["data"]
    assert row["data"] == "my feedback.csv" and row["pairs"] == info["train_pairs"] + info["eval_pairs"]
    assert row["held out"] == info["eval_pairs"]
    # a percentage only from enough held-out pairs (the workshop sample holds out a handful)
    assert row["held-out acc"] == "too few" if info["eval_pairs"] < 10 else row["held-out acc"].endswith("%")
    runtime = json.loads((run_dir / "run.json").read_text())["final_metrics"]["train_runtime_s"]
    assert row["minutes"] == round(runtime / 60, 1)
    assert run_menu["value"] == eval_menu["value"] == "workshop"  # preselected: the newest run with a model
    view = eval_tab.evaluate_view(root, "workshop", ME, slice_by="rater", min_pairs=1)
    assert "held-out accuracy" in view.summary and "the longer answer wins" in view.summary
    assert view.histogram is not None and view.calibration is not None and view.length_scatter is not None
    assert (
        set(view.slices.columns) == {"value", "pairs", "accuracy"} and view.slices["pairs"].max() <= info["eval_pairs"]
    )
    assert view.slices["pairs"].sum() >= info["eval_pairs"]  # a pair counts for each rater of either answer
    assert view.slice_columns == ["question", "rater"]
    few = eval_tab.evaluate_view(root, "workshop", ME, min_pairs=info["eval_pairs"] + 1)
    assert "too few" in few.summary and not few.histogram.data and not few.calibration.data  # no zigzags
    acc_fig, loss_fig = runs_tab.overlay(root, ["workshop"], ME)
    assert len(acc_fig.data) == 1 and len(loss_fig.data) == 1
    assert "Tick" in runs_tab.remove_run(root, "half-written", False, ME)
    assert "Deleted" in runs_tab.remove_run(root, "half-written", True, ME)
    with pytest.raises(InputError):
        runs_tab.remove_run(root, "../../etc", True, ME)


def test_score_a_file_shows_the_rewards(run_dir, tmp_path):
    # Defect 8: "Scored." and nothing else; errors under a closed section.
    answers = tmp_path / "answers.csv"
    answers.write_text("id;question;answer\n1;Why?;Because.\n2;Why?;=HYPERLINK(1)\n3;Why?;Nobody knows\n")
    message, preview, out = runs_tab.score_view(
        run_dir.parent, "workshop", ME, str(answers), "auto", "semicolon", tmp_path
    )
    assert "Scored **3** answers" in message and list(preview.columns) == ["question", "answer", "reward"]
    assert list(preview["reward"]) == sorted(preview["reward"], reverse=True)
    assert "'=HYPERLINK(1)" in open(out).read()
    with pytest.raises(InputError, match="upload"):
        runs_tab.score_view(run_dir.parent, "workshop", ME, None, "auto", "auto", tmp_path)


def test_the_model_card_snippet_gives_the_apps_reward(run_dir, tmp_path):
    # Defect 9: the card's snippet passed token_type_ids and gave another reward than the app.
    import re

    from rm_demo.export import model_card
    from rm_demo.runs import RunFolder
    from rm_demo.score import Scorer

    card = model_card(RunFolder(run_dir))
    template = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    # Issue 26: an answer longer than the run's 128 tokens crashed the snippet ("Sequence to truncate too short").
    for question, answer in (
        ("Why is the sky blue?", "Rayleigh scattering of sunlight by the air."),
        ("Why is the sky blue? " * 10, "Because the air scatters blue light more than red light. " * 25),
    ):
        code = (
            template.replace('"PATH"', repr(str(run_dir / "model")))
            .replace('"question"', repr(question))
            .replace('"answer"', repr(answer))
        )
        scope = {}
        exec(code, scope)
        expected = Scorer(str(run_dir / "model")).score([question], [answer])[0]
        assert scope["reward"] == pytest.approx(expected, abs=1e-4)


def test_export_reload_check_catches_a_broken_head(run_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from rm_demo.export import check_reload

    assert check_reload(RunFolder(run_dir))["checked"]
    broken = tmp_path / "runs" / "broken"
    shutil.copytree(run_dir, broken)
    weights = load_file(broken / "model" / "model.safetensors")
    head = next(k for k in weights if k.endswith("classifier.weight") or k.endswith("score.weight"))
    weights[head] = weights[head] * 0 + 0.5
    save_file(weights, broken / "model" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match="does not reproduce the run"):
        export_run(broken, tmp_path / "broken.zip")
    assert not (tmp_path / "broken.zip").exists()


def test_evaluation_reports_length_baselines_and_slices(run_dir):
    report = evaluate_run(run_dir, slice_by=["question", "rater"])
    b = report["baselines"]
    lengths_c, lengths_r = np.array(report["lengths"]["chosen"]), np.array(report["lengths"]["rejected"])
    assert b["longer_answer"]["accuracy"] == pytest.approx(np.mean(lengths_c > lengths_r))  # ties are wrong
    assert b["shorter_answer"]["accuracy"] == pytest.approx(np.mean(lengths_c < lengths_r))
    rewards = np.concatenate([report["rewards"]["chosen"], report["rewards"]["rejected"]])
    rho = spearmanr(np.concatenate([lengths_c, lengths_r]), rewards).statistic
    assert report["length_correlation"] == pytest.approx(rho, abs=1e-3)
    slices = report["slices"]["question"]
    assert (
        sum(v["pairs"] for v in slices.values()) == report["pairs"] and report["slices_by"]["question"] == "question"
    )
    # Raters differ within a question: a pair counts for every rater of either of its answers, computed here
    # from the file and the held-out pairs by text.
    assert report["slices_by"]["rater"] == "ratings"
    raw = pd.read_csv(WORKSHOP)
    held_out = heldout_pairs(RunFolder(run_dir))
    raters_of = raw.groupby(["question", "answer"])["rater"].agg(set)
    expected = {}
    for pair in held_out.itertuples():
        for rater in raters_of[(pair.prompt, pair.chosen)] | raters_of[(pair.prompt, pair.rejected)]:
            expected[rater] = expected.get(rater, 0) + 1
    assert {v: s["pairs"] for v, s in report["slices"]["rater"].items()} == expected
    assert report["reward_stats"]["std"] == pytest.approx(np.std(rewards), abs=1e-4)
    assert report["reward_stats"]["min"] == pytest.approx(rewards.min(), abs=1e-4)


def test_the_model_card_says_how_to_serve_and_read_it(run_dir):
    from rm_demo.export import model_card

    card = model_card(RunFolder(run_dir))
    assert "## Input format" in card and "text-embeddings-router" in card and "vllm" in card.lower()
    assert "## Reading a reward" in card and '"owner"' not in card and '"input"' not in card


def test_a_saved_encoder_ignores_token_type_ids(run_dir):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model").eval()
    inputs = tok("Why is the sky blue?", "Rayleigh scattering.", return_tensors="pt")
    assert inputs["token_type_ids"].max() == 1
    with torch.inference_mode():
        with_types = model(**inputs).logits[0, 0]
        inputs.pop("token_type_ids")
        without = model(**inputs).logits[0, 0]
    assert torch.allclose(with_types, without)


def test_a_new_slice_uses_the_saved_rewards_without_loading_a_model(run_dir, monkeypatch):
    evaluate_run(run_dir, slice_by=["rater"])

    def no_model(*args, **kwargs):
        raise AssertionError("a slice must not load or run a model again")

    monkeypatch.setattr("rm_demo.evaluate.Scorer", no_model)
    view = eval_tab.evaluate_view(run_dir.parent, "workshop", ME, slice_by="question", min_pairs=1)
    assert view.slices["pairs"].sum() == json.loads((run_dir / "run.json").read_text())["data"]["eval_pairs"]
    saved = json.loads((run_dir / "eval.json").read_text())
    assert set(saved["slices"]) == {"rater", "question"}  # the earlier slice is kept


def test_a_run_is_evaluated_on_the_pairs_it_saved_whatever_the_pairing_code_does(run_dir, monkeypatch):
    """Issue 39: the pairs and split saved at Start are the run's; with the derivation disabled (as after a
    change to the pairing code) the evaluation is byte for byte the same, slices included."""
    from rm_demo.run_pairs import ANSWERS_FILE, PAIRS_FILE, REPORT_FILE

    assert not (run_dir / ANSWERS_FILE).exists()  # a pairwise run has no use for its rated answers
    evaluate_run(run_dir, slice_by=["rater", "question"])
    before = (run_dir / "eval.json").read_bytes()
    assert (run_dir / PAIRS_FILE).exists() and (run_dir / REPORT_FILE).exists()

    def no_derivation(*args, **kwargs):
        raise AssertionError("a saved run's pairs are read, not derived again")

    monkeypatch.setattr("rm_demo.pairs.derive_pairs", no_derivation)
    monkeypatch.setattr("rm_demo.pairs.split_by_question", no_derivation)
    evaluate_run(run_dir, slice_by=["rater", "question"])
    assert (run_dir / "eval.json").read_bytes() == before
    trained, held = run_split(RunFolder(run_dir))
    record = json.loads((run_dir / "run.json").read_text())["data"]
    assert (len(trained), len(held)) == (record["train_pairs"], record["eval_pairs"])
    assert not set(trained["prompt"]) & set(held["prompt"])  # the split is by question, as saved


def test_a_run_from_before_the_saved_pairs_derives_them_once_then_reads_them(run_dir, tmp_path, monkeypatch):
    import shutil

    from rm_demo.run_pairs import PAIRS_FILE, REPORT_FILE

    old = tmp_path / "old"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns(PAIRS_FILE, REPORT_FILE, "model", "trainer"))
    assert not (old / PAIRS_FILE).exists()
    first = run_split(RunFolder(old))
    assert (old / PAIRS_FILE).exists() and (old / REPORT_FILE).exists()
    monkeypatch.setattr("rm_demo.pairs.derive_pairs", lambda *a, **k: pytest.fail("derived twice"))
    again = run_split(RunFolder(old))
    for a, b in zip(first, again):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(again[1], heldout_pairs(RunFolder(run_dir)))  # the same pairs as the original
