"""Taking a run away: a zip with the model, its card and metrics; or a push to the Hugging Face Hub."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from rm_demo.errors import InputError
from rm_demo.runs import RunFolder, RunRecord


def model_card(run: RunFolder) -> str:
    info = run.read()
    config = info.get("config", {})
    data = info.get("data", {})
    final = info.get("final_metrics") or {}
    evaluation = {}
    try:
        evaluation = json.loads((run.path / "eval.json").read_text())
    except (OSError, ValueError):
        pass
    acc = final.get("eval_accuracy")
    base = evaluation.get("base", {}).get("accuracy")
    held_out = RunRecord.from_dict(run.path, info).held_out_pairs
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [reward-model, trl, rm_demo]",
        "---",
        f"# Reward model `{run.name}`",
        "",
        f"Trained with rm_demo (Reward Model Studio, TRL `RewardTrainer`) from `{config.get('model')}` "
        f"on {data.get('train_pairs', '?')} preference pairs from `{data.get('source', '?')}`.",
        "",
        "## Metrics (held-out questions)",
        "",
        *metric_lines(acc, base, final.get("eval_margin"), held_out, evaluation.get("raters")),
        "",
        "## Data",
        "",
        f"- rows read {data.get('report', {}).get('rows_read', '?')}, "
        f"pairs {data.get('train_pairs', 0) + data.get('eval_pairs', 0)}, "
        f"strategy `{config.get('strategy')}`; truncated pairs: {data.get('truncated_pairs')}",
        "",
        "## Training config",
        "",
        "```json",
        json.dumps({k: v for k, v in config.items() if k not in PRIVATE_CONFIG_KEYS}, indent=2),
        "```",
        "",
        *input_format(run, int(config.get("max_length") or 128)),
        "## Use",
        "",
        *usage_snippet(run, int(config.get("max_length") or 128)),
        "",
        *serving_snippets(run),
        *reading_a_reward(evaluation),
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def metric_lines(accuracy, base_accuracy, margin, held_out, raters: dict | None = None) -> list[str]:
    """The card's metrics, under the app's small-sample rule: below MIN_HELD_OUT_PAIRS held-out pairs an
    accuracy says more about chance than about the model, so the card gives the count, not the number."""
    from rm_demo.text import MIN_HELD_OUT_PAIRS, accuracy_phrase, ceiling_phrase, counted

    if accuracy is None or not held_out:
        return ["- pairwise accuracy: n/a (no held-out questions)"]
    if held_out < MIN_HELD_OUT_PAIRS:
        return [
            f"- pairwise accuracy: not reported: only {counted(held_out, 'held-out pair')}, too few for an "
            f"accuracy to mean anything (at least {MIN_HELD_OUT_PAIRS} needed). Evaluate on more data before use."
        ]
    return [
        f"- pairwise accuracy: {accuracy_phrase(accuracy, held_out)}, every held-out pair, the saved model",
        f"- untrained base accuracy: {accuracy_phrase(base_accuracy, held_out)}" if base_accuracy is not None else "",
        f"- mean reward margin: {margin:.3f}" if margin is not None else "",
        f"- the raters' ceiling: {ceiling_phrase(raters)}" if raters else "",
    ]


# Server paths and the owner's hash stay out of a card that leaves the machine.
PRIVATE_CONFIG_KEYS = ("owner", "input", "output_dir")


def input_format(run: RunFolder, max_length: int) -> list[str]:
    if _is_encoder(run.model_dir):
        text = (
            f"A text pair, `[CLS] question [SEP] answer [SEP]`, at most {max_length} tokens. When too long, the "
            "question loses its beginning and the answer is kept. The model was trained without token type ids; "
            "its type embeddings are all equal, so servers that send them get the same reward."
        )
    else:
        text = (
            f"The chat template with the question as the user turn and the answer as the assistant turn (without a "
            f"template: question + answer + EOS), at most {max_length} tokens; a long question loses its beginning."
        )
    return ["## Input format", "", text, ""]


def serving_snippets(run: RunFolder) -> list[str]:
    lines = ["## Serving", ""]
    if _is_encoder(run.model_dir):
        lines += [
            "[text-embeddings-inference](https://github.com/huggingface/text-embeddings-inference) serves it as a "
            "sequence classifier; `/predict` takes the (question, answer) pair:",
            "",
            "```bash",
            "text-embeddings-router --model-id PATH --port 8080",
            "curl 127.0.0.1:8080/predict -H 'Content-Type: application/json' \\",
            '     -d \'{"inputs": [["question", "answer"]], "raw_scores": true}\'',
            "```",
            "",
        ]
    call = (
        'scores = llm.score("question", ["answer 1", "answer 2"])  # (question, answer) pairs, as a cross-encoder'
        if _is_encoder(run.model_dir)
        else "outputs = llm.classify([text])  # text: the chat template of (question, answer), as above"
    )
    lines += [
        "[vLLM](https://docs.vllm.ai) serves one-label classifiers with its pooling runner:",
        "",
        "```python",
        "from vllm import LLM",
        'llm = LLM(model="PATH", runner="pooling")',
        call,
        "```",
        "",
        "A server may pass the one-label output through a sigmoid: that keeps the order of answers but not the "
        "reward's scale. Check a server against `python -m rm_demo score --model PATH ...` on a few answers.",
        "",
    ]
    return lines


def reading_a_reward(evaluation: dict) -> list[str]:
    stats = evaluation.get("reward_stats")
    if not stats:
        return []
    return [
        "## Reading a reward",
        "",
        f"On the held-out answers the reward had mean {stats['mean']:.3f} and standard deviation {stats['std']:.3f} "
        f"(from {stats['min']:.3f} to {stats['max']:.3f}). Only differences mean something: P(A preferred over B) = "
        "sigmoid(reward A - reward B).",
        "",
    ]


def _is_encoder(model_dir: Path) -> bool:
    from rm_demo.models import _ENCODER_TYPES

    try:
        return json.loads((model_dir / "config.json").read_text()).get("model_type") in _ENCODER_TYPES
    except (OSError, ValueError):
        return True


def encoder_lines(max_length: int) -> list[str]:
    """The card's lines that turn "question" and "answer" into an encoder's input, as rm_demo's
    PairEncoder does (plain_reward runs these very lines, so the card cannot drift from it)."""
    return [
        "# Trained on (question, answer) text pairs, without token type ids, within " + str(max_length) + " tokens:",
        "# the answer is kept (only one longer than the window loses its end), the question loses its beginning.",
        "import torch",
        "MAX = " + str(max_length),
        'A, B = (tok(t, add_special_tokens=False)["input_ids"] for t in ("a", "b"))',
        'pair = tok("a", "b")["input_ids"]  # the special tokens around a pair, e.g. [CLS] a [SEP] b [SEP]',
        "i = pair.index(A[0]); j = i + len(A) + pair[i + len(A):].index(B[0])",
        "start, middle, end = pair[:i], pair[i + len(A):j], pair[j + len(B):]",
        'q, a = (tok(t, add_special_tokens=False)["input_ids"] for t in ("question", "answer"))',
        "budget = MAX - len(start) - len(middle) - len(end)",
        "a = a[: max(budget - 1, 1)]",
        "q = q[len(q) - (budget - len(a)):] if budget > len(a) else []",
        "ids = start + q + middle + a + end",
        'inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}',
    ]


def usage_snippet(run: RunFolder, max_length: int) -> list[str]:
    """Loading code that gives the same reward as rm_demo: the input exactly as training saw it."""
    head = [
        "```python",
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer",
        'path = "PATH"  # this folder',
        "tok = AutoTokenizer.from_pretrained(path)",
        "model = AutoModelForSequenceClassification.from_pretrained(path).eval()",
    ]
    if _is_encoder(run.model_dir):
        body = encoder_lines(max_length)
    else:
        body = [
            "# Decoders score the chat template (user = question, assistant = answer), else question + answer + EOS.",
            'turns = [{"role": "user", "content": "question"}, {"role": "assistant", "content": "answer"}]',
            "text = tok.apply_chat_template(turns, tokenize=False) if tok.chat_template "
            'else "question" + "answer" + tok.eos_token',
            'inputs = tok(text, add_special_tokens=False, return_tensors="pt")',
        ]
    tail = [
        "reward = model(**inputs).logits[0, 0].item()",
        "```",
        "",
        "`python -m rm_demo score --model PATH --input answers.csv -o scored.csv` scores a whole file the same way.",
    ]
    return head + body + tail


# Rewards are stored to 5 decimals in eval.json; a real mismatch (a lost head, another input format) is far larger.
RELOAD_TOLERANCE = 1e-3


def plain_reward(model_dir: Path, question: str, answer: str, max_length: int) -> float:
    """The reward as the model card's snippet computes it: transformers alone, no rm_demo."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rm_demo.models import quiet_weight_bars

    tok = AutoTokenizer.from_pretrained(model_dir)
    with quiet_weight_bars():  # `rm_demo export` printed a "Loading weights" bar for this check
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    if _is_encoder(model_dir):  # the card's own lines, run as they are printed
        code = "\n".join(encoder_lines(max_length)).replace('("question", "answer")', "(question, answer)")
        scope = {"tok": tok, "question": question, "answer": answer}
        exec(code, scope)  # noqa: S102 (our own snippet)
        inputs = scope["inputs"]
    else:
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        text = (
            tok.apply_chat_template(turns, tokenize=False) if tok.chat_template else question + answer + tok.eos_token
        )
        inputs = tok(text, add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        return float(model(**inputs).logits[0, 0])


def check_reload(run: RunFolder) -> dict:
    """Reload the model folder with `AutoModelForSequenceClassification` alone and rescore a held-out pair's
    chosen answer; it must give the reward the run's evaluation recorded. Fails loudly otherwise."""
    from rm_demo.evaluate import heldout_pairs, load_eval

    report = load_eval(run.path) or {}
    max_length = int((run.read().get("config") or {}).get("max_length") or 128)
    pairs = heldout_pairs(run) if report.get("pairs") else None
    if pairs is None or not len(pairs):
        return {"checked": False, "why": "no held-out pair to rescore"}
    # the shortest pair: no truncation, so the check tests the model and its input format, not a cut
    i = int((pairs["prompt"].str.len() + pairs["chosen"].str.len()).to_numpy().argmin())
    question, answer = str(pairs["prompt"].iloc[i]), str(pairs["chosen"].iloc[i])
    expected = float(report["rewards"]["chosen"][i])
    got = plain_reward(run.model_dir, question, answer, max_length)
    if not abs(got - expected) <= RELOAD_TOLERANCE:
        raise InputError(
            f"the exported model does not reproduce the run: it gives {got:.4f} for a held-out answer the run "
            f"scored {expected:.4f}",
            source=run.name,
            fix="the model folder was changed or damaged since training; train the run again",
        )
    return {"checked": True, "reward": got, "expected": expected}


def export_run(run_dir: str | Path, zip_path: str | Path) -> Path:
    """Zip the run: model/ (with its card as README.md), run.json, eval.json, metrics.jsonl."""
    run = RunFolder(run_dir)
    if not (run.model_dir / "config.json").exists():
        raise InputError(
            "this run has no saved model (it did not finish)", source=run.name, fix="pick a completed run"
        )
    if not (run.path / "eval.json").exists():
        from rm_demo.evaluate import evaluate_run

        evaluate_run(run.path)  # the zip always carries the evaluation report
    check_reload(run)
    (run.model_dir / "README.md").write_text(model_card(run), encoding="utf-8")
    from rm_demo.tables import atomic_path

    zip_path = Path(zip_path)
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(run.model_dir.rglob("*")):
            if file.is_file() and file.name != "training_args.bin":
                archive.write(file, Path(run.name) / "model" / file.relative_to(run.model_dir))
        for name in ("run.json", "eval.json", "metrics.jsonl"):
            if (run.path / name).exists():
                archive.write(run.path / name, Path(run.name) / name)
    return zip_path


def push_to_hub(run_dir: str | Path, repo_id: str, token: str) -> str:
    """Upload the run's model folder; offline or refused, a clear message instead of a traceback."""
    run = RunFolder(run_dir)
    (run.model_dir / "README.md").write_text(model_card(run), encoding="utf-8")
    try:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=str(run.model_dir), repo_id=repo_id, ignore_patterns=["training_args.bin"])
    except Exception as exc:  # network down, bad token, no rights: all mean "not pushed"
        raise InputError(
            f"could not push to the Hub ({type(exc).__name__}: {str(exc)[:200]})",
            source=repo_id,
            fix="check the network, the repo id and a write token; the zip download works offline",
        ) from None
    return f"https://huggingface.co/{repo_id}"
