"""Per-document causal attention for packed training rows (CPU), instead of a dense block-diagonal mask.

Why: with ``data.packing: true`` transformers turns the restarted ``position_ids`` into a 4D
block-diagonal mask. SDPA with an explicit mask cannot take its causal fast path: the CPU flash kernel
computes every query against all ``max_length`` keys (other documents' and future ones included), and
its backward was ~12% of a packed GPT-2 step. Running causal SDPA on each document separately computes
only the useful lower triangles and gives the same result.

Exactness: the registered mask function builds the normal SDPA mask whenever a 2D padding mask is given
(evaluation, generation), and the attention function then runs plain SDPA with it. Only when there is no
padding mask (packed training rows) does it split rows where ``position_ids`` do not increase by one
(the rule transformers itself uses to detect packing). A row without restarts is one causal segment.

It is enabled only on CPU (on a GPU the per-document split would add host syncs; flash-attention-2
already does variable-length packing there), for ``sdpa`` models without an effective sliding window.
"""

from __future__ import annotations

import torch

NAME = "llmft_packed_sdpa"
STANDARD = "sdpa"


def _segment_bounds(positions: torch.Tensor) -> list[int]:
    """Start of each document in one row (where a position is not the previous one plus one), plus the end."""
    breaks = torch.nonzero(positions[1:] != positions[:-1] + 1).flatten() + 1
    return [0, *breaks.tolist(), int(positions.shape[0])]


def segment_sdpa(  # noqa: PLR0913 - transformers' attention-interface signature
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """Causal SDPA per packed document; plain SDPA whenever a mask exists or there is nothing to split."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(
            module,
            query,
            key,
            value,
            attention_mask,
            dropout=dropout,
            scaling=scaling,
            position_ids=position_ids,
            **kwargs,
        )
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    batch = query.shape[0]
    rows = []
    for b in range(batch):
        bounds = _segment_bounds(position_ids[b if position_ids.shape[0] == batch else 0])
        parts = [
            torch.nn.functional.scaled_dot_product_attention(
                query[b : b + 1, :, s:e],
                key[b : b + 1, :, s:e],
                value[b : b + 1, :, s:e],
                is_causal=True,
                scale=scaling,
                dropout_p=dropout,
            )
            for s, e in zip(bounds, bounds[1:], strict=False)
        ]
        rows.append(parts[0] if len(parts) == 1 else torch.cat(parts, dim=2))
    out = rows[0] if batch == 1 else torch.cat(rows, dim=0)
    return out.transpose(1, 2).contiguous(), None


def _mask_unless_padded(
    *args: object, attention_mask: torch.Tensor | None = None, **kwargs: object
) -> object:
    """No 4D mask for unpadded (packed) batches, where ``segment_sdpa`` splits documents itself;
    the standard SDPA mask whenever a padding mask is given."""
    if attention_mask is None:
        return None
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def _register() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface

    AttentionInterface.register(NAME, segment_sdpa)
    AttentionMaskInterface.register(NAME, _mask_unless_padded)


def _inner(model: torch.nn.Module) -> torch.nn.Module:
    from llmft.train.loss import _unwrap

    return _unwrap(model)


def can_enable(model: torch.nn.Module, max_length: int) -> bool:
    """True for an sdpa causal LM on CPU whose sliding window (if any) cannot cut a ``max_length`` row."""
    inner = _inner(model)
    config = inner.config
    if torch.cuda.is_available() or config._attn_implementation != STANDARD:
        return False
    window = getattr(config, "sliding_window", None)
    uses_window = getattr(config, "use_sliding_window", True)
    return not (window and uses_window and window < max_length)


def enable(model: torch.nn.Module, max_length: int) -> bool:
    """Switch ``model`` to per-document attention for packed training; False (nothing changed) if it can't."""
    if not can_enable(model, max_length):
        return False
    _register()
    _inner(model).set_attn_implementation(NAME)
    return True


def disable(model: torch.nn.Module) -> None:
    """Back to standard ``sdpa`` (before saving, so nothing llmft-specific reaches a saved config)."""
    inner = _inner(model)
    config = getattr(inner, "config", None)  # a plain torch module has none, and nothing to undo
    if config is not None and config._attn_implementation == NAME:
        inner.set_attn_implementation(STANDARD)
