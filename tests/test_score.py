"""Scoring: exact fp32 by default; bf16 (where the CPU has it natively) for batch scoring, within rounding."""

import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from rm_demo.models import cpu_has_native_bf16
from rm_demo.score import Scorer

PROMPTS = ["How do I water a cactus?"] * 4
ANSWERS = ["Sparingly, when the soil is dry.", "Every hour.", "Never water it at all, cacti live on air.", "Weekly."]


def test_the_default_scorer_is_fp32_and_repeatable():
    scorer = Scorer("default", device="cpu")
    assert scorer.choice.precision == "fp32"
    assert np.array_equal(scorer.score(PROMPTS, ANSWERS), scorer.score(PROMPTS, ANSWERS))


def test_scoring_reports_its_batches_from_the_start(tmp_path, capsys):
    """`rm_demo score`'s bar starts when the number of batches is known: it drew "0batch" with no total."""
    from rm_demo import cli

    reports = []
    Scorer("default", device="cpu", batch_size=3).score(PROMPTS, ANSWERS, progress=lambda *a: reports.append(a))
    assert reports == [(0, 2), (1, 2), (2, 2)]
    pd.DataFrame({"question": PROMPTS, "answer": ANSWERS}).to_csv(tmp_path / "a.csv", index=False)
    argv = ["score", "--input", tmp_path / "a.csv", "-o", tmp_path / "s.csv", "--batch-size", "3"]
    assert cli.main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert "0/2" in err and "2/2" in err and "scoring: 0batch" not in err, err  # not a rate of "40.30batch/s"


@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_scores_within_rounding_of_fp32():
    exact = Scorer("default", device="cpu").score(PROMPTS, ANSWERS)
    fast = Scorer("default", device="cpu", precision="auto")
    assert fast.choice.precision == "bf16"
    assert np.abs(fast.score(PROMPTS, ANSWERS) - exact).max() < 0.05


class _FakeScorer:
    """A 'model' of `megabytes` of fp32 weights; a model named slow* waits for `release`."""

    started, release = threading.Event(), threading.Event()
    loads: list[str] = []

    def __init__(self, model: str, max_length: int | None = None):
        if model.startswith("slow"):
            self.started.set()
            assert self.release.wait(10)
        megabytes = int(model.split("-")[-1])
        self.model_path = model  # a name that is no folder resolves to itself, as a hub id does
        self.model = torch.nn.Linear(megabytes * 2**18, 1, bias=False)  # 2^18 floats = 1 MB
        self.loads.append(model)


@pytest.fixture
def fake_scorers(monkeypatch):
    from rm_demo import score

    monkeypatch.setattr(score, "Scorer", _FakeScorer)
    _FakeScorer.loads.clear()
    _FakeScorer.started.clear()
    _FakeScorer.release.clear()
    return score


def test_the_scorer_cache_keeps_models_within_its_memory_budget(fake_scorers):
    cache = fake_scorers.ScorerCache(budget_bytes=2.5 * 2**20)
    a = cache.get("a-1")
    cache.get("b-1")
    assert cache.get("a-1") is a  # a hit, and now the most recently used
    cache.get("c-1")  # 3 MB > 2.5 MB: b, the least recently used, goes
    assert cache.models() == ["a-1", "c-1"] and cache.get("a-1") is a
    cache.get("big-5")  # bigger than the whole budget: it stays, alone
    assert cache.models() == ["big-5"]
    assert (cache.hits, cache.misses) == (2, 4) and _FakeScorer.loads == ["a-1", "b-1", "c-1", "big-5"]


def test_a_slow_load_holds_up_no_other_model_and_loads_once(fake_scorers):
    from concurrent.futures import ThreadPoolExecutor

    cache = fake_scorers.ScorerCache(budget_bytes=2**30)
    cached = cache.get("fast-1")
    with ThreadPoolExecutor(3) as pool:
        first, second = pool.submit(cache.get, "slow-1"), pool.submit(cache.get, "slow-1")
        assert _FakeScorer.started.wait(10)
        assert pool.submit(cache.get, "fast-1").result(timeout=5) is cached  # while slow-1 is loading
        assert not first.done()
        _FakeScorer.release.set()
        assert first.result(10) is second.result(10)
    assert _FakeScorer.loads.count("slow-1") == 1


def test_a_model_loading_while_the_cache_is_cleared_is_not_kept(fake_scorers):
    """forget_scorer() after a run is deleted: a load begun before must not bring its model back."""
    from concurrent.futures import ThreadPoolExecutor

    cache = fake_scorers.ScorerCache(budget_bytes=2**30)
    with ThreadPoolExecutor(1) as pool:
        loading = pool.submit(cache.get, "slow-1")
        assert _FakeScorer.started.wait(10)
        cache.clear()
        _FakeScorer.release.set()
        assert loading.result(10) is not None  # the click still gets its answer
    assert cache.models() == []


def test_one_model_loads_at_a_time_and_a_click_goes_before_the_preloads(fake_scorers):
    """Loads are GIL-bound: two at once each take twice as long. A click's load goes before queued preloads."""
    from concurrent.futures import ThreadPoolExecutor

    cache = fake_scorers.ScorerCache(budget_bytes=2**30)
    with ThreadPoolExecutor(3) as pool:
        slow = pool.submit(cache.get, "slow-1")  # a load in progress holds the one load slot
        assert _FakeScorer.started.wait(10)
        preload = pool.submit(cache.get, "preloaded-1", None, True)
        click = pool.submit(cache.get, "clicked-1")
        deadline = time.time() + 10
        while cache._clicks_waiting == 0 and time.time() < deadline:  # the click is queued for the slot
            time.sleep(0.01)
        assert _FakeScorer.loads == []  # neither began while slow-1 loads
        _FakeScorer.release.set()
        slow.result(10), click.result(10), preload.result(10)
    assert _FakeScorer.loads == ["slow-1", "clicked-1", "preloaded-1"]


def test_a_run_shares_its_frozen_word_embeddings_with_the_base_and_scores_the_same(tmp_path):
    """Training keeps the word embeddings frozen: held once for the base and every run, rewards unchanged."""
    from rm_demo.score import ScorerCache

    base = Scorer("default")
    base.model.save_pretrained(tmp_path / "run")
    base.tokenizer.save_pretrained(tmp_path / "run")
    with torch.no_grad():  # a trained run: every weight moved except the frozen word embeddings
        for name, param in base.model.named_parameters():
            if "word_embeddings" not in name:
                param.add_(0.01)
    base.model.save_pretrained(tmp_path / "run")
    alone = Scorer(str(tmp_path / "run")).compare("What is a cactus?", "A plant.", "A fish.")
    cache = ScorerCache(budget_bytes=2**31)
    held_base = cache.get("default")
    before = cache.bytes_held()
    run = cache.get(str(tmp_path / "run"))
    run_embeddings = run.model.get_input_embeddings().weight
    assert run_embeddings.data_ptr() == held_base.model.get_input_embeddings().weight.data_ptr()
    assert cache.bytes_held() - before < before - run_embeddings.numel() * 4 + 2**20  # the table counted once
    assert run.compare("What is a cactus?", "A plant.", "A fish.") == pytest.approx(alone, abs=1e-7)


def _run_of_the_base(folder, shift: float = 0.01):
    """A run folder as training leaves one (config.json naming the embedded base, run.json, model/), its
    weights moved from the base's except the frozen word embeddings."""
    import json

    from rm_demo.config import TrainConfig
    from rm_demo.runs import RunFolder

    run = RunFolder(folder)
    run.write_config(TrainConfig(model="default", max_length=96))
    (folder / "run.json").write_text(json.dumps({"status": "completed"}))
    base = Scorer("default")
    with torch.no_grad():
        for name, param in base.model.named_parameters():
            if "word_embeddings" not in name:
                param.add_(shift)
    base.model.save_pretrained(folder / "model")
    base.tokenizer.save_pretrained(folder / "model")
    return str(folder / "model")


def test_a_runs_model_is_built_beside_its_loaded_base_reading_only_its_weights(tmp_path, monkeypatch):
    """Issue 41, cold Compare: with the base loaded, a run of it is the base's architecture and tokenizer with
    the run's weights read from its one file: the same rewards as a full load, no from_pretrained."""
    from rm_demo import models
    from rm_demo.score import ScorerCache

    model = _run_of_the_base(tmp_path / "run")
    alone = Scorer(model)
    texts = (["What is a cactus?"] * 3, ["A plant.", "A fish.", "A desert plant that stores water."])
    cache = ScorerCache(budget_bytes=2**31)
    base = cache.get("default")

    def no_load(*args, **kwargs):
        raise AssertionError("a run of a loaded base is not loaded from scratch")

    monkeypatch.setattr(models, "load_reward_model", no_load)
    monkeypatch.setattr("rm_demo.score.load_reward_model", no_load)
    run = cache.get(model)
    assert run.tokenizer is base.tokenizer and run.model is not base.model and run.max_length == 96
    np.testing.assert_allclose(run.score(*texts), alone.score(*texts), atol=1e-6)
    assert not np.allclose(run.score(*texts), base.score(*texts), atol=1e-3)  # the run's weights, not the base's


def test_a_run_unlike_its_base_is_loaded_in_full(tmp_path):
    """Another tokenizer (a vocabulary entry changed) or weights of another shape: no shortcut, a full load."""
    import json

    model = _run_of_the_base(tmp_path / "run")
    base = Scorer("default")
    tokenizer = json.loads((tmp_path / "run" / "model" / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab["cactusx"] = vocab.pop(next(word for word in vocab if word.isalpha() and len(word) > 6))
    (tmp_path / "run" / "model" / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert Scorer.beside(base, model) is None
    other = _run_of_the_base(tmp_path / "other")
    from safetensors.torch import load_file, save_file

    state = load_file(f"{other}/model.safetensors")
    state["classifier.weight"] = torch.zeros(2, state["classifier.weight"].shape[1])
    save_file(state, f"{other}/model.safetensors")
    assert Scorer.beside(base, other) is None


def test_a_model_held_at_one_length_serves_another_without_a_load(tmp_path, monkeypatch):
    """Cold Compare: the app warms the base at 256 tokens and a run compares against it at the run's length
    (128 by default). That second length is the held model and tokenizer reading fewer tokens, not a second
    `from_pretrained` (0.6 s under a room's load, holding every other click's load behind it)."""
    from rm_demo import models
    from rm_demo.score import ScorerCache

    long_answer = " ".join(["The soil should dry out completely between waterings."] * 30)
    texts = (["How do I water a cactus?"] * 2, [long_answer, "Every hour."])
    alone = Scorer("default", max_length=64).score(*texts)
    cache = ScorerCache(budget_bytes=2**31)
    held = cache.get("default")
    before = cache.bytes_held()

    def no_load(*args, **kwargs):
        raise AssertionError("a model held at another length is not loaded again")

    monkeypatch.setattr(models, "load_reward_model", no_load)
    monkeypatch.setattr("rm_demo.score.load_reward_model", no_load)
    short = cache.get("default", 64)
    assert short.model is held.model and short.tokenizer is held.tokenizer
    assert (short.max_length, held.max_length) == (64, 256) and cache.bytes_held() == before
    np.testing.assert_allclose(short.score(*texts), alone, atol=1e-6)  # cut at 64 tokens, as a full load cuts
    assert not np.allclose(held.score(*texts)[0], alone[0], atol=1e-3)  # 256 tokens read more of the long answer
    assert cache.get("default", 64) is short and cache.models() == ["default", "default@64"]
