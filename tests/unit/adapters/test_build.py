"""adapters/build.py: each adapter attaches, trains, and reloads to the same logits."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from peft.tuners.lora import LoraLayer
from pydantic import TypeAdapter
from tests.tolerances import assert_same_function
from torch import nn

from llmft.adapters.build import AdapterSummary, attach_adapter
from llmft.config.schema import AdapterConfig, ModelConfig
from llmft.errors import ModelError
from llmft.models.load import load_model, load_tokenizer

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

LABELS = ["neg", "pos"]


def _adapter(**kwargs: object) -> AdapterConfig:
    return TypeAdapter(AdapterConfig).validate_python(kwargs)


def _base(path: Path, task: str, seed: int = 0) -> nn.Module:
    """A freshly loaded base; ``seed`` sets the random init of anything the checkpoint lacks (a new head)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(name_or_path=str(path))
    labels = LABELS if task == "sequence_classification" else None
    return load_model(cfg, task, tokenizer=load_tokenizer(str(path)), label_names=labels)


def _batch(path: Path, task: str) -> dict[str, torch.Tensor]:
    tokenizer = load_tokenizer(str(path))
    batch = dict(tokenizer(["the cat reads a book today.", "hello"], return_tensors="pt", padding=True))
    if task == "causal_lm":
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    elif task == "seq2seq_lm":
        batch["labels"] = tokenizer(["a book", "hi"], return_tensors="pt", padding=True)["input_ids"]
    else:
        batch["labels"] = torch.tensor([0, 1])
    return batch


def _perturb(model: nn.Module) -> None:
    """Move every trainable weight (LoRA's B starts at zero), so a round trip that drops one shows."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.5)


def _logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


def _attach(
    path: Path, task: str, adapter: AdapterConfig, **kwargs: object
) -> tuple[nn.Module, AdapterSummary]:
    return attach_adapter(_base(path, task), adapter, task, **kwargs)


# ------------------------------------------------------------------------------------------ attaching


@pytest.mark.parametrize(
    ("arch", "task", "adapter"),
    [
        ("llama", "causal_lm", {"type": "lora"}),
        ("gpt2", "causal_lm", {"type": "lora", "target_modules": "all-linear"}),
        ("t5", "seq2seq_lm", {"type": "lora"}),
        ("distilbert", "sequence_classification", {"type": "lora"}),
        ("llama", "causal_lm", {"type": "prefix_tuning", "num_virtual_tokens": 4}),
        ("t5", "seq2seq_lm", {"type": "prefix_tuning", "num_virtual_tokens": 4}),
        ("qwen2", "causal_lm", {"type": "prompt_tuning", "num_virtual_tokens": 4}),
        ("distilbert", "sequence_classification", {"type": "prompt_tuning", "num_virtual_tokens": 4}),
    ],
)
def test_adapter_attaches_and_trains(tiny_model, arch: str, task: str, adapter: dict) -> None:
    path = tiny_model(arch)
    model, summary = _attach(path, task, _adapter(**adapter))
    assert 0 < summary.trainable_params < summary.total_params
    model.train()
    loss = model(**_batch(path, task)).loss
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_none_trains_everything(tiny_model) -> None:
    model, summary = _attach(tiny_model("llama"), "causal_lm", _adapter(type="none"))
    assert summary.trainable_params == summary.total_params == sum(p.numel() for p in model.parameters())
    assert all(p.requires_grad for p in model.parameters())
    assert summary.describe().startswith("full fine-tune: ")


def test_log_names_targets_and_counts(tiny_model) -> None:
    logged: list[str] = []
    _, summary = _attach(tiny_model("llama"), "causal_lm", _adapter(type="lora", r=4), log=logged.append)
    assert logged[0].startswith("LoRA target modules (auto")
    share = 100 * summary.trainable_params / summary.total_params
    assert logged[-1] == (
        f"adapter lora r=4 on [q_proj, k_proj, v_proj, o_proj]: {summary.trainable_params:,} trainable of "
        f"{summary.total_params:,} params ({share:.2f}%)"
    )


def test_gpt2_conv1d_lora_without_warnings_on_attention_only(tiny_model) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = _attach(tiny_model("gpt2"), "causal_lm", _adapter(type="lora"))
    assert not [w for w in caught if "fan_in_fan_out" in str(w.message)]
    base = model.get_base_model()
    assert isinstance(base.transformer.h[0].attn.c_proj, LoraLayer)
    assert not isinstance(base.transformer.h[0].mlp.c_proj, LoraLayer)


def test_prefix_tuning_for_classification_is_refused(tiny_model) -> None:
    with pytest.raises(ModelError, match="prefix tuning does not work for sequence classification"):
        _attach(tiny_model("llama"), "sequence_classification", _adapter(type="prefix_tuning"))


@pytest.mark.parametrize(
    ("arch", "saved"),
    [("gpt2", ["score"]), ("bert", ["bert.pooler.dense", "classifier"]), ("t5", ["classification_head"])],
)
def test_classification_trains_new_modules_in_full(tiny_model, arch: str, saved: list[str]) -> None:
    _, summary = _attach(tiny_model(arch), "sequence_classification", _adapter(type="lora"))
    assert sorted(summary.modules_to_save) == saved
    assert "trained in full: " + ", ".join(summary.modules_to_save) in summary.describe()


def test_user_modules_to_save(tiny_model) -> None:
    adapter = _adapter(type="lora", modules_to_save=["embed_tokens"])
    model, summary = _attach(tiny_model("llama"), "causal_lm", adapter)
    assert summary.modules_to_save == ["model.embed_tokens"]


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(
    ("arch", "task", "adapter"),
    [
        ("gpt2", "causal_lm", {"type": "lora"}),
        ("llama", "causal_lm", {"type": "lora", "target_modules": "all-linear"}),
        ("bert", "sequence_classification", {"type": "lora"}),
        ("distilbert", "sequence_classification", {"type": "lora"}),
        ("gpt2", "sequence_classification", {"type": "lora"}),
        ("t5", "seq2seq_lm", {"type": "prefix_tuning", "num_virtual_tokens": 4}),
        ("llama", "causal_lm", {"type": "prefix_tuning", "num_virtual_tokens": 4}),
        (
            "llama",
            "causal_lm",
            {"type": "prompt_tuning", "num_virtual_tokens": 4, "init_text": "answer this"},
        ),
        ("bert", "sequence_classification", {"type": "prompt_tuning", "num_virtual_tokens": 4}),
    ],
)
def test_save_and_reload_gives_equal_logits(
    tiny_model, tmp_path: Path, arch: str, task: str, adapter: dict
) -> None:
    path = tiny_model(arch)
    batch = {k: v for k, v in _batch(path, task).items() if k != "labels" or task == "seq2seq_lm"}
    if task == "seq2seq_lm":
        batch["decoder_input_ids"] = batch.pop("labels")
    model, _ = attach_adapter(_base(path, task), _adapter(**adapter), task, tokenizer_name_or_path=str(path))
    _perturb(model)
    before = _logits(model, batch)
    model.save_pretrained(tmp_path)

    fresh = _base(path, task, seed=123)  # a new head starts from different random weights
    plain = _logits(fresh, batch)
    # The adapter matters. (A causal LM with prompt tuning also returns logits for the virtual tokens.)
    assert not torch.allclose(plain, before[:, -plain.shape[1] :], atol=1e-3)
    reloaded = PeftModel.from_pretrained(fresh, tmp_path)
    assert_same_function(_logits(reloaded, batch), before)
