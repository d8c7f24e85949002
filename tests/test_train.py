"""Training for real on tiny data: the embedded MiniLM, and a tiny random decoder built here."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from records import leave_record
from transformers import AutoModelForSequenceClassification

from rm_demo.errors import InputError
from rm_demo.models import PairEncoder, load_reward_model, reset_untrained_pooler, resolve_model
from rm_demo.pairs import split_by_question
from rm_demo.score import Scorer
from rm_demo.text import accuracy_phrase
from rm_demo.train import TrainConfig, train


@pytest.mark.slow
def test_split_is_by_question():
    pairs = pd.DataFrame({"prompt": [f"q{i % 7}" for i in range(40)], "chosen": "a", "rejected": "b", "margin": 1.0})
    train_part, eval_part = split_by_question(pairs, 0.3, seed=1)
    assert len(train_part) + len(eval_part) == 40 and len(eval_part) > 0
    assert not set(train_part["prompt"]) & set(eval_part["prompt"])


@pytest.mark.slow
def test_encoder_keeps_answer_and_cuts_prompt_from_the_left():
    _, tok = load_reward_model(resolve_model("default"))
    enc = PairEncoder(tok, max_length=16, is_decoder=False)
    prompt = "one two three four five six seven eight nine ten eleven twelve thirteen"
    out = enc.encode([prompt, "short"], ["the answer stays", "fine"])
    text = tok.decode(out.input_ids[0])
    assert len(out.input_ids[0]) == 16 and out.truncated == [True, False]
    assert "the answer stays" in text and "thirteen" in text and "one two" not in text
    long_answer = enc.encode(["q"], [" ".join(["word"] * 50)])
    assert len(long_answer.input_ids[0]) == 16 and long_answer.truncated == [True]


@pytest.mark.slow
def test_cli_trains_the_seed_sample(seed_csv, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rm_demo",
            "train",
            str(seed_csv),
            "-o",
            str(run),
            "--epochs",
            "2",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == "completed" and summary["train_runtime_s"] > 0
    # one figure: the JSON, the record, eval.json and the console's last word on the saved model agree
    saved = json.loads((run / "eval.json").read_text())
    assert summary["eval_accuracy"] == saved["accuracy"] == saved["correct"] / saved["pairs"]
    exact = accuracy_phrase(saved["accuracy"], saved["pairs"])
    assert f"the saved model, every held-out pair: held-out accuracy {exact}" in proc.stderr
    assert "TRL's own figure (batch-averaged)" in proc.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["data"]["train_pairs"] + info["data"]["eval_pairs"] == 3
    assert info["data"]["report"]["rows_read"] == 6 and info["versions"]["trl"]
    assert info["weight_average"] == {"epochs": 2, "applied": True}  # the mean of the last two epoch ends
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 0 and "eval_accuracy" in metrics[0]  # the untrained baseline
    assert any("loss" in m for m in metrics) and all("elapsed_s" in m for m in metrics)
    # The last record is the evaluation after training: it scores the saved (averaged) model.
    assert (
        metrics[-1].get("final") and "eval_accuracy" in metrics[-1] and not any(m.get("final") for m in metrics[:-1])
    )
    assert metrics[-1]["eval_accuracy"] == summary["eval_accuracy"]
    model = AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert model.config.num_labels == 1
    # The default is a sentence-transformers checkpoint: its untrained pooler started at identity;
    # the trained run is not one, so training on from it keeps what it learned.
    assert info["pooler"].startswith("identity")
    assert not reset_untrained_pooler(model, str(run / "model"))
    # Trained with eager attention on a CPU (a GPU keeps SDPA); the saved folder names none, so loaders keep their own.
    assert info["attention"] == ("eager" if info["device"] == "cpu" else "sdpa")
    assert "attn" not in (run / "model" / "config.json").read_text()
    assert model.config._attn_implementation == "sdpa"
    # What training saves is what a cold Compare builds beside the loaded base: only its weights read.
    base = Scorer("default")
    beside = Scorer.beside(base, str(run / "model"))
    assert beside is not None and beside.tokenizer is base.tokenizer
    texts = (["What is a cactus?"] * 2, ["A plant that stores water.", "A fish."])
    np.testing.assert_allclose(beside.score(*texts), Scorer(str(run / "model")).score(*texts), atol=1e-6)


def test_only_untrained_poolers_start_at_identity(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=1
    )
    folder = tmp_path / "bert"
    BertForSequenceClassification(config).save_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(folder)
    before = model.bert.pooler.dense.weight.clone()
    assert not reset_untrained_pooler(model, str(folder))  # a plain BERT: its pooler was trained (NSP)
    assert torch.equal(model.bert.pooler.dense.weight, before)
    (folder / "modules.json").write_text("[]")  # what sentence-transformers saves beside the weights
    assert reset_untrained_pooler(model, str(folder))
    assert torch.equal(model.bert.pooler.dense.weight, torch.eye(16)) and not model.bert.pooler.dense.bias.any()
    # Loading is where it happens, so the "untrained base" that evaluation scores is training's start.
    base, _ = load_reward_model(resolve_model("default"))
    assert torch.equal(base.bert.pooler.dense.weight, torch.eye(base.config.hidden_size))


@pytest.mark.slow
def test_bad_model_exit_2(seed_csv, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rm_demo",
            "train",
            str(seed_csv),
            "-o",
            str(tmp_path / "r"),
            "--model",
            str(tmp_path / "nope"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "could not load the model" in proc.stderr and "Traceback" not in proc.stderr


def _tiny_decoder(tmp_path, chat_template: bool):
    """A 2-layer Llama with random weights and a tokenizer without a pad token: built, never downloaded."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocabulary = (
        "what is your name my amit i do not know how float back water you should tuck arms sides answer user assistant"
    )
    words = ["<unk>", "<s>", "</s>"] + sorted(set(vocabulary.split()))
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    if chat_template:
        tok.chat_template = (
            "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} </s> {% endfor %}"
            "{% if add_generation_prompt %}assistant {% endif %}"
        )
    config = LlamaConfig(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    folder = tmp_path / ("decoder-chat" if chat_template else "decoder-plain")
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _tiny_run(data, run, folder, **changes) -> TrainConfig:
    """One short epoch of a tiny decoder on `data`."""
    return TrainConfig(
        input=str(data), output_dir=str(run), model=str(folder), epochs=1, batch_size=2, max_length=32, **changes
    )


@pytest.mark.slow
@pytest.mark.parametrize("chat_template", [False, True])
def test_tiny_decoder_trains(seed_csv, tmp_path, chat_template):
    folder = _tiny_decoder(tmp_path, chat_template)
    model, tok = load_reward_model(str(folder))
    assert tok.pad_token is not None and model.config.pad_token_id == tok.pad_token_id
    enc = PairEncoder.for_model(tok, model.config, max_length=12)
    assert enc.is_decoder and enc.use_chat_template == chat_template
    ids = enc.encode(["what is your name"], ["my name is amit"]).input_ids[0]
    if chat_template:
        assert tok.decode(ids).startswith("user what is your name </s> assistant")
    else:
        assert ids[-1] == tok.eos_token_id
    run = tmp_path / "run"
    final = train(
        _tiny_run(seed_csv, run, folder),
        progress=False,
    )
    assert final["status"] == "completed"
    assert AutoModelForSequenceClassification.from_pretrained(run / "model").config.pad_token_id == tok.pad_token_id


@pytest.mark.slow
def test_word_embeddings_stay_as_the_checkpoint_has_them_unless_asked(seed_csv, tmp_path):
    folder = _tiny_decoder(tmp_path, chat_template=False)
    start = AutoModelForSequenceClassification.from_pretrained(folder)
    start_embeddings, start_layer = start.get_input_embeddings().weight, start.model.layers[0].mlp.up_proj.weight
    for train_embeddings in (False, True):
        run = tmp_path / f"run-{train_embeddings}"
        config = _tiny_run(seed_csv, run, folder, train_embeddings=train_embeddings)
        assert train(config, progress=False)["status"] == "completed"
        saved = AutoModelForSequenceClassification.from_pretrained(run / "model")
        assert not torch.equal(saved.model.layers[0].mlp.up_proj.weight, start_layer)  # it did train
        assert torch.equal(saved.get_input_embeddings().weight, start_embeddings) is not train_embeddings
        recorded = json.loads((run / "run.json").read_text())["word_embeddings"]
        assert recorded == ("trained" if train_embeddings else "frozen")


@pytest.mark.slow
def test_the_first_layers_stay_as_the_checkpoint_has_them_when_asked(seed_csv, tmp_path):
    folder = _tiny_decoder(tmp_path, chat_template=False)
    start = AutoModelForSequenceClassification.from_pretrained(folder)
    run = tmp_path / "run"
    assert train(_tiny_run(seed_csv, run, folder, freeze_layers=1), progress=False)["status"] == "completed"
    saved = AutoModelForSequenceClassification.from_pretrained(run / "model")
    first, second = (dict(layer.named_parameters()) for layer in saved.model.layers)
    assert all(torch.equal(p, start.model.layers[0].get_parameter(name)) for name, p in first.items())
    assert not torch.equal(second["mlp.up_proj.weight"], start.model.layers[1].mlp.up_proj.weight)
    assert json.loads((run / "run.json").read_text())["frozen_layers"] == 1
    from rm_demo.errors import InputError

    with pytest.raises(InputError, match="the model has 2 layers"):
        train(_tiny_run(seed_csv, tmp_path / "run-too-many", folder, freeze_layers=3), progress=False)


@pytest.mark.slow
def test_cli_train_never_replaces_a_run_unasked(seed_csv, tmp_path, capsys):
    from rm_demo.cli import main
    from rm_demo.runs import RunFolder

    folder = _tiny_decoder(tmp_path, chat_template=False)
    run = RunFolder(tmp_path / "run")
    leave_record(run, status="cancelled")
    run.cancel_path.touch()  # the Stop that ended the run before (in the app, or a cancel file)
    args = ["train", str(seed_csv), "-o", str(run.path), "--model", str(folder), "--epochs", "1", "--max-length", "32"]
    assert main(args) == 2
    assert "already holds a run (cancelled)" in capsys.readouterr().err and run.read()["status"] == "cancelled"
    assert main([*args, "--overwrite"]) == 0
    assert run.read()["status"] == "completed" and not run.cancel_requested
    assert "training: 30 steps" in capsys.readouterr().err  # the console reporter, not the Trainer's dicts
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    assert main(["train", str(seed_csv), "-o", str(tmp_path / "notes"), "--overwrite"]) == 2
    assert "holds other files" in capsys.readouterr().err and (tmp_path / "notes" / "mine.txt").exists()


@pytest.mark.slow
def test_train_config_file_with_flags_over_it(seed_csv, tmp_path, capsys):
    """`train --config FILE`: grouped settings from YAML, a flag overrides one, the run keeps a copy of
    its data and a config.json that trains it again; the same run is made as with flags alone."""
    import yaml

    from rm_demo.cli import main
    from rm_demo.runs import RunFolder, RunRecord

    folder = _tiny_decoder(tmp_path, chat_template=False)
    settings = {
        "data": {"input": str(seed_csv), "read_options": {"encoding": "mac_roman"}},
        "model": {"model": str(folder), "max_length": 32},
        "training": {"epochs": 1, "seed": 7, "learning_rate": 1e-4},
        "pairs": {"chosen_min": 4},
    }
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(settings))
    out = str(tmp_path / "run")
    assert main(["train", "--config", str(tmp_path / "settings.yaml"), "-o", out, "--seed", "3"]) == 0
    run = RunFolder(tmp_path / "run")
    config = run.config()
    assert (config.seed, config.max_length, config.learning_rate, config.chosen_min) == (3, 32, 1e-4, 4.0)
    assert config.read_options["encoding"] == "mac_roman" and config.model == str(folder)
    assert Path(config.input) == run.path / "data.csv" and RunRecord.load(run.path).source_name == "seed_feedback.csv"
    assert run.read()["status"] == "completed"
    # The run's own config.json is a --config file too: the same settings again, into another folder.
    assert main(["train", "--config", str(run.config_path), "-o", str(tmp_path / "again")]) == 0
    assert RunFolder(tmp_path / "again").config().seed == 3
    capsys.readouterr()
    (tmp_path / "bad.yaml").write_text("training:\n  epoch: 3\n")
    assert main(["train", "--config", str(tmp_path / "bad.yaml"), "-o", str(tmp_path / "x")]) == 2
    assert "bad.yaml: unknown setting training.epoch" in capsys.readouterr().err


def test_config_file_values_are_typed_and_checked(tmp_path):
    from rm_demo.config import read_config_file, value_type

    assert value_type("chosen_min") is float and value_type("batch_size") is int and value_type("lora") is bool
    (tmp_path / "c.json").write_text('{"batch-size": 8, "lr": 1e-4, "chosen_min": null, "epochs": 2}')
    assert read_config_file(tmp_path / "c.json") == {
        "batch_size": 8,
        "learning_rate": 1e-4,
        "chosen_min": None,
        "epochs": 2.0,
    }
    (tmp_path / "t.yaml").write_text("batch_size: many\n")
    with pytest.raises(InputError, match="t.yaml: batch_size must be int, not 'many'"):
        read_config_file(tmp_path / "t.yaml")
    (tmp_path / "l.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="name: value"):
        read_config_file(tmp_path / "l.yaml")


def test_the_command_for_a_run_trains_it_again():
    from rm_demo.cli import build_parser
    from rm_demo.config import command_line, config_from_args

    config = TrainConfig(
        input="runs/a b/data.csv",
        output_dir="runs/a b",
        epochs=2,
        lora=True,
        checkpoints=False,
        chosen_min=7.5,
        min_steps=0,
        group_by_length=False,
        read_options={"encoding": "cp1252", "delimiter": "\t", "max_bytes": 5},
    )
    line = command_line(config, output_dir="runs/again")
    assert line.startswith("python -m rm_demo train 'runs/a b/data.csv' -o runs/again")
    words = line.split("python -m rm_demo ", 1)[1].replace("'runs/a b/data.csv'", "d.csv").split()
    args = build_parser().parse_args(words)
    again = config_from_args(args)
    assert (again.epochs, again.lora, again.checkpoints, again.chosen_min) == (2, True, False, 7.5)
    assert (args.encoding, args.delimiter) == ("cp1252", "tab")
    assert (again.min_steps, again.group_by_length) == (0, False)
    # Every training setting has a flag, so the line says all of a run (not the data's name, its folder, or
    # the read options, which have flags of their own).
    from dataclasses import fields

    from rm_demo.config import GROUPS, PAIR_FLAGS, TRAIN_FLAGS

    assert {f.name for f in fields(TrainConfig)} - set(TRAIN_FLAGS + PAIR_FLAGS) == set(GROUPS["data"]) | {
        "output_dir"
    }


@pytest.mark.parametrize("lr, gap", [(1.2345678e-5, 0.1 + 0.2), (3e-4, 1 / 3)])
def test_the_command_gives_floats_back_exactly(lr, gap):
    """Issue 39: `--lr 1.23457e-05` was 1.2345678e-5 cut to 6 digits; the command now reads back the same run."""
    import shlex

    from rm_demo.cli import build_parser
    from rm_demo.config import command_line, config_from_args

    config = TrainConfig(input="d.csv", output_dir="r", learning_rate=lr, min_margin=gap, strategy="all-pairs")
    words = shlex.split(command_line(config))[3:]
    again = config_from_args(build_parser().parse_args(words))
    assert (again.learning_rate, again.min_margin) == (lr, gap)


@pytest.mark.parametrize("text", ["read_options:\n  encodng: cp1252\n", "data:\n  read_options:\n    delimitr: ';'\n"])
def test_a_misspelt_key_inside_read_options_is_refused_with_its_path(tmp_path, text):
    from rm_demo.config import read_config_file

    (tmp_path / "s.yaml").write_text(text)
    where = "data.read_options.delimitr" if text.startswith("data") else "read_options.encodng"
    with pytest.raises(InputError, match=f"unknown setting {where}"):
        read_config_file(tmp_path / "s.yaml")
    (tmp_path / "ok.yaml").write_text("read_options:\n  encoding: cp1252\n  max_bytes: 5\n")
    assert read_config_file(tmp_path / "ok.yaml")["read_options"]["encoding"] == "cp1252"


def test_cli_flags_come_from_train_config():
    """One source for defaults: the parsed CLI with no options is TrainConfig() (plus input and output)."""
    from dataclasses import asdict

    from rm_demo.cli import build_parser
    from rm_demo.config import config_from_args

    args = build_parser().parse_args(["train", "in.csv", "-o", "out"])
    config = config_from_args(args, input=args.input, read_options={})
    assert asdict(config) == asdict(TrainConfig(input="in.csv", output_dir="out"))
    args = build_parser().parse_args(["train", "in.csv", "-o", "out", "--lr", "1e-4", "--grad-accum", "2", "--lora"])
    assert (args.learning_rate, args.gradient_accumulation, args.lora) == (1e-4, 2, True)


@pytest.mark.slow
def test_lora_run_saves_a_whole_merged_model(seed_csv, tmp_path):
    folder = _tiny_decoder(tmp_path, chat_template=True)
    run = tmp_path / "run"
    final = train(
        _tiny_run(seed_csv, run, folder, lora=True, lora_r=4, learning_rate=1e-2),
        progress=False,
    )
    assert final["status"] == "completed"
    assert not (run / "model" / "adapter_config.json").exists()  # merged, not adapter-only
    trained = AutoModelForSequenceClassification.from_pretrained(run / "model")
    base = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)
    q_trained = trained.model.layers[0].self_attn.q_proj.weight
    assert q_trained.shape == base.model.layers[0].self_attn.q_proj.weight.shape
    assert not torch.allclose(q_trained, base.model.layers[0].self_attn.q_proj.weight)  # the adapter's update is in
    assert torch.equal(
        trained.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight
    )  # not a LoRA target


def test_margin_modes_turn_score_gaps_into_loss_margins():
    from rm_demo.train import loss_margins

    gaps = np.array([1.0, 2.0, 4.0])
    assert loss_margins(gaps, "off") is None
    assert loss_margins(gaps, "gap").tolist() == [1.0, 2.0, 4.0]
    assert loss_margins(gaps, "scaled").tolist() == [0.25, 0.5, 1.0]
    assert loss_margins(gaps, "scaled", largest_gap=8.0).tolist() == [0.125, 0.25, 0.5]  # held out: train's scale
    assert loss_margins(gaps, "clipped").tolist() == [1.0, 1.0, 1.0]
    assert loss_margins(np.array([np.nan, np.nan]), "gap") is None  # pairs files carry no scores


def test_the_margin_mode_decides_what_trl_sees():
    from rm_demo.train import tokenize_pairs

    _, tok = load_reward_model(resolve_model("default"))
    encoder = PairEncoder(tok, max_length=32, is_decoder=False)
    pairs = pd.DataFrame(
        {"prompt": ["q1", "q2"], "chosen": ["good", "fine"], "rejected": ["bad", "meh"], "margin": [4.0, 1.0]}
    )
    off, _ = tokenize_pairs(encoder, pairs, "off")
    assert "margin" not in off.column_names  # plain Bradley-Terry: TRL's loss subtracts nothing
    clipped, _ = tokenize_pairs(encoder, pairs, "clipped")
    assert clipped["margin"] == [1.0, 1.0]


def test_old_run_files_keep_their_settings():
    assert TrainConfig.from_dict({"use_margin": True}).margin == "gap"
    assert TrainConfig.from_dict({"use_margin": False}).margin == "off"
    assert TrainConfig.from_dict({}).margin == TrainConfig().margin
    # runs from before frozen embeddings trained them; a resume must too (its optimizer state has them)
    assert TrainConfig().train_embeddings is False
    assert TrainConfig.from_dict({}).train_embeddings is True
    assert TrainConfig.from_dict({"train_embeddings": False}).train_embeddings is False
    TrainConfig.from_dict({"lora": True}).validate()  # an old LoRA run never trained them: it still resumes


@pytest.mark.parametrize(
    "change, message",
    [
        ({"margin": "sometimes"}, "margin must be one of"),
        ({"center_rewards": -1.0}, "center rewards"),
        ({"activation_checkpointing": "yes"}, "activation checkpointing must be one of auto, on, off"),
        ({"freeze_layers": -1}, "freeze layers must be >= 0"),
        ({"attention": "flash"}, "attention must be one of auto, eager, sdpa"),
        # options LoRA would ignore are refused, not silently dropped
        ({"lora": True, "freeze_layers": 2}, "--freeze-layers 2 does nothing with --lora"),
        ({"lora": True, "train_embeddings": True}, "--train-embeddings does nothing with --lora"),
    ],
)
def test_loss_settings_are_checked(change, message):
    from rm_demo.errors import InputError

    with pytest.raises(InputError, match=message):
        TrainConfig(input="x.csv", **change).validate()


@pytest.mark.slow
def test_curves_score_a_sample_and_the_final_evaluation_every_held_out_pair(tmp_path):
    from rm_demo.train import build_trainer

    rows = ["question,answer,feedback"]
    for q in range(40):
        rows += [f"question {q},a good answer {q},5", f"question {q},a poor answer {q},1"]
    (tmp_path / "f.csv").write_text("\n".join(rows) + "\n")
    config = TrainConfig(
        input=str(tmp_path / "f.csv"), output_dir=str(tmp_path / "run"), eval_fraction=0.5, curve_eval_pairs=5
    )
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert len(trainer.eval_dataset) == 5 and info["data"]["curve_eval_pairs"] == 5
    assert len(trainer.final_eval_dataset) == info["data"]["eval_pairs"] == 20
    config.curve_eval_pairs = 0  # all, every time
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert len(trainer.eval_dataset) == len(trainer.final_eval_dataset) == 20


@pytest.mark.parametrize("dropout", [False, True])
def test_dropout_is_off_unless_asked(tmp_path, dropout):
    """TRL turns the model's dropout off; `--dropout` keeps the checkpoint's 0.1 (docs/benchmarks-log.md)."""
    from rm_demo.train import build_trainer

    (tmp_path / "f.csv").write_text("question,answer,feedback\nq,good,5\nq,bad,1\n")
    config = TrainConfig(
        input=str(tmp_path / "f.csv"), output_dir=str(tmp_path / "run"), eval_fraction=0, dropout=dropout
    )
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    layer = trainer.model.bert.encoder.layer[0]
    expected = 0.1 if dropout else 0.0
    assert layer.output.dropout.p == layer.attention.self.dropout.p == trainer.model.dropout.p == expected
    assert info["dropout"] is dropout


@pytest.mark.slow
def test_activation_checkpointing_is_on_only_for_big_models_unless_asked(tmp_path):
    """TRL turns it on for every model; for MiniLM it only slowed each step by a quarter (docs/benchmarks-log.md)."""
    from rm_demo.cli import build_parser
    from rm_demo.config import CHECKPOINTING_ABOVE_PARAMS, uses_activation_checkpointing
    from rm_demo.train import build_trainer

    assert not uses_activation_checkpointing("auto", 22_000_000)
    assert uses_activation_checkpointing("auto", CHECKPOINTING_ABOVE_PARAMS)
    assert uses_activation_checkpointing("on", 1) and not uses_activation_checkpointing("off", 10**10)

    (tmp_path / "f.csv").write_text("question,answer,feedback\nq,good,5\nq,bad,1\n")
    config = TrainConfig(input=str(tmp_path / "f.csv"), output_dir=str(tmp_path / "run"), eval_fraction=0)
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert info["activation_checkpointing"] is False and trainer.args.gradient_checkpointing is False
    from rm_demo.callbacks import CheckpointInterval

    assert any(isinstance(c, CheckpointInterval) for c in trainer.callback_handler.callbacks)
    args = build_parser().parse_args(["train", "f.csv", "-o", "run", "--activation-checkpointing", "on"])
    config.activation_checkpointing = args.activation_checkpointing
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert info["activation_checkpointing"] is True and trainer.args.gradient_checkpointing is True


@pytest.mark.slow
def test_attention_is_eager_on_the_cpu_for_short_texts_unless_asked(tmp_path):
    """torch's CPU flash-attention backward made a 128-token MiniLM step a quarter slower (docs/benchmarks-log.md)."""
    from rm_demo.config import training_attention
    from rm_demo.train import build_trainer

    assert training_attention("auto", "cpu", 128, "sdpa") == "eager"
    assert training_attention("auto", "cpu", 256, "sdpa") == "eager"
    assert training_attention("auto", "cpu", 512, "sdpa") is None  # longer texts: SDPA is faster
    assert training_attention("auto", "cuda", 128, "sdpa") is None  # GPUs keep their fused kernels
    assert training_attention("auto", "cpu", 128, "flash_attention_2") is None  # only the kernel measured
    assert (
        training_attention("sdpa", "cpu", 128, "eager") == "sdpa"
        and training_attention("eager", "cpu", 9, "eager") is None
    )

    (tmp_path / "f.csv").write_text("question,answer,feedback\nq,good,5\nq,bad,1\n")
    config = TrainConfig(
        input=str(tmp_path / "f.csv"), output_dir=str(tmp_path / "run"), eval_fraction=0, device="cpu"
    )
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert info["attention"] == trainer.model.config._attn_implementation == "eager"
    config.max_length = 512
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert info["attention"] == trainer.model.config._attn_implementation == "sdpa"
    config.max_length, config.attention = 128, "sdpa"
    trainer, info = build_trainer(config, None, is_main=True, progress=False)
    assert info["attention"] == "sdpa"


def test_eager_and_sdpa_attention_give_the_same_rewards_with_padding():
    """The swap is for speed only: a padded batch scores the same either way (fp32)."""
    import torch

    from rm_demo.models import PairEncoder, default_model_path, load_reward_model

    model, tokenizer = load_reward_model(str(default_model_path()))
    encoded = PairEncoder.for_model(tokenizer, model.config, 64).encode(
        ["What is a cactus?", "How do I reset my password?"],
        ["A plant that stores water in its stem.", "Open settings."],
    )
    width = max(len(ids) for ids in encoded.input_ids)
    ids = torch.tensor([row + [0] * (width - len(row)) for row in encoded.input_ids])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in encoded.input_ids])
    rewards = {}
    for attention in ("sdpa", "eager"):
        model.set_attn_implementation(attention)
        with torch.no_grad():
            rewards[attention] = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
    assert mask[1].sum() < width  # the second text is padded
    assert torch.allclose(rewards["sdpa"], rewards["eager"], atol=1e-5)


def test_answer_partners_put_every_rated_answer_in_a_row_best_first():
    from rm_demo.train import answer_partners, pointwise_targets

    answers = pd.DataFrame(
        {
            "prompt": ["q", "q", "q", "r", "r", "s"],
            "answer": ["q3", "q5", "q1", "r2", "r4", "s1"],
            "score": [3.0, 5.0, 1.0, 2.0, 4.0, 1.0],
        }
    )
    rows = answer_partners(answers)
    got = list(zip(rows["prompt"], rows["first"], rows["second"]))
    # q: best two, then the odd one out beside the best; r: one row; s: its only answer beside itself
    assert got == [("q", "q5", "q3"), ("q", "q1", "q5"), ("r", "r4", "r2"), ("s", "s1", "s1")]
    assert set(rows["first"]) | set(rows["second"]) == set(answers["answer"])
    assert list(pointwise_targets(np.array([1.0, 3.0, 5.0]), 1.0, 5.0)) == [-1.0, 0.0, 1.0]


def test_the_score_objectives_train_on_the_answers_and_say_so(tmp_path, capsys):
    from rm_demo import cli
    from rm_demo.run_pairs import run_pairs
    from rm_demo.runs import RunFolder
    from rm_demo.train import build_trainer

    rated = Path(__file__).parent / "data" / "rated_feedback.csv"
    config = TrainConfig(input=str(rated), output_dir=str(tmp_path / "both"), objective="both", eval_fraction=0.3)
    trainer, info = build_trainer(config, RunFolder(config.output_dir), is_main=True, progress=False)
    saved = run_pairs(RunFolder(config.output_dir))
    data = trainer.train_dataset
    pairwise = np.array(data["pairwise"])
    assert int(pairwise.sum()) == len(saved.train) == info["data"]["train_pairs"]  # the pairs, pairwise term on
    held = set(saved.held_out["prompt"])
    assert (
        info["data"]["pointwise_answers"]
        == len(saved.training_answers)
        == int((~saved.answers["prompt"].isin(held)).sum())
    )
    assert (
        info["data"]["score_range"] == [1.0, 5.0]
        and min(data["chosen_target"]) >= -1
        and max(data["chosen_target"]) <= 1
    )
    batch = trainer.data_collator([data[0], data[len(data) - 1]])
    assert set(batch) >= {"input_ids", "chosen_target", "rejected_target", "pairwise"}

    pairs = tmp_path / "pairs.jsonl"  # a pairs file has no scores to fit
    pairs.write_text(
        '{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "r", "chosen": "c", "rejected": "d"}\n'
    )
    assert cli.main(["train", str(pairs), "-o", str(tmp_path / "p"), "--objective", "pointwise"]) == 2
    assert "this file has pairs, not scored answers" in capsys.readouterr().err
