"""Completions the length limit cut off, and DAPO's overlong masking of them.

A completion that stopped at max_completion_length never reached its end, so its reward judges an
unfinished answer; DAPO (Yu et al., 2025, "overlong filtering") drops such completions from the loss.
TRL 1.16 (``mask_truncated_completions``) calls a completion truncated when its last token is neither an
end-of-sequence token nor the pad token, and zeroes its whole row of the completion mask; so does this.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def truncated_rows(
    completion_ids: torch.Tensor, completion_mask: torch.Tensor, stops: Sequence[int]
) -> torch.Tensor:
    """Per row, whether its completion (the mask's real tokens, right-padded) ends on a token that is not in
    ``stops`` (the end-of-sequence ids and the pad id). An empty completion did not run out of room."""
    lengths = completion_mask.sum(-1).long()
    last = completion_ids.gather(-1, (lengths - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1)
    stop = torch.isin(last, torch.tensor(list(stops), device=last.device, dtype=last.dtype))
    return (lengths > 0) & ~stop


def mask_truncated(completion_mask: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """The completion mask with every truncated row zeroed: those completions take no part in the loss."""
    return completion_mask * (~truncated).unsqueeze(1).to(completion_mask.dtype)
