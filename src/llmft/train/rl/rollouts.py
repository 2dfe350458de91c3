"""Online RL's batch source: each optimizer step's batches are completions the policy samples for the
fixed source's prompts, scored by the rewards (train/batches.py's ``BatchSource``; the loop is unchanged).

A generation batch is one fixed window's prompts, each answered ``num_generations`` times (consecutive
rows: a group), through the ``Generator`` (generator.py). Its completions are scored (rewards/score.py),
turned into advantages (advantages.py), and, when the loss needs them, given the sampling policy's
log-probs (``num_iterations`` > 1, or RLOO's KL penalty) and the reference's (``beta`` > 0). Each
micro-batch is one fixed batch's prompts × their completions, so a group never spans two micro-batches.
The same generation batch serves ``num_iterations`` optimizer steps: an epoch has that many times the
fixed source's windows.

The sampling stream is a ``torch.Generator`` that draws each generation batch's seed; its state, the
counters and (with ``num_iterations`` > 1) the generation batch still in use are the ``state_dict`` every
checkpoint keeps, so a resumed run samples exactly the completions the uninterrupted run would have.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from llmft.rewards import Reward, score
from llmft.train.batches import FixedBatches, Window, total_steps
from llmft.train.rl.advantages import group_advantages, rloo_advantages, rloo_kl_penalised
from llmft.train.rl.collate import Batch, rollout_batch
from llmft.train.rl.forward import TokenLogps
from llmft.train.rl.generator import Generator
from llmft.train.rl.metrics import RolloutStats, Samples, length_metrics, reward_metrics
from llmft.train.rl.truncation import mask_truncated, truncated_rows

log = logging.getLogger("llmft.train.rl")
SEED_RANGE = 2**31 - 1


@dataclass(frozen=True)
class RolloutSettings:
    """What the source reads of training.rl (resolved for the objective) and the run's seed."""

    objective: str  # grpo or rloo: which advantages
    num_generations: int
    num_iterations: int = 1
    scale_rewards: str = "group"
    beta: float = 0.0
    mask_truncated_completions: bool = False
    seed: int = 0


@dataclass
class Scoring:
    """How completions become a training signal: the rewards, the tokenizer that decodes completions for
    them, the policy (for the old log-probs) and the log-prob functions (None: not needed)."""

    rewards: list[Reward]
    tokenizer: object
    policy: torch.nn.Module
    pad_id: int
    old_logps: TokenLogps | None = None
    reference: TokenLogps | None = None


@dataclass
class RolloutSource:
    """The rollouts of ``fixed``'s prompt windows (see the module's docstring)."""

    fixed: FixedBatches
    generator: Generator
    scoring: Scoring
    settings: RolloutSettings
    stats: RolloutStats = field(default_factory=RolloutStats)
    samples: Samples = field(default_factory=lambda: Samples(None))
    _rng: torch.Generator = field(init=False)
    _generations: int = 0
    _steps: int = 0
    _key: tuple[int, int] | None = None
    _batches: list[Batch] = field(default_factory=list)
    _metrics: dict[str, float] = field(
        default_factory=dict
    )  # the generation batch's, added each step it serves

    def __post_init__(self) -> None:
        self._rng = torch.Generator().manual_seed(self.settings.seed)

    # ------------------------------------------------------------------------------- BatchSource
    def total_steps(self) -> int:
        fixed = self.fixed
        return total_steps(
            len(fixed.examples), fixed.cfg, fixed.dist.world_size, self.settings.num_iterations
        )

    def window_count(self, epoch: int) -> int:
        return self.fixed.window_count(epoch) * self.settings.num_iterations

    def window(self, epoch: int, index: int) -> Window:
        key = (epoch, index // self.settings.num_iterations)
        if key != self._key:
            self._batches, self._key = self._generate(*key), key
        self._steps += 1
        self.stats.add(self._metrics)
        batches = self._batches
        return Window(list(batches), len(self.fixed.windows(epoch)[key[1]]), lambda: batches[0])

    def state_dict(self) -> dict[str, Any]:
        keep = self.settings.num_iterations > 1 and self._key is not None  # the batch may serve more steps
        return {
            "rng": self._rng.get_state(),
            "generations": self._generations,
            "steps": self._steps,
            "key": list(self._key) if keep else None,  # type: ignore[arg-type]
            "batches": self._batches if keep else [],
            "metrics": self._metrics if keep else {},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._rng.set_state(state["rng"])
        self._generations, self._steps = int(state["generations"]), int(state["steps"])
        key = state.get("key")
        self._key = (int(key[0]), int(key[1])) if key else None
        self._batches = list(state.get("batches") or [])
        self._metrics = dict(state.get("metrics") or {})

    # ------------------------------------------------------------------------------- generation
    def _generate(self, epoch: int, window: int) -> list[Batch]:
        """One generation batch: this process's micro-batches of the window, scored and ready to train."""
        groups = self.fixed.dist.share(self.fixed.windows(epoch)[window])
        seed = int(torch.randint(0, SEED_RANGE, (1,), generator=self._rng))
        self._generations += 1
        g = self.settings.num_generations
        examples = [self.fixed.examples[i] for batch in groups for i in batch for _ in range(g)]
        prompts = [list(e["input_ids"]) for e in examples]  # type: ignore[call-overload]
        completions = self.generator.generate(prompts, seed)
        per_function, total = self._score(examples, completions)
        sizes = [len(batch) * g for batch in groups]
        batches = [self._micro_batch(prompts, completions, start, size) for start, size in _spans(sizes)]
        rewards = torch.tensor(total, dtype=torch.float32)
        advantages = self._advantages(rewards, batches)
        for (start, size), batch in zip(_spans(sizes), batches, strict=True):
            batch["advantages"] = advantages[start : start + size]
        self._note(examples, completions, per_function, total, batches)
        return batches

    def _micro_batch(
        self, prompts: list[list[int]], completions: list[list[int]], start: int, size: int
    ) -> Batch:
        rows = slice(start, start + size)
        batch = rollout_batch(prompts[rows], completions[rows], self.scoring.pad_id)
        stops = sorted(self.generator.stop_ids | {self.scoring.pad_id})
        ids = _padded(completions[rows], batch["completion_mask"].shape[1], self.scoring.pad_id)
        batch["truncated"] = truncated_rows(ids, batch["completion_mask"], stops)
        if self.settings.mask_truncated_completions:
            batch["completion_mask"] = mask_truncated(batch["completion_mask"], batch["truncated"])
        scoring = self.scoring
        named = {"old_logps": scoring.old_logps, "ref_logps": scoring.reference}
        if any(named.values()):
            device = next(scoring.policy.parameters()).device
            on_device = {k: v.to(device) for k, v in batch.items()}
            for key, logps in named.items():
                if logps is not None:  # kept on the CPU with the rest: checkpoints load anywhere
                    batch[key] = logps(scoring.policy, on_device).cpu()
        return batch

    def _score(
        self, examples: list[dict[str, object]], completions: list[list[int]]
    ) -> tuple[list[list[float]], list[float]]:
        """Every reward of every completion (TRL's calling convention), and their weighted totals."""
        stops = self.generator.stop_ids
        prompts = [e["prompt"] for e in examples]
        texts = [_text(self.scoring.tokenizer, ids, stops) for ids in completions]
        shown = [
            [{"role": "assistant", "content": t}] if isinstance(p, list) else t
            for p, t in zip(prompts, texts)
        ]
        names = sorted({k for e in examples for k in e["columns"]})  # type: ignore[attr-defined]
        columns = {k: [e["columns"].get(k) for e in examples] for k in names}  # type: ignore[attr-defined]
        scores = score(self.scoring.rewards, prompts, shown, completions, columns)
        return scores.per_function, scores.total

    def _advantages(self, rewards: torch.Tensor, batches: list[Batch]) -> torch.Tensor:
        s = self.settings
        if s.objective == "grpo":
            return group_advantages(rewards, s.num_generations, s.scale_rewards)  # type: ignore[arg-type]
        if s.beta > 0:  # RLOO: the KL to the reference is a penalty in the reward (advantages.py)
            parts, start = [], 0
            for batch in batches:
                rows = batch["input_ids"].shape[0]
                part = rewards[start : start + rows]
                mask = batch["completion_mask"]
                parts.append(rloo_kl_penalised(part, batch["old_logps"], batch["ref_logps"], mask, s.beta))
                start += rows
            rewards = torch.cat(parts)
        return rloo_advantages(rewards, s.num_generations, normalize=s.scale_rewards == "batch")

    def _note(
        self,
        examples: list[dict[str, object]],
        completions: list[list[int]],
        per_function: list[list[float]],
        total: list[float],
        batches: list[Batch],
    ) -> None:
        """Metrics, the sample for the rollouts file, and a warning for groups with nothing to learn."""
        g = self.settings.num_generations
        truncated = [bool(t) for b in batches for t in b["truncated"].tolist()]
        names = [r.name for r in self.scoring.rewards]
        metrics = reward_metrics(names, per_function, total)
        metrics.update(length_metrics([len(c) for c in completions], truncated))
        equal = [i for i in range(0, len(total), g) if _all_equal(total[i : i + g])]
        metrics["frac_reward_zero_std"] = len(equal) / max(1, len(total) // g)
        self._metrics = metrics
        step = self._steps + 1
        if equal:
            first = equal[0]
            log.warning(
                "step %d: %d of %d prompts had equal rewards for all %d completions (e.g. %s for %s): "
                "zero advantage, nothing to learn from them",
                step,
                len(equal),
                len(total) // g,
                g,
                _short(total[first]),
                _short(examples[first]["prompt"]),
            )
        tokenizer, stops = self.scoring.tokenizer, self.generator.stop_ids
        rows = [
            {
                "prompt": e["prompt"],
                "completion": _text(tokenizer, c, stops),
                "reward": t,
                **{f"rewards/{n}": f[j] for n, f in zip(names, per_function)},
            }
            for j, (e, c, t) in enumerate(zip(examples, completions, total))
        ]
        self.samples.offer(step, rows)


def _spans(sizes: list[int]) -> list[tuple[int, int]]:
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return list(zip(starts, sizes))


def _padded(rows: list[list[int]], width: int, pad_id: int) -> torch.Tensor:
    out = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def _text(tokenizer: object, ids: list[int], stops: set[int]) -> str:
    """A completion as the rewards read it: without its stop token and special tokens."""
    kept = ids[:-1] if ids and ids[-1] in stops else ids
    return str(tokenizer.decode(kept, skip_special_tokens=True))  # type: ignore[attr-defined]


def _all_equal(values: list[float]) -> bool:
    kept = [v for v in values if not math.isnan(v)]
    return len(kept) > 1 and max(kept) - min(kept) == 0.0


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
