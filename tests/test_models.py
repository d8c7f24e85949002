"""Loading models, and model surgery that must not change what a model computes: tiny random models, built from a
config."""

import copy
import logging

import pytest
import torch
from trl.trainer.utils import disable_dropout_in_model

from rm_demo.models import (
    FIRST_TOKEN_HEADS,
    last_layer_reads_first_token_only,
    load_reward_model,
    resolve_model,
    transformer_layers,
)


def _tiny_encoder(kind: str):
    import transformers

    shape = dict(
        vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_labels=1
    )
    torch.manual_seed(0)
    if kind == "bert":
        return transformers.BertForSequenceClassification(transformers.BertConfig(**shape))
    if kind == "electra":  # its own embedding size, projected to the hidden size
        return transformers.ElectraForSequenceClassification(transformers.ElectraConfig(**shape, embedding_size=8))
    if kind == "deberta-v2":  # relative positions: the attention reads them, the cut comes after it
        config = transformers.DebertaV2Config(**shape, relative_attention=True, pos_att_type=["p2c", "c2p"])
        return transformers.DebertaV2ForSequenceClassification(config)
    if kind == "deberta":
        return transformers.DebertaForSequenceClassification(transformers.DebertaConfig(**shape))
    name = {"roberta": "Roberta", "xlm-roberta": "XLMRoberta", "camembert": "Camembert"}[kind]
    # positions start after the pad id
    config = getattr(transformers, f"{name}Config")(**shape, pad_token_id=1, max_position_embeddings=40)
    return getattr(transformers, f"{name}ForSequenceClassification")(config)


def _rewards_and_gradients(model, ids, mask):
    model.zero_grad()
    rewards = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
    (rewards * torch.arange(1.0, len(rewards) + 1)).sum().backward()  # a different weight per row
    return rewards.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", FIRST_TOKEN_HEADS)
def test_the_last_layer_for_the_first_token_only_gives_the_same_rewards_and_gradients(kind):
    full = _tiny_encoder(kind).train()
    disable_dropout_in_model(full)
    cut = copy.deepcopy(full)
    assert last_layer_reads_first_token_only(cut)
    ids = torch.randint(5, 60, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # padded rows, as in any batch of unequal lengths
    mask[2, 3:] = 0
    ids[mask == 0] = full.config.pad_token_id or 0
    rewards, grads = _rewards_and_gradients(full, ids, mask)
    rewards_cut, grads_cut = _rewards_and_gradients(cut, ids, mask)
    assert torch.allclose(rewards, rewards_cut, atol=1e-6)
    assert grads.keys() == grads_cut.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_cut[name], atol=1e-5), name
    with torch.no_grad():  # the hook only runs the last layer's tail: its output has one position left
        hidden = cut.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert hidden.shape[1] == 1


def test_models_that_read_another_token_keep_every_position():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, num_labels=1
    )
    decoder = LlamaForSequenceClassification(config)  # its reward is read at the last real token
    assert len(transformer_layers(decoder)) == 2
    assert not last_layer_reads_first_token_only(decoder)


def test_the_default_model_loads_with_its_last_layer_cut_to_the_first_token():
    model, _ = load_reward_model(resolve_model("default"))
    hidden = model.base_model(input_ids=torch.tensor([[101, 2054, 2003, 102]])).last_hidden_state
    assert hidden.shape[1] == 1


def test_a_checkpoints_own_model_code_keeps_every_position():
    from transformers import BertForSequenceClassification

    class OwnHead(BertForSequenceClassification):  # as trust_remote_code would load: it may read any token
        pass

    assert not last_layer_reads_first_token_only(OwnHead(_tiny_encoder("bert").config))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(str(record.msg))


@pytest.fixture
def load_reports():
    handler = _Records()
    logger = logging.getLogger("transformers.modeling_utils")
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def test_loading_a_base_model_does_not_warn_of_its_new_reward_head(load_reports):
    load_reward_model(resolve_model("default"))  # the head is new: nothing a user needs to hear
    assert not [m for m in load_reports if "LOAD REPORT" in m]


def test_a_checkpoint_missing_an_encoder_weight_is_still_reported(tmp_path, load_reports):
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    model = _tiny_encoder("bert")
    model.config.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(resolve_model("default")).save_pretrained(tmp_path)
    weights = {k: v.contiguous() for k, v in model.state_dict().items() if "layer.0.attention.self.query" not in k}
    save_file(weights, tmp_path / "model.safetensors")
    load_reward_model(str(tmp_path))
    reports = [m for m in load_reports if "LOAD REPORT" in m]
    assert len(reports) == 1


def test_weight_bars_are_off_while_loading_and_back_after():
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers.utils import logging as hf_logging

    from rm_demo.models import quiet_weight_bars

    with quiet_weight_bars():
        assert not hf_logging.is_progress_bar_enabled()  # no "Loading weights" bar
        assert not are_progress_bars_disabled()  # a download still shows its progress
    assert hf_logging.is_progress_bar_enabled()


def test_encoding_a_text_longer_than_the_model_takes_raises_no_scary_warning():
    from rm_demo.models import PairEncoder, load_tokenizer

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("transformers.tokenization_utils_base")
    logger.addHandler(handler)
    try:
        tokenizer = load_tokenizer(resolve_model("default"))
        encoded = PairEncoder(tokenizer, 128, is_decoder=False).encode(["word " * 600], ["an answer"])
    finally:
        logger.removeHandler(handler)
    assert len(encoded.input_ids[0]) == 128 and encoded.truncated == [True]  # cut by PairEncoder, as it should
    assert not [r for r in records if "indexing errors" in str(r.msg)]


def test_a_load_on_another_thread_keeps_its_own_report(tmp_path, load_reports):
    """The app loads models on several threads: one load must not swallow another's warning."""
    import threading

    from rm_demo.models import _held_load_report

    with _held_load_report() as held:
        other = threading.Thread(
            target=lambda: logging.getLogger("transformers.modeling_utils").warning("LOAD REPORT x")
        )
        other.start()
        other.join()
    assert held == [] and load_reports == ["LOAD REPORT x"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("{tmp}/nope", "there is no folder there"),
        ("{tmp}/weights.bin", "it is a file, not a folder"),
        ("runs/no-such-run/model", "there is no folder there"),  # relative, but no hub id has two slashes
    ],
)
def test_a_missing_model_folder_is_named_as_such_not_as_a_bad_hub_id(tmp_path, name, says):
    from rm_demo.errors import InputError

    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(InputError) as caught:
        load_reward_model(resolve_model(name.format(tmp=tmp_path)))
    assert says in str(caught.value) and "repo" not in str(caught.value).lower()
    assert "runs/<name>/model" in caught.value.fix


def test_a_folder_typed_with_a_tilde_is_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_model("~/models/rm") == str(tmp_path / "models" / "rm")
    assert resolve_model("owner/name") == "owner/name"  # a hub id passes through
