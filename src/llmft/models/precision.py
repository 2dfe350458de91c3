"""Choose how the weights are stored and computed: the dtype, and qlora's quantisation.

- ``dtype: auto`` means float32 on CPU (transformers 5 defaults to the checkpoint's dtype, often bf16,
  which is slow and imprecise on most CPUs) and the checkpoint's dtype on GPU.
- qlora needs CUDA and bitsandbytes; ``quantization_config`` checks both before any weights are read, and
  ``qlora_problem`` keeps the decision pure so each case is testable on any machine.

torch and transformers are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llmft.config.schema import ModelConfig


def resolve_dtype(name: str, quantized: bool) -> torch.dtype | str:
    """``auto``: float32 on CPU, the checkpoint's dtype on GPU; with qlora, the compute dtype."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if quantized:
        return compute_dtype()
    return "auto" if torch.cuda.is_available() else torch.float32


def compute_dtype() -> torch.dtype:
    """The dtype quantised weights compute in: bfloat16 where the GPU has it, else float16."""
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def qlora_problem(cuda_available: bool, has_bitsandbytes: bool) -> EnvironmentProblem | None:
    """Why qlora cannot run on this machine, or None. Kept pure so each case is testable anywhere."""
    if not cuda_available:
        return EnvironmentProblem(
            "qlora needs a CUDA GPU (bitsandbytes 4/8-bit weights), and this machine has none",
            fix="use `model.adapter.type: lora` on this machine",
            where="model.adapter.type",
        )
    if not has_bitsandbytes:
        return EnvironmentProblem(
            "qlora needs the bitsandbytes package, which is not installed",
            fix="run `pip install bitsandbytes`, or use `model.adapter.type: lora`",
            where="model.adapter.type",
        )
    return None


def quantization_config(cfg: ModelConfig) -> object | None:
    """A BitsAndBytesConfig for qlora (NF4, double quantisation), None for other adapters."""
    if cfg.adapter.type != "qlora":
        return None
    import torch

    problem = qlora_problem(torch.cuda.is_available(), importlib.util.find_spec("bitsandbytes") is not None)
    if problem is not None:
        raise problem
    from transformers import BitsAndBytesConfig

    if cfg.adapter.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype(),
        bnb_4bit_use_double_quant=True,
    )


__all__ = ["compute_dtype", "qlora_problem", "quantization_config", "resolve_dtype"]
