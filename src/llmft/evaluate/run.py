"""Evaluation over a split: token-weighted loss (and perplexity) or classification metrics.

For a language model, `accuracy` (when `evaluation.metrics` asks for it) is next-token accuracy over the
loss positions, as the Hugging Face causal-LM example script reports it: computed with the loss, from the
same logits, without materialising the full logits tensor (see ``train/loss.py``'s ``*_counts``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmft.evaluate.metrics import classification_metrics, perplexity

LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, int]]
CountFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, int, int]]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    batches: list[dict[str, torch.Tensor]] | object,
    loss_fn: LossFn,
    task: str,
    num_labels: int | None = None,
    prefix: str = "eval",
    metrics: list[str] | None = None,
    call: Callable[..., object] | None = None,
) -> dict[str, float]:
    """Mean loss over all loss tokens of the split (not the mean of batch means), plus task metrics;
    ``metrics`` is `evaluation.metrics` (a language model's accuracy is computed only when asked for).
    ``call(fn, batch)`` runs ``fn(model, batch)``: under FSDP through the sharded root
    (train/distributed/sharding.py)."""
    run = call or (lambda fn, batch: fn(model, batch))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    preds: list[int] = []
    labels: list[int] = []
    device = next(model.parameters()).device
    count_fn = _counting(model, task, metrics)
    correct = 0
    for batch in batches:  # type: ignore[attr-defined]
        batch = {k: v.to(device) for k, v in batch.items()}
        if task == "sequence_classification":  # (a reward model's task is `preference` here)
            logits = run(_class_logits, batch)
            total += float(torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum"))
            count += int(batch["labels"].numel())
            preds += logits.argmax(-1).tolist()
            labels += batch["labels"].tolist()
        elif count_fn is not None:
            loss, n, right = run(count_fn, batch)
            total, count, correct = total + float(loss), count + n, correct + right
        else:
            loss, n = run(loss_fn, batch)
            total += float(loss)
            count += n
    model.train(was_training)
    mean = total / max(count, 1)
    out = {f"{prefix}_loss": mean}
    if task == "preference":  # the objective's loss per pair (or row); its metrics come from the objective
        return {**out, f"{prefix}_pairs": float(count)}
    if task == "sequence_classification":
        found = classification_metrics(preds, labels, num_labels or 2)
        out.update({f"{prefix}_{k}": v for k, v in found.items()})
    else:
        out[f"{prefix}_perplexity"] = perplexity(mean)
        if count_fn is not None:
            out[f"{prefix}_accuracy"] = correct / max(count, 1)
    out[f"{prefix}_tokens" if task != "sequence_classification" else f"{prefix}_rows"] = float(count)
    return out


def _class_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()


def _counting(model: torch.nn.Module, task: str, metrics: list[str] | None) -> CountFn | None:
    """The loss function that also counts correct tokens, for a language model asked for accuracy."""
    if task == "sequence_classification" or "accuracy" not in (metrics or []):
        return None
    from llmft.train.loss import counting_function

    return counting_function(task, model)
