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


def _loss_positions(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """(LM head, hidden states at the positions that carry loss, their next-token targets)."""
    inner = _unwrap(model)
    backbone = inner.base_model if inner.base_model is not inner else inner.model  # type: ignore[union-attr]
    kwargs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    hidden = backbone(**kwargs, use_cache=False).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    return inner.get_output_embeddings(), hidden[:, :-1][keep], labels[keep]


def selective_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed next-token loss and the count of loss tokens, computing logits only where labels are set."""
    head, selected, targets = _loss_positions(model, batch)
    total = selected.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), CHUNK):
        part = slice(start, start + CHUNK)
        if torch.is_grad_enabled() and targets.numel() > CHUNK:
            total = total + checkpoint(_head_ce, head, selected[part], targets[part], use_reentrant=False)
        else:
            total = total + _head_ce(head, selected[part], targets[part])
    return total, int(targets.numel())


def _shifted_logits(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's own forward: logits at positions 0..n-2 and the labels they predict (1..n-1)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_mask")}
    logits = model(**inputs, use_cache=False).logits
    if logits.shape[1] != labels.shape[1]:  # prompt tuning prepends virtual tokens
        logits = logits[:, -labels.shape[1] :]
    return logits[:, :-1], labels[:, 1:]


def _summed_ce(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    count = int((labels != IGNORE).sum())
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )
    return loss, count


def full_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The model's own forward (prompt/prefix tuning, unusual heads), with our shift and sum."""
    return _summed_ce(*_shifted_logits(model, batch))


def seq2seq_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    return _summed_ce(model(**batch).logits, batch["labels"])


def classification_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    labels = batch["labels"]
    out = model(**{k: v for k, v in batch.items() if k != "labels"})
    return F.cross_entropy(out.logits.float(), labels, reduction="sum"), int(labels.numel())


# ------------------------------------------------------------------ evaluation: loss and accuracy together
def _correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """Positions whose argmax is the label, counted only where the label carries loss."""
    return int(((logits.argmax(-1) == labels) & (labels != IGNORE)).sum())


def selective_lm_counts(
    model: torch.nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, int, int]:
    """(summed loss, loss tokens, tokens predicted right): the argmax of the logits at position t against
    the label at t+1, at the loss positions only, with the same chunked head as the loss."""
    head, selected, targets = _loss_positions(model, batch)
    total, correct = selected.new_zeros((), dtype=torch.float32), 0
    for start in range(0, targets.numel(), CHUNK):
        logits = head(selected[start : start + CHUNK]).float()
        total = total + F.cross_entropy(logits, targets[start : start + CHUNK], reduction="sum")
        correct += _correct(logits, targets[start : start + CHUNK])
    return total, int(targets.numel()), correct


def full_lm_counts(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, int]:
    logits, labels = _shifted_logits(model, batch)
    return *_summed_ce(logits, labels), _correct(logits, labels)


def seq2seq_counts(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int, int]:
    """Teacher-forced: the prediction at each label position against that label."""
    logits = model(**batch).logits
    return *_summed_ce(logits, batch["labels"]), _correct(logits, batch["labels"])


def counting_function(task: str, model: torch.nn.Module):  # noqa: ANN201 - one of the three above
    """The evaluation twin of a language model's objective (train/objectives/): loss, tokens and the
    tokens predicted right."""
    if task == "seq2seq_lm":
        return seq2seq_counts
    return selective_lm_counts if supports_selective_head(model) else full_lm_counts
