"""Per-token log-probabilities of sampled completions, from the policy's full logits.

Sampling divided the logits by the temperature before the softmax, so the log-probs the importance ratio
compares with must be of that same distribution: TRL 1.16 divides by ``temperature`` (its fused LM head,
``trl.trainer.utils.add_fused_lm_head``; earlier ``selective_log_softmax``) and so does this.
"""

from __future__ import annotations

import torch


def selective_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature) at ``tokens`` (same leading shape as ``logits``' but the last),
    without building the full log-softmax tensor. Half-precision logits are upcast to float32: a logsumexp
    over the vocabulary in bf16 loses the ~3 significant digits a log-ratio near 0 needs."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if logits.dtype not in (torch.float32, torch.float64):
        logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.stack([row.logsumexp(-1) for row in logits])  # a row at a time: less peak memory


def completion_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, completion_length: int, temperature: float = 1.0
) -> torch.Tensor:
    """Log-probs (rows × ``completion_length``) of the last ``completion_length`` tokens of ``input_ids``
    (prompt then completion) under ``logits`` of the whole sequence: position t's logits predict token t+1,
    so the completion's tokens are scored by the positions just before them. Padding positions get a value
    too; callers multiply by the completion mask, as TRL does."""
    if not 0 < completion_length < input_ids.shape[1]:
        raise ValueError(f"completion_length must be in 1..{input_ids.shape[1] - 1}, got {completion_length}")
    scoring = logits[:, -completion_length - 1 : -1]
    return selective_logprobs(scoring, input_ids[:, -completion_length:], temperature)
