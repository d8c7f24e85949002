"""`python -m rm_demo ...`: every step of the app as a command. Thin: parse, call the library, print."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from rm_demo.errors import InputError

EXIT_BAD_INPUT = 2


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the input")
    group.add_argument("--encoding", default="auto", help="auto (default) or a codec name: utf-8, cp1252, mac_roman, utf-16, ...")
    group.add_argument("--delimiter", default=None, help="CSV delimiter; detected from the header when omitted")
    group.add_argument("--question-col", help="column holding the question/prompt")
    group.add_argument("--answer-col", help="column holding the answer/response")
    group.add_argument("--score-col", help="column holding the feedback score")
    group.add_argument("--chosen-col", help="column holding the chosen answer (pairs files)")
    group.add_argument("--rejected-col", help="column holding the rejected answer (pairs files)")


def _add_pair_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("deriving pairs")
    group.add_argument("--strategy", choices=("best-worst", "all-pairs"), default="best-worst",
                       help="best-worst: one pair per question (the seed's rule); all-pairs: every pair with a score gap")
    group.add_argument("--chosen-min", type=float, default=None, help="chosen score must be >= this (best-worst default 4)")
    group.add_argument("--rejected-max", type=float, default=None, help="rejected score must be < this (best-worst default 4)")
    group.add_argument("--min-margin", type=float, default=1.0, help="all-pairs: minimum score gap (default 1)")


def read_options_from(args):
    from rm_demo.feedback import ReadOptions

    delimiter = args.delimiter
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    return ReadOptions(
        encoding=args.encoding,
        delimiter=delimiter,
        question_col=args.question_col,
        answer_col=args.answer_col,
        score_col=args.score_col,
        chosen_col=args.chosen_col,
        rejected_col=args.rejected_col,
    )


def pair_options_from(args):
    from rm_demo.pairs import PairOptions

    return PairOptions(strategy=args.strategy, chosen_min=args.chosen_min, rejected_max=args.rejected_max, min_margin=args.min_margin)


def cmd_pairs(args) -> int:
    from rm_demo.pairs import pairs_from_file, write_pairs

    result = pairs_from_file(args.input, read_options_from(args), pair_options_from(args))
    write_pairs(result.pairs, args.output)
    if args.report:
        Path(args.report).write_text(json.dumps(result.report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.dropped:
        write_pairs(result.dropped_rows, args.dropped)
    for line in result.report.summary_lines():
        print(line, file=sys.stderr)
    print(f"wrote {len(result.pairs)} pairs to {args.output}", file=sys.stderr)
    return 0


def cmd_train(args) -> int:
    from dataclasses import fields

    from rm_demo.train import TrainConfig, train

    read = read_options_from(args)
    config = TrainConfig(
        input=args.input,
        output_dir=args.output,
        model=args.model,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        gradient_accumulation=args.grad_accum,
        max_length=args.max_length,
        eval_fraction=args.eval_fraction,
        seed=args.seed,
        average_epochs=args.average_epochs,
        strategy=args.strategy,
        chosen_min=args.chosen_min,
        rejected_max=args.rejected_max,
        min_margin=args.min_margin,
        lora=args.lora,
        device=args.device,
        precision=args.precision,
        trust_remote_code=args.trust_remote_code,
        read_options={f.name: getattr(read, f.name) for f in fields(read)},
    )
    # stdout carries only the final JSON; the trainer's progress and logs go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        final = train(config)
    if final:  # main process
        print(json.dumps({"status": final.get("status"), "run": args.output, "device": final.get("device_name"),
                          **(final.get("final_metrics") or {})}, indent=2))
    return 0


def cmd_score(args) -> int:
    from tqdm import tqdm

    from rm_demo.feedback import ReadOptions, find_column, normalize_answer, normalize_question, read_table
    from rm_demo.score import Scorer
    from rm_demo.ui import safe_for_spreadsheets

    table = read_table(args.input, ReadOptions(encoding=args.encoding))
    frame = table.frame.drop(columns="row")
    columns = list(frame.columns)
    q_col = find_column(columns, "question", args.question_col, table.source)
    a_col = find_column(columns, "answer", args.answer_col, table.source)
    scorer = Scorer(args.model, batch_size=args.batch_size)
    with tqdm(total=len(frame), desc="scoring", unit="answer", file=sys.stderr) as bar:
        last = [0]

        def progress(done, total):
            bar.update(min(len(frame), done * scorer.batch_size) - last[0])
            last[0] = min(len(frame), done * scorer.batch_size)

        rewards = scorer.score(list(normalize_question(frame[q_col])), list(normalize_answer(frame[a_col])), progress=progress)
    out = frame.assign(reward=rewards)
    if str(args.output).lower().endswith(".jsonl"):
        out.to_json(args.output, orient="records", lines=True, force_ascii=False)
    else:
        safe_for_spreadsheets(out).to_csv(args.output, index=False)
    print(f"scored {len(out)} answers -> {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from rm_demo.score import Scorer

    result = Scorer(args.model).compare(args.question, args.answer_a, args.answer_b)
    print(json.dumps({k: result[k] for k in ("reward_a", "reward_b", "p_a_preferred")}))
    return 0


def cmd_evaluate(args) -> int:
    from rm_demo.evaluate import evaluate_file, evaluate_run

    with contextlib.redirect_stdout(sys.stderr):
        if args.run:
            report = evaluate_run(args.run)
        else:
            if not args.model or not args.pairs:
                raise InputError("give --run RUN_FOLDER, or --model M and a PAIRS file", fix="e.g. evaluate --model runs/first/model heldout.jsonl -o report.json")
            report = evaluate_file(args.model, args.pairs, base_model=args.base)
    slim = {k: v for k, v in report.items() if k not in ("rewards",)}
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: slim.get(k) for k in ("model", "pairs", "accuracy", "mean_margin", "base")}, indent=2))
    return 0


def cmd_export(args) -> int:
    from rm_demo.export import export_run, push_to_hub

    if args.push:
        import os

        token = args.token or os.environ.get("HF_TOKEN")
        if not token:
            raise InputError("pushing needs a token", fix="pass --token or set HF_TOKEN")
        print(push_to_hub(args.run, args.push, token))
        return 0
    path = export_run(args.run, args.output or f"{Path(args.run).name}.zip")
    print(f"wrote {path}")
    return 0


def cmd_runs(args) -> int:
    from rm_demo.runs import list_runs

    for run in list_runs(Path(args.root)):
        acc = run.final_metrics.get("eval_accuracy")
        print(f"{run.name:40} {run.status:10} {run.model[-30:]:30} " + (f"acc {acc:.3f}" if acc is not None else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rm_demo", description="Reward Model Studio: feedback file -> pairs -> trained reward model.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pairs", help="derive comparison pairs from a feedback file, with a report of every row")
    p.add_argument("input", help="feedback file (CSV/TSV/JSONL/JSON, optionally .gz) or a pairs file")
    p.add_argument("-o", "--output", required=True, help="pairs file to write (.jsonl, or .csv)")
    p.add_argument("--report", help="write the accounting report as JSON here")
    p.add_argument("--dropped", help="write every dropped row with its reason here (.jsonl or .csv)")
    _add_read_options(p)
    _add_pair_options(p)
    p.set_defaults(func=cmd_pairs)

    t = sub.add_parser("train", help="train a reward model (TRL RewardTrainer) into a run folder")
    t.add_argument("input", help="feedback file or pairs file (from `rm_demo pairs`)")
    t.add_argument("-o", "--output", required=True, help="run folder to write, e.g. runs/first")
    t.add_argument("--model", default="default", help="'default' (embedded all-MiniLM-L6-v2, offline), a hub id, or a local folder")
    t.add_argument("--epochs", type=float, default=3.0)
    t.add_argument("--lr", type=float, default=5e-5, help="learning rate")
    t.add_argument("--batch-size", type=int, default=16, help="pairs per device per step")
    t.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    t.add_argument("--max-length", type=int, default=128, help="tokens per (prompt, answer); prompts are cut from the left")
    t.add_argument("--eval-fraction", type=float, default=0.2, help="share of questions held out for evaluation")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--average-epochs", type=int, default=2, metavar="N",
                   help="final model = mean of the weights at the last N epoch ends (1: the last weights)")
    t.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights")
    t.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="auto")
    t.add_argument("--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto")
    t.add_argument("--trust-remote-code", action="store_true", help="allow a hub model's own code to run (off by default)")
    _add_read_options(t)
    _add_pair_options(t)
    t.set_defaults(func=cmd_train)

    sc = sub.add_parser("score", help="add a reward column to a CSV/JSONL of (question, answer) rows")
    sc.add_argument("--model", default="default", help="a run's model folder (runs/NAME/model), 'default', or a hub id")
    sc.add_argument("--input", required=True)
    sc.add_argument("-o", "--output", required=True, help=".csv (formula-safe) or .jsonl")
    sc.add_argument("--question-col")
    sc.add_argument("--answer-col")
    sc.add_argument("--encoding", default="auto")
    sc.add_argument("--batch-size", type=int, default=64)
    sc.set_defaults(func=cmd_score)

    cp = sub.add_parser("compare", help="rewards of two answers to one question, as JSON")
    cp.add_argument("--model", default="default")
    cp.add_argument("--question", required=True)
    cp.add_argument("--answer-a", required=True)
    cp.add_argument("--answer-b", required=True)
    cp.set_defaults(func=cmd_compare)

    ev = sub.add_parser("evaluate", help="held-out accuracy, calibration and worst mistakes of a run or of a model on a pairs file")
    ev.add_argument("pairs", nargs="?", help="a pairs (or feedback) file to evaluate on")
    ev.add_argument("--run", help="a run folder: evaluate on its own held-out questions (writes eval.json)")
    ev.add_argument("--model", help="a model folder or id (with PAIRS)")
    ev.add_argument("--base", default="default", help="reference model scored alongside ('' for none)")
    ev.add_argument("-o", "--output", help="write the full report as JSON")
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export", help="zip a run (model, card, metrics) or push it to the Hugging Face Hub")
    ex.add_argument("run", help="run folder")
    ex.add_argument("-o", "--output", help="zip file (default NAME.zip)")
    ex.add_argument("--push", metavar="REPO_ID", help="push the model to this Hub repo instead")
    ex.add_argument("--token", help="Hub write token (or HF_TOKEN)")
    ex.set_defaults(func=cmd_export)

    rl = sub.add_parser("runs", help="list runs with status and accuracy")
    rl.add_argument("--root", default="runs")
    rl.set_defaults(func=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
