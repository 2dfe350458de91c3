"""The measuring probes, identical for every contender, installed in the worker before anything trains.

- Step boundaries: a global optimizer step post-hook (``torch.optim``), which fires for llmft's loop,
  ``transformers.Trainer`` and TRL alike, so a "step" is one optimizer update everywhere.
- Real tokens: the backbone's forward (``GPT2Model``/``LlamaModel``..., found as the ``PreTrainedModel``
  whose ``base_model`` is itself) is wrapped at class level; each training call counts input ids that
  are not the pad id, and the attention work of the real sequences in it (segments found from restarted
  ``position_ids`` when a batch is packed, else one segment per row). Eval calls are not counted.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass, field


@dataclass
class StepRecord:
    end: float  # perf_counter at the end of the optimizer step
    cpu: float  # process CPU time (all threads) at that moment
    tokens: int  # real (non-pad) tokens in its forward passes
    sum_len_sq: int  # Σ L² over the real sequences in it (causal attention work)
    padded: int  # positions computed, pad included


@dataclass
class Probe:
    pad_id: int
    started: float = field(default_factory=time.perf_counter)
    steps: list[StepRecord] = field(default_factory=list)
    _tokens: int = 0
    _len_sq: int = 0
    _padded: int = 0
    _wrapped: list[tuple[type, object]] = field(default_factory=list)
    _hook: object = None

    # ------------------------------------------------------------------ install / remove
    def install(self, backbone_classes: list[type]) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._hook = register_optimizer_step_post_hook(self._on_step)
        for cls in backbone_classes:
            self._wrap(cls)

    def remove(self) -> None:
        if self._hook is not None:
            self._hook.remove()  # type: ignore[attr-defined]
        for cls, forward in self._wrapped:
            cls.forward = forward  # type: ignore[method-assign]
        self._wrapped.clear()

    def _wrap(self, cls: type) -> None:
        original = cls.forward  # type: ignore[attr-defined]
        signature = inspect.signature(original)
        probe = self

        @functools.wraps(original)
        def forward(module, *args, **kwargs):  # noqa: ANN001, ANN202
            import torch

            if module.training and torch.is_grad_enabled():
                bound = signature.bind_partial(module, *args, **kwargs).arguments
                probe.count(bound.get("input_ids"), bound.get("position_ids"))
            return original(module, *args, **kwargs)

        cls.forward = forward  # type: ignore[attr-defined]
        self._wrapped.append((cls, original))

    # ------------------------------------------------------------------ counting
    def count(self, input_ids: object, position_ids: object) -> None:
        if input_ids is None:
            return
        real = input_ids != self.pad_id  # type: ignore[operator]
        self._tokens += int(real.sum())
        self._padded += int(real.numel())
        self._len_sq += sum_len_sq(real, position_ids)

    def _on_step(self, optimizer: object, args: object, kwargs: object) -> None:
        self.steps.append(
            StepRecord(time.perf_counter(), time.process_time(), self._tokens, self._len_sq, self._padded)
        )
        self._tokens = self._len_sq = self._padded = 0


def sum_len_sq(real: object, position_ids: object) -> int:
    """Σ L² over real sequences: rows of ``real`` (bool, batch × length), cut where positions restart."""
    import torch

    if position_ids is None:
        lengths = real.sum(dim=1)  # type: ignore[attr-defined]
        return int((lengths * lengths).sum())
    pos = position_ids.expand_as(real)  # type: ignore[attr-defined]
    total = 0
    for row_real, row_pos in zip(real, pos, strict=True):
        starts = torch.nonzero((row_pos == 0) & row_real).flatten().tolist()
        ends = starts[1:] + [row_real.numel()]
        for s, e in zip(starts, ends, strict=True):
            n = int(row_real[s:e].sum())
            total += n * n
    return total


def backbone_classes() -> list[type]:
    """The transformers base-model classes the benchmark's architectures use."""
    from transformers import GPT2Model, LlamaModel, Qwen2Model

    return [GPT2Model, LlamaModel, Qwen2Model]


def steady_state(
    steps: list[StepRecord], warmup: int, t0: float, cpu0: float, threads: int
) -> dict[str, float]:
    """Throughput over the steps after ``warmup`` (the last step, an epoch remainder, left out too).

    Also per CPU time (process, all threads) divided by ``threads``: what the wall time would have been with
    the cores to itself. On a machine shared with other jobs it varies much less than wall time (a
    descheduled process accrues no CPU time), though spinning OpenMP threads and shared caches still move it.
    """
    if len(steps) > warmup + 1:  # the epoch's last step is a remainder (a part-full batch), not steady state
        steps = steps[:-1]
    if len(steps) <= warmup:
        raise RuntimeError(
            f"only {len(steps)} optimizer steps ran; need more than the {warmup} warm-up steps"
        )
    times = [s.end for s in steps]
    measured = steps[warmup:]
    wall = times[-1] - times[warmup - 1] if warmup else times[-1] - t0
    cpu = steps[-1].cpu - (steps[warmup - 1].cpu if warmup else cpu0)
    tokens = sum(s.tokens for s in measured)
    durations = [b - a for a, b in zip([t0, *times[:-1]], times, strict=True)][warmup:]
    durations.sort()
    return {
        "measured_steps": len(measured),
        "steady_seconds": wall,
        "real_tokens": tokens,
        "real_tokens_per_second": tokens / wall,
        "cpu_seconds": cpu,
        "real_tokens_per_cpu_second": tokens / max(cpu / threads, 1e-9),
        "seconds_per_step": wall / len(measured),
        "median_seconds_per_step": durations[len(durations) // 2],
        "real_tokens_per_step": tokens / len(measured),
        "pad_fraction": 1.0 - tokens / max(1, sum(s.padded for s in measured)),
        "sum_len_sq": sum(s.sum_len_sq for s in measured),
    }
