"""Loss functions that compute only what the loss needs.

Causal LM: the LM head and cross-entropy run only at positions that carry loss (prompt tokens masked for
completion-only training need no logits; on GPT-2 small the head is about a third of the FLOPs), in
chunks, so the batch × length × vocab logits tensor is never held at once. Losses are returned as a SUM
with the number of tokens, so gradient accumulation can weight every token equally.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from llmft.data.labels import IGNORE

# Architectures whose forward is "backbone → lm_head" with nothing in between (no logit soft-capping or
# scaling), so the head can be applied to selected positions only. They also build their attention masks
# with transformers' masking_utils, which turns restarted position_ids into a block-diagonal mask: the
# architectures that support packing.
PLAIN_HEAD_TYPES = {"gpt2", "llama", "qwen2", "qwen3", "mistral", "phi3", "gpt_neox"}
CHUNK = 2048


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside peft/accelerate wrappers."""
    inner = getattr(model, "module", model)  # DDP
    get_base = getattr(inner, "get_base_model", None)
    return get_base() if callable(get_base) else inner


def supports_selective_head(model: torch.nn.Module) -> bool:
    inner = _unwrap(model)
    config = getattr(inner, "config", None)
    peft_config = getattr(getattr(model, "module", model), "peft_config", {})
    prompt_learning = any(getattr(c, "is_prompt_learning", False) for c in dict(peft_config).values())
    return (
        getattr(config, "model_type", None) in PLAIN_HEAD_TYPES
        and not prompt_learning
        and hasattr(inner, "get_output_embeddings")
        and getattr(config, "final_logit_softcapping", None) is None
    )


def _head_ce(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def selective_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed next-token loss and the count of loss tokens, computing logits only where labels are set."""
    inner = _unwrap(model)
    backbone = inner.base_model if inner.base_model is not inner else inner.model  # type: ignore[union-attr]
    kwargs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    hidden = backbone(**kwargs, use_cache=False).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    selected = hidden[:, :-1][keep]
    targets = labels[keep]
    head = inner.get_output_embeddings()
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), CHUNK):
        part = slice(start, start + CHUNK)
        if torch.is_grad_enabled() and targets.numel() > CHUNK:
            total = total + checkpoint(_head_ce, head, selected[part], targets[part], use_reentrant=False)
        else:
            total = total + _head_ce(head, selected[part], targets[part])
    return total, int(targets.numel())


def full_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The model's own forward (prompt/prefix tuning, unusual heads), with our shift and sum."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_mask")}
    out = model(**inputs, use_cache=False)
    logits = out.logits
    if logits.shape[1] != labels.shape[1]:  # prompt tuning prepends virtual tokens
        logits = logits[:, -labels.shape[1] :]
    shifted = labels[:, 1:]
    count = int((shifted != IGNORE).sum())
    loss = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        shifted.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss, count


def seq2seq_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    labels = batch["labels"]
    out = model(**batch)
    count = int((labels != IGNORE).sum())
    loss = F.cross_entropy(
        out.logits.reshape(-1, out.logits.shape[-1]).float(),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )
    return loss, count


def classification_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    labels = batch["labels"]
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return F.cross_entropy(out.logits.float(), labels, reduction="sum"), int(labels.numel())
