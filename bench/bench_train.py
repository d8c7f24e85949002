"""Benchmark: plain TRL (as its docs show it) vs `rm_demo train`, same model, data and settings.

Data: Anthropic HH-RLHF harmless-base test split from ../shared/data: the first 2,000 pairs train,
the last 312 are held out. Model: the embedded all-MiniLM-L6-v2. Both runs use the same epochs,
batch size, learning rate and max length; each is timed around `trainer.train()` only.

Held-out accuracy is measured on all 312 pairs for both: plain TRL's model scores the full
transcript the way its trainer saw it (text + EOS, cut at max_length); rm_demo's scores
(prompt, answer) through its own encoder, as training did.

    python bench/bench_train.py [--epochs 2] [--batch-size 32] [--max-length 256]
                                [--only both|plain|rm_demo] [--seed 42 7 1] [--rm-demo-defaults]

`--rm-demo-defaults`: rm_demo as `rm_demo train` runs with no options, plain TRL at the settings given.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hh-rlhf-harmless-base-test.jsonl.gz"


def load_hh(path: Path, n_train: int = 2000):
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    return rows[:n_train], rows[n_train:]


def run_plain_trl(train_rows, heldout_rows, args, out_dir: Path) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from rm_demo.models import default_model_path

    path = str(default_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.eos_token = tokenizer.sep_token  # BERT has no EOS; TRL appends one to every text
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    max_length = getattr(args, "plain_max_length", None) or args.max_length
    on_gpu = torch.cuda.is_available()
    config = RewardConfig(
        output_dir=str(out_dir),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs,
        learning_rate=args.lr,
        max_length=max_length,
        # TRL's default bf16=True is what its docs run on a GPU; on a CPU it fails unless use_cpu is
        # set, and plain there means fp32.
        bf16=on_gpu,
        use_cpu=not on_gpu,
        report_to=[],
        save_strategy="no",
        logging_steps=10,
        seed=args.seed,
        disable_tqdm=True,
    )
    trainer = RewardTrainer(
        model=model, args=config, train_dataset=Dataset.from_list(train_rows), processing_class=tokenizer
    )
    kept = len(trainer.train_dataset)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start

    model.eval()

    def heldout_margins(side: str) -> np.ndarray:
        tokenizer.truncation_side = side
        margins = []
        with torch.inference_mode():
            for i in range(0, len(heldout_rows), 64):
                batch = heldout_rows[i : i + 64]
                # TRL joins an explicit prompt to each answer the same way
                texts = [r.get("prompt", "") + r["chosen"] + tokenizer.eos_token for r in batch] + [
                    r.get("prompt", "") + r["rejected"] + tokenizer.eos_token for r in batch
                ]
                enc = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
                enc.pop("token_type_ids", None)  # TRL's collator never passes them
                enc = enc.to(model.device)
                logits = model(**enc).logits.squeeze(-1)
                margins.extend((logits[: len(batch)] - logits[len(batch) :]).tolist())
        return np.array(margins)

    kept_end = heldout_margins("left")
    return {
        "pairs_trained": kept,
        "pairs_dropped": len(train_rows) - kept,
        "max_length": max_length,
        "train_seconds": seconds,
        "pairs_per_s": kept * args.epochs / seconds,
        # Plain inference cuts long transcripts at the end (often both answers); keeping the end is
        # the kinder reading. The table reports the better of the two.
        "heldout_accuracy_cut_end": float(np.mean(heldout_margins("right") > 0)),
        "heldout_accuracy_keep_end": float(np.mean(kept_end > 0)),
        "heldout_margins": kept_end.tolist(),
    }


class LastWeights(TrainerCallback):
    """Keeps a CPU copy of the weights at the last epoch end (the last step's weights)."""

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.state = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}


def hh_pairs_file(train_rows, out_dir: Path) -> Path:
    data = out_dir / "train.jsonl"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("".join(json.dumps(r) + "\n" for r in train_rows), encoding="utf-8")
    return data


def hh_heldout_triples(heldout_rows) -> list[tuple[str, str, str]]:
    from rm_demo.feedback import split_shared_prompt

    return [split_shared_prompt(r["chosen"], r["rejected"]) for r in heldout_rows]


def reward_margins(scorer, prompts: list[str], chosen: list[str], rejected: list[str]) -> np.ndarray:
    """r(chosen) - r(rejected) per held-out pair: > 0 is a pair ranked right."""
    rewards = scorer.score(prompts * 2, chosen + rejected)
    return rewards[: len(prompts)] - rewards[len(prompts) :]


def run_rm_demo(data: Path, heldout: list[tuple[str, str, str]], args, out_dir: Path, **overrides) -> dict:
    """`rm_demo train` on a pairs or feedback file; held-out accuracy on (prompt, chosen, rejected) triples.

    The caller knows what a dropped pair is for its data (HH: rows of the pairs file not trained on)."""
    from rm_demo.runs import RunFolder
    from rm_demo.score import Scorer
    from rm_demo.train import TrainConfig, build_trainer

    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "max_length": args.max_length,
        "precision": args.precision,
        "group_by_length": not args.no_group,
        "average_epochs": args.average_epochs,
    }
    config = TrainConfig(
        input=str(data),
        output_dir=str(out_dir / "run"),
        eval_fraction=0.0,
        seed=args.seed,
        **{**settings, **overrides},  # a configuration may change any of the shared settings
    )
    trainer, info = build_trainer(config, RunFolder(config.output_dir), is_main=True, progress=False)
    last = LastWeights()  # the weights at the last step, before the epoch average replaces them
    trainer.add_callback(last)
    kept = info["data"]["train_pairs"]
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    trainer.save_model(str(out_dir / "run" / "model"))
    trainer.processing_class.save_pretrained(str(out_dir / "run" / "model"))

    scorer = Scorer(str(out_dir / "run" / "model"), max_length=config.max_length)
    prompts, chosen, rejected = (list(column) for column in zip(*heldout))
    margins = reward_margins(scorer, prompts, chosen, rejected)
    scorer.model.load_state_dict(last.state)
    margins_last = reward_margins(scorer, prompts, chosen, rejected)
    return {
        "pairs_trained": kept,
        "pairs_truncated": info["data"]["truncated_pairs"]["train"],
        "precision": info["precision"],
        "train_seconds": seconds,
        "pairs_per_s": kept * config.epochs / seconds,
        "heldout_accuracy": float(np.mean(margins > 0)),
        "heldout_margins": margins.tolist(),
        "heldout_accuracy_last_weights": float(np.mean(margins_last > 0)),
        "weight_average_epochs": config.average_epochs,
    }


def rm_demo_settings(args: argparse.Namespace) -> argparse.Namespace:
    """The shared settings, or with `--rm-demo-defaults` those `rm_demo train` uses when given none."""
    if not args.rm_demo_defaults:
        return args
    from rm_demo.config import default

    return argparse.Namespace(
        **{
            **vars(args),
            "epochs": default("epochs"),
            "batch_size": default("batch_size"),
            "max_length": default("max_length"),
            "lr": default("learning_rate"),
        }
    )


def warm_up_gpu(batch_size: int, max_length: int) -> None:
    """A few untimed steps, so the first timed run does not pay for CUDA's kernels loading (~10 s)."""
    from transformers import AutoModelForSequenceClassification

    from rm_demo.models import default_model_path

    model = AutoModelForSequenceClassification.from_pretrained(str(default_model_path()), num_labels=1).cuda()
    ids = torch.randint(1000, 2000, (2 * batch_size, max_length), device="cuda")
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(input_ids=ids).logits.sum().backward()
    torch.cuda.synchronize()
    del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, nargs="+", default=[42], help="one run per seed; the table shows the mean")
    parser.add_argument("--precision", default="auto", help="rm_demo's precision: auto (bf16 on this CPU), fp32, ...")
    parser.add_argument(
        "--average-epochs",
        type=int,
        default=2,
        help="rm_demo's final model: mean of the last N epoch ends (1: last weights)",
    )
    parser.add_argument("--no-group", action="store_true", help="rm_demo without length-grouped batches")
    parser.add_argument("--only", choices=("both", "plain", "rm_demo"), default="both")
    parser.add_argument(
        "--rm-demo-defaults",
        action="store_true",
        help="rm_demo with its own defaults (epochs, batch size, max length, lr) instead of the shared settings; "
        "plain TRL keeps the settings given",
    )
    args = parser.parse_args()
    train_rows, heldout_rows = load_hh(args.data)
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}"
    )
    print(
        f"data: {len(train_rows)} train / {len(heldout_rows)} held-out pairs; epochs {args.epochs}, "
        f"batch {args.batch_size}, "
        f"max_length {args.max_length}, lr {args.lr}",
        flush=True,
    )
    if args.rm_demo_defaults:
        own = rm_demo_settings(args)
        print(
            f"rm_demo with its defaults: epochs {own.epochs}, batch {own.batch_size}, max_length {own.max_length}, "
            f"lr {own.lr}",
            flush=True,
        )
    if torch.cuda.is_available():
        try:
            warm_up_gpu(args.batch_size, args.max_length)
        except Exception as exc:  # a benchmark without its warm-up still measures something
            print(f"GPU warm-up failed ({exc}); the first run includes CUDA's start-up")
    seeds = args.seed
    runs: dict[str, list[dict]] = {}
    for seed in seeds:
        args.seed = seed
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in ("both", "plain"):
                r = run_plain_trl(train_rows, heldout_rows, args, Path(tmp) / "plain")
                r["heldout_accuracy"] = max(r["heldout_accuracy_cut_end"], r["heldout_accuracy_keep_end"])
                r.pop("heldout_margins")
                runs.setdefault("plain TRL", []).append(r)
                print(f"plain TRL (seed {seed}):", json.dumps(r), flush=True)
            if args.only in ("both", "rm_demo"):
                data = hh_pairs_file(train_rows, Path(tmp))
                r = run_rm_demo(data, hh_heldout_triples(heldout_rows), rm_demo_settings(args), Path(tmp))
                r["pairs_dropped"] = len(train_rows) - r["pairs_trained"]
                r.pop("heldout_margins")
                runs.setdefault("rm_demo", []).append(r)
                print(f"rm_demo (seed {seed}):", json.dumps(r), flush=True)
    # Several seeds: their mean (held-out accuracy moves by about +-0.03 from the batch order alone).
    if "rm_demo" in runs and args.average_epochs > 1:  # the same runs, read before the average
        runs["rm_demo, last weights"] = [
            {**r, "heldout_accuracy": r["heldout_accuracy_last_weights"]} for r in runs["rm_demo"]
        ]
    results = {
        name: {
            key: float(np.mean([r[key] for r in rs]))
            for key in ("pairs_trained", "pairs_dropped", "pairs_per_s", "train_seconds", "heldout_accuracy")
        }
        for name, rs in runs.items()
    }
    print(f"seeds: {seeds}" + (" (mean of the runs)" if len(seeds) > 1 else ""))
    print(f"{'':22} {'trained':>8} {'dropped':>8} {'pairs/s':>8} {'minutes':>8} {'held-out acc':>13}  per seed")
    for name, r in results.items():
        per_seed = " ".join(f"{x['heldout_accuracy']:.3f}" for x in runs[name])
        print(
            f"{name:22} {r['pairs_trained']:8.0f} {r['pairs_dropped']:8.0f} {r['pairs_per_s']:8.2f} "
            f"{r['train_seconds'] / 60:8.1f} {r['heldout_accuracy']:13.3f}  {per_seed}"
        )
    if "plain TRL" in results and "rm_demo" in results:
        print(f"speed-up (pairs/s): {results['rm_demo']['pairs_per_s'] / results['plain TRL']['pairs_per_s']:.2f}x")


if __name__ == "__main__":
    main()
