"""Which storage type each GGUF tensor gets: llama.cpp's per-tensor rule for every ``--quant``.

A ``--quant`` names a mix, as llama.cpp's ``llama-quantize`` does: most matrices get the mix's type, and a
few get more bits where quantization hurts most. The rule is llama.cpp's (``llama_tensor_get_type_impl``
and ``tensor_type_fallback`` in src/llama-quant.cpp), for the dense architectures llmft writes:

* the output head (``output.weight``, or ``token_embd.weight`` when the head is tied to it) gets Q6_K in
  every quantized mix but q8_0, or Q8_0 where its rows are not a multiple of the mix type's block;
* in the ``_M`` mixes, ``attn_v`` (GPT-2's fused ``attn_qkv`` counts as one) and ``ffn_down`` get Q6_K
  in the layers ``use_more_bits`` picks: the first and last eighth, and every third layer between;
* 1-D tensors, norms and position embeddings are not quantized (float32 here, as llmft keeps them);
* a matrix whose rows are not a multiple of its type's block falls back: Q4_K → Q5_0, Q5_K → Q5_1,
  Q6_K → Q8_0 (blocks of 32), and to F16 where even 32 does not divide the row. llama.cpp stops with an
  error for a Q4_0 or Q8_0 tensor of such rows; llmft writes F16 there (and says so), as q8_0 always has.

Torch-free and ``gguf``-free: types are named here, encoded in ``gguf_tensors``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Storage:
    """A GGUF tensor type: its row-length block and llama.cpp's stand-in when a row does not fit it."""

    block: int = 1
    fallback: str | None = None
    quantized: bool = True


STORAGE: dict[str, Storage] = {
    "f32": Storage(quantized=False),
    "f16": Storage(quantized=False),
    "bf16": Storage(quantized=False),
    "q8_0": Storage(32, "f16"),
    "q4_0": Storage(32, "f16"),
    "q5_0": Storage(32, "f16"),
    "q5_1": Storage(32, "f16"),
    "q4_k": Storage(256, "q5_0"),
    "q5_k": Storage(256, "q5_1"),
    "q6_k": Storage(256, "q8_0"),
}


@dataclass(frozen=True)
class Mix:
    """One ``--quant``: ``general.file_type`` (a ``gguf.LlamaFileType`` name), the type of most matrices,
    the type of the output head, and of attn_v/ffn_down in the layers that get more bits (``_M`` mixes)."""

    file_type: str
    default: str
    head: str | None = None
    more_bits: str | None = None


MIXES: dict[str, Mix] = {
    "f32": Mix("ALL_F32", "f32"),
    "f16": Mix("MOSTLY_F16", "f16"),
    "bf16": Mix("MOSTLY_BF16", "bf16"),
    "q8_0": Mix("MOSTLY_Q8_0", "q8_0"),
    "q6_k": Mix("MOSTLY_Q6_K", "q6_k", head="q6_k"),
    "q5_k_m": Mix("MOSTLY_Q5_K_M", "q5_k", head="q6_k", more_bits="q6_k"),
    "q4_k_m": Mix("MOSTLY_Q4_K_M", "q4_k", head="q6_k", more_bits="q6_k"),
    "q4_0": Mix("MOSTLY_Q4_0", "q4_0", head="q6_k"),
}
QUANTS: tuple[str, ...] = tuple(MIXES)

_LAYER = re.compile(r"^blk\.(\d+)\.")
_MORE_BITS_ROLES = ("attn_v.weight", "attn_qkv.weight", "ffn_down")
_NOT_QUANTIZED = ("_norm.weight", "position_embd.weight", "token_types.weight")


def use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of layers for more bits: the first and last eighth, and every third between."""
    return layer < n_layers // 8 or layer >= 7 * n_layers // 8 or (layer - n_layers // 8) % 3 == 2


def tensor_type(name: str, shape: tuple[int, ...], quant: str, n_layers: int, tied: bool) -> str:
    """The storage type of tensor ``name`` (GGUF name, GGUF shape ``[rows, row length]``) in mix ``quant``,
    after the fallback for rows its blocks do not divide."""
    return fallback(planned_type(name, shape, quant, n_layers, tied), shape[-1])


def planned_type(name: str, shape: tuple[int, ...], quant: str, n_layers: int, tied: bool) -> str:
    """The type the mix's rule picks for this tensor, before any fallback.

    ``tied``: the model has no ``output.weight`` of its own, so ``token_embd`` is also the head.
    """
    mix = MIXES[quant]
    if len(shape) < 2:
        return "f32"
    if not STORAGE[mix.default].quantized:
        return mix.default
    if not name.endswith("weight") or any(part in name for part in _NOT_QUANTIZED):
        return "f32"
    return _mix_rule(name, shape[-1], mix, n_layers, tied)


def _mix_rule(name: str, row: int, mix: Mix, n_layers: int, tied: bool) -> str:
    head = name == "output.weight" or (tied and name == "token_embd.weight")
    if head and mix.head is not None:
        return "q8_0" if row % STORAGE[mix.default].block else mix.head
    layer = _LAYER.match(name)
    if mix.more_bits and layer and any(role in name for role in _MORE_BITS_ROLES):
        if use_more_bits(int(layer.group(1)), n_layers):
            return mix.more_bits
    return mix.default


def fallback(kind: str, row: int) -> str:
    """``kind``, or what llama.cpp stores instead when a row of ``row`` weights does not fill its blocks."""
    while row % STORAGE[kind].block:
        kind = str(STORAGE[kind].fallback)
    return kind


__all__ = [
    "MIXES",
    "QUANTS",
    "STORAGE",
    "Mix",
    "Storage",
    "fallback",
    "planned_type",
    "tensor_type",
    "use_more_bits",
]
