"""Scoring (prompt, answer) with a reward model: loaded once, length-sorted batches, no gradient."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rm_demo.models import PairEncoder, choose_device, load_reward_model, resolve_model, scoring_device

DEFAULT_MAX_LENGTH = 256


def _run_max_length(model_dir: str) -> int:
    """A run's model scores at the max length the run trained with; any other model at 256."""
    from rm_demo.runs import base_model_of

    return base_model_of(model_dir)[1] or DEFAULT_MAX_LENGTH


# Tokens (texts x padded width) in one forward pass on the CPU: the same speed as larger batches there,
# a quarter of their memory for long texts. A GPU takes `batch_size` texts whatever their length.
CPU_BATCH_TOKENS = 4096


class Scorer:
    """Loads a reward model once; `score` turns (prompt, answer) lists into rewards."""

    def __init__(
        self,
        model: str = "default",
        device: str | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        precision: str = "fp32",
    ):
        """`precision`: fp32 (exact: evaluation, export checks, the app) or auto/bf16/fp16, for batch
        scoring where a reward within bf16 rounding is enough and the speed matters. `device`: None is
        this process's own choice (`models.scoring_device`: the CPU in a ZeroGPU Space's app)."""
        path = resolve_model(model)
        self.model_path = path
        self.choice = choose_device(device or scoring_device(), precision)
        self.model, self.tokenizer = load_reward_model(path)
        self.model.eval().to(self.choice.device)
        self.max_length = max_length or _run_max_length(path)
        self.encoder = PairEncoder.for_model(self.tokenizer, self.model.config, self.max_length)
        self.batch_size = batch_size
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    @classmethod
    def beside(cls, base: Scorer, path: str, max_length: int | None = None) -> Scorer | None:
        """A run's model built from its already loaded base: the base's architecture and tokenizer, only the
        run's trained weights read (a cold Compare: no `from_pretrained`, no new tokenizer). None where the
        run's folder is not that: another architecture, tokenizer or dtype, or weights not in one file."""
        import copy

        from safetensors.torch import load_file

        folder, base_folder = Path(path), Path(base.model_path)
        weights = folder / "model.safetensors"
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            same_tokenizer = _same_tokenizer(folder, base_folder)
            state = load_file(str(weights)) if weights.is_file() else None
        except (OSError, ValueError):
            return None
        own = base.model.config
        if not same_tokenizer or state is None or config.get("model_type") != own.model_type:
            return None
        if config.get("architectures") != [type(base.model).__name__]:
            return None
        expected = base.model.state_dict()
        if set(state) ^ set(expected) or any(
            tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype
            for name, tensor in state.items()
        ):
            return None
        own = copy.deepcopy(own)
        own.pad_token_id = config.get("pad_token_id", own.pad_token_id)
        with torch.device("meta"):  # no memory and no random initialisation: every weight is the file's
            model = type(base.model)(own)
        model.load_state_dict(state, strict=True, assign=True)
        held = dict(base.model.named_buffers())
        for name, buffer in list(model.named_buffers()):  # position ids and the like: the base's, unchanged
            if buffer.is_meta:
                owner, _, attr = name.rpartition(".")
                model.get_submodule(owner)._buffers[attr] = held[name]
        scorer = cls.__new__(cls)
        scorer.model_path, scorer.choice = str(folder), base.choice
        scorer.model, scorer.tokenizer = model.eval(), base.tokenizer
        scorer.max_length = max_length or _run_max_length(str(folder))
        scorer.encoder = PairEncoder.for_model(scorer.tokenizer, model.config, scorer.max_length)
        scorer.batch_size, scorer.pad_id = base.batch_size, base.pad_id
        return scorer

    def at_length(self, max_length: int) -> Scorer:
        """This scorer reading `max_length` tokens: the same model and tokenizer objects, no load, no copy.
        A run compares against its base at the length it trained with, while the app warmed the base at 256."""
        import copy

        scorer = copy.copy(self)
        scorer.max_length = max_length
        scorer.encoder = PairEncoder.for_model(self.tokenizer, self.model.config, max_length)
        return scorer

    @torch.inference_mode()
    def score(self, prompts: list[str], answers: list[str], progress=None) -> np.ndarray:
        """Rewards in input order. Batches hold answers of similar length, so little padding.

        `progress(done, total)`, in batches: once with 0 when the batches are known, then after each."""
        encoded = self.encoder.encode(list(prompts), list(answers)).input_ids
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        order = np.argsort(lengths, kind="stable")
        rewards = np.zeros(len(encoded), dtype=np.float64)
        batches = self._batches(lengths[order])
        if progress is not None:
            progress(0, len(batches))
        for b, (start, stop) in enumerate(batches):
            index = order[start:stop]
            rows = [encoded[i] for i in index]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, : len(r)] = torch.tensor(r)
                mask[j, : len(r)] = 1
            with self._autocast():
                logits = self.model(
                    input_ids=ids.to(self.choice.device), attention_mask=mask.to(self.choice.device)
                ).logits
            rewards[index] = logits.squeeze(-1).float().cpu().numpy()
            if progress is not None:
                progress(b + 1, len(batches))
        return rewards

    def _batches(self, sorted_lengths: np.ndarray) -> list[tuple[int, int]]:
        """(start, stop) of each batch over lengths in ascending order: at most `batch_size` texts, and on
        the CPU at most CPU_BATCH_TOKENS tokens of padded width (attention's memory grows with the square
        of the width: 64 texts of 256 tokens took 480 MB above the model for one Explain)."""
        budget = CPU_BATCH_TOKENS if self.choice.device == "cpu" else None
        out, start = [], 0
        while start < len(sorted_lengths):
            stop = min(start + self.batch_size, len(sorted_lengths))
            if budget is not None:
                # the widest text of a batch is its last: shrink until width x count fits, one text at least
                while stop - start > 1 and sorted_lengths[stop - 1] * (stop - start) > budget:
                    stop = start + max(1, min(stop - start - 1, budget // max(int(sorted_lengths[stop - 1]), 1)))
            out.append((start, stop))
            start = stop
        return out

    def _autocast(self):
        import contextlib

        if self.choice.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.choice.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.choice.device, dtype=dtype)

    def compare(self, question: str, answer_a: str, answer_b: str) -> dict:
        reward_a, reward_b = self.score([question, question], [answer_a, answer_b])
        diff = float(reward_a - reward_b)
        return {
            "reward_a": float(reward_a),
            "reward_b": float(reward_b),
            "difference": diff,
            "p_a_preferred": float(1 / (1 + math.exp(-diff))),
        }


def _base_path_of(model: str) -> str | None:
    """Where the untrained model a run's `model` started from lives, or None (not a run's model, or a base
    that cannot be resolved here: a hub id offline)."""
    from rm_demo.runs import base_model_of, run_of_model

    if run_of_model(model) is None:
        return None
    try:
        return resolve_model(base_model_of(model)[0])
    except (OSError, ValueError):
        return None


def _same_tokenizer(folder: Path, base_folder: Path) -> bool:
    """The same vocabulary, normalisation, special tokens and templates: tokenizer.json less the padding and
    truncation a save leaves in it (every call sets its own), and the special tokens' names. Every run of
    one base saves the same bytes, so the verdict is kept by their hash: one parse per kind, not per run."""
    import hashlib

    files = [(folder / name).read_bytes() for name in ("tokenizer.json", "tokenizer_config.json")]
    key = (str(base_folder), hashlib.sha256(b"\0".join(files)).hexdigest())
    if key not in _TOKENIZER_VERDICTS:

        def read(where: Path) -> tuple[dict, dict]:
            tokenizer = json.loads((where / "tokenizer.json").read_text(encoding="utf-8"))
            tokenizer.pop("padding", None), tokenizer.pop("truncation", None)
            config = json.loads((where / "tokenizer_config.json").read_text(encoding="utf-8"))
            return tokenizer, {k: v for k, v in config.items() if k.endswith("_token") or k == "do_lower_case"}

        _TOKENIZER_VERDICTS[key] = read(folder) == read(base_folder)
    return _TOKENIZER_VERDICTS[key]


_TOKENIZER_VERDICTS: dict[tuple[str, str], bool] = {}  # (base folder, hash of a run's tokenizer files) -> same


def pairwise_accuracy(scorer: Scorer, prompts, chosen, rejected) -> dict:
    """Held-out accuracy: share of pairs where r(chosen) > r(rejected), and the mean margin."""
    n = len(prompts)
    rewards = scorer.score(list(prompts) * 2, list(chosen) + list(rejected))
    margin = rewards[:n] - rewards[n:]
    return {
        "accuracy": float(np.mean(margin > 0)) if n else float("nan"),
        "mean_margin": float(np.mean(margin)) if n else float("nan"),
        "pairs": n,
    }


class ScorerCache:
    """Loaded scorers by model, kept while their weights fit a memory budget; the least recently used
    goes first, and the newest always stays.

    In a workshop every visitor compares their own run against the base model: a cache of a fixed
    three models reloaded a model on nearly every click once a fourth visitor came. A model loads
    outside the cache's lock, so other visitors' clicks on loaded models answer meanwhile; two
    clicks on the same unloaded model load it once.
    """

    def __init__(self, budget_bytes: float | None = None):
        self._budget_bytes = budget_bytes
        self.hits = self.misses = 0
        self._scorers: OrderedDict[str, Scorer] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._generation = 0  # bumped by clear(): a load begun before it must not be cached after it
        self._load_slot = threading.Lock()
        self._clicks_waiting = 0

    def get(self, model: str, max_length: int | None = None, background: bool = False) -> Scorer:
        """`max_length`: None for the model's own (a run's, else 256); another length is another entry.

        `background`: a preload, which lets any click waiting for a load go first."""
        key = model if max_length is None else f"{model}@{max_length}"
        with self._lock:
            if key in self._scorers:
                self.hits += 1
                self._scorers.move_to_end(key)
                return self._scorers[key]
            model_lock = self._loading.setdefault(key, threading.Lock())
        with model_lock:
            with self._lock:
                if key in self._scorers:  # loaded by another click while this one waited
                    self.hits += 1
                    return self._scorers[key]
                generation = self._generation
            scorer = self._load(model, max_length, background)
            with self._lock:
                self.misses += 1
                self._loading.pop(key, None)
                if generation != self._generation:  # cleared meanwhile (a run deleted): answer, keep nothing
                    return scorer
                self._scorers[key] = scorer
                while len(self._scorers) > 1 and self.bytes_held() > self.budget_bytes:
                    self._scorers.popitem(last=False)
            return scorer

    def _load(self, model: str, max_length: int | None, background: bool) -> Scorer:
        """One model loads at a time: a load is Python and the GIL for ~0.2 s (MiniLM), and thirty
        visitors' first clicks loading side by side each took seconds and held every other click.
        A click waiting for a load goes before the preloads."""
        if background:
            while True:
                while self._clicks_waiting:
                    time.sleep(0.02)
                self._load_slot.acquire()
                if not self._clicks_waiting:
                    break
                self._load_slot.release()  # a click came while this one waited for the slot: it goes first
            try:
                return self._build(model, max_length)
            finally:
                self._load_slot.release()
        with self._lock:
            self._clicks_waiting += 1
        try:
            self._load_slot.acquire()
        finally:
            with self._lock:
                self._clicks_waiting -= 1
        try:
            return self._build(model, max_length)
        finally:
            self._load_slot.release()

    def _build(self, model: str, max_length: int | None) -> Scorer:
        path = resolve_model(model)
        base_path = _base_path_of(model)  # files read here, not under the lock every cache hit takes
        with self._lock:
            held = [kept.model for kept in self._scorers.values()]
            same = next((scorer for scorer in self._scorers.values() if scorer.model_path == path), None)
            kept = self._scorers.values() if base_path is not None else ()
            base = next((scorer for scorer in kept if scorer.model_path == base_path), None)
        if same is not None:  # the model held at another length (a run's base at the run's length): no load
            return same.at_length(max_length or _run_max_length(path))
        scorer = (Scorer.beside(base, model, max_length) if base is not None else None) or Scorer(
            model, max_length=max_length
        )
        share_weights(scorer.model, held)
        return scorer

    @property
    def budget_bytes(self) -> float:
        """The budget given, else the settings' (read when first needed, not when this module is imported)."""
        if self._budget_bytes is None:
            from rm_demo.settings import current

            return current().scorer_cache_mb * 2**20
        return self._budget_bytes

    @budget_bytes.setter
    def budget_bytes(self, value: float | None) -> None:
        self._budget_bytes = value

    def bytes_held(self) -> int:
        """The memory of the weights held, each shared tensor counted once."""
        seen: set[int] = set()
        total = 0
        for scorer in self._scorers.values():
            for tensor in (*scorer.model.parameters(), *scorer.model.buffers()):
                if tensor.data_ptr() not in seen:
                    seen.add(tensor.data_ptr())
                    total += tensor.numel() * tensor.element_size()
        return total

    def models(self) -> list[str]:
        with self._lock:
            return list(self._scorers)

    def clear(self) -> None:
        with self._lock:
            self._scorers.clear()
            self._generation += 1


# Tensors smaller than this are not worth comparing (MiniLM's word embeddings: 11.7M values).
SHARE_MIN_VALUES = 1_000_000


def share_weights(model: torch.nn.Module, held: list[torch.nn.Module]) -> int:
    """Point `model`'s big weights at identical ones a held model has; returns the bytes saved.

    A run trains with its word embeddings frozen (the default) or its first layers frozen: those are
    its base model's, value for value. MiniLM's word embeddings are 45 of its 87 MB, so thirty
    visitors' runs beside the base take 1.4 GB, not 2.7. Scoring never writes weights.
    """
    import torch

    candidates: dict[tuple, list[torch.Tensor]] = {}
    for other in held:
        for name, tensor in other.named_parameters():
            if tensor.numel() >= SHARE_MIN_VALUES:
                candidates.setdefault((name, tuple(tensor.shape), tensor.dtype, tensor.device), []).append(tensor)
    saved = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            for other in candidates.get((name, tuple(param.shape), param.dtype, param.device), ()):
                if other.data_ptr() != param.data_ptr() and torch.equal(other, param):
                    param.data = other.data
                    saved += param.numel() * param.element_size()
                    break
    return saved


# 2 GB holds the base and about forty MiniLM runs trained with frozen word embeddings (the default;
# 44 MB each of their own, see share_weights), or twenty-two without; a 0.5B model (2 GB) stays alone.
scorer_cache = ScorerCache()  # its budget: RM_DEMO_SCORER_CACHE_MB (rm_demo.settings)


def get_scorer(model: str = "default", max_length: int | None = None, background: bool = False) -> Scorer:
    """A loaded scorer, kept between calls (the app's clicks): loading is the slow part."""
    return scorer_cache.get(model or "default", max_length, background)


def forget_scorer() -> None:
    """Drop every cached model (after a run's model folder is replaced or deleted)."""
    scorer_cache.clear()


@dataclass
class AnswerTable:
    """Rows of (question, answer) to score, with the columns they came in."""

    frame: pd.DataFrame  # every input column, plus `reward` once scored (score_answers)
    source: str
    question_col: str
    answer_col: str


def read_answers(
    path: str, read_options=None, question_col: str | None = None, answer_col: str | None = None
) -> AnswerTable:
    """A table of (question, answer) rows to score, every column kept (no `reward` yet).

    Read before any model loads, so a bad file is reported at once."""
    from rm_demo.feedback import ReadOptions, find_column, read_table

    table = read_table(path, read_options or ReadOptions())
    frame = table.frame.drop(columns="row")
    columns = list(frame.columns)
    q_col = find_column(columns, "question", question_col, table.source)
    a_col = find_column(columns, "answer", answer_col, table.source)
    return AnswerTable(frame, table.source, q_col, a_col)


def score_answers(scorer: Scorer, table: AnswerTable, progress=None) -> AnswerTable:
    """The table with a `reward` column added."""
    from rm_demo.feedback import normalize_answer, normalize_question

    frame = table.frame
    prompts = list(normalize_question(frame[table.question_col]))
    answers = list(normalize_answer(frame[table.answer_col]))
    rewards = scorer.score(prompts, answers, progress=progress)
    return AnswerTable(frame.assign(reward=rewards), table.source, table.question_col, table.answer_col)


def score_file(
    scorer: Scorer,
    path: str,
    read_options=None,
    question_col: str | None = None,
    answer_col: str | None = None,
    progress=None,
) -> AnswerTable:
    """Read a table of (question, answer) rows and add a `reward` column; every column is kept."""
    return score_answers(scorer, read_answers(path, read_options, question_col, answer_col), progress)
