"""Per-sequence log-probabilities of completions, from one forward pass over the stacked batch, padded
(one row per sequence) or packed (sequences as documents in rows; data/pair_collate.py).

Where the architecture allows (see train/loss.py), the LM head runs only at the positions that are scored
(prompt tokens need no logits), in chunks, so the rows × length × vocab logits tensor is never built.
Otherwise the model's own forward gives full logits and the same positions are read from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

from llmft.data.labels import IGNORE
from llmft.data.pair_collate import sequence_count
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


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What the model reads: the padding mask, or for packed rows the restarted positions (and no mask,
    which is what tells transformers and packed_attention.py to keep attention inside each document)."""
    keys = ("input_ids", "position_ids") if "sequence_ids" in batch else ("input_ids", "attention_mask")
    return {k: batch[k] for k in keys}


def target_sequences(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """For each next-token position (rows × length-1): the sequence its target belongs to, and whether the
    target is a real token of the same sequence as the position predicting it."""
    if "sequence_ids" in batch:
        owner = batch["sequence_ids"]
        target = owner[:, 1:]
        return target, (target >= 0) & (target == owner[:, :-1])
    mask = batch["attention_mask"]
    rows = torch.arange(mask.shape[0], device=mask.device).unsqueeze(1).expand(-1, mask.shape[1] - 1)
    return rows, mask[:, 1:].bool()


def _selected_logps(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], keep: torch.Tensor
) -> torch.Tensor:
    """Log-probs of the next tokens at the ``keep`` positions (rows × length-1), head only there."""
    inner = _unwrap(model)
    backbone = inner.base_model if inner.base_model is not inner else inner.model  # type: ignore[union-attr]
    hidden = backbone(**model_inputs(batch), use_cache=False).last_hidden_state
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
    logits = model(**model_inputs(batch), use_cache=False).logits
    logits = logits[:, -ids.shape[1] :]  # prompt tuning prepends virtual tokens
    return _token_logps(torch.nn.Identity(), logits[:, :-1][keep], ids[:, 1:][keep])


def sequence_logps(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], nll_rows: int = 0
) -> SequenceLogps:
    """Completion log-probs of every sequence of ``batch`` (its ``labels`` mark the completion tokens), in
    the collator's order whatever the layout; ``nll_rows``: the first sequences whose every token also
    counts in ``nll``."""
    owner, valid = target_sequences(batch)
    scored = (batch["labels"][:, 1:] != IGNORE) & valid
    keep = scored | ((owner < nll_rows) & valid) if nll_rows else scored
    compute = _selected_logps if supports_selective_head(model) else _full_logps
    values = compute(model, batch, keep)
    sequences = sequence_count(batch)
    owners, in_completion = owner[keep], scored[keep]
    sums = values.new_zeros(sequences).index_add(0, owners[in_completion], values[in_completion])
    counts = torch.zeros(sequences, dtype=torch.long, device=owner.device)
    counts = counts.index_add(0, owners[in_completion], torch.ones_like(owners[in_completion]))
    out = SequenceLogps(sums, counts)
    if nll_rows:
        in_nll = owners < nll_rows
        out.nll, out.nll_tokens = -values[in_nll].sum(), int(in_nll.sum())
    return out
