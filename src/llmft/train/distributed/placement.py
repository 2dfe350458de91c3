"""Where a model's state lives among the run's processes, behind one interface: ``Placement``.

The loop (train/loop.py), the trainer (train/trainer.py) and checkpoints (train/checkpoint.py) take one
path whatever the strategy: every forward goes through ``call``, every backward through ``backward``
inside ``gradient_sync``; after a step's passes ``reduce_step`` sums what is left to sum; ``grad_norm``,
``clip_grad_norm``, ``step`` and ``zero_grad`` update; a checkpoint holds whole tensors in the one-process
layout (``full_trainable``, ``full_optimizer_state``), which a resume loads back (``load_trainable``,
``load_optimizer_state``) whatever placement wrote them; ``gathered_model`` puts the final model together.

- ``Replicated`` (here): every process holds the whole model: one process (accelerate's), or llmft's data
  parallelism (group.py: one all-reduce of the gradients per step).
- ``ShardedModel`` (sharding.py): FSDP2 shards weights, gradients and optimizer state.
- ``ZeroModel`` (zero.py): DeepSpeed's ZeRO engine (stages 1-3).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

import torch

from llmft.train.distributed.group import Distribution

Call = Callable[..., Any]


class Placement(Protocol):
    """What the loop, the trainer and checkpoints need of a model placed across the run's processes."""

    model: torch.nn.Module  # the plain model: checkpoints name its parameters

    # ------------------------------------------------------------------------------------ training
    def call(self, fn: Call, *args: object) -> Any:
        """``fn(model, *args)`` (a loss, an evaluation count) on the model as this placement runs it."""
        ...

    def gradient_sync(self, on: bool) -> AbstractContextManager[object]:
        """Around a micro-batch's forward and backward: reduce the gradients after it (``on``: the last of
        a step) or keep accumulating them: one reduction per optimizer step."""
        ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def idle_passes(self, window: int, mine: int) -> int:
        """Zero-weighted passes this process adds to its ``mine`` batches of a step's ``window`` batches
        (processes that gather and reduce in every pass must all make as many)."""
        ...

    def reduce_step(self, loss: torch.Tensor) -> torch.Tensor:
        """After a step's passes: the step's loss summed over processes, with the gradients (summed in the
        backward, or here)."""
        ...

    def grad_norm(self) -> torch.Tensor | None: ...

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        """Clip the total gradient norm to ``max_norm``; returns the norm before clipping (None: unknown)."""
        ...

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The update, then the gradients zeroed."""
        ...

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None: ...

    # --------------------------------------------------------------------------- whole state out/in
    def full_trainable(self) -> dict[str, torch.Tensor]:
        """The trainable weights, whole, by name, on rank 0 (which writes them); every rank calls it."""
        ...

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state_dict with whole tensors (one process's layout), on rank 0; every rank."""
        ...

    def load_trainable(self, weights: dict[str, torch.Tensor]) -> None: ...

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None: ...

    def whole_model(self) -> torch.nn.Module | None:
        """The whole model this process trains, with no communication; None when it holds only a shard."""
        ...

    def gathered_model(self) -> torch.nn.Module | None:
        """After training, on every process: the whole, plain model (rank 0; sharded placements give None
        on the others)."""
        ...


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside torch.compile's (and DDP's) wrapper: what accelerate's unwrap_model returns, without
    its import of deepspeed when that is installed (seconds, in the middle of a run's first checkpoint)."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class Replicated:
    """The whole model on every process: one process, or llmft's data parallelism, which sums the gradients
    over processes once per step (not DDP's wrapper: group.py says why). ``live`` is the model as trained
    (compiled, or as accelerate prepared it); ``model`` the plain one inside."""

    def __init__(
        self, live: torch.nn.Module, accelerator: object = None, dist: Distribution | None = None
    ) -> None:
        self.live, self.accelerator, self.dist = live, accelerator, dist or Distribution()
        self.model = unwrapped(live)

    # ------------------------------------------------------------------------------------ training
    def call(self, fn: Call, *args: object) -> Any:
        return fn(self.live, *args)

    def gradient_sync(self, on: bool) -> AbstractContextManager[object]:
        """Gradients are reduced once per optimizer step, after the last micro-batch's backward."""
        return nullcontext() if on else self.accelerator.no_sync(self.live)  # type: ignore[attr-defined]

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)  # type: ignore[attr-defined]

    def idle_passes(self, window: int, mine: int) -> int:
        return 0  # each process makes its own passes; the gradients are summed after them

    def reduce_step(self, loss: torch.Tensor) -> torch.Tensor:
        return self.dist.reduce_step(self.live, loss)

    def grad_norm(self) -> torch.Tensor | None:
        grads = [p.grad.detach() for p in self.live.parameters() if p.grad is not None]
        if not grads:
            return None
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]))

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor | None:
        return self.accelerator.clip_grad_norm_(self.live.parameters(), max_norm)  # type: ignore[attr-defined]

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)

    # --------------------------------------------------------------------------- whole state out/in
    def full_trainable(self) -> dict[str, torch.Tensor]:
        """This process's weights already are whole: copied on rank 0 only, the one that writes them."""
        if not self.dist.is_main:
            return {}
        return {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_trainable(self, weights: dict[str, torch.Tensor]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor.to(params[name].device, params[name].dtype))

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
        optimizer.load_state_dict(saved)

    def whole_model(self) -> torch.nn.Module | None:
        return self.model

    def gathered_model(self) -> torch.nn.Module | None:
        return self.model
