"""The `model` section: the base model, its adapter (schema/adapter.py) and the quantisation of its base."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmft.config.schema.adapter import AdapterConfig, LoraAdapter
from llmft.config.schema.base import RuleError, Section

# A `model.name_or_path` ending in this (any case) is a GGUF file, not a folder or Hub id.
GGUF_SUFFIX = ".gguf"


class QuantizationConfig(Section):
    method: Literal["bnb-4bit", "bnb-8bit"] = Field(
        "bnb-4bit",
        description="How the frozen base weights are stored: bitsandbytes 4-bit (QLoRA's NF4/FP4) or 8-bit "
        "(LLM.int8). Runs on CUDA, and on CPU with bitsandbytes >= 0.46.1; adapters train in full precision.",
    )
    quant_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type (4-bit only).")
    double_quant: bool = Field(
        True, description="Quantise the quantisation constants too (4-bit only; saves ~0.4 bit per weight)."
    )
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Dtype the 4-bit weights are dequantised to for matmuls; `auto`: bfloat16 on GPUs that "
        "have it, else float16; float32 on CPU.",
    )

    @property
    def bits(self) -> int:
        return 4 if self.method == "bnb-4bit" else 8


class ModelConfig(Section):
    name_or_path: str = Field(
        description="Hub id or local directory of the base model, or a local `.gguf` file (loaded "
        "dequantized to float32, with its tokenizer and chat template; see `gguf_file`)."
    )
    gguf_file: str | None = Field(
        None,
        description="Name of a `.gguf` file inside `name_or_path` (a local folder or a Hub repo) to use "
        "as the base. The first run writes a float32 copy into llmft's cache; later runs reuse it.",
    )
    task: Literal["auto", "causal_lm", "seq2seq_lm", "sequence_classification"] = Field(
        "auto",
        description="What to train. `auto`: classification when the data has labels, seq2seq for "
        "encoder-decoder models, else causal LM.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weight dtype; `auto` is float32 on CPU and the checkpoint's dtype on GPU."
    )
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the checkpoint (off by default)."
    )
    allow_pickle: bool = Field(
        False, description="Allow loading pickle-based weights (`.bin`); unsafe for untrusted files."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    attn_implementation: Literal["auto", "eager", "sdpa"] = Field("auto", description="Attention kernel.")
    disable_dropout: bool = Field(
        True, description="Set model dropout to 0 for fine-tuning: faster (and the usual choice for LoRA)."
    )
    adapter: AdapterConfig = Field(default_factory=LoraAdapter, description="How the model is adapted.")
    quantization: QuantizationConfig | None = Field(
        None,
        description="Load the base weights quantised (frozen) and train the adapter on top; "
        "`adapter.type: qlora` implies `{method: bnb-4bit}` (or bnb-8bit with `bits: 8`).",
    )

    @model_validator(mode="after")
    def _one_gguf(self) -> ModelConfig:
        if self.gguf_file is not None and self.name_or_path.lower().endswith(GGUF_SUFFIX):
            raise RuleError(
                f"model.name_or_path is already a GGUF file (`{self.name_or_path}`) and model.gguf_file "
                f"names another (`{self.gguf_file}`)",
                fix="remove model.gguf_file, or set model.name_or_path to the folder (or Hub repo) that "
                "holds it",
            )
        if self.gguf_file is not None and not self.gguf_file.strip():
            raise RuleError("model.gguf_file is empty", fix="name a .gguf file, or remove model.gguf_file")
        return self

    @model_validator(mode="after")
    def _quantized_base(self) -> ModelConfig:
        if self.quantization is None:
            return self
        if self.adapter.type == "none":
            raise RuleError(
                "model.quantization freezes the base weights in 4/8 bits, so a full fine-tune "
                "(adapter.type: none) has nothing to train",
                fix="set model.adapter.type: lora (or remove model.quantization)",
            )
        bits = getattr(self.adapter, "bits", None)
        if bits is not None and bits != self.quantization.bits:
            raise RuleError(
                f"model.adapter.bits is {bits} but model.quantization.method is {self.quantization.method}",
                fix=f"set model.quantization.method: bnb-{bits}bit (or remove adapter.bits)",
            )
        return self

    def resolved_quantization(self) -> QuantizationConfig | None:
        """The quantisation of the base: the configured one, or the one `qlora` implies."""
        if self.quantization is not None:
            return self.quantization
        if self.adapter.type == "qlora":
            return QuantizationConfig(method="bnb-8bit" if self.adapter.bits == 8 else "bnb-4bit")
        return None
