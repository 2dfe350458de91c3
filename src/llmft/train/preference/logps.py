"""Per-sequence log-probabilities of completions, from one forward pass over the stacked batch.

Where the architecture allows (see train/loss.py), the LM head runs only at the positions that are scored
(prompt tokens need no logits), in chunks, so the rows × length × vocab logits tensor is never built.
Otherwise the model's own forward gives full logits and the same positions are read from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from llmft.data.labels import IGNORE
from llmft.train.loss import CHUNK, _unwrap, supports_selective_head


@dataclass
class SequenceLogps:
    """Summed completion log-probs per row and their token counts; ``nll``/``nll_tokens``: the summed
    negative log-likelihood over every attended token of the first ``nll_rows`` rows (ORPO's SFT term)."""

    sums: torch.Tensor
    counts: torch.Tensor
    nll: torch.Tensor | None = None
    nll_tokens: int = 0

    @property
    def means(self) -> torch.Tensor:
        """Length-averaged log-probs (SimPO, ORPO, IPO)."""
        return self.sums / self.counts.clamp(min=1)


def _token_logps(head: torch.nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(-1)


def _selected_logps(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], keep: torch.Tensor
) -> torch.Tensor:
    """Log-probs of the next tokens at the ``keep`` positions (rows × length-1), head only there."""
    inner = _unwrap(model)
    backbone = inner.base_model if inner.base_model is not inner else inner.model  # type: ignore[union-attr]
    hidden = backbone(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).last_hidden_state
    selected = hidden[:, :-1][keep]
    targets = batch["input_ids"][:, 1:][keep]
    head = inner.get_output_embeddings()
    parts = []
    for start in range(0, targets.numel(), CHUNK):
        part = slice(start, start + CHUNK)
        if torch.is_grad_enabled() and targets.numel() > CHUNK:
            parts.append(checkpoint(_token_logps, head, selected[part], targets[part], use_reentrant=False))
        else:
            parts.append(_token_logps(head, selected[part], targets[part]))
    return torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)


def _full_logps(model: torch.nn.Module, batch: dict[str, torch.Tensor], keep: torch.Tensor) -> torch.Tensor:
    """The same from the model's own forward (full logits), for heads the selective path cannot take."""
    ids = batch["input_ids"]
    logits = model(input_ids=ids, attention_mask=batch["attention_mask"], use_cache=False).logits
    logits = logits[:, -ids.shape[1] :]  # prompt tuning prepends virtual tokens
    return _token_logps(torch.nn.Identity(), logits[:, :-1][keep], ids[:, 1:][keep])


def sequence_logps(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], nll_rows: int = 0
) -> SequenceLogps:
    """Completion log-probs of every row of ``batch`` (its ``labels`` mark the completion tokens)."""
    scored = batch["labels"][:, 1:] != IGNORE
    keep = scored.clone()
    if nll_rows:
        keep[:nll_rows] |= batch["attention_mask"][:nll_rows, 1:].bool()
    compute = _selected_logps if supports_selective_head(model) else _full_logps
    values = compute(model, batch, keep)
    rows = torch.arange(keep.shape[0], device=keep.device).unsqueeze(1).expand_as(keep)[keep]
    in_completion = scored[keep]
    sums = values.new_zeros(keep.shape[0]).index_add(0, rows[in_completion], values[in_completion])
    out = SequenceLogps(sums, scored.sum(1))
    if nll_rows:
        in_nll = rows < nll_rows
        out.nll, out.nll_tokens = -values[in_nll].sum(), int(in_nll.sum())
    return out
