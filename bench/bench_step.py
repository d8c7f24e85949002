"""Benchmark: one training step of the embedded MiniLM, the way `rm_demo train` runs it on this CPU.

A step is the Bradley-Terry loss of a batch of pairs (chosen and rejected in one forward pass,
bf16 autocast where the CPU has it), backward, gradient clipping and fused AdamW, on random token
ids of a few lengths near `--max-length` (length-grouped batches vary a little). Variants, run in
turns so that a drifting machine hits all of them alike:

* trained: every weight trains, dropout off (TRL's `disable_dropout`; rm_demo before 2026-11-26);
* frozen: the input word embeddings stay as loaded (`--train-embeddings` off);
* dropout: frozen, with the checkpoint's dropout (0.1 on hidden states and attention weights);
* hidden-dropout: frozen, dropout on hidden states only (attention weights undropped);
* frozen-N: frozen, and the first N encoder layers too (no backward through them);
* VARIANT+first: the same, with the last layer past its attention run for the first token only
  (`last_layer_reads_first_token_only`, the default since 2026-11-26);
* VARIANT+eager: the same, with plain (eager) attention instead of SDPA, as `rm_demo train` picks on
  the CPU for texts up to 256 tokens (the default since a fourth session of 2026-11-26);
* compiled: `torch.compile(dynamic=True)` of the whole model, every weight training; its first two
  steps (the compilation) are reported apart.

    python bench/bench_step.py                          # trained frozen, 2 rounds
    python bench/bench_step.py --variants trained compiled --rounds 1
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
from transformers import AutoModelForSequenceClassification
from trl.trainer.utils import disable_dropout_in_model

from rm_demo.models import choose_device, default_model_path, last_layer_reads_first_token_only

VARIANTS = ("trained", "frozen", "dropout", "hidden-dropout", "compiled", "frozen-2", "frozen-3")
VARIANTS += tuple(f"{variant}+first" for variant in VARIANTS if variant != "compiled")
VARIANTS += tuple(f"{variant}+eager" for variant in VARIANTS if variant != "compiled")


def make_step(variant: str, pairs: int):
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(str(default_model_path()), num_labels=1)
    if variant.endswith("+eager"):
        variant = variant.removesuffix("+eager")
        model.set_attn_implementation("eager")
    if variant.endswith("+first"):
        variant = variant.removesuffix("+first")
        last_layer_reads_first_token_only(model)
    model.train()
    if variant not in ("dropout", "hidden-dropout"):
        disable_dropout_in_model(model)
    if variant == "hidden-dropout":
        for layer in model.bert.encoder.layer:
            layer.attention.self.dropout.p = 0.0
    if variant not in ("trained", "compiled"):
        model.get_input_embeddings().weight.requires_grad_(False)
    if variant.startswith("frozen-"):  # the embeddings and the first N encoder layers stay as loaded
        for layer in model.bert.encoder.layer[: int(variant.split("-")[1])]:
            layer.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    forward = torch.compile(model, dynamic=True) if variant == "compiled" else model
    bf16 = choose_device("cpu", "auto").precision == "bf16"

    def step(length: int) -> None:
        ids = torch.randint(1000, 20000, (2 * pairs, length))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            rewards = forward(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.squeeze(-1)
        loss = -torch.nn.functional.logsigmoid(rewards[:pairs] - rewards[pairs:]).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["trained", "frozen"], choices=VARIANTS)
    parser.add_argument("--pairs", type=int, default=16, help="pairs per step (the default batch size)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}", flush=True)
    lengths = [args.max_length - offset for offset in (0, 8, 24, 40)]
    steps = {variant: make_step(variant, args.pairs) for variant in args.variants}
    for variant, step in steps.items():  # warm-up (and, for compiled, the compilation), untimed below
        start = time.perf_counter()
        step(lengths[0])
        step(lengths[1])
        print(f"{variant:9} first two steps {time.perf_counter() - start:6.2f} s", flush=True)
    for round_ in range(1, args.rounds + 1):
        for variant, step in steps.items():
            start = time.perf_counter()
            for i in range(args.steps):
                step(lengths[i % len(lengths)])
            per_step = (time.perf_counter() - start) / args.steps
            print(f"round {round_}: {variant:9} {per_step:.3f} s per step of {args.pairs} pairs", flush=True)


if __name__ == "__main__":
    main()
