"""Minimal stand-ins for ``self`` so TRL 1.16's own GRPOTrainer/RLOOTrainer methods run on given tensors.

Each stand-in carries only the attributes the method reads, with generation, reward functions and the
model's forward replaced by the tensors a test chooses; the arithmetic under test is TRL's own code, so a
change in TRL (or in llmft) makes the comparison fail. One process, no vLLM, no tools, no images.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import torch

PAD, EOS = 0, 2


class Accelerator(SimpleNamespace):
    """One process: gather and reduce return their input."""

    def __init__(self) -> None:
        super().__init__(device=torch.device("cpu"), process_index=0, num_processes=1)

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def reduce(self, tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return tensor


def model(training: bool = True) -> SimpleNamespace:
    """A model as far as the methods look at it: its mode and gradient checkpointing off."""
    return SimpleNamespace(training=training, is_gradient_checkpointing=False)


def _logs() -> dict[str, object]:
    keys = ("prompt", "completion", "advantages", "images")
    return {**{k: [] for k in keys}, "rewards": defaultdict(list), "extra": defaultdict(list)}


def _logps_of(table: dict[int, torch.Tensor]):  # noqa: ANN202
    """``_get_per_token_logps_and_entropies`` answering with the chosen log-probs of each model."""

    def forward(model: object, *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor, None]:
        logps = table[id(model)]
        return logps, torch.zeros_like(logps), None

    return forward


def common(**settings: object) -> SimpleNamespace:
    """What every method reads: accelerator, metrics and logs, mode, no auxiliary losses."""
    return SimpleNamespace(
        accelerator=Accelerator(),
        model=model(),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _logs=_logs(),
        _pending_extra_logs={},
        _pending_metrics={},
        aux_loss_enabled=False,
        log_multimodal=False,
        use_vllm=False,
        pad_to_multiple_of=None,
        _tokenizer=SimpleNamespace(pad_token_id=PAD),
        eos_token_ids=[EOS],
        **settings,
    )


def scoring_self(
    trainer: str,
    completions: list[list[int]],
    rewards_per_func: torch.Tensor,
    logps: dict[str, torch.Tensor | None],
    **settings: object,
) -> SimpleNamespace:
    """``self`` for ``_generate_and_score_completions``: the generated ``completions`` (token ids, one
    prompt of two tokens each), rewards from the reward functions, and the policy's (``old``) and the
    reference's (``ref``) per-token log-probs on them."""
    fake = common(**settings)
    fake.ref_model = model(training=False)
    prompts = [[5, 6]] * len(completions)
    texts = [f"c{i}" for i in range(len(completions))]
    if trainer == "grpo":
        fake._generate = lambda _prompts: (prompts, completions, None, texts, None, {}, None, None)
        fake.environment_factories, fake.tools, fake.environments = None, None, None
    else:
        fake._generate = lambda _prompts: (prompts, completions, texts)
    fake._calculate_rewards = lambda *_args: rewards_per_func
    fake.reward_func_names = [f"r{k}" for k in range(rewards_per_func.shape[1])]
    table = {id(fake.model): logps.get("old"), id(fake.ref_model): logps.get("ref")}
    fake._get_per_token_logps_and_entropies = _logps_of(table)  # type: ignore[arg-type]
    return fake


def loss_self(logps: torch.Tensor, **settings: object) -> SimpleNamespace:
    """``self`` for ``_compute_loss``: the policy's per-token log-probs are ``logps``."""
    fake = common(**settings)
    fake._get_per_token_logps_and_entropies = _logps_of({id(fake.model): logps})  # type: ignore[arg-type]
    return fake


def completion_inputs(mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Prompt and completion ids of the mask's shape (the stubbed forward ignores their values)."""
    rows, length = mask.shape
    return {
        "prompt_ids": torch.full((rows, 2), 5),
        "prompt_mask": torch.ones(rows, 2, dtype=torch.long),
        "completion_ids": torch.full((rows, length), 7),
        "completion_mask": mask,
    }
