"""The architectures llmft writes as GGUF, and the hyperparameters each one's GGUF carries.

A GGUF names its architecture the way llama.cpp does: Mistral is written as ``llama`` (the same tensors
and layout; llama.cpp and transformers' GGUF reader both load it so). Every choice here is checked against
what transformers' GGUF reader (``transformers.modeling_gguf_pytorch_utils``) turns back into a config:
what it cannot read back (rope scaling, Llama's optional biases) is refused rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from llmft.errors import ExportError

if TYPE_CHECKING:  # pragma: no cover
    from gguf import GGUFWriter
    from transformers import PretrainedConfig

WHERE = "--format gguf"


@dataclass(frozen=True)
class ArchSpec:
    """How one transformers ``model_type`` is written.

    ``permute_qk``: llama.cpp stores Llama's q/k projection rows in the interleaved rotary order of its
    own kernels (the reader undoes it). ``transposed``: modules transformers stores as ``[in, out]``
    (GPT-2's Conv1D) that GGUF stores as ``[out, in]``.
    """

    gguf_arch: str
    permute_qk: bool = False
    transposed: tuple[str, ...] = ()
    rms_norm: bool = True


ARCHS: dict[str, ArchSpec] = {
    "llama": ArchSpec("llama", permute_qk=True),
    "mistral": ArchSpec("llama", permute_qk=True),
    "qwen2": ArchSpec("qwen2"),
    "gpt2": ArchSpec(
        "gpt2", transposed=("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"), rms_norm=False
    ),
}


def arch_spec(config: PretrainedConfig, task: str) -> ArchSpec:
    """The spec for this model, or an error naming the supported architectures."""
    model_type = str(getattr(config, "model_type", "?"))
    if task != "causal_lm":
        raise ExportError(
            f"GGUF export is for causal language models; this run is a {task} model ({model_type})",
            fix="use `llmft merge` to get a transformers folder of it instead",
            where=WHERE,
        )
    if model_type not in ARCHS:
        raise ExportError(
            f"GGUF export does not support the `{model_type}` architecture",
            fix=f"supported: {', '.join(sorted(ARCHS))}; `llmft merge` saves any model as safetensors",
            where=WHERE,
        )
    _refuse_unreadable(config, model_type)
    return ARCHS[model_type]


def _refuse_unreadable(config: PretrainedConfig, model_type: str) -> None:
    """Settings a GGUF reader would silently lose: a file that loads but computes something else."""
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in ("default", None):
        raise ExportError(
            f"`{model_type}` with rope scaling `{rope_type}` cannot be written yet: the GGUF readers "
            "this export is tested against do not read the scaling back",
            fix="use `llmft merge` for a safetensors copy of this model",
            where=WHERE,
        )
    biased = [name for name in ("attention_bias", "mlp_bias") if getattr(config, name, False)]
    if model_type in ("llama", "mistral") and biased:
        raise ExportError(
            f"this {model_type} model has {' and '.join(biased)}, which a llama GGUF does not carry",
            fix="use `llmft merge` for a safetensors copy of this model",
            where=WHERE,
        )


def rope_theta(config: PretrainedConfig) -> float:
    rope = getattr(config, "rope_parameters", None) or {}
    value = rope.get("rope_theta") if isinstance(rope, dict) else None
    return float(value if value is not None else getattr(config, "rope_theta", 10000.0))


def write_hparams(writer: GGUFWriter, config: PretrainedConfig, spec: ArchSpec) -> None:
    """Sizes, norms and rotary settings, under the keys llama.cpp and transformers' reader use."""
    if spec.gguf_arch == "gpt2":
        writer.add_context_length(config.n_positions)
        writer.add_embedding_length(config.n_embd)
        writer.add_feed_forward_length(config.n_inner or 4 * config.n_embd)
        writer.add_block_count(config.n_layer)
        writer.add_head_count(config.n_head)
        writer.add_layer_norm_eps(config.layer_norm_epsilon)
        writer.add_vocab_size(config.vocab_size)
        return
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(getattr(config, "num_key_value_heads", None) or heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(rope_theta(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)


def notes_for(config: PretrainedConfig) -> list[str]:
    """Things the user should know about what the GGUF computes."""
    window = getattr(config, "sliding_window", None)
    if config.model_type == "mistral" and window and window < config.max_position_embeddings:
        return [
            f"Mistral is written as a llama GGUF: its sliding window ({window} tokens) is not applied by "
            "llama.cpp or transformers' reader, so outputs agree only on inputs up to that length"
        ]
    return []


__all__ = ["ARCHS", "ArchSpec", "arch_spec", "notes_for", "rope_theta", "write_hparams"]
