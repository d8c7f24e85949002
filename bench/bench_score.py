"""Benchmark: scoring speed with the embedded model on the CPU, model already loaded.

1. compare two short answers (what the app's Compare button does): p50 and p95 latency, in rounds
   against the same model with its whole last layer (before `last_layer_reads_first_token_only`);
2. batch scoring of 2,000 answers of <= 64 tokens (HH-RLHF answers, cut to 64 tokens):
   `Scorer.score` (length-sorted batches, no gradient) against a naive loop that tokenizes and runs
   the model one answer at a time, in the same run.

    python bench/bench_score.py [--answers 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def answers(n: int, tokenizer) -> tuple[list[str], list[str]]:
    from rm_demo.feedback import split_shared_prompt

    prompts, texts = [], []
    for line in gzip.open(DATA, "rt", encoding="utf-8"):
        row = json.loads(line)
        prompt, chosen, rejected = split_shared_prompt(row["chosen"], row["rejected"])
        question = prompt.strip().split("Human:")[-1].replace("Assistant:", "").strip()
        for answer in (chosen, rejected):
            ids = tokenizer(question, answer.strip(), truncation=True, max_length=64)["input_ids"]
            if len(ids) <= 64 and answer.strip():
                prompts.append(question)
                texts.append(answer.strip())
        if len(texts) >= n:
            break
    return prompts[:n], texts[:n]


def plain_model():
    """The default reward model as plain transformers loads it (with rm_demo's identity pooler)."""
    from transformers import AutoModelForSequenceClassification

    from rm_demo.models import default_model_path, reset_untrained_pooler

    path = str(default_model_path())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the reward head's start, as `load_reward_model` seeds it
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    reset_untrained_pooler(model, path)
    return model.eval()


def compare_latencies(scorer, calls: int) -> list[float]:
    for _ in range(5):  # warm-up
        scorer.compare("What is your name?", "My name is Amit.", "Amit is my name.")
    latencies = []
    for i in range(calls):
        start = time.perf_counter()
        scorer.compare("What is your name?", f"My name is Amit ({i}).", "Answer : Amit is my name")
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=2000)
    parser.add_argument("--compares", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="Compare: rounds of the two variants in turns")
    args = parser.parse_args()
    from rm_demo.score import Scorer

    scorer = Scorer("default", device="cpu")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}"
    )

    # The same model without the last-layer cut (`last_layer_reads_first_token_only`): what the app ran
    # before 2026-11-26, and what a plain transformers loop runs.
    plain = Scorer("default", device="cpu")
    plain.model = plain_model()
    for round_ in range(1, args.rounds + 1):
        for name, candidate in (("whole last layer", plain), ("rm_demo (first token only)", scorer)):
            latencies = compare_latencies(candidate, args.compares)
            print(
                f"round {round_}: compare two short answers, {name}: p50 {np.percentile(latencies, 50):.1f} ms, "
                f"p95 {np.percentile(latencies, 95):.1f} ms ({args.compares} calls)",
                flush=True,
            )

    prompts, texts = answers(args.answers, scorer.tokenizer)
    start = time.perf_counter()
    batched = scorer.score(prompts, texts)
    batch_s = time.perf_counter() - start
    fast = Scorer("default", device="cpu", precision="auto")  # what `rm_demo score` uses: bf16 where native
    fast.score(prompts[:64], texts[:64])  # warm-up
    start = time.perf_counter()
    fast_rewards = fast.score(prompts, texts)
    fast_s = time.perf_counter() - start

    model, tok = plain.model, scorer.tokenizer
    naive = []
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt, text in zip(prompts, texts):
            enc = tok(prompt, text, return_tensors="pt", truncation=True, max_length=scorer.max_length)
            enc.pop("token_type_ids", None)
            naive.append(model(**enc).logits[0, 0].item())
    naive_s = time.perf_counter() - start
    agree = np.corrcoef(batched, np.array(naive))[0, 1]
    diff = np.abs(fast_rewards - np.array(naive))
    print(
        f"rm_demo score (precision {fast.choice.precision}): {len(texts) / fast_s:.0f} answers/s, "
        f"{naive_s / fast_s:.1f}x the naive loop; |reward - fp32 reward| mean {diff.mean():.4f}, max {diff.max():.4f}"
    )
    print(
        f"batch scoring {len(texts)} answers (<= 64 tokens): rm_demo Scorer {len(texts) / batch_s:.0f} answers/s, "
        f"naive one-at-a-time loop {len(texts) / naive_s:.0f} answers/s, speed-up {naive_s / batch_s:.1f}x; "
        f"rewards agree (Pearson r = {agree:.4f})"
    )


if __name__ == "__main__":
    main()
