"""Prototypes of proposed llmft changes, applied by monkeypatching inside the `llmft-proto` worker only.

They exist to measure a change in the same interleaved run as llmft itself before anyone edits
llmft's loop or model loading; llmft's own contender never sees them.

1. ``fused_gelu``: GPT-2's ``gelu_new`` is the tanh approximation written as eight elementwise ops;
   ``gelu_pytorch_tanh`` is the same function as one fused kernel (set in the config before the model
   is built, as llmft already does for dropout).
2. ``segment_attention``: packed rows get a dense block-diagonal mask from transformers, so SDPA computes
   every query against all 512 keys (other documents and the future included) and its CPU flash kernel
   cannot skip blocks. Instead run causal SDPA per document (segments where ``position_ids`` restart):
   no mask is built, the kernel skips the upper triangle, and cross-document blocks are never computed.
   With right padding and no restart, a row is one segment: real tokens never see the padding after them.
"""

from __future__ import annotations

NAME = "llmft_segments"


def segment_sdpa(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout=0.0,
    scaling=None,
    position_ids=None,  # noqa: ANN001, ANN201
    **kwargs,
):
    """Causal SDPA per segment of restarted ``position_ids`` (transformers attention-interface signature)."""
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import repeat_kv

    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    batch, _, length, _ = query.shape
    if position_ids is None or query.shape[2] != key.shape[2]:
        out = F.scaled_dot_product_attention(
            query, key, value, is_causal=length > 1, scale=scaling, dropout_p=dropout
        )
        return out.transpose(1, 2).contiguous(), None
    rows = []
    for b in range(batch):
        pos = position_ids[b if position_ids.shape[0] == batch else 0]
        starts = torch.nonzero(pos == 0).flatten().tolist()
        if not starts or starts[0] != 0:
            starts = [0, *starts]
        bounds = [*starts, length]
        parts = [
            F.scaled_dot_product_attention(
                query[b : b + 1, :, s:e],
                key[b : b + 1, :, s:e],
                value[b : b + 1, :, s:e],
                is_causal=True,
                scale=scaling,
                dropout_p=dropout,
            )
            for s, e in zip(bounds, bounds[1:], strict=False)
            if e > s
        ]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    out = rows[0] if batch == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def _no_mask(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - transformers' mask-interface signature
    return None


def apply(fused_gelu: bool = True, segment_attention: bool = True) -> list[str]:
    """Patch llmft's model loading in this process; returns what was applied."""
    import llmft.models.load as load

    applied = []
    if segment_attention:
        from transformers import AttentionInterface, AttentionMaskInterface

        AttentionInterface.register(NAME, segment_sdpa)
        AttentionMaskInterface.register(NAME, _no_mask)
        original_kwargs = load._load_kwargs

        def load_kwargs(*args, **kw):  # noqa: ANN002, ANN003, ANN202 - whatever llmft's signature is today
            kwargs = original_kwargs(*args, **kw)
            kwargs["attn_implementation"] = NAME
            return kwargs

        load._load_kwargs = load_kwargs
        applied.append("segment_attention")
    if fused_gelu:
        original_prepare = load._prepare_config

        def prepare_config(config, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            original_prepare(config, *args, **kw)
            if getattr(config, "activation_function", None) == "gelu_new":
                config.activation_function = "gelu_pytorch_tanh"

        load._prepare_config = prepare_config
        applied.append("fused_gelu")
    return applied
