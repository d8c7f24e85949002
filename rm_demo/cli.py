"""`python -m rm_demo ...`: every step of the app as a command. Thin: parse, call the library, print."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

from rm_demo.errors import InputError, os_error_message
from rm_demo.text import counted

EXIT_BAD_INPUT = 2


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reading the input")
    group.add_argument(
        "--encoding", default="auto", help="auto (default) or a codec name: utf-8, cp1252, mac_roman, utf-16, ..."
    )
    group.add_argument("--delimiter", default=None, help="CSV delimiter; detected from the header when omitted")
    group.add_argument("--question-col", help="column holding the question/prompt")
    group.add_argument("--answer-col", help="column holding the answer/response")
    group.add_argument("--score-col", help="column holding the feedback score")
    group.add_argument("--chosen-col", help="column holding the chosen answer (pairs files)")
    group.add_argument("--rejected-col", help="column holding the rejected answer (pairs files)")
    group.add_argument("--rater-col", help="column naming who gave each score (several raters are combined)")
    from rm_demo.importers import FORMATS

    group.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="auto (default): recognise a tool's export by its keys; table: read the columns as they are; or name "
        "the source. With an export, --score-col picks its rating (a Label Studio control, an Argilla question, an "
        "UltraFeedback aspect, a HelpSteer attribute or weighted sum, a Langfuse/LangSmith score name)",
    )
    _add_max_input(group)


# Bytes of input, after decompression, a command reads at most: a gzip bomb or a huge file stops
# here with a message, with the process's memory well under 1 GB (bench/bench_hostile_memory.py).
DEFAULT_MAX_INPUT_MB = 512


def _add_max_input(parser) -> None:
    parser.add_argument(
        "--max-input-mb",
        type=float,
        default=DEFAULT_MAX_INPUT_MB,
        help=f"read at most this many MB of input, after decompression (default {DEFAULT_MAX_INPUT_MB})",
    )


def _max_bytes(args) -> int:
    mb = getattr(args, "max_input_mb", DEFAULT_MAX_INPUT_MB)
    if not mb > 0:
        raise InputError(f"--max-input-mb must be above 0, not {mb:g}", fix="e.g. --max-input-mb 2000")
    return int(mb * 1e6)


def _add_pair_options(parser: argparse.ArgumentParser) -> None:
    from rm_demo.config import PAIR_FLAGS, add_config_arguments

    add_config_arguments(parser.add_argument_group("deriving pairs"), PAIR_FLAGS)


def read_options_from(args):
    from rm_demo.feedback import ReadOptions

    delimiter = args.delimiter
    names = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    delimiter = names.get(delimiter, delimiter)
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise InputError(
            f"--delimiter must be one character, not {args.delimiter!r}",
            fix="use , ; | or tab (or leave it out to detect it from the header)",
        )
    return ReadOptions(
        encoding=args.encoding,
        delimiter=delimiter,
        question_col=args.question_col,
        answer_col=args.answer_col,
        score_col=args.score_col,
        chosen_col=args.chosen_col,
        rejected_col=args.rejected_col,
        rater_col=args.rater_col,
        max_bytes=_max_bytes(args),
        format=getattr(args, "format", "auto"),
    )


def pair_options_from(args):
    """The pairing flags, read the way `train` reads them (one mapping, in TrainConfig)."""
    from rm_demo.config import config_from_args

    return config_from_args(args).pair_options()


def cmd_pairs(args) -> int:
    from rm_demo.pairs import pairs_from_file, pairs_with_raters, write_pairs
    from rm_demo.pairs_big import check_memory_mb
    from rm_demo.tables import atomic_path, check_outputs, check_writable

    check_outputs(
        {"the input": args.input, "the scores": args.scores},
        {"-o": args.output, "--report": args.report, "--dropped": args.dropped},
    )
    for path in (args.output, args.report, args.dropped):
        check_writable(path)
    read, pairing = read_options_from(args), pair_options_from(args)
    pairing.validate()
    check_memory_mb(args.out_of_core_mb)  # whichever engine `auto` picks: a bad value is refused, not ignored
    plain = None if args.scores else _out_of_core_input(args.input, read, pairing, args.engine)
    if plain is not None:
        report = _pairs_out_of_core(plain, pairing, args)  # the pairs and dropped rows written as they are made
    else:
        with joined_input(args.input, args.scores, read.max_bytes) as path:
            result = pairs_from_file(path, read, pairing)
        write_pairs(pairs_with_raters(result), args.output)
        if args.dropped:
            write_pairs(result.dropped_rows, args.dropped)
        report = result.report
    if args.report:
        with atomic_path(args.report) as tmp:
            tmp.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for line in report.summary_lines():
        print(line, file=sys.stderr)
    print(f"wrote {counted(report.pairs, 'pair')} to {args.output}", file=sys.stderr)
    return 0


def _out_of_core_input(path: str, read, pairing, engine: str):
    """The input as a plain CSV to pair out of core, or None to pair it in memory (`--engine`)."""
    from rm_demo.pairs_big import needs_out_of_core, plain_csv
    from rm_demo.tables import regular_input

    if engine == "memory" or (engine == "auto" and not needs_out_of_core(regular_input(path))):
        return None
    size = Path(path).stat().st_size
    if read.max_bytes is not None and size > read.max_bytes:
        raise InputError(
            f"the file is over {read.max_bytes / 1e6:g} MB", source=Path(path).name, fix="raise --max-input-mb"
        )
    plain = plain_csv(path, read, pairing)
    if isinstance(plain, InputError):
        if engine == "auto":
            return None  # read in memory: the reader refuses it there if it cannot hold it, saying why
        raise plain
    return plain


def _pairs_out_of_core(plain, pairing, args):
    """Pair `plain` on DuckDB, its stages shown on stderr; the report."""
    import tempfile

    from rm_demo.pairs_big import pairs_out_of_core

    print(
        f"{plain.source}: paired out of core by DuckDB within {args.out_of_core_mb} MB of memory, spilling to "
        f"{tempfile.gettempdir()}",
        file=sys.stderr,
    )
    return pairs_out_of_core(
        plain, pairing, args.output, args.dropped, memory_mb=args.out_of_core_mb,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip


def cmd_pairs_sql(args) -> int:
    from rm_demo.importers import IMPORT_REASONS
    from rm_demo.pairs import CODE, STATUS_NAMES
    from rm_demo.pairs_sql import DIALECTS, plan_script, plan_sql

    pairing = pair_options_from(args)
    pairing.validate()
    dialect = DIALECTS[args.dialect]
    codes = ", ".join(f"{code} {name}" for code, name in enumerate(STATUS_NAMES) if name)
    steps = plan_sql(CODE, IMPORT_REASONS, pairing, pairing.resolved_thresholds(), args.raters, dialect)
    print(f"-- rm_demo pairs, {pairing}\n-- status: {codes}\n")
    if pairing.strategy == "all-pairs":
        print(
            "-- all-pairs: a question whose pairs exceed the cap is left with status NULL here "
            "(rm_demo samples it; filter such questions out or raise --max-pairs-per-question)\n"
        )
    print(plan_script(steps, dialect))
    return 0


@contextlib.contextmanager
def joined_input(first: str, second: str | None, max_bytes: int | None = None):
    """The input as one file: a tracing tool's two files (traces then scores) joined in a temporary folder."""
    if not second:
        yield first
        return
    import tempfile

    from rm_demo.feedback import join_exports

    with tempfile.TemporaryDirectory(prefix="rm_demo-join-") as folder:
        yield str(join_exports(first, second, folder, max_bytes))


def cmd_train(args) -> int:
    from dataclasses import asdict

    from rm_demo.config import config_from_args
    from rm_demo.runs import RunFolder, prepare_run
    from rm_demo.train import train

    if args.queued:  # a run the app made and queued: its config.json is the settings file named
        from rm_demo.jobs import worker

        run = RunFolder(Path(args.config).parent) if args.config else None
        if run is None or not run.run_json.is_file() or Path(args.config).name != "config.json":
            raise InputError(
                "--queued trains a run the app queued, named by its settings file",
                fix="e.g. train --config runs/NAME/config.json --queued (or train FILE -o FOLDER from a shell)",
            )
        return worker(str(run.path))
    inputs = contextlib.ExitStack()  # a two-file input's joined copy lives while this process trains
    if args.resume:
        run = RunFolder(args.resume)
        if not run.run_json.is_file():
            raise InputError("not a run folder (no run.json)", source=args.resume, fix="e.g. --resume runs/first")
        config, resume = run.config(), True
        config.validate()
    else:
        if not args.input or not args.output_dir:
            raise InputError(
                "train needs an input file and -o RUN_FOLDER",
                fix="e.g. train feedback.csv -o runs/first (or --config settings.yaml with input and output_dir)",
            )
        config = config_from_args(args, read_options=asdict(read_options_from(args)))
        config.validate()
        for path in filter(None, (args.input, args.scores)):
            _check_input_file(path, config.read_options.get("max_bytes"))
        resume = False
        data = inputs.enter_context(joined_input(args.input, args.scores))
        # Under torchrun / accelerate every process runs this command; the first one makes the run
        # folder (the others only read the data, and only the first writes the run).
        if int(os.environ.get("RANK", "0")) == 0:
            _make_room(Path(config.output_dir), args.overwrite)
            # The same start as the app's: the run folder keeps a copy of the data (two files: joined) and
            # the settings.
            config = prepare_run(config, data, config.output_dir)
        else:  # the same data as the first process: two files joined again here, one file as it is
            config.input = data
    # A Stop (or --resume after one) leaves the run's cancel request behind; starting again from the
    # shell is the new request, as the app's start_job has it. Without this a resume stopped at once.
    RunFolder(config.output_dir).cancel_path.unlink(missing_ok=True)
    # stdout carries only the final JSON; the trainer's progress and logs go to stderr.
    with inputs, contextlib.redirect_stdout(sys.stderr):
        final = train(config, resume=resume)
    if final:  # main process
        print(
            json.dumps(
                {
                    "status": final.get("status"),
                    "run": config.output_dir,
                    "device": final.get("device_name"),
                    **(final.get("final_metrics") or {}),
                },
                indent=2,
            )
        )
    return 0


def _check_input_file(path: str, max_bytes: int | None) -> None:
    """A regular file (a device, a FIFO or a folder would be copied into the run without end, or not at all)
    within --max-input-mb: refused before it is copied into the run, by its own name, not the copy's."""
    from rm_demo.tables import regular_input

    size = regular_input(path).stat().st_size
    if max_bytes is not None and size > max_bytes and not _is_gzip(path):  # a gzip's size is known once read
        raise InputError(
            f"the file is {size / 1e6:,.1f} MB, over --max-input-mb {max_bytes / 1e6:g}: training reads it whole",
            source=Path(path).name,
            fix=f"raise --max-input-mb if memory allows, or pair it first (out of core when memory is short): "
            f"python -m rm_demo pairs {shlex.quote(path)} -o pairs.jsonl --max-input-mb {size / 1e6 + 1:.0f}, "
            "then train on pairs.jsonl",
        )


def _is_gzip(path: str) -> bool:
    from rm_demo.sniff import GZIP_MAGIC

    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _make_room(out: Path, overwrite: bool) -> None:
    """A new run folder, or an old run's replaced only when asked; never a folder of other files."""
    import shutil

    from rm_demo.runs import RunRecord

    if out.exists() and not out.is_dir():
        raise InputError("is a file, not a run folder", source=str(out), fix="give a folder name, e.g. -o runs/first")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / "run.json").is_file():
        raise InputError(
            "this folder holds other files, not a run", source=str(out), fix="give a new folder, e.g. -o runs/first"
        )
    record = RunRecord.load(out)
    if record.live:
        raise InputError(f"this run is still {record.status}", source=str(out), fix="stop it, or give a new folder")
    if not overwrite:
        raise InputError(
            f"this folder already holds a run ({record.status})",
            source=str(out),
            fix="give a new folder, --overwrite to replace it, or --resume to go on with it",
        )
    shutil.rmtree(out)


def cmd_score(args) -> int:
    from tqdm import tqdm

    from rm_demo.feedback import ReadOptions
    from rm_demo.score import Scorer, read_answers, score_answers
    from rm_demo.tables import check_outputs, check_writable, write_table

    check_outputs({"--input": args.input}, {"-o": args.output})
    check_writable(args.output)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, not {args.batch_size}", fix="use e.g. --batch-size 64")
    read = ReadOptions(encoding=args.encoding, max_bytes=_max_bytes(args))
    table = read_answers(args.input, read, args.question_col, args.answer_col)
    scorer = Scorer(args.model, batch_size=args.batch_size, precision=args.precision)
    bars = []  # made at the first report, when the number of batches is known (it drew "0batch" first)

    def progress(done, total):
        if not bars:
            bars.append(tqdm(desc="scoring", unit="batch", total=total, file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        scored = score_answers(scorer, table, progress)
    finally:
        for bar in bars:
            bar.close()
    write_table(scored.frame, args.output)
    print(f"scored {len(scored.frame)} answers -> {args.output}", file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    from rm_demo.score import Scorer
    from rm_demo.text import check_is_text

    for what, text in (("question", args.question), ("answer A", args.answer_a), ("answer B", args.answer_b)):
        check_is_text(text, what)  # before the model loads: a byte that is not UTF-8 is said at once

    result = Scorer(args.model).compare(args.question, args.answer_a, args.answer_b)
    print(json.dumps({k: result[k] for k in ("reward_a", "reward_b", "p_a_preferred")}))
    return 0


def cmd_evaluate(args) -> int:
    from rm_demo.evaluate import evaluate_file, evaluate_run
    from rm_demo.feedback import ReadOptions
    from rm_demo.tables import check_outputs, check_writable

    check_outputs({"the pairs file": args.pairs}, {"-o": args.output})
    check_writable(args.output)
    with contextlib.redirect_stdout(sys.stderr):
        if args.run:
            if not Path(args.run, "run.json").is_file():
                raise InputError("not a run folder (no run.json)", source=args.run, fix="give a folder under runs/")
            report = evaluate_run(args.run, slice_by=args.slice_by)
        else:
            if not args.model or not args.pairs:
                raise InputError(
                    "give --run RUN_FOLDER, or --model M and a PAIRS file",
                    fix="e.g. evaluate --model runs/first/model heldout.jsonl -o report.json",
                )
            read = ReadOptions(max_bytes=_max_bytes(args))
            report = evaluate_file(args.model, args.pairs, base_model=args.base, read=read)
    slim = {k: v for k, v in report.items() if k not in ("rewards",)}
    if args.output:
        from rm_demo.tables import atomic_path

        with atomic_path(args.output) as tmp:
            tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    keys = (
        "model",
        "pairs",
        "note",
        "accuracy",
        "accuracy_interval",
        "raters",
        "mean_margin",
        "base",
        "baselines",
        "length_correlation",
        "length_warning",
        "slices",
    )
    print(json.dumps({k: slim.get(k) for k in keys if k in slim}, indent=2))
    return 0


def cmd_rank(args) -> int:
    from rm_demo.insight import rank
    from rm_demo.score import Scorer

    answers = _answers_from(args.answers_file, _max_bytes(args))
    scorer = Scorer(args.model)
    print(
        json.dumps(rank(scorer.score([args.question] * len(answers), answers), answers), indent=2, ensure_ascii=False)
    )
    return 0


def _answers_from(path: str, max_bytes: int) -> list[str]:
    """One answer per line, or a table (CSV/TSV/JSONL/JSON) with an answer column."""
    from rm_demo.feedback import ReadOptions, find_column, read_table
    from rm_demo.insight import read_answers
    from rm_demo.tables import regular_input

    regular_input(path)
    if Path(path).suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
        table = read_table(path, ReadOptions(max_bytes=max_bytes))
        column = find_column([c for c in table.frame.columns if c != "row"], "answer", None, table.source)
        answers = [str(a).strip() for a in table.frame[column] if str(a).strip()]
        if len(answers) < 2:
            raise InputError("the file holds fewer than two answers", source=table.source, fix="give two or more")
        return answers
    if Path(path).stat().st_size > max_bytes:
        raise InputError(
            f"the file is over {max_bytes / 1e6:g} MB", source=path, fix="give fewer answers, or raise --max-input-mb"
        )
    try:
        return read_answers(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", source=path, fix="check the path") from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=path, fix="save it as UTF-8, one answer per line") from None


def cmd_explain(args) -> int:
    from rm_demo.insight import occlusion
    from rm_demo.score import Scorer

    if not args.answer.strip():
        raise InputError("the answer is empty", fix="give --answer TEXT")
    print(json.dumps(occlusion(Scorer(args.model), args.question, args.answer), indent=2, ensure_ascii=False))
    return 0


def cmd_export(args) -> int:
    from rm_demo.export import export_run, push_to_hub

    if args.push:
        token = args.token or os.environ.get("HF_TOKEN")
        if not token:
            raise InputError("pushing needs a token", fix="pass --token or set HF_TOKEN")
        print(push_to_hub(args.run, args.push, token))
        return 0
    from rm_demo.tables import check_outputs, check_writable

    output = args.output or f"{Path(os.path.realpath(args.run)).name}.zip"
    check_outputs({}, {"-o": output})
    check_writable(output)
    path = export_run(args.run, output)
    print(f"wrote {path}")
    return 0


def cmd_runs(args) -> int:
    from rm_demo.runs import list_runs
    from rm_demo.text import accuracy_phrase

    if not Path(args.root).is_dir():
        raise InputError("no such folder", source=args.root, fix="give the folder that holds the runs (--root runs)")
    for run in list_runs(Path(args.root)):
        acc, held = run.metric("eval_accuracy"), run.held_out_pairs
        shown = f"held-out acc {accuracy_phrase(acc, held, short=True)}" if acc is not None and held else ""
        print(f"{run.name:40} {run.status:10} {run.model[-30:]:30} {shown}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI (the `train` parser is also kept as `parser.train` for --config)."""
    parser = argparse.ArgumentParser(
        prog="python -m rm_demo", description="Reward Model Studio: feedback file -> pairs -> trained reward model."
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True)
    _pairs_parser(sub)
    parser.train = _train_parser(sub)
    _after_training_parsers(sub)
    for command in sub.choices.values():  # --debug also after the command name
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


SCORES_HELP = (
    "a tracing tool's scores or feedback, when its export came as two files: the input is then its traces, "
    "observations or runs (Langfuse, LangSmith)"
)


def _pairs_parser(sub) -> None:
    p = sub.add_parser("pairs", help="derive comparison pairs from a feedback file, with a report of every row")
    p.add_argument("input", help="feedback file (CSV/TSV/JSONL/JSON, optionally .gz) or a pairs file")
    p.add_argument("scores", nargs="?", help=SCORES_HELP)
    p.add_argument("-o", "--output", required=True, help="pairs file to write (.jsonl, or .csv)")
    p.add_argument("--report", help="write the accounting report as JSON here")
    p.add_argument("--dropped", help="write every dropped row with its reason here (.jsonl or .csv)")
    _add_read_options(p)
    _add_pair_options(p)
    p.add_argument(
        "--engine",
        choices=("auto", "memory", "out-of-core"),
        default="auto",
        help="memory: read the file whole (fastest); out-of-core: a plain UTF-8 CSV without raters, paired by DuckDB "
        "within --out-of-core-mb, for a file bigger than memory (docs/data.md); auto (default): out of core when "
        "reading the file whole would take over half the free memory",
    )
    from rm_demo.pairs_big import MEMORY_MB  # constants only: duckdb is imported when it runs

    p.add_argument(
        "--out-of-core-mb",
        type=int,
        default=MEMORY_MB,
        help=f"out of core: DuckDB's memory limit in MB, beyond which it spills to TMPDIR (default {MEMORY_MB}; "
        "about 1,000 per thread it may use)",
    )
    p.set_defaults(func=cmd_pairs)

    p = sub.add_parser(
        "pairs-sql",
        help="print the pairs derivation as SQL, for a distributed SQL engine (docs/data.md)",
        description="Print the derivation of `pairs` with these settings as one SQL script. It reads a table "
        "feedback(pos, question, answer, score, import_status): pos numbers the rows from 0, texts as read, score "
        "as text, import_status '' (or a tool import's reason). Results: row_status(pos, status) and pairs(qid, "
        "chosen_pos, rejected_pos, chosen_score, rejected_score); status numbers are listed at the top.",
    )
    from rm_demo.pairs_sql import DIALECTS  # pure Python: strings only

    p.add_argument("--dialect", choices=tuple(DIALECTS), default="spark", help="the SQL engine (default spark)")
    p.add_argument("--raters", action="store_true", help="the table's repeated answers are several raters' ratings")
    _add_pair_options(p)
    p.set_defaults(func=cmd_pairs_sql)


def _train_parser(sub) -> argparse.ArgumentParser:
    from rm_demo.config import TRAIN_FLAGS, add_config_arguments, help_text

    t = sub.add_parser(
        "train",
        help="train a reward model (TRL RewardTrainer) into a run folder",
        description="Settings come from --config FILE (YAML or JSON, flat or in groups data/pairs/model/"
        "training; a run's config.json is one), then from flags, which override the file.",
    )
    t.add_argument("input", nargs="?", help=help_text("input"))
    t.add_argument("-o", "--output", dest="output_dir", help=help_text("output_dir") + " (required unless --resume)")
    t.add_argument("--config", metavar="FILE", help="read settings from this YAML or JSON file; flags override it")
    t.add_argument(
        "--resume", metavar="RUN", help="go on with a stopped, failed or killed run from its last checkpoint"
    )
    t.add_argument("--overwrite", action="store_true", help="replace the run already in the -o folder")
    t.add_argument(
        "--queued",
        action="store_true",
        help="train the queued run whose config.json --config names, in its turn for the device (how the app "
        "runs every run it starts)",
    )
    t.add_argument("--scores", metavar="FILE", help=SCORES_HELP)
    add_config_arguments(t, TRAIN_FLAGS)
    _add_read_options(t)
    _add_pair_options(t)
    t.set_defaults(func=cmd_train)
    return t


def _after_training_parsers(sub) -> None:
    sc = sub.add_parser("score", help="add a reward column to a CSV/JSONL of (question, answer) rows")
    sc.add_argument(
        "--model", default="default", help="a run's model folder (runs/NAME/model), 'default', or a hub id"
    )
    sc.add_argument("--input", required=True)
    sc.add_argument("-o", "--output", required=True, help=".csv (formula-safe) or .jsonl")
    sc.add_argument("--question-col")
    sc.add_argument("--answer-col")
    sc.add_argument("--encoding", default="auto")
    _add_max_input(sc)
    sc.add_argument("--batch-size", type=int, default=64)
    sc.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="auto: bf16 on a CPU with native bf16 or a GPU (rewards within bf16 rounding), else fp32",
    )
    sc.set_defaults(func=cmd_score)

    cp = sub.add_parser("compare", help="rewards of two answers to one question, as JSON")
    cp.add_argument("--model", default="default")
    cp.add_argument("--question", required=True)
    cp.add_argument("--answer-a", required=True)
    cp.add_argument("--answer-b", required=True)
    cp.set_defaults(func=cmd_compare)

    ev = sub.add_parser(
        "evaluate", help="held-out accuracy, calibration and worst mistakes of a run or of a model on a pairs file"
    )
    ev.add_argument("pairs", nargs="?", help="a pairs (or feedback) file to evaluate on")
    ev.add_argument("--run", help="a run folder: evaluate on its own held-out questions (writes eval.json)")
    ev.add_argument("--model", help="a model folder or id (with PAIRS)")
    ev.add_argument("--base", default="default", help="reference model scored alongside ('' for none)")
    ev.add_argument("-o", "--output", help="write the full report as JSON")
    _add_max_input(ev)
    ev.add_argument(
        "--slice-by",
        action="append",
        metavar="COLUMN",
        help="accuracy per value of this column of the feedback file (repeatable; with --run)",
    )
    ev.set_defaults(func=cmd_evaluate)

    rk = sub.add_parser("rank", help="best-of-N: several answers to one question, best first, with P(best)")
    rk.add_argument("--model", default="default")
    rk.add_argument("--question", required=True)
    rk.add_argument("--answers-file", required=True, help="one answer per line, or a CSV/JSONL with an answer column")
    _add_max_input(rk)
    rk.set_defaults(func=cmd_rank)

    xp = sub.add_parser("explain", help="how much each word of an answer moves its reward (occlusion)")
    xp.add_argument("--model", default="default")
    xp.add_argument("--question", required=True)
    xp.add_argument("--answer", required=True)
    xp.set_defaults(func=cmd_explain)

    ex = sub.add_parser("export", help="zip a run (model, card, metrics) or push it to the Hugging Face Hub")
    ex.add_argument("run", help="run folder")
    ex.add_argument("-o", "--output", help="zip file (default NAME.zip)")
    ex.add_argument("--push", metavar="REPO_ID", help="push the model to this Hub repo instead")
    ex.add_argument("--token", help="Hub write token (or HF_TOKEN)")
    ex.set_defaults(func=cmd_export)

    rl = sub.add_parser("runs", help="list runs with status and accuracy")
    rl.add_argument("--root", default="runs")
    rl.set_defaults(func=cmd_runs)


def main(argv: list[str] | None = None) -> int:
    """The one error boundary: bad input, options, paths or disk -> exit 2 and one plain message;
    anything else -> exit 1, a short message and a hint to rerun with --debug for the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "config", None):
            args = _with_config_file(parser, args.config, argv)
        return args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `... | head`: the reader has what it wanted; stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except OSError as exc:  # a path that cannot be read or written, a full disk
        if args.debug:
            raise
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MemoryError:
        if args.debug:
            raise
        print(
            "error: ran out of memory: the input is too big for the memory this process may use\n"
            "How to fix: split the file, lower --max-input-mb, or run on a machine with more memory",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except RecursionError:
        if args.debug:
            raise
        print("error: the input is nested too deeply\nHow to fix: give flat records", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so briefly, keep the traceback for --debug
        if args.debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {str(exc)[:300]}\n"
            "This is a bug in rm_demo, not in your input. Rerun with --debug for the traceback.",
            file=sys.stderr,
        )
        return 1


def _with_config_file(parser: argparse.ArgumentParser, path: str, argv: list[str] | None) -> argparse.Namespace:
    """The flags again, with the file's settings as their defaults: what a flag says wins.

    The same order of precedence as TRL's `TrlParser` (file as defaults, then the command line). Not
    TrlParser itself: it needs trl, transformers and torch imported before `--help` can answer, and
    it would offer every one of TrainingArguments' 100+ fields, most of which this app sets itself.
    """
    from rm_demo.config import READ_FLAGS, read_config_file

    values = read_config_file(path)
    read_options = values.pop("read_options", None) or {}
    values.update({key: read_options[key] for key in READ_FLAGS if read_options.get(key) is not None})
    parser.train.set_defaults(**values)
    return parser.parse_args(argv)
