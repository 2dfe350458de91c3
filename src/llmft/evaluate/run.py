"""Evaluation over a split: token-weighted loss (and perplexity) or classification metrics."""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmft.evaluate.metrics import classification_metrics, perplexity

LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, int]]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: list[dict[str, torch.Tensor]] | object,
    loss_fn: LossFn,
    task: str,
    num_labels: int | None = None,
    prefix: str = "eval",
) -> dict[str, float]:
    """Mean loss over all loss tokens of the split (not the mean of batch means), plus task metrics."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    preds: list[int] = []
    labels: list[int] = []
    device = next(model.parameters()).device
    for batch in batches:  # type: ignore[attr-defined]
        batch = {k: v.to(device) for k, v in batch.items()}
        if task == "sequence_classification":  # (a reward model's task is `preference` here)
            inputs = {k: v for k, v in batch.items() if k != "labels"}
            logits = model(**inputs).logits.float()
            total += float(torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum"))
            count += int(batch["labels"].numel())
            preds += logits.argmax(-1).tolist()
            labels += batch["labels"].tolist()
        else:
            loss, n = loss_fn(model, batch)
            total += float(loss)
            count += n
    model.train(was_training)
    mean = total / max(count, 1)
    out = {f"{prefix}_loss": mean}
    if task == "preference":  # the objective's loss per pair (or row); its metrics come from the objective
        return {**out, f"{prefix}_pairs": float(count)}
    if task == "sequence_classification":
        metrics = classification_metrics(preds, labels, num_labels or 2)
        out.update({f"{prefix}_{k}": v for k, v in metrics.items()})
    else:
        out[f"{prefix}_perplexity"] = perplexity(mean)
    out[f"{prefix}_tokens" if task != "sequence_classification" else f"{prefix}_rows"] = float(count)
    return out
