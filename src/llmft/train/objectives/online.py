"""What grpo and rloo share: prompt rows, a rollout batch source, and a clipped policy loss over it.

Units, so that each loss_type means per optimizer step what it means in TRL 1.16 (base.py's contract: a
loss is a SUM with its unit count, and the loop divides by the accumulation window's units):
- dapo: the masked token losses summed, units = completion tokens: the window's token mean, DAPO's;
- grpo: each row's token mean summed, units = rows: the mean over the window's sequences, which is TRL's
  mean per micro-batch averaged over accumulation steps when micro-batches hold equally many rows;
- dr_grpo: the masked sum / max_completion_length, units = rows: sum / (rows × max_completion_length);
- bnpo: each micro-batch's token mean, units = 1: the mean of micro-batch means, exactly TRL's;
- rloo: each row's clipped term summed, units = rows: the mean over the window's sequences.
Several processes sum their gradients over the window's global unit count (train/loop.py), which is the
same mean over the global batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from llmft.errors import ConfigError
from llmft.train.objectives.base import Batch, Context, Objective, pad_id
from llmft.train.rl.forward import entropy, no_grad_logps, reference_logps, token_logps
from llmft.train.rl.metrics import RolloutStats, Samples
from llmft.train.rl.policy_loss import PolicyBatch, PolicySettings, grpo_loss, rloo_loss

if TYPE_CHECKING:
    from llmft.config.schema import DataConfig, PreferenceConfig, TrainingConfig
    from llmft.data.build import EncodedData, PreparedData
    from llmft.train.batches import FixedBatches
    from llmft.train.rl.rollouts import RolloutSource

UNITS: dict[str, Callable[[Batch], int]] = {  # the loss unit of each loss_type (see the module docstring)
    "dapo": lambda b: int(b["completion_mask"].sum()),
    "grpo": lambda b: int(b["input_ids"].shape[0]),
    "dr_grpo": lambda b: int(b["input_ids"].shape[0]),
    "bnpo": lambda b: 1,
    "rloo": lambda b: int(b["input_ids"].shape[0]),
}


@dataclass
class OnlineRun:
    """What the objective and its batch source share: the resolved settings and the metrics sinks."""

    name: str
    settings: dict[str, object]
    policy: PolicySettings
    stats: RolloutStats
    samples: Samples

    def report(self, mode: str) -> dict[str, float]:
        if mode == "train":
            self.samples.flush()
        return self.stats.report(mode)


def encode(
    prepared: PreparedData, data: DataConfig, preference: PreferenceConfig, tokenizer: object, task: str
) -> EncodedData:
    """Prompt examples (train/rl/prompts.py)."""
    from llmft.train.rl.prompts import encode_prompts

    return encode_prompts(prepared, data, tokenizer)


def updates_per_window(training: TrainingConfig) -> int:
    """Optimizer steps each generation batch serves (num_iterations)."""
    return training.rl.num_iterations if training.rl is not None else 1


def build(ctx: Context, name: str) -> Objective:
    """The clipped policy loss of ``name`` (grpo or rloo) over rollout batches, with its metrics."""
    from llmft.run_dir import RunDir

    rl = ctx.sections.training.rl
    if rl is None:  # validate and the run's checks refuse this first; a direct caller gets the same word
        raise ConfigError(f"objective {name} needs training.rl with at least one reward")
    settings = rl.resolved(name)
    policy = PolicySettings(
        loss_type=settings["loss_type"] or "dapo",  # type: ignore[arg-type]
        importance_sampling_level=settings["importance_sampling_level"] or "token",  # type: ignore[arg-type]
        epsilon=float(settings["epsilon"]),  # type: ignore[arg-type]
        epsilon_high=settings["epsilon_high"],  # type: ignore[arg-type]
        beta=float(settings["beta"]) if name == "grpo" else 0.0,  # type: ignore[arg-type]
        max_completion_length=settings["max_completion_length"],  # type: ignore[arg-type]
    )
    out = ctx.sections.output_dir
    samples = Samples(RunDir(out).rollouts_file if out is not None else None)
    run = OnlineRun(name, settings, policy, RolloutStats(), samples)
    ctx.shared = run
    temperature = float(settings["temperature"])  # type: ignore[arg-type]
    loss = _rloo(run, temperature) if name == "rloo" else _grpo(run, temperature)
    return Objective(name, loss, UNITS["rloo" if name == "rloo" else policy.loss_type], run.report)


def _grpo(run: OnlineRun, temperature: float) -> Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, int]]:
    units = UNITS[run.policy.loss_type]

    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        logps, logits = token_logps(model, batch, temperature)
        mask = batch["completion_mask"]
        inputs = PolicyBatch(logps, batch["advantages"], mask, batch.get("old_logps"), batch.get("ref_logps"))
        out = grpo_loss(inputs, run.policy)
        run.stats.add({**out.metrics, "entropy": entropy(logits, mask, temperature)})
        count = units(batch)
        return out.loss * count, count

    return loss


def _rloo(run: OnlineRun, temperature: float) -> Callable[[torch.nn.Module, Batch], tuple[torch.Tensor, int]]:
    def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
        logps, logits = token_logps(model, batch, temperature)
        mask = batch["completion_mask"]
        old = batch.get("old_logps", logps.detach())
        out = rloo_loss(PolicyBatch(logps, batch["advantages"], mask), (old * mask).sum(1), run.policy)
        metrics = {**out.metrics, "entropy": entropy(logits, mask, temperature)}
        if "ref_logps" in batch:  # the k1 estimate RLOO puts in the reward, per token
            metrics["kl"] = float(((old - batch["ref_logps"]) * mask).sum() / mask.sum().clamp(min=1.0))
        run.stats.add(metrics)
        rows = UNITS["rloo"](batch)
        return out.loss * rows, rows

    return loss


def batch_source(ctx: Context, fixed: FixedBatches, name: str) -> RolloutSource:
    """Rollouts of the fixed rows' prompts, scored by training.rl.rewards (a reward error stops the run)."""
    from llmft.generate.batch import Sampling
    from llmft.rewards import build_rewards
    from llmft.train.rl.generator import LocalGenerator
    from llmft.train.rl.rollouts import RolloutSettings, RolloutSource, Scoring

    run = ctx.shared
    if not isinstance(run, OnlineRun):
        raise RuntimeError(f"{name}'s objective must be built before its batch source")
    if fixed.dist.active:
        raise ConfigError(
            f"objective {name} trains in one process for now (each process would sample and score apart)",
            fix="train without --nproc (a distributed rollout loop is planned)",
        )
    s, rl = run.settings, ctx.sections.training.rl
    rewards = build_rewards(rl.rewards, ".")  # type: ignore[union-attr]  # file paths were made absolute at load
    temperature = float(s["temperature"])  # type: ignore[arg-type]
    sampling = Sampling(
        max_new_tokens=_completion_limit(s, ctx, fixed),
        temperature=temperature,
        top_p=float(s["top_p"]),  # type: ignore[arg-type]
        top_k=int(s["top_k"]),  # type: ignore[call-overload]
    )
    iterations, beta = int(s["num_iterations"]), float(s["beta"])  # type: ignore[call-overload,arg-type]
    needs_old = iterations > 1 or (name == "rloo" and beta > 0)
    scoring = Scoring(
        rewards,
        ctx.tokenizer,
        ctx.model,
        pad_id(ctx.tokenizer),
        old_logps=no_grad_logps(temperature) if needs_old else None,
        reference=reference_logps(ctx.model, temperature) if beta > 0 else None,
    )
    settings = RolloutSettings(
        name,
        int(s["num_generations"]),  # type: ignore[call-overload]
        iterations,
        str(s["scale_rewards"]),
        beta,
        bool(s["mask_truncated_completions"]),
        ctx.sections.seed,
    )
    generator = LocalGenerator(ctx.model, ctx.tokenizer, sampling)
    return RolloutSource(fixed, generator, scoring, settings, run.stats, run.samples)


def _completion_limit(settings: dict[str, object], ctx: Context, fixed: FixedBatches) -> int:
    """max_completion_length, or (null) what data.tokenization.max_length leaves after the longest prompt."""
    if settings["max_completion_length"] is not None:
        return int(settings["max_completion_length"])  # type: ignore[call-overload]
    longest = max(len(e["input_ids"]) for e in fixed.examples)  # type: ignore[arg-type]
    return max(1, ctx.sections.data.tokenization.max_length - longest)
