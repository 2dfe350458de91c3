"""DeepSpeed ZeRO (stage 1, 2 or 3, optimizer offload): llmft's loop with DeepSpeed's engine underneath.

The engine is DeepSpeed's own (``deepspeed.initialize`` on the process group the run already joined); what
llmft keeps is its loop, and so its guarantees:

- **The loop's optimizer and schedule.** The engine gets the optimizer llmft built (``training.optimizer``;
  `zero_allow_untested_optimizer`) and no scheduler: llmft steps its own after each update, so the learning
  rate follows the same schedule as on one process. A DeepSpeed config with its own `optimizer` or
  `scheduler` section is refused (config/distributed.py: two settings for one thing).
- **Sums, not means.** The loop divides each micro-batch's summed loss by the global token count and wants
  the gradients summed over processes; ZeRO averages them, so the loss goes to the engine times the number
  of processes (stage 3 cannot sum). Gradient clipping is DeepSpeed's (`gradient_clipping` =
  training.max_grad_norm), applied to the same summed gradients.
- **One reduction per step.** The accumulation boundary is set by the loop (``gradient_sync``): the last
  micro-batch of a step reduces, and ``engine.step()`` applies the update once per optimizer step.
- **Whole state out, shards in.** Checkpoints hold whole tensors in the one-process layout: the trainable
  weights by name and the optimizer's per-parameter state by index, gathered from ZeRO's partitions
  (``safe_get_full_fp32_param``, ``safe_get_full_optimizer_state``); a resume writes them back into this
  run's partitions. So checkpoints move between DeepSpeed, FSDP, DDP and one process, and between numbers
  of processes. The final model is gathered into a plain copy on rank 0 (sharding.py's weightless frame).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed

from llmft.errors import ConfigError, EnvironmentProblem
from llmft.train.distributed.placement import Call
from llmft.train.distributed.sharding import Sharded, fill_frame, weightless_copy

if TYPE_CHECKING:
    from llmft.train.distributed.group import Distribution


def _import_deepspeed(cuda: bool) -> Any:
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # else DeepSpeed guesses, with a warning
    try:
        import deepspeed
    except ImportError:
        raise EnvironmentProblem(
            "training.distributed.strategy: deepspeed needs the `deepspeed` package",
            fix="pip install 'llmft[deepspeed]'",
        ) from None
    return deepspeed


class ZeroModel(Sharded):
    """A model trained by DeepSpeed's ZeRO engine across the run's processes; the loop calls it through
    ``call``, ``backward`` and ``step`` (the same interface as sharding.ShardedModel)."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        ds_config: dict[str, object],
        dist: Distribution,
    ) -> None:
        deepspeed = _import_deepspeed(torch.cuda.is_available())
        # joins the process group the run started (group.py)
        deepspeed.init_distributed(dist_backend=torch.distributed.get_backend())
        self.model, self.dist = model, dist
        self.frame = weightless_copy(model)
        # The one-process layout of the optimizer's state (torch's: each parameter's index, in group
        # order), taken before ZeRO replaces the groups' parameters with its flat partitions.
        self.order = [p for group in optimizer.param_groups for p in group["params"]]
        self._group_indices = [group["params"] for group in optimizer.state_dict()["param_groups"]]
        config = {
            **ds_config,
            "zero_allow_untested_optimizer": True,  # llmft's optimizer (AdamW, SGD) on ZeRO's partitions
            "zero_force_ds_cpu_optimizer": False,  # and with the optimizer offloaded
            "steps_per_print": 10**12,
            "wall_clock_breakdown": False,
        }
        try:
            self.engine, self.optimizer, _, _ = deepspeed.initialize(
                model=model, optimizer=optimizer, config=config, dist_init_required=False
            )
        except (ValueError, TypeError, KeyError, AssertionError) as err:  # DeepSpeed's config checks
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(
                f"training.distributed.deepspeed: DeepSpeed refused the config: {first[:300]}",
                fix="fix the DeepSpeed config (https://www.deepspeed.ai/docs/config-json/); llmft fills "
                "the batch, accumulation, clipping and precision from the training section",
            ) from None
        self.stage = int(self.engine.zero_optimization_stage())
        self.torch_optimizer = optimizer
        self._linked = False

    def describe(self) -> str:
        offload = " with the optimizer offloaded to CPU memory" if self.engine.zero_cpu_offload() else ""
        shards = {1: "optimizer state", 2: "optimizer state and gradients"}.get(
            self.stage, "weights, gradients and optimizer state"
        )
        share = f"1/{self.dist.world_size}"
        return f"deepspeed: ZeRO stage {self.stage}{offload}; each process holds {share} of the {shards}"

    # ------------------------------------------------------------------------------------ training
    def call(self, fn: Call, *args: object) -> Any:
        return fn(self.engine.module, *args)

    @contextmanager
    def gradient_sync(self, on: bool) -> Iterator[None]:
        """The last micro-batch of a step is the accumulation boundary: its backward reduces."""
        self.engine.set_gradient_accumulation_boundary(on)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        # ZeRO averages over processes; the loop's loss is meant to be summed (see the module docstring).
        self.engine.backward(loss * self.dist.world_size, scale_wrt_gas=False)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """DeepSpeed's update (clipping, the optimizer, zeroing the gradients) at the boundary."""
        self.engine.step()
        if not self._linked:
            self._link_state()

    def _link_state(self) -> None:
        """Stages 1-2 map each parameter onto its slice of the optimizer state once, right after the first
        parameter group's first step (DeepSpeed 0.19), when the other groups have no state yet: their
        parameters would stay unmapped (weight decay makes two groups). Map them again once all have it."""
        zero = self.engine.optimizer
        if hasattr(zero, "_lazy_init_hp_params_optimizer_state"):
            zero._hp_optimizer_states_linked = False
            zero._lazy_init_hp_params_optimizer_state()
        self._linked = True

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        self.engine.optimizer.zero_grad()

    def grad_norm(self) -> torch.Tensor | None:
        return None  # computed by DeepSpeed inside its step, after the loop's checks: not logged

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        return None  # DeepSpeed clips inside its step, with gradient_clipping = training.max_grad_norm

    # --------------------------------------------------------------------------- whole state out/in
    def _trainable(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.engine.module.named_parameters() if p.requires_grad]

    def full_trainable(self) -> dict[str, torch.Tensor]:
        """The trainable weights, whole, from ZeRO's fp32 master copies (what one process would hold, also
        when DeepSpeed keeps the model itself in bf16); a collective, kept on rank 0."""
        from deepspeed.utils import safe_get_full_fp32_param

        found: dict[str, torch.Tensor] = {}
        for name, p in self._trainable():  # one tensor at a time, kept on rank 0 (which writes)
            whole = safe_get_full_fp32_param(p)
            if self.dist.is_main:
                found[name] = whole.detach().cpu().clone()
        return found

    def _flat_partitions(self) -> list[torch.Tensor]:
        """The fp32 partitions ZeRO's base optimizer steps (its state is keyed by them); stage 3 puts
        them in the optimizer's param_groups only while it steps."""
        zero = self.engine.optimizer
        found = getattr(zero, "fp32_partitioned_groups_flat", None)  # stage 3
        return list(found if found is not None else zero.single_partition_of_fp32_groups)

    def _flat_state(self) -> dict[str, Any]:
        """The base optimizer's state of one flat partition: which keys there are, and the step."""
        return next(iter(self.torch_optimizer.state.values()), {})

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state as one process saves it (per parameter index), gathered from ZeRO."""
        from deepspeed.utils import safe_get_full_optimizer_state

        flat = self._flat_state()
        keys = sorted(k for k, v in flat.items() if torch.is_tensor(v) and v.dim() > 0)
        state: dict[int, dict[str, Any]] = {}
        for index, p in enumerate(self.order):
            if not p.requires_grad:
                continue
            entry = {k: safe_get_full_optimizer_state(p, k) for k in keys}  # one tensor at a time
            if not self.dist.is_main:
                continue
            entry = {k: v.detach().cpu().clone() for k, v in entry.items()}
            if "step" in flat:
                entry["step"] = torch.as_tensor(flat["step"], dtype=torch.float32).detach().cpu().clone()
            state[index] = entry
        groups = [
            {**{k: v for k, v in group.items() if k != "params"}, "params": indices}
            for group, indices in zip(self.torch_optimizer.param_groups, self._group_indices, strict=True)
        ]
        return {"state": state, "param_groups": groups}

    def load_trainable(self, weights: dict[str, torch.Tensor]) -> None:
        """Whole trainable weights (a checkpoint's) into ZeRO's fp32 master partitions and the model's own
        copy (whole below stage 3; partitioned, and written through a gather, at stage 3)."""
        import deepspeed
        from deepspeed.utils import safe_set_full_fp32_param

        params = dict(self._trainable())
        with torch.no_grad():
            for name, tensor in weights.items():
                p = params[name]
                safe_set_full_fp32_param(p, tensor.to(torch.float32))
                with deepspeed.zero.GatheredParameters([p], modifier_rank=0):  # a no-op below stage 3
                    p.data.copy_(tensor.to(p.device, p.dtype))

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
        """A one-process optimizer state written into ZeRO's partitions. Before the first step the base
        optimizer has no state yet (torch creates it lazily): it is created empty, then filled."""
        from deepspeed.utils import safe_set_full_optimizer_state

        entries = list(saved["state"].values())
        keys = sorted({k for e in entries for k, v in e.items() if torch.is_tensor(v) and v.dim() > 0})
        step = next((e["step"] for e in entries if "step" in e), None)
        base = self.torch_optimizer
        for flat in self._flat_partitions():
            state = base.state[flat]
            for key in keys:
                state.setdefault(key, torch.zeros_like(flat))
            if step is not None:
                state["step"] = torch.as_tensor(step, dtype=torch.float32).clone()
        self._link_state()  # stages 1-2: each parameter onto the state just made
        for index, entry in saved["state"].items():
            for key in keys:
                safe_set_full_optimizer_state(self.order[int(index)], entry[key].to(torch.float32), key)
        for group, saved_group in zip(base.param_groups, saved["param_groups"], strict=True):
            group.update({k: v for k, v in saved_group.items() if k != "params"})

    def gathered_model(self) -> torch.nn.Module | None:
        """The whole model, plain, in CPU memory on rank 0 (None on the others); a collective."""
        import deepspeed
        from deepspeed.utils import safe_get_full_fp32_param

        whole: dict[int, torch.Tensor] = {}
        for p in self.engine.module.parameters():  # the same order on every rank, one tensor at a time
            if p.requires_grad:  # the fp32 master weight: the model itself may be kept in bf16
                gathered = safe_get_full_fp32_param(p).detach()
            else:
                with deepspeed.zero.GatheredParameters([p], modifier_rank=None):
                    gathered = p.detach().clone()
            if self.dist.is_main:
                whole[id(p)] = gathered.cpu()
        if not self.dist.is_main:
            return None
        return fill_frame(self.frame, self.engine.module, whole)
