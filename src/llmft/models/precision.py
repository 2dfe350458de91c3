"""Choose how the weights are stored and computed: the dtype, and the quantised base (qlora).

- ``dtype: auto`` means float32 on CPU (transformers 5 defaults to the checkpoint's dtype, often bf16,
  which is slow and imprecise on most CPUs) and the checkpoint's dtype on GPU.
- A quantised base (``model.quantization``, or ``adapter.type: qlora``) loads through transformers'
  bitsandbytes quantizer. bitsandbytes >= 0.46.1 (the version transformers 5 asks for) ships CPU kernels for
  4-bit and LLM.int8, and transformers checks the device against ``bitsandbytes.supported_torch_devices``;
  ``quantization_problem`` makes the same checks before any weights are read, and stays pure so each case
  is testable on any machine. On CPU the compute dtype is float32 (bf16 matmuls are slow there).

torch and transformers are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from llmft.config.schema import ModelConfig, QuantizationConfig

BITSANDBYTES_MIN = (0, 46, 1)  # transformers 5's BITSANDBYTES_MIN_VERSION, the first with CPU kernels
WHERE = "model.quantization"


def resolve_dtype(name: str, quantized: bool) -> torch.dtype | str:
    """``auto``: float32 on CPU, the checkpoint's dtype on GPU; with a quantised base, the compute dtype."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    cuda = torch.cuda.is_available()
    if quantized:
        return compute_dtype("auto", cuda, cuda and torch.cuda.is_bf16_supported())
    return "auto" if cuda else torch.float32


def compute_dtype(name: str, cuda: bool, bf16: bool) -> torch.dtype:
    """The dtype quantised weights compute in: `auto` is bfloat16 where the GPU has it, else float16; float32
    on CPU."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if not cuda:
        return torch.float32
    return torch.bfloat16 if bf16 else torch.float16


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def quantization_problem(
    device: str, bnb_version: str | None, bnb_devices: set[str]
) -> EnvironmentProblem | None:
    """Why a quantised base cannot load on ``device`` (cuda/cpu) with this bitsandbytes, or None."""
    if bnb_version is None:
        return EnvironmentProblem(
            "a quantised base (model.quantization or adapter.type: qlora) needs the bitsandbytes package, "
            "which is not installed",
            fix="run `pip install 'llmft[quant]'` (bitsandbytes), or remove model.quantization / use "
            "`model.adapter.type: lora`",
            where=WHERE,
        )
    if _version(bnb_version) < BITSANDBYTES_MIN:
        need = ".".join(map(str, BITSANDBYTES_MIN))
        return EnvironmentProblem(
            f"bitsandbytes {bnb_version} is older than transformers needs ({need}; older releases have no "
            "CPU kernels)",
            fix="run `pip install -U bitsandbytes`",
            where=WHERE,
        )
    if device not in bnb_devices:
        return EnvironmentProblem(
            f"bitsandbytes {bnb_version} has no kernels for this machine's {device.upper()} "
            f"(it supports: {', '.join(sorted(bnb_devices)) or 'none'})",
            fix="use `model.adapter.type: lora` without model.quantization on this machine",
            where=WHERE,
        )
    return None


def _bitsandbytes() -> tuple[str | None, set[str]]:
    """The installed bitsandbytes' version and the torch devices it has kernels for."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("bitsandbytes")
    except PackageNotFoundError:
        return None, set()
    if _version(found) < BITSANDBYTES_MIN:
        return found, set()
    import bitsandbytes

    return found, set(getattr(bitsandbytes, "supported_torch_devices", ()))


def bnb_config(quant: QuantizationConfig, cuda: bool, bf16: bool) -> object:
    """transformers' BitsAndBytesConfig for ``quant``; pure given the device, so the CUDA path is tested
    anywhere."""
    from transformers import BitsAndBytesConfig

    if quant.method == "bnb-8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant.quant_type,
        bnb_4bit_compute_dtype=compute_dtype(quant.compute_dtype, cuda, bf16),
        bnb_4bit_use_double_quant=quant.double_quant,
    )


def device_map(cuda: bool) -> dict[str, int | str]:
    """Quantised weights are placed at load: this process's GPU (LOCAL_RANK under torchrun), or the CPU."""
    if not cuda:
        return {"": "cpu"}
    rank = os.environ.get("LOCAL_RANK")
    if rank is not None:
        return {"": int(rank)}
    import torch

    return {"": torch.cuda.current_device()}


def quantization_config(cfg: ModelConfig) -> object | None:
    """A BitsAndBytesConfig for a quantised base, None for a plain one; refuses before any weights are read
    when this machine cannot load it."""
    quant = cfg.resolved_quantization()
    if quant is None:
        return None
    import torch

    cuda = torch.cuda.is_available()
    problem = quantization_problem("cuda" if cuda else "cpu", *_bitsandbytes())
    if problem is not None:
        raise problem
    return bnb_config(quant, cuda, cuda and torch.cuda.is_bf16_supported())


__all__ = [
    "bnb_config",
    "compute_dtype",
    "device_map",
    "quantization_config",
    "quantization_problem",
    "resolve_dtype",
]
