"""A quantised base (model.quantization, or adapter.type: qlora): the schema's rules, the machine checks made
before any weights are read, the BitsAndBytesConfig and device placement of the CUDA path, and, where
bitsandbytes has CPU kernels, LoRA on a 4-bit and an 8-bit base trains on this CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from llmft.adapters.build import attach_adapter
from llmft.config.schema import ModelConfig, QuantizationConfig
from llmft.errors import EnvironmentProblem
from llmft.models import precision
from llmft.models.load import load_model, load_tokenizer
from llmft.models.precision import bnb_config, device_map, quantization_problem


def _model(path: str, **fields: object) -> ModelConfig:
    return ModelConfig(name_or_path=path, **fields)


# ------------------------------------------------------------------------------------------- schema
def test_qlora_implies_a_4bit_base_and_bits_8_an_8bit_one() -> None:
    assert _model("m", adapter={"type": "qlora"}).resolved_quantization() == QuantizationConfig()
    eight = _model("m", adapter={"type": "qlora", "bits": 8}).resolved_quantization()
    assert eight is not None and eight.method == "bnb-8bit"
    assert _model("m").resolved_quantization() is None
    lora_on_8bit = _model("m", quantization={"method": "bnb-8bit"})
    assert lora_on_8bit.adapter.type == "lora" and lora_on_8bit.resolved_quantization().bits == 8


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"adapter": {"type": "none"}, "quantization": {}}, "a full fine-tune"),
        (
            {"adapter": {"type": "qlora", "bits": 8}, "quantization": {"method": "bnb-4bit"}},
            "model.adapter.bits is 8 but model.quantization.method is bnb-4bit",
        ),
    ],
)
def test_contradictions_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _model("m", **fields)


# ------------------------------------------------------------------------------------ machine checks
@pytest.mark.parametrize(
    ("device", "version", "devices", "message", "fix"),
    [
        ("cpu", None, set(), "needs the bitsandbytes package", "pip install 'llmft[quant]'"),
        ("cuda", "0.45.5", set(), "bitsandbytes 0.45.5 is older than transformers needs (0.46.1", "-U"),
        (
            "cpu",
            "0.47.0",
            {"cuda"},
            "has no kernels for this machine's CPU (it supports: cuda)",
            "type: lora",
        ),
    ],
)
def test_quantization_problems(
    device: str, version: str | None, devices: set, message: str, fix: str
) -> None:
    problem = quantization_problem(device, version, devices)

    assert isinstance(problem, EnvironmentProblem)
    assert message in problem.message and fix in (problem.fix or "")
    assert problem.where == "model.quantization"


def test_no_problem_where_bitsandbytes_has_kernels() -> None:
    assert quantization_problem("cpu", "0.50.2", {"cpu", "cuda"}) is None
    assert quantization_problem("cuda", "0.46.1", {"cuda"}) is None


def test_a_missing_bitsandbytes_stops_before_any_weights_are_read(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(precision, "_bitsandbytes", lambda: (None, set()))
    cfg = _model(
        str(tmp_path / "never-read"), adapter={"type": "qlora"}
    )  # a missing path would be a ModelError

    with pytest.raises(EnvironmentProblem, match="needs the bitsandbytes package"):
        load_model(cfg, "causal_lm", tokenizer=None)


# ------------------------------------------------------------------------------------ the CUDA path
def test_the_cuda_bitsandbytes_config() -> None:
    four = bnb_config(QuantizationConfig(), cuda=True, bf16=True)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_use_double_quant
    assert four.bnb_4bit_compute_dtype == torch.bfloat16
    fp4 = bnb_config(QuantizationConfig(quant_type="fp4", double_quant=False), cuda=True, bf16=False)
    assert fp4.bnb_4bit_quant_type == "fp4" and not fp4.bnb_4bit_use_double_quant
    assert fp4.bnb_4bit_compute_dtype == torch.float16
    assert bnb_config(QuantizationConfig(), cuda=False, bf16=False).bnb_4bit_compute_dtype == torch.float32
    chosen = bnb_config(QuantizationConfig(compute_dtype="bfloat16"), cuda=False, bf16=False)
    assert chosen.bnb_4bit_compute_dtype == torch.bfloat16
    assert bnb_config(QuantizationConfig(method="bnb-8bit"), cuda=True, bf16=True).load_in_8bit


def test_device_map(monkeypatch) -> None:
    assert device_map(cuda=False) == {"": "cpu"}
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert device_map(cuda=True) == {"": 3}


# --------------------------------------------------------------------------------- on this CPU
@pytest.mark.slow
@pytest.mark.parametrize("method", ["bnb-4bit", "bnb-8bit"])
def test_lora_on_a_quantized_base_trains_on_this_machine(tiny_model, method: str) -> None:
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is optional (pip install 'llmft[quant]')")
    path = str(tiny_model("llama"))
    cfg = _model(path, quantization={"method": method})
    model = load_model(cfg, "causal_lm", tokenizer=load_tokenizer(path))
    import bitsandbytes as bnb

    kind = bnb.nn.Linear4bit if method == "bnb-4bit" else bnb.nn.Linear8bitLt
    assert isinstance(model.model.layers[0].self_attn.q_proj, kind)
    model, summary = attach_adapter(model, cfg.adapter, "causal_lm")
    ids = torch.randint(5, 300, (2, 24), generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(5):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())

    assert losses[-1] < losses[0] and all(torch.isfinite(torch.tensor(losses)))
    assert 0 < summary.trainable_params < summary.total_params
