"""Training a reward model with TRL's RewardTrainer, writing the run folder as it goes.

`train(config)` is the one entry point: the CLI calls it in the foreground, the job queue calls it
in a child process, and `torchrun`/`accelerate launch` call it once per process (the HF Trainer
reads the launcher's environment; only the main process writes the run folder).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from rm_demo.config import (
    TrainConfig,
    planned_epochs,
    planned_steps,
    training_attention,
    uses_activation_checkpointing,
)
from rm_demo.errors import InputError
from rm_demo.models import (
    PairEncoder,
    choose_device,
    load_reward_model,
    pooler_starts_at_identity,
    quiet_weight_bars,
    resolve_model,
    transformer_layers,
)
from rm_demo.runs import RunFolder, checkpoint_step, process_start
from rm_demo.tables import atomic_path
from rm_demo.text import accuracy_phrase

log = logging.getLogger(__name__)


def loss_margins(gaps: np.ndarray, mode: str, largest_gap: float | None = None) -> np.ndarray | None:
    """The `margin` TRL subtracts inside its loss, -log sigmoid(r_chosen - r_rejected - margin), or None.

    Raw score gaps (mode "gap", as in Llama 2's reward model) ask a reward difference of 4 for a 5-vs-1
    pair, far beyond what a pair's sigmoid needs; "scaled" divides by the largest gap (the training
    pairs', so held-out pairs scale alike), "clipped" caps at 1. Pairs without scores get no margin.
    """
    if mode == "off" or not len(gaps) or not np.isfinite(gaps).all():
        return None
    if mode == "gap":
        return gaps
    if mode == "scaled":
        largest = largest_gap if largest_gap and np.isfinite(largest_gap) else float(np.max(gaps))
        return gaps / max(largest, 1e-12)
    if mode == "clipped":
        return np.minimum(gaps, 1.0)
    raise ValueError(f"unknown margin mode {mode!r}")


def tokenize_pairs(encoder: PairEncoder, pairs: pd.DataFrame, margin: str = "off", largest_gap: float | None = None):
    """Pairs -> a `datasets.Dataset` in TRL's pre-tokenised form (chosen_ids, rejected_ids[, margin]).

    Giving TRL token ids skips its own preprocessing, which would drop pairs over max_length.
    """
    from datasets import Dataset

    chosen = encoder.encode(pairs["prompt"].tolist(), pairs["chosen"].tolist())
    rejected = encoder.encode(pairs["prompt"].tolist(), pairs["rejected"].tolist())
    columns = {
        "chosen_ids": chosen.input_ids,
        "rejected_ids": rejected.input_ids,
        # The collator pads chosen and rejected to one length: batching by it cuts padding.
        "length": [max(len(c), len(r)) for c, r in zip(chosen.input_ids, rejected.input_ids)],
    }
    margins = loss_margins(pairs["margin"].to_numpy(dtype="float64"), margin, largest_gap)
    if margins is not None:
        columns["margin"] = margins.tolist()
    truncated = int(np.sum(np.logical_or(chosen.truncated, rejected.truncated)))
    return Dataset.from_dict(columns), truncated


def pointwise_targets(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """A score on the file's low..high as a regression target on -1..1: a 1-5 file and a 0-10 one train alike."""
    return 2.0 * (np.asarray(scores, dtype="float64") - low) / (high - low) - 1.0


def answer_partners(answers: pd.DataFrame) -> pd.DataFrame:
    """Each question's rated answers two by two, best first: (prompt, first, second, first_score, second_score).

    The pointwise loss needs no partner, but TRL's batches are of two texts per row; pairing answers of one
    question keeps every rated answer in exactly one row (an odd one out sits beside its question's best,
    a question's only answer beside itself), and the pair's order says which the scores rank higher."""
    frame = answers.reset_index(drop=True)
    question = pd.factorize(frame["prompt"])[0]
    order = np.lexsort((-frame["score"].to_numpy(dtype="float64"), question))
    frame, question = frame.iloc[order].reset_index(drop=True), question[order]
    rank = frame.groupby(question).cumcount().to_numpy()
    size = np.bincount(question)[question]
    first = np.flatnonzero(rank % 2 == 0)
    # the answer after each first one in its question, or the question's best where none follows
    second = np.where(rank[first] + 1 < size[first], first + 1, first - rank[first])
    return pd.DataFrame(
        {
            "prompt": frame["prompt"].to_numpy()[first],
            "first": frame["answer"].to_numpy()[first],
            "second": frame["answer"].to_numpy()[second],
            "first_score": frame["score"].to_numpy(dtype="float64")[first],
            "second_score": frame["score"].to_numpy(dtype="float64")[second],
        }
    )


def objective_dataset(encoder: PairEncoder, config: TrainConfig, saved, train_pairs: pd.DataFrame):
    """The training set for `config.objective` "pointwise" or "both", in TRL's pre-tokenised form plus
    `chosen_target`/`rejected_target` (the scores on -1..1) and `pairwise` (1: the Bradley-Terry term applies).

    pointwise: every rated answer of the training questions, two per row (`answer_partners`); both: those
    rows plus the strategy's pairs with the pairwise term on. Returns (dataset, truncated, answers, range)."""
    from datasets import concatenate_datasets

    answers = saved.training_answers
    if answers is None or not len(answers):
        raise InputError(
            f"--objective {config.objective} fits each answer's score: this file has pairs, not scored answers",
            source=config.data_name,
            fix="use --objective pairwise (the default), or a file of questions, answers and scores",
        )
    every = saved.answers["score"].to_numpy(dtype="float64")
    low, high = float(np.min(every)), float(np.max(every))
    if high <= low:
        raise InputError(f"every answer scores {low:g}: nothing to fit", fix="use --objective pairwise")
    partners = answer_partners(answers)
    renamed = partners.rename(columns={"first": "chosen", "second": "rejected"})
    pointwise, truncated = tokenize_pairs(encoder, renamed.assign(margin=0.0), "off")
    pointwise = pointwise.add_column("chosen_target", pointwise_targets(partners["first_score"], low, high).tolist())
    pointwise = pointwise.add_column(
        "rejected_target", pointwise_targets(partners["second_score"], low, high).tolist()
    )
    pointwise = pointwise.add_column("pairwise", [0.0] * len(partners))
    if config.objective == "pointwise":
        return pointwise, truncated, len(answers), (low, high)
    pairwise, more = tokenize_pairs(encoder, train_pairs, config.margin)
    if "margin" in pairwise.column_names:  # one set of columns for both halves: the answers' rows get none
        pointwise = pointwise.add_column("margin", [0.0] * len(pointwise))
    pairwise = pairwise.add_column("chosen_target", pointwise_targets(train_pairs["chosen_score"], low, high).tolist())
    pairwise = pairwise.add_column(
        "rejected_target", pointwise_targets(train_pairs["rejected_score"], low, high).tolist()
    )
    pairwise = pairwise.add_column("pairwise", [1.0] * len(train_pairs))
    return concatenate_datasets([pairwise, pointwise]), truncated + more, len(answers), (low, high)


def _training_set(encoder: PairEncoder, config: TrainConfig, saved, train_pairs: pd.DataFrame):
    """(dataset, truncated pairs, what run.json's data says of the objective and the margin)."""
    said = {"objective": config.objective, "margin_mode": config.margin}
    if config.objective == "pairwise":
        dataset, truncated = tokenize_pairs(encoder, train_pairs, config.margin)
    else:
        dataset, truncated, answers, (low, high) = objective_dataset(encoder, config, saved, train_pairs)
        said.update(pointwise_answers=answers, score_range=[low, high])
    return dataset, truncated, {**said, "margin_used": "margin" in dataset.column_names}


def _data_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _versions() -> dict:
    import torch
    import transformers
    import trl

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
    }


def _pairs_of_run(config: TrainConfig, run, is_main: bool, fresh: bool):
    """A run from step 0 derives its pairs and saves them (the first process; the others then read them);
    a resumed run, or the next slice of one, trains on what it saved."""
    from rm_demo.run_pairs import run_pairs

    with process_state(config).main_process_first():
        return run_pairs(run, config, fresh=fresh and is_main)


# Where a run's progress lines go: True, stderr; a text stream; False, nowhere (see `train_slice`).
Progress = bool | TextIO


def progress_stream(progress: Progress) -> TextIO | None:
    """The stream `progress` names, or None (stderr)."""
    return None if isinstance(progress, bool) else progress


def build_trainer(config: TrainConfig, run, is_main: bool, progress: Progress = True, checkpoint=None, limit=None):
    """Data, model, TRL config, callbacks: (trainer, info). Resumes from `checkpoint`; `limit`: one slice."""
    import torch
    from transformers import PrinterCallback

    from rm_demo.callbacks import EpochWeightAverage

    config.validate()
    saved = _pairs_of_run(config, run, is_main, fresh=checkpoint is None)
    train_pairs, eval_pairs = saved.train, saved.held_out
    choice = choose_device(config.device, config.precision)
    model_path = resolve_model(config.model)
    torch.manual_seed(config.seed)
    model, tokenizer = load_reward_model(model_path, config.trust_remote_code)
    encoder = PairEncoder.for_model(tokenizer, model.config, config.max_length)
    train_ds, train_truncated, objective_info = _training_set(encoder, config, saved, train_pairs)
    largest_gap = float(train_pairs["margin"].max()) if len(train_pairs) else None
    eval_ds, eval_truncated = (
        tokenize_pairs(encoder, eval_pairs, config.margin, largest_gap) if len(eval_pairs) else (None, 0)
    )

    curve_ds = curve_sample(eval_ds, config.curve_eval_pairs, config.seed)
    word_embeddings = freeze_word_embeddings(model, config)
    frozen_layers = freeze_first_layers(model, config)
    checkpointing = uses_activation_checkpointing(config.activation_checkpointing, model.num_parameters())
    attention = set_training_attention(model, config, choice.device)

    world = max(1, int(os.environ.get("WORLD_SIZE", "1")))
    epochs = planned_epochs(config, len(train_ds), world)
    args = reward_config(
        config,
        choice,
        len(train_ds),  # rows of the training set: pairs, or with --objective the answers too
        world,
        has_eval=eval_ds is not None,
        activation_checkpointing=checkpointing,
        resuming=checkpoint is not None,
    )
    info = {
        "device": choice.device,
        "device_name": choice.name,
        "precision": choice.precision,
        "model_path": model_path,
        # A sentence-transformers checkpoint's [CLS] pooler was never trained: it started at identity.
        "pooler": "identity (untrained in the checkpoint)"
        if pooler_starts_at_identity(model, model_path)
        else "from the checkpoint",
        "world_size": world,
        "epochs_run": epochs,
        "activation_checkpointing": checkpointing,
        "attention": attention,
        "dropout": config.dropout,
        "word_embeddings": word_embeddings,
        "frozen_layers": frozen_layers,
        "data": {
            **data_summary(config, saved.report, train_pairs, eval_pairs),
            "curve_eval_pairs": len(curve_ds) if curve_ds is not None else 0,
            "truncated_pairs": {"train": train_truncated, "eval": eval_truncated},
            **objective_info,  # the objective, the margin, and for a score objective the answers fitted
        },
        "versions": _versions(),
    }
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=curve_ds,
        processing_class=tokenizer,
        data_collator=_collator(tokenizer) if config.objective != "pairwise" else None,
        callbacks=_callbacks(config, run, is_main, world, progress, limit),
        peft_config=_lora_config(config),
    )
    trainer.final_eval_dataset = eval_ds  # every held-out pair, for the evaluation after training
    trainer.remove_callback(PrinterCallback)  # raw metric dicts: ConsoleProgress reports instead
    # A per-process mean of sharded weights is not one this callback can check: those keep their last.
    sharded = _weights_sharded(trainer)
    if config.average_epochs > 1 and not sharded:
        trainer.add_callback(EpochWeightAverage(config.average_epochs, resume_from=checkpoint))
    info["weight_average"] = {"epochs": config.average_epochs if not sharded else 1, "applied": False}
    return trainer, info


def data_summary(config: TrainConfig, report: dict, train_pairs: pd.DataFrame, eval_pairs: pd.DataFrame) -> dict:
    """What run.json says of the data: where it came from, its accounting (`report`), the split."""
    return {
        "source": config.data_name,
        "sha256_16": _data_hash(config.input),
        "report": report,
        "train_pairs": len(train_pairs),
        "eval_pairs": len(eval_pairs),
        "train_questions": int(train_pairs["prompt"].nunique()),
        "eval_questions": int(eval_pairs["prompt"].nunique()) if len(eval_pairs) else 0,
    }


def freeze_word_embeddings(model, config: TrainConfig) -> str:
    """Keep the input word embeddings as the checkpoint has them, unless asked to train them.

    Called before the optimizer exists, so it never holds their moments. LoRA runs (peft) freeze
    every base weight anyway. Returns what run.json records: "frozen" or "trained".
    """
    if config.train_embeddings:  # never with --lora (the config refuses the pair)
        return "trained"
    embeddings = model.get_input_embeddings()
    if embeddings is not None:
        embeddings.weight.requires_grad_(False)
    return "frozen"


def freeze_first_layers(model, config: TrainConfig) -> int:
    """Keep the first `freeze_layers` transformer layers as loaded (no backward pass through them).

    Before the optimizer exists, like the embeddings. Returns how many were frozen, for run.json.
    """
    if not config.freeze_layers:  # never set with --lora (the config refuses the pair: peft freezes them all)
        return 0
    layers = transformer_layers(model)
    if config.freeze_layers > len(layers):  # more than it has, or a layout not found: say so, never train less
        raise InputError(
            f"--freeze-layers {config.freeze_layers}: the model has {len(layers) or 'no recognisable'} layers",
            fix=f"freeze at most {len(layers)} layers" if layers else "leave --freeze-layers at 0",
        )
    frozen = layers[: config.freeze_layers]
    for layer in frozen:
        layer.requires_grad_(False)
    return len(frozen)


def _callbacks(
    config: TrainConfig, run: RunFolder | None, is_main: bool, world: int, progress: Progress, limit: SliceLimit | None
) -> list:
    from rm_demo.callbacks import CancelCallback, CheckpointInterval, ConsoleProgress, MetricsCallback, SliceClock

    callbacks = [CancelCallback(run)] if run else []
    if limit is not None and world > 1:  # processes' clocks could disagree on the step a slice ends at
        raise InputError("--slice-seconds trains in one process", fix="drop --slice-seconds under a launcher")
    if limit is not None:  # after Cancel's: a Stop in the slice's last step is a Stop
        callbacks.append(SliceClock(limit.seconds, limit.pause))
    # After Cancel's, so a Stop's checkpoint always goes through. One process only: processes' clocks
    # could disagree on a save that all of them must join (launched runs keep one per evaluation).
    if config.checkpoints and world == 1:
        from rm_demo.settings import current

        callbacks.append(CheckpointInterval(current().checkpoint_seconds))
    if run and is_main:
        callbacks.append(MetricsCallback(run))
    if progress is not False and is_main:
        callbacks.append(ConsoleProgress(progress_stream(progress), asked=(config.epochs, config.min_steps)))
    return callbacks


def curve_sample(eval_ds, limit: int, seed: int):
    """The held-out pairs the evaluations during training score: all, or a fixed seeded sample of `limit`."""
    if eval_ds is None or not limit or len(eval_ds) <= limit:
        return eval_ds
    return eval_ds.shuffle(seed=seed).select(range(limit))


def _lora_config(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=2 * config.lora_r, lora_dropout=0.05)


def reward_config(
    config: TrainConfig,
    choice,
    train_pairs: int,
    world: int,
    has_eval: bool,
    activation_checkpointing: bool = False,
    resuming: bool = False,
):
    """TRL's `RewardConfig` for this run: epochs (raised for tiny data), evaluation cadence, precision.

    `resuming`: the untrained baseline is on the curve already (a resumed run or its next slice)."""
    from dataclasses import fields

    from trl import RewardConfig

    # transformers 5 renamed gradient_checkpointing (TRL's default: on) to activation_checkpointing.
    names = {f.name for f in fields(RewardConfig)}
    checkpointing_name = (
        "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    )

    epochs = planned_epochs(config, train_pairs, world)
    eval_steps = config.eval_steps or max(1, planned_steps(config, train_pairs, world) // 10)
    return RewardConfig(
        output_dir=str(Path(config.output_dir) / "trainer"),
        num_train_epochs=epochs,
        learning_rate=config.learning_rate,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size * 2,
        gradient_accumulation_steps=config.gradient_accumulation,
        max_length=None,  # lengths are handled by PairEncoder: truncate, never drop
        logging_steps=max(1, min(eval_steps, 5)),
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_steps,
        eval_on_start=has_eval and not resuming,  # the untrained baseline: the accuracy curve starts near 0.5
        save_strategy="steps" if config.checkpoints else "no",
        save_steps=eval_steps,
        save_total_limit=1,  # only the latest: a resume needs no more
        report_to=[],
        seed=config.seed,
        bf16=choice.precision == "bf16",
        fp16=choice.precision == "fp16",
        use_cpu=choice.device == "cpu",
        disable_tqdm=True,  # ConsoleProgress reports instead (see _callbacks)
        center_rewards_coefficient=config.center_rewards or None,
        disable_dropout=not config.dropout,
        warmup_steps=0.1,  # a fraction: 10% of the steps
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length",
        **{checkpointing_name: activation_checkpointing},
    )


def set_training_attention(model, config: TrainConfig, device: str) -> str:
    """Switch the model to the attention `training_attention` picks; returns the one it trains with.

    For training only: the saved config.json names none, so whatever loads the model picks its own."""
    wanted = training_attention(config.attention, device, config.max_length, model.config._attn_implementation)
    if wanted:
        try:
            model.set_attn_implementation(wanted)
        except (ValueError, ImportError, NotImplementedError) as exc:
            if config.attention != "auto":  # asked for by name: say why not; auto keeps the model's own
                raise InputError(
                    f"this model cannot use {wanted} attention: {exc}", fix="use --attention auto"
                ) from None
    return model.config._attn_implementation


def _weights_sharded(trainer) -> bool:
    """DeepSpeed (ZeRO-3) and FSDP split the weights across processes; no process holds them whole."""
    return bool(trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled)


def save_model(trainer, model_dir: str, is_main: bool) -> None:
    """The run's `model/`: a whole model that `AutoModelForSequenceClassification` loads.

    LoRA adapters are merged into the base weights first (peft's `merge_and_unload`): an
    adapter-only folder would need peft and the base model at hand to load.
    """
    model = trainer.model
    if hasattr(model, "merge_and_unload") and not _weights_sharded(trainer):
        if is_main:
            merged = model.merge_and_unload()
            same_reward_for_any_token_type(merged)
            merged.save_pretrained(model_dir)
        return
    if not _weights_sharded(trainer):
        same_reward_for_any_token_type(trainer.model)
    trainer.save_model(model_dir)  # main process only, inside the Trainer (gathers sharded weights)


def same_reward_for_any_token_type(model) -> bool:
    """Training passes no token type ids (all 0), but servers (text-embeddings-inference, vLLM's
    cross-encoders) and `tokenizer(question, answer)` send 1 for the answer. Copying the type-0
    embedding over the others makes the saved model give the same reward either way."""
    import torch

    changed = False
    for module in model.modules():
        table = getattr(module, "token_type_embeddings", None)
        if isinstance(table, torch.nn.Embedding) and table.weight.shape[0] > 1:
            with torch.no_grad():
                table.weight[1:] = table.weight[0]
            changed = True
    return changed


TARGET_COLUMNS = ["chosen_target", "rejected_target", "pairwise"]


def _collator(tokenizer):
    """TRL's preference collator, passing the score targets of --objective pointwise/both on as tensors."""
    from trl.trainer.reward_trainer import DataCollatorForPreference

    class WithTargets(DataCollatorForPreference):
        def torch_call(self, examples):
            import torch

            batch = super().torch_call(examples)
            for name in TARGET_COLUMNS:
                if name in examples[0]:
                    batch[name] = torch.tensor([example[name] for example in examples], dtype=torch.float)
            return batch

    return WithTargets(pad_token_id=tokenizer.pad_token_id)


def objective_loss(trainer, model, inputs, return_outputs=False):
    """Mean squared error of every reward against its target, plus -log sigmoid(r_first - r_second [- margin])
    on the rows marked pairwise; the metrics TRL logs, with accuracy over the rows whose scores differ."""
    import torch
    import torch.nn.functional as F

    mode = "train" if model.training else "eval"
    target = torch.cat([inputs.pop("chosen_target"), inputs.pop("rejected_target")])
    pairwise = inputs.pop("pairwise").bool()
    margin = inputs.pop("margin", None)
    inputs["use_cache"] = False
    outputs = model(**inputs)
    rewards = outputs.logits.squeeze(-1).float()
    chosen, rejected = torch.chunk(rewards, 2)
    loss = F.mse_loss(rewards, target.to(rewards.dtype))
    if pairwise.any():
        gap = (chosen - rejected)[pairwise]
        if margin is not None:
            gap = gap - margin[pairwise].to(gap.dtype)
        loss = loss + (-F.logsigmoid(gap)).mean()
    if trainer.args.center_rewards_coefficient is not None:
        loss = loss + trainer.args.center_rewards_coefficient * torch.mean(rewards**2)
    if mode == "train":
        tokens = trainer.accelerator.gather_for_metrics(inputs["attention_mask"].sum()).sum().item()
        trainer._total_train_tokens += tokens // trainer._tp_size
    metrics = trainer._metrics[mode]
    metrics["num_tokens"] = [trainer._total_train_tokens]
    with torch.no_grad():
        everything = trainer.accelerator.gather(rewards.detach())
        metrics["min_reward"].append(everything.min().item())
        metrics["mean_reward"].append(everything.mean().item())
        metrics["max_reward"].append(everything.max().item())
        n = chosen.shape[0]
        ranked = target[:n] > target[n:]
        if ranked.any():
            right = (chosen[ranked] > rejected[ranked]).float().mean()
            metrics["accuracy"].append(trainer.accelerator.gather_for_metrics(right).mean().item())
            gap = (chosen[ranked] - rejected[ranked]).mean()
            metrics["margin"].append(trainer.accelerator.gather_for_metrics(gap).mean().item())
    return (loss, outputs) if return_outputs else loss


def _trainer_class():
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl import RewardTrainer

    class EpochSeededLengthSampler(LengthGroupedSampler):
        """Batches of similar length in an order drawn from (seed, epoch) alone.

        transformers' sampler draws each epoch's order from the global random state, which a resumed
        run restores only after drawing it: a run resumed mid-epoch (the next slice) trained on another
        order than the run it continues.
        """

        def __init__(self, batch_size: int, lengths: list[int], seed: int):
            super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
            self.seed = seed
            self.set_epoch(0)

        def set_epoch(self, epoch: int) -> None:
            self.generator.manual_seed(self.seed + int(epoch))

    class LengthGroupedRewardTrainer(RewardTrainer):
        """RewardTrainer that keeps the `length` column for the length-grouped sampler and seeds its order.

        TRL's signature columns would remove it before the sampler reads it; the collator ignores it.
        """

        def _set_signature_columns_if_needed(self):
            if self._signature_columns is None:
                self._signature_columns = ["chosen_ids", "rejected_ids", "margin", "length", *TARGET_COLUMNS]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            """TRL's pairwise loss, or (batches with score targets: --objective pointwise or both) the squared
            error of each reward against its answer's score, plus the pairwise loss on the rows it applies to."""
            if "chosen_target" not in inputs:  # pairwise, and every evaluation
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return objective_loss(self, model, inputs, return_outputs)

        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            if type(sampler) is LengthGroupedSampler:
                seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
                sampler = EpochSeededLengthSampler(sampler.batch_size, sampler.lengths, seed)
            return sampler

    return LengthGroupedRewardTrainer


@dataclass
class SliceLimit:
    """One slice of a sliced run: how long it may train, and who goes on after it."""

    seconds: float | None = None
    pause: threading.Event | None = None  # set: end the slice at the next step, the run "paused"
    # The process that starts the next slice, as (pid, start time): the run's process between slices,
    # so it reads as alive while that one lives. None: this process.
    driver: tuple[int, float | None] | None = None


def train(config: TrainConfig, progress: Progress = True, resume: bool = False, between_slices=None) -> dict:
    """Run one training job end to end; returns the final run.json contents (main process).

    `resume`: go on from the run's latest checkpoint (a stopped, failed or killed run); its curves
    keep their history up to that step. With `config.slice_seconds` the run trains in slices, each a
    new trainer resumed from the last one's checkpoint, as a new process would; `between_slices()` is
    called after each (the job queue lets waiting runs have the device there) and returns False to stop.
    """
    if not config.slice_seconds:
        return train_slice(config, progress, resume)
    while True:
        record = train_slice(config, progress, resume, SliceLimit(config.slice_seconds))
        if record.get("status") != "running":
            return record
        resume = True
        if between_slices is not None and not between_slices():  # stopped between two slices
            return RunFolder(config.output_dir).read()


def process_state(config: TrainConfig):
    """This process's place among the launcher's (accelerate's PartialState). Told the CPU wherever training
    runs on it: otherwise, under torchrun on a CPU machine, every process took itself for the main one
    (each wrote run.json and printed the result)."""
    from accelerate import PartialState

    return PartialState(cpu=choose_device(config.device, config.precision).device == "cpu")


def train_slice(config: TrainConfig, progress: Progress = True, resume: bool = False, limit: SliceLimit | None = None):
    """Train until the run ends or, with `limit`, until its slice does; returns run.json (main process).

    `progress`: True, the progress lines go to stderr; a text stream, there (a slice trained in the app's
    own process writes them into its run's train.log, as a run's process does); False, none.

    A slice that ends before the run leaves a checkpoint and run.json saying "running" (its driver
    goes on: `limit.driver`), or "paused" when `limit.pause` ended it; either resumes with `resume`.
    """

    run = RunFolder(config.output_dir)
    state = process_state(config)
    is_main = state.is_main_process
    checkpoint = _resume_point(run, config) if resume else None
    if is_main:
        _start_record(run, config, checkpoint)
    try:
        trainer, info = build_trainer(config, run, is_main, progress, checkpoint, limit)
        if is_main:
            run.update(**info)
        with quiet_weight_bars():  # checkpoints and the saved model: no "Writing model shards" bars
            train_output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
            if is_main:  # every trainer of the run (slices, resumes) adds its time
                run.update(train_seconds=_train_seconds(run) + train_output.metrics.get("train_runtime", 0.0))
                if limit is not None:
                    run.update(slices=int(run.read().get("slices") or 0) + 1)
            ended = _slice_ended(trainer)
            if ended:
                return _slice_record(run, trainer, limit, ended) if is_main else {}
            final = {}
            if trainer.final_eval_dataset is not None:  # every held-out pair (the curves scored a sample)
                metrics = trainer.evaluate(trainer.final_eval_dataset)
                final = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
            cancelled = run.cancel_requested
            save_model(trainer, str(run.model_dir), is_main)
            if is_main:
                if final and not cancelled:
                    final = _exact_final_metrics(run, final, trainer.args.device.type, progress_stream(progress))
                return _finish_record(run, trainer, info, final, cancelled)
            return {}
    except InputError as exc:
        if is_main:
            run.move("failed", error=str(exc), finished_at=time.time())
        raise
    except KeyboardInterrupt:  # Ctrl-C in a terminal: a stop, resumable from the last checkpoint
        if is_main:
            run.move("cancelled", error="interrupted (Ctrl-C)", finished_at=time.time())
        raise
    except Exception as exc:  # recorded for the UI, then re-raised for the log
        if is_main:
            run.move("failed", error=f"{type(exc).__name__}: {exc}", finished_at=time.time())
        raise


def _slice_ended(trainer) -> str:
    """Why the slice ended before the run ("time" or "pause"), or "" when the run ended (or was stopped)."""
    from rm_demo.callbacks import SliceClock

    clock = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, SliceClock)), None)
    return clock.ended if clock is not None else ""


def _slice_record(run: RunFolder, trainer, limit: SliceLimit, ended: str) -> dict:
    """run.json after a slice that ended before the run: where it stands and who goes on with it."""
    step = trainer.state.global_step
    if ended == "pause":
        return run.move(
            "paused",
            finished_at=time.time(),
            error=None,
            paused_at_step=step,
        )
    pid, started = limit.driver or (os.getpid(), process_start(os.getpid()))
    return run.move("running", pid=pid, pid_started=started)


def _train_seconds(run: RunFolder) -> float:
    value = run.read().get("train_seconds")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _exact_final_metrics(run: RunFolder, final: dict, device: str | None = None, stream: TextIO | None = None) -> dict:
    """The saved model's held-out accuracy as `rm_demo evaluate` and the Evaluate tab compute it.

    TRL's evaluation averages each batch's accuracy (a short last batch weighs as much as a full
    one) under the training's bf16: on the workshop sample's 39 pairs it said 77.2% where the saved
    model ranks 71.8% right, and the model menu contradicted the Evaluate tab. The exact figure
    replaces it; TRL's is kept beside it as `trainer_eval_accuracy`.
    """
    from rm_demo.evaluate import evaluate_run

    try:
        # On the device it trained on (a ZeroGPU slice's GPU; the app's own scoring is the CPU there).
        report = evaluate_run(run.path, device=device)  # also writes eval.json: the Evaluate tab opens at once
    except Exception as exc:  # the run has trained and saved; its record says why this figure is TRL's
        log.warning("could not evaluate the saved model of %s: %s", run.name, exc)
        return final
    if not report.get("pairs"):
        return final
    # The curves' star for the saved model shows the same figure as the record.
    metrics = [
        {
            **m,
            "eval_accuracy": report["accuracy"],
            "eval_pairs": report["pairs"],  # the star says its n and interval
            "trainer_eval_accuracy": m.get("eval_accuracy"),
        }
        if m.get("final") and "eval_accuracy" in m
        else m
        for m in run.metrics()
    ]
    with atomic_path(run.metrics_path) as tmp:
        tmp.write_text("".join(json.dumps(m) + "\n" for m in metrics), encoding="utf-8")
    exact = accuracy_phrase(report["accuracy"], report["pairs"])
    print(f"the saved model, every held-out pair: held-out accuracy {exact}", file=stream or sys.stderr, flush=True)
    return {
        **final,
        "trainer_eval_accuracy": final.get("eval_accuracy"),
        "eval_accuracy": report["accuracy"],
        "eval_accuracy_interval": report["accuracy_interval"],  # 95%, Wilson
        "eval_margin": report["mean_margin"],
    }


def _resume_point(run: RunFolder, config: TrainConfig) -> Path:
    """The checkpoint a resume goes on from: the newest intact one (a damaged newer one is named and
    skipped), on the very data the run began with (its copy's hash as run.json recorded it)."""
    skipped: list = []
    checkpoint = run.latest_checkpoint(skipped)
    damaged = "; ".join(f"{path.name}: {why}" for path, why in skipped)
    if checkpoint is None:
        raise InputError(
            "this run has no intact checkpoint to resume from" + (f" ({damaged})" if damaged else ""),
            source=run.name,
            fix="train it again from the start (runs save checkpoints unless --no-checkpoints)",
        )
    if damaged:
        log.warning("%s: skipped %s; resuming from %s", run.name, damaged, checkpoint.name)
    recorded = (run.read().get("data") or {}).get("sha256_16")
    try:
        now = _data_hash(config.input)
    except OSError as exc:
        raise InputError(
            f"its data copy cannot be read ({exc.strerror or exc})",
            source=str(config.input),
            fix="the run's data copy is gone: train again from the original file",
        ) from None
    if recorded and now != recorded:
        raise InputError(
            "its data copy changed since the run began (another held-out set, other pairs)",
            source=str(config.input),
            fix="put the original data back, or train a new run on the edited file",
        )
    return checkpoint


def _start_record(run: RunFolder, config: TrainConfig, checkpoint: Path | None) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    if checkpoint is None and run.metrics_path.exists():
        run.metrics_path.unlink()  # a re-run of the same folder starts a fresh curve
    if checkpoint is not None:  # the curve goes on from the checkpoint: later points are redone
        step = checkpoint_step(checkpoint)
        kept = [json.dumps(m) for m in run.metrics() if m.get("step", 0) <= step and not m.get("final")]
        run.metrics_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    existing = run.read()
    run.move(
        "running",
        fresh=checkpoint is None,
        config=asdict(config),
        created_at=existing.get("created_at", time.time()),
        started_at=time.time(),
        error=None,
        resumed_from_step=checkpoint_step(checkpoint) if checkpoint else None,
        # a fresh start counts its time and slices from zero; a resume goes on counting
        **({} if checkpoint else {"train_seconds": 0.0, "slices": 0}),
        final_metrics=None,
        # The process training it: whoever reads the run next (a page, the queue, the CLI) can tell
        # whether it still lives. A job's child records the same pid before it gets here.
        pid=os.getpid(),
        pid_started=process_start(os.getpid()),
    )


def _finish_record(run: RunFolder, trainer, info: dict, final: dict, cancelled: bool) -> dict:
    import shutil

    from rm_demo.callbacks import EpochWeightAverage

    trainer.processing_class.save_pretrained(str(run.model_dir))
    averaging = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, EpochWeightAverage)]
    averaged = any(cb.applied for cb in averaging)
    run.update(weight_average={**info["weight_average"], "applied": averaged})
    if not cancelled:  # a finished run needs no checkpoint; a stopped one keeps it to resume
        shutil.rmtree(run.path / "trainer", ignore_errors=True)
    summary = {
        "averaged_epochs": info["weight_average"]["epochs"] if averaged else 1,
        "eval_accuracy": final.get("eval_accuracy"),
        "trainer_eval_accuracy": final.get("trainer_eval_accuracy"),
        "eval_loss": final.get("eval_loss"),
        "eval_margin": final.get("eval_margin"),
        "train_runtime_s": _train_seconds(run),  # all of it: every slice, every resume
        "steps": trainer.state.global_step,
        "eval_pairs": info["data"]["eval_pairs"],
    }
    return run.move("cancelled" if cancelled else "completed", finished_at=time.time(), final_metrics=summary)
