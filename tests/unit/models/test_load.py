"""models/load.py and the modules it draws on (local, hub, precision, dropout, tokenizer), through the
names load.py re-exports: the right class per task, safe weights, dtype, dropout, offline and qlora errors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tests.tolerances import assert_same_function
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from llmft.config.schema import ModelConfig
from llmft.errors import ModelError
from llmft.models.load import (
    disable_dropout,
    infer_task,
    load_model,
    load_model_config,
    load_tokenizer,
    new_modules,
)

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU behaviour")


def _cfg(path: Path | str, **kwargs: object) -> ModelConfig:
    return ModelConfig(name_or_path=str(path), **kwargs)


def _load(path: Path, task: str, **kwargs: object) -> nn.Module:
    label_names = kwargs.pop("label_names", None)
    return load_model(
        _cfg(path, **kwargs), task, tokenizer=load_tokenizer(str(path)), label_names=label_names
    )


# ------------------------------------------------------------------------------------------ classes


@pytest.mark.parametrize(
    ("arch", "task", "cls_name"),
    [
        ("llama", "causal_lm", "LlamaForCausalLM"),
        ("gpt2", "causal_lm", "GPT2LMHeadModel"),
        ("t5", "seq2seq_lm", "T5ForConditionalGeneration"),
        ("bert", "sequence_classification", "BertForSequenceClassification"),
        ("gpt2", "sequence_classification", "GPT2ForSequenceClassification"),
    ],
)
def test_each_task_loads_its_class(tiny_model, arch: str, task: str, cls_name: str) -> None:
    model = _load(tiny_model(arch), task, label_names=["neg", "neu", "pos"])
    assert type(model).__name__ == cls_name
    if task == "sequence_classification":
        assert model.config.num_labels == 3
        assert model.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
        assert model.config.label2id == {"neg": 0, "neu": 1, "pos": 2}
    if task in ("causal_lm", "seq2seq_lm"):
        assert model.config.use_cache is False


def test_classification_head_is_recorded_as_new(tiny_model) -> None:
    model = _load(tiny_model("llama"), "sequence_classification", label_names=["a", "b"])
    assert new_modules(model) == ["score"]
    assert new_modules(_load(tiny_model("llama"), "causal_lm")) == []


def test_classifier_checkpoint_keeps_or_replaces_its_head(tiny_model, tmp_path: Path) -> None:
    trained = _load(tiny_model("llama"), "sequence_classification", label_names=["a", "b", "c"])
    trained.save_pretrained(tmp_path)
    shutil.copy(tiny_model("llama") / "tokenizer.json", tmp_path)
    shutil.copy(tiny_model("llama") / "tokenizer_config.json", tmp_path)

    kept = _load(tmp_path, "sequence_classification")
    assert kept.config.id2label == {0: "a", 1: "b", 2: "c"}
    assert new_modules(kept) == []
    assert torch.equal(kept.score.weight, trained.score.weight)

    relabelled = _load(tmp_path, "sequence_classification", label_names=["x", "y"])
    assert relabelled.score.weight.shape[0] == 2
    assert new_modules(relabelled) == ["score"]


def test_gpt2_classification_handles_padded_batches(tiny_model) -> None:
    path = tiny_model("gpt2")
    tokenizer = load_tokenizer(str(path))
    model = load_model(_cfg(path), "sequence_classification", tokenizer=tokenizer, label_names=["a", "b"])
    batch = tokenizer(["a longer row of text here", "short"], return_tensors="pt", padding=True)
    assert model.config.pad_token_id == tokenizer.pad_token_id
    alone = model(**tokenizer(["short"], return_tensors="pt")).logits
    padded = model(**batch).logits
    assert padded.shape == (2, 2)
    assert_same_function(padded[1:], alone)  # the head reads the last real token


def test_encoder_model_cannot_be_a_causal_lm(tiny_model) -> None:
    with pytest.raises(ModelError, match=r"distilbert\) cannot be loaded for causal_lm"):
        _load(tiny_model("distilbert"), "causal_lm")


def test_attn_implementation_is_passed_through(tiny_model) -> None:
    model = _load(tiny_model("llama"), "causal_lm", attn_implementation="eager")
    assert model.config._attn_implementation == "eager"


def test_gpt2_tanh_gelu_is_fused_with_the_same_logits(tiny_model) -> None:
    path = tiny_model("gpt2")
    assert AutoConfig.from_pretrained(path).activation_function == "gelu_new"
    fused = _load(path, "causal_lm").eval()
    assert fused.config.activation_function == "gelu_pytorch_tanh"
    plain = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = torch.randint(5, fused.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert_same_function(fused(input_ids=ids).logits, plain(input_ids=ids).logits)


# ------------------------------------------------------------------------------------------ tokenizer


def test_tokenizer_pads_on_the_right(tiny_model) -> None:
    tokenizer = load_tokenizer(str(tiny_model("llama")))
    assert tokenizer.pad_token is not None
    assert tokenizer.padding_side == "right"


def test_tokenizer_without_pad_falls_back_to_eos(tiny_model, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model("gpt2"))
    tokenizer.pad_token = None
    tokenizer.save_pretrained(tmp_path)
    shutil.copy(tiny_model("gpt2") / "config.json", tmp_path / "config.json")
    assert AutoTokenizer.from_pretrained(tmp_path).pad_token is None
    loaded = load_tokenizer(str(tmp_path))
    assert loaded.pad_token == loaded.eos_token == "<|endoftext|>"


# ------------------------------------------------------------------------------------------ dtype


@pytest.fixture(scope="module")
def bf16_llama(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bf16-llama")
    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama"), dtype=torch.bfloat16)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model("llama")).save_pretrained(out)
    return out


@no_cuda
def test_dtype_auto_is_float32_on_cpu(bf16_llama: Path) -> None:
    assert AutoConfig.from_pretrained(bf16_llama).dtype == torch.bfloat16
    assert _load(bf16_llama, "causal_lm").dtype == torch.float32


def test_named_dtype_is_used(tiny_model) -> None:
    assert _load(tiny_model("llama"), "causal_lm", dtype="bfloat16").dtype == torch.bfloat16


# ------------------------------------------------------------------------------------------ safe loading


@pytest.fixture(scope="module")
def pickle_only_llama(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with only `pytorch_model.bin` (transformers 5 always saves safetensors)."""
    src = tiny_model("llama")
    out = tmp_path_factory.mktemp("pickle-llama")
    for file in src.iterdir():
        if file.suffix != ".safetensors":
            shutil.copy(file, out / file.name)
    model = AutoModelForCausalLM.from_pretrained(src)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    return out


def test_pickle_only_folder_is_refused(pickle_only_llama: Path) -> None:
    with pytest.raises(ModelError) as info:
        _load(pickle_only_llama, "causal_lm")
    assert "pytorch_model.bin" in info.value.message
    assert "pickle files can run code" in info.value.message
    assert "model.allow_pickle: true" in (info.value.fix or "")


def test_pickle_only_folder_loads_when_allowed(pickle_only_llama: Path, tiny_model) -> None:
    model = _load(pickle_only_llama, "causal_lm", allow_pickle=True)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    for (name, got), (_, want) in zip(
        model.state_dict().items(), reference.state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), name


# ------------------------------------------------------------------------------------------ not found


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline as a user sets it; huggingface_hub reads the variable once, at import."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.mark.usefixtures("offline")
def test_hub_id_offline_is_a_clear_error() -> None:
    with pytest.raises(ModelError) as info:
        load_model_config(_cfg("llmft-test-org/not-downloaded"))
    err = info.value
    assert (
        err.message
        == "model `llmft-test-org/not-downloaded` is not a local directory and is not available offline"
    )
    assert "huggingface-cli download llmft-test-org/not-downloaded" in (err.fix or "")


@pytest.mark.usefixtures("offline")
def test_tokenizer_hub_id_offline_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="not available offline"):
        load_tokenizer("llmft-test-org/not-downloaded")


def test_missing_local_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model_config(_cfg(tmp_path / "nope"))


def test_adapter_directory_points_to_its_base(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"base_model_name_or_path": "org/base"}')
    with pytest.raises(ModelError, match="holds a PEFT adapter") as info:
        load_model_config(_cfg(tmp_path))
    assert "org/base" in (info.value.fix or "")


# ------------------------------------------------------------------------------------------ task


@pytest.mark.parametrize(
    ("arch", "task", "has_labels", "expected"),
    [
        ("llama", "auto", True, "sequence_classification"),
        ("t5", "auto", False, "seq2seq_lm"),
        ("llama", "auto", False, "causal_lm"),
        ("t5", "causal_lm", False, "causal_lm"),
        ("llama", "seq2seq_lm", True, "seq2seq_lm"),
    ],
)
def test_infer_task(tiny_model, arch: str, task: str, has_labels: bool, expected: str) -> None:
    cfg = _cfg(tiny_model(arch), task=task)
    got, reason = infer_task(cfg, load_model_config(cfg), has_labels)
    assert got == expected
    assert reason
    if task != "auto":
        assert reason == "set by model.task"
    elif has_labels:
        assert reason == "the data has a label column"


# ------------------------------------------------------------------------------------------ dropout


@pytest.mark.parametrize("arch", ["gpt2", "bert", "distilbert", "t5"])
def test_disable_dropout_zeroes_every_rate(tiny_model, arch: str) -> None:
    task = {"gpt2": "causal_lm", "t5": "seq2seq_lm"}.get(arch, "sequence_classification")
    model = _load(tiny_model(arch), task)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert dropouts and all(m.p == 0 for m in dropouts)
    rates = {k: v for k, v in model.config.to_dict().items() if "dropout" in k or "pdrop" in k}
    assert rates and all(not v for v in rates.values()), rates
    model.train()
    ids = torch.tensor([[5, 6, 7, 8]])
    extra = {"decoder_input_ids": ids} if arch == "t5" else {}
    with torch.no_grad():
        torch.testing.assert_close(model(ids, **extra).logits, model(ids, **extra).logits)


def test_dropout_kept_when_asked(tiny_model) -> None:
    model = _load(tiny_model("gpt2"), "causal_lm", disable_dropout=False)
    assert model.config.attn_pdrop == pytest.approx(0.1)
    assert any(m.p > 0 for m in model.modules() if isinstance(m, nn.Dropout))


def test_disable_dropout_on_a_built_model_reaches_copied_rates() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        attention_dropout=0.3,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    assert model.model.layers[0].self_attn.attention_dropout == pytest.approx(0.3)
    disable_dropout(model)
    assert model.model.layers[0].self_attn.attention_dropout == 0.0
    assert model.config.attention_dropout == 0.0
