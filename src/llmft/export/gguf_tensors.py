"""A model's weights as GGUF tensors: llama.cpp's names, its layouts, and the chosen quantization.

Names come from the ``gguf`` package's own table (``gguf.get_tensor_name_map``), the one llama.cpp's
converter and transformers' reader use, so the three agree by construction. A weight the table does not
know stops the export: a GGUF without it would load with that weight random or missing.

Each tensor's storage type comes from ``gguf_mix`` (llama.cpp's per-tensor rule); here it is encoded:
the k-quants by llmft's own numpy encoders (``gguf_kquants``: the ``gguf`` package only reads them), the
other types by the ``gguf`` package's reference quantizers (llama.cpp's, written in numpy).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmft.errors import ExportError
from llmft.export.gguf_arch import WHERE, ArchSpec
from llmft.export.gguf_mix import MIXES, QUANTS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class GgufTensor:
    """One tensor ready for ``GGUFWriter.add_tensor``; ``raw_type`` is set for packed (bf16, quantized)."""

    name: str
    data: np.ndarray
    raw_type: int | None
    type_name: str


def file_type(quant: str) -> int:
    """``general.file_type``: the mix the file was written as (llama.cpp's ``LlamaFileType``)."""
    from gguf import LlamaFileType

    return int(LlamaFileType[MIXES[quant].file_type])


def named_tensors(model: PreTrainedModel, spec: ArchSpec) -> Iterator[tuple[str, np.ndarray]]:
    """``(gguf name, float32 array in GGUF layout)`` for every weight; a tied output head is left out."""
    import gguf

    config = model.config
    layers = config.num_hidden_layers if hasattr(config, "num_hidden_layers") else config.n_layer
    arch = next(key for key, value in gguf.MODEL_ARCH_NAMES.items() if value == spec.gguf_arch)
    names = gguf.get_tensor_name_map(arch, layers)
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    state = model.state_dict()
    unknown = [key for key in state if _gguf_name(names, key) is None]
    if unknown:
        raise ExportError(
            f"{len(unknown)} weights have no GGUF name for `{spec.gguf_arch}`: {', '.join(unknown[:5])}",
            fix="this model has parts a GGUF of its architecture does not carry; use `llmft merge` instead",
            where=WHERE,
        )
    for key, tensor in state.items():
        name = str(_gguf_name(names, key))
        if tied and name == "output.weight":
            continue
        yield name, _layout(tensor.detach().float().cpu().numpy(), key, spec, config)


def _gguf_name(names: object, key: str) -> str | None:
    base, _, suffix = key.rpartition(".")
    mapped = names.get_name(base)  # type: ignore[attr-defined]
    return f"{mapped}.{suffix}" if mapped is not None else None


def _layout(array: np.ndarray, key: str, spec: ArchSpec, config: object) -> np.ndarray:
    """GPT-2's Conv1D weights transposed; Llama's q/k rows in llama.cpp's rotary order."""
    module = key.rpartition(".")[0]
    if array.ndim == 2 and any(module.endswith(t) for t in spec.transposed):
        return array.T.copy()
    if spec.permute_qk and key.endswith(("q_proj.weight", "k_proj.weight")):
        heads = config.num_attention_heads  # type: ignore[attr-defined]
        if key.endswith("k_proj.weight"):
            heads = getattr(config, "num_key_value_heads", None) or heads
        return permute_rotary(array, heads)
    return array


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Within each head, rows ``[0..d/2) + [d/2..d)`` (rotate-half) become interleaved pairs (llama.cpp)."""
    rows = weight.shape[0]
    half = rows // heads // 2
    return weight.reshape(heads, 2, half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape).copy()


def encode(name: str, array: np.ndarray, kind: str) -> GgufTensor:
    """Store ``array`` as storage type ``kind`` (a ``gguf_mix.STORAGE`` name chosen for this tensor)."""
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    from llmft.export.gguf_kquants import QUANTIZERS

    if kind == "f32":
        return GgufTensor(name, array.astype(np.float32), None, kind)
    if kind == "f16":
        return GgufTensor(name, array.astype(np.float16), None, kind)
    raw = GGMLQuantizationType[kind.upper()]
    encoder = QUANTIZERS.get(kind)
    data = encoder(array) if encoder is not None else quants.quantize(array, raw)
    return GgufTensor(name, data, raw, kind)


__all__ = ["QUANTS", "GgufTensor", "encode", "file_type", "named_tensors", "permute_rotary"]
