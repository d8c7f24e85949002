"""Benchmark: what bounds a Compare's fp32 forward pass on this CPU (compute, memory, or the kernels).

Times, each as the median of 300 calls:

* MiniLM's 36 encoder matrix products (6 layers x q, k, v, out, up, down; 42 MB of fp32 weights)
  for M rows (M = 2: one token per answer; M = 28: a Compare of two 14-token texts), every layer's
  own weights ("streamed", as in a real pass) and one layer's weights six times ("cached");
* the same with MKL's packed weights (`torch.ops.mkl._mkl_linear`, what inductor's freezing uses);
* summing 44 MB (the memory's speed) and large products (the CPU's fp32 and bf16 peak);
* the default model's Compare batch (2 texts, padded) against the two texts on two threads, one each.

    python bench/bench_compare_floor.py
"""

from __future__ import annotations

import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

SHAPES = [(384, 384)] * 4 + [(1536, 384), (384, 1536)]  # (out, in) of one MiniLM layer's linears


def median_ms(fn, calls: int = 300) -> float:
    with torch.inference_mode():
        for _ in range(20):
            fn()
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2] * 1e3


def matrix_products(rows: int) -> None:
    torch.manual_seed(0)
    layers = [[(torch.randn(o, i) * 0.05, torch.randn(o) * 0.05) for o, i in SHAPES] for _ in range(6)]
    x, wide = torch.randn(rows, 384), torch.randn(rows, 1536)

    def run(stack):
        for layer in stack:
            for j, (w, b) in enumerate(layer):
                F.linear(wide if j == 5 else x, w, b)

    packed = [[(torch.ops.mkl._mkl_reorder_linear_weight(w, rows), w, b) for w, b in layer] for layer in layers]

    def run_packed():
        for layer in packed:
            for j, (p, w, b) in enumerate(layer):
                torch.ops.mkl._mkl_linear(wide if j == 5 else x, p, w, b, rows)

    streamed, cached = median_ms(lambda: run(layers)), median_ms(lambda: run([layers[0]] * 6))
    gflop = 2 * rows * sum(o * i for o, i in SHAPES) * 6 / 1e9
    print(
        f"M={rows:2}: streamed {streamed:.2f} ms ({gflop / streamed * 1e3:.0f} GFLOPS), cached {cached:.2f} ms, "
        f"MKL packed {median_ms(run_packed):.2f} ms"
    )


def peaks() -> None:
    big = torch.randn(11_000_000)
    ms = median_ms(big.sum)
    print(f"sum over 44 MB: {ms:.2f} ms ({44 / ms:.0f} GB/s)")
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        ms = median_ms(lambda a=a, b=b: a @ b, calls=10)
        print(f"2048x2048 product, {dtype}: {2 * 2048**3 / ms / 1e6:.0f} GFLOPS")


def compare_batch() -> None:
    from rm_demo.score import Scorer

    scorer = Scorer("default")
    model, tok = scorer.model, scorer.tokenizer
    question = "How do I keep a cactus alive indoors?"
    answers = ("Water it every two weeks.", "Just leave it anywhere.")
    batch = tok([question] * 2, list(answers), return_tensors="pt", padding=True)
    singles = [tok(question, a, return_tensors="pt") for a in answers]
    pool = ThreadPoolExecutor(2, initializer=lambda: torch.set_num_threads(1))

    def one(encoded):
        with torch.inference_mode():
            return model(**encoded).logits

    for round_no in range(3):
        batched = median_ms(lambda: model(**batch).logits)
        threaded = median_ms(lambda: list(pool.map(one, singles)))
        print(
            f"round {round_no + 1}: Compare batch of 2 {batched:.2f} ms; two threads, one text each {threaded:.2f} ms"
        )


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    peaks()
    for rows in (2, 28):
        matrix_products(rows)
    compare_batch()


if __name__ == "__main__":
    main()
