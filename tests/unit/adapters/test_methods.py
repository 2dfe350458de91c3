"""The PEFT catalogue by config: every method (and LoRA option) trains a few steps on tiny Llama and GPT-2,
saves, and reloads in plain peft with equal logits; what peft cannot do on an architecture is refused with a
clear message; `extra` reaches the peft config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from pydantic import TypeAdapter
from torch import nn

from llmft.adapters.build import AdapterSummary, attach_adapter
from llmft.config.schema import AdapterConfig, ModelConfig
from llmft.errors import ModelError
from llmft.models.load import load_model, load_tokenizer

CASES = [
    ("lora", {"type": "lora", "r": 4}),
    ("dora", {"type": "lora", "r": 4, "use_dora": True}),
    ("rslora", {"type": "lora", "r": 4, "use_rslora": True}),
    ("lora-gaussian", {"type": "lora", "r": 4, "init": "gaussian"}),
    ("lora-pissa", {"type": "lora", "r": 4, "init": "pissa"}),
    ("lora-olora", {"type": "lora", "r": 4, "init": "olora"}),
    ("lora-orthogonal", {"type": "lora", "r": 4, "init": "orthogonal"}),
    ("lora-layer-1", {"type": "lora", "r": 4, "layers_to_transform": [1]}),
    ("lora-all-linear", {"type": "lora", "r": 4, "target_modules": "all-linear"}),
    ("ia3", {"type": "ia3"}),
    ("loha", {"type": "loha", "r": 4}),
    ("lokr", {"type": "lokr", "r": 4}),
    ("vera", {"type": "vera", "r": 16}),
    ("oft", {"type": "oft", "block_size": 8}),
    ("adaption_prompt", {"type": "adaption_prompt", "adapter_len": 4, "adapter_layers": 1}),
]
REGEX = {"llama": r".*\.layers\.1\.self_attn\.(q|v)_proj", "gpt2": r".*\.h\.1\.attn\.c_attn"}
NO_CONV1D = {"loha", "lokr", "oft"}  # peft 0.21 wraps only nn.Linear/convolutions with these


def _adapter(**kwargs: object) -> AdapterConfig:
    return TypeAdapter(AdapterConfig).validate_python(kwargs)


def _base(path: Path) -> nn.Module:
    torch.manual_seed(0)
    return load_model(ModelConfig(name_or_path=str(path)), "causal_lm", tokenizer=load_tokenizer(str(path)))


def _batch(path: Path) -> dict[str, torch.Tensor]:
    tokenizer = load_tokenizer(str(path))
    batch = dict(tokenizer(["the cat reads a book today.", "hello there"], return_tensors="pt", padding=True))
    batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch


def train_and_reload(
    path: Path, adapter: AdapterConfig, tmp_path: Path
) -> tuple[list[float], float, AdapterSummary]:
    """Losses of a few steps, the largest logit difference after a save and a reload in plain peft, and the
    summary."""
    model, summary = attach_adapter(_base(path), adapter, "causal_lm")
    batch = _batch(path)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    losses = []
    for _ in range(4):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        before = model(**batch).logits
    model.save_pretrained(tmp_path)
    from transformers import AutoModelForCausalLM

    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), tmp_path).eval()
    with torch.no_grad():
        after = reloaded(**batch).logits
    return losses, (before - after).abs().max().item(), summary


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize(("name", "spec"), CASES, ids=[c[0] for c in CASES])
def test_method_trains_and_reloads_with_equal_logits(
    tiny_model, tmp_path: Path, arch: str, name: str, spec: dict
) -> None:
    adapter = _adapter(**spec)
    if arch == "gpt2" and (spec["type"] in NO_CONV1D or spec.get("init") == "olora"):
        with pytest.raises(
            ModelError, match="cannot wrap GPT-2-style Conv1D|does not work on GPT-2-style Conv1D"
        ):
            attach_adapter(_base(tiny_model(arch)), adapter, "causal_lm")
        return

    losses, diff, summary = train_and_reload(tiny_model(arch), adapter, tmp_path)

    assert losses[-1] < losses[0]
    assert diff < 1e-5
    assert 0 < summary.trainable_params < summary.total_params / 10


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_regex_targets_adapt_only_the_matching_layers(tiny_model, arch: str, tmp_path: Path) -> None:
    adapter = _adapter(type="lora", r=4, target_modules=REGEX[arch])

    model, summary = attach_adapter(_base(tiny_model(arch)), adapter, "causal_lm")

    wrapped = sorted(n for n, m in model.named_modules() if hasattr(m, "lora_A"))
    assert wrapped and all(".1." in n for n in wrapped)
    assert len(wrapped) == (2 if arch == "llama" else 1)
    assert summary.target_modules == [REGEX[arch]]


def test_a_regex_that_matches_nothing_is_refused(tiny_model) -> None:
    adapter = _adapter(type="lora", target_modules=".*qproj")

    with pytest.raises(ModelError, match="matches no layer LoRA can adapt") as err:
        attach_adapter(_base(tiny_model("llama")), adapter, "causal_lm")
    assert "model.layers.0.self_attn.q_proj" in str(err.value.fix)


def test_extra_reaches_the_peft_config(tiny_model) -> None:
    adapter = _adapter(type="lora", r=4, extra={"rank_pattern": {"q_proj": 2}, "exclude_modules": ["k_proj"]})

    model, _ = attach_adapter(_base(tiny_model("llama")), adapter, "causal_lm")

    config = model.peft_config["default"]
    assert config.rank_pattern == {"q_proj": 2} and config.exclude_modules == {"k_proj"}
    assert model.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight.shape[0] == 2


def test_values_peft_refuses_are_model_errors(tiny_model) -> None:
    base = _base(tiny_model("llama"))
    pattern_alone = _adapter(type="lora", extra={"layers_pattern": "layers"})
    with pytest.raises(
        ModelError, match="peft's LoraConfig refused the adapter settings: .*layers_to_transform"
    ):
        attach_adapter(base, pattern_alone, "causal_lm")
    with pytest.raises(ModelError, match="peft cannot attach the adapter: Orthogonal .* rank to be even"):
        attach_adapter(base, _adapter(type="lora", r=3, init="orthogonal"), "causal_lm")


def test_adaption_prompt_is_refused_where_peft_has_no_recipe(tiny_model) -> None:
    with pytest.raises(ModelError, match=r"adaption_prompt .*this is qwen2 for causal_lm"):
        attach_adapter(_base(tiny_model("qwen2")), _adapter(type="adaption_prompt"), "causal_lm")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"lora_alpah": 3},
            "extra.lora_alpah: not a field of peft's LoraConfig "
            "(did you mean `lora_alpha`? set it as `alpha`)",
        ),
        (
            {"rank_patern": {}},
            "extra.rank_patern: not a field of peft's LoraConfig (did you mean `rank_pattern`?)",
        ),
        ({"lora_alpha": 3}, "extra.lora_alpha: set through `model.adapter.alpha`"),
        ({"fan_in_fan_out": True}, "extra.fan_in_fan_out: llmft sets it itself"),
    ],
)
def test_extra_names_are_checked_at_validate_time(extra: dict, message: str) -> None:
    from llmft.config.load import validate_dict

    _, problems = validate_dict(
        {
            "data": {"dataset": {"train_file": "x.jsonl"}},
            "model": {"name_or_path": "m", "adapter": {"type": "lora", "extra": extra}},
        }
    )

    assert [p.path for p in problems] == ["model.adapter"]
    assert problems[0].message.startswith(message)
