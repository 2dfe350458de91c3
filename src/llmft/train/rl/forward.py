"""The one forward pass online RL makes over prompt + completion rows, for the loss, the old (sampling)
policy and the reference alike, so the three log-probs are taken the same way.

Rows are left-padded prompts then right-padded completions (rollouts.py); the position ids count real
tokens only, as generation counted them, so a left-padded row is scored at the positions it was sampled at.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from llmft.train.rl.logprobs import completion_logprobs

Batch = dict[str, torch.Tensor]
# (model, batch) → per-token log-probs of the batch's completions (rows × completion tokens), no grad.
TokenLogps = Callable[[torch.nn.Module, Batch], torch.Tensor]


def policy_logits(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Logits of every position of the batch's rows."""
    out = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        use_cache=False,
    )
    return out.logits


def token_logps(
    model: torch.nn.Module, batch: Batch, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs of the completion tokens, the logits that scored them), both rows × completion tokens."""
    logits = policy_logits(model, batch)
    width = batch["completion_mask"].shape[1]
    logps = completion_logprobs(logits, batch["input_ids"], width, temperature)
    return logps, logits[:, -width - 1 : -1]


def entropy(logits: torch.Tensor, mask: torch.Tensor, temperature: float) -> float:
    """Mean entropy (nats) of the sampling distribution over the completion tokens: how sure the policy
    is; a collapse to 0 early means it stopped exploring."""
    with torch.no_grad():
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        per_token = -(logp.exp() * logp).sum(-1)
        return float((per_token * mask).sum() / mask.sum().clamp(min=1.0))


def no_grad_logps(temperature: float) -> TokenLogps:
    """The model's completion log-probs now, without a graph (the old policy's when num_iterations > 1)."""

    def logps(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return token_logps(model, batch, temperature)[0]
        finally:
            model.train(was_training)

    return logps


def reference_logps(model: torch.nn.Module, temperature: float) -> TokenLogps:
    """The reference's log-probs: the policy with its adapter switched off (no second copy in memory), or
    without an adapter a frozen copy of the model as it is before training (train/preference/reference.py
    makes the same choice for DPO and KTO)."""
    import copy

    from llmft.train.preference.reference import peft_model

    current = no_grad_logps(temperature)
    if peft_model(model) is not None:

        def disabled(policy: torch.nn.Module, batch: Batch) -> torch.Tensor:
            with peft_model(policy).disable_adapter():  # type: ignore[union-attr,operator]
                return current(policy, batch)

        return disabled
    frozen = copy.deepcopy(getattr(model, "module", model)).eval()
    for param in frozen.parameters():
        param.requires_grad_(False)
    return lambda policy, batch: current(frozen, batch)
