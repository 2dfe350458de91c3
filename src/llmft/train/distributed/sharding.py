"""FSDP2 (torch's ``fully_shard``): every process holds a shard of each weight, gradient and optimizer state.

What llmft's loop needs of a sharded model, and why each piece is here:

- **Where the shards are gathered.** ``fully_shard`` gathers a unit's weights in the forward hooks of the
  module it was applied to. The selective LM head (train/loss.py) calls the backbone and the head directly,
  not the root module's forward, so the root's own weights (embeddings, final norm, head) would stay sharded.
  The root unit is therefore a small module (``_Calls``) whose forward runs a function on the model: every
  loss and evaluation call goes through it (``ShardedModel.call``), so the root's weights are gathered
  around exactly the code that uses them, whatever path the loss takes inside. Each layer class (the
  model's ``_no_split_modules``, or ``fsdp.layer_classes``) is a unit of its own, gathered one at a time.
- **Sums, not means.** The loop divides each micro-batch's summed loss by the global token count and wants
  the gradients SUMMED over processes (group.py); FSDP averages by default, so the divide factor is 1
  and the reduction a plain sum (gloo has no pre-multiplied sum).
- **Every rank runs the same collectives.** Each forward gathers, each backward reduce-scatters: a rank
  with one batch fewer in a step (a part-full last window) runs a zero-weighted pass instead (train/loop.py).
- **Whole state out, shards in.** Checkpoints hold whole tensors in the one-process layout (trainable
  weights by name, the optimizer's state by parameter index), gathered from the shards (every rank
  takes part, rank 0 keeps them); a resume cuts them into this run's shards, so checkpoints move between
  FSDP, DDP and one process, and between numbers of processes. The final model is gathered into a plain
  copy (``gathered_model``) that ``transformers``/``peft`` save as usual; it is built on a weightless
  (meta) copy taken before sharding.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import torch

from llmft.errors import ConfigError
from llmft.train.distributed.placement import Call, Placement

if TYPE_CHECKING:
    from llmft.config.schema import FsdpConfig
    from llmft.train.distributed.group import Distribution


class Sharded(Placement, Protocol):
    """A placement whose state is sharded across the processes: FSDP (``ShardedModel``, here) or DeepSpeed
    ZeRO (``ZeroModel``, zero.py). What they share is here."""

    dist: Distribution

    def describe(self) -> str: ...

    def idle_passes(self, window: int, mine: int) -> int:
        """Every process makes the same passes (each gathers and reduces with the others): one with a batch
        fewer in a part-full last window adds a pass."""
        return -(-window // self.dist.world_size) - mine

    def reduce_step(self, loss: torch.Tensor) -> torch.Tensor:
        return self.dist.sum_tensor(loss)  # the gradients were reduced in the backward

    def whole_model(self) -> torch.nn.Module | None:
        return None  # a shard: ``gathered_model`` puts the whole model together


class _Calls(torch.nn.Module):
    """The root FSDP unit: its forward runs ``fn(model, *args)``, so FSDP gathers the weights the model
    keeps outside its layers around any use of the model, not only around the model's own forward."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, fn: Call, *args: object) -> Any:
        return fn(self.model, *args)


def layer_class_names(model: torch.nn.Module, configured: list[str] | None) -> list[str]:
    """The classes sharded one by one: the configured ones, else the transformers model's own
    ``_no_split_modules`` (its decoder or encoder layers)."""
    if configured:
        return list(configured)
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return list(getattr(inner, "_no_split_modules", None) or [])


def _layers(model: torch.nn.Module, names: list[str]) -> list[torch.nn.Module]:
    """The modules of those classes, innermost first (FSDP shards children before their parents)."""
    found = [m for m in model.modules() if type(m).__name__ in names]
    missing = sorted(set(names) - {type(m).__name__ for m in found})
    if missing:
        classes = sorted({type(m).__name__ for m in model.modules()})
        layers = ", ".join(c for c in classes if "Layer" in c) or classes[0]
        raise ConfigError(
            f"training.distributed.fsdp.layer_classes: the model has no module of class {missing[0]}",
            fix=f"name classes the model has (e.g. {layers}) or leave layer_classes unset (the model's own)",
        )
    return list(reversed(found))


def weightless_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every parameter on the meta device (no memory) and its buffers shared: the frame
    ``gathered_model`` fills with whole weights at the end."""
    memo: dict[int, object] = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in memo:
            memo[id(p)] = torch.nn.Parameter(
                torch.empty_like(p, device="meta"), requires_grad=p.requires_grad
            )
    for b in model.buffers():
        memo[id(b)] = b
    return copy.deepcopy(model, memo)


class ShardedModel(Sharded):
    """A model sharded across the run's processes with FSDP2; the loop calls it through ``call``."""

    def __init__(self, model: torch.nn.Module, cfg: FsdpConfig, dist: Distribution) -> None:
        from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, fully_shard

        self.model, self.dist = model, dist
        self.frame = weightless_copy(model)
        names = layer_class_names(model, cfg.layer_classes)
        offload = {"offload_policy": CPUOffloadPolicy()} if cfg.cpu_offload else {}
        self.layers = _layers(model, names)
        for layer in self.layers:
            fully_shard(layer, reshard_after_forward=cfg.reshard_after_forward, **offload)
        self.root = _Calls(model)
        fully_shard(self.root, reshard_after_forward=cfg.reshard_after_forward, **offload)
        for unit in self.root.modules():
            if isinstance(unit, FSDPModule):
                unit.set_gradient_divide_factor(1.0)  # a sum over processes, as the loop's loss expects
                unit.set_force_sum_reduction_for_comms(True)  # gloo has no pre-multiplied sum
        self.layer_classes = names

    def describe(self) -> str:
        return (
            f"fsdp: {len(self.layers)} modules ({', '.join(self.layer_classes) or 'no layer class'}) sharded "
            f"one by one, the rest with the root; each process holds 1/{self.dist.world_size} of the "
            "weights, gradients and optimizer state"
        )

    # ------------------------------------------------------------------------------------ training
    def call(self, fn: Call, *args: object) -> Any:
        """``fn(model, *args)`` with the root's weights gathered (a loss, an evaluation count)."""
        return self.root(fn, *args)

    @contextmanager
    def gradient_sync(self, on: bool) -> Iterator[None]:
        """Reduce-scatter the gradients after this backward (the last micro-batch of a step) or keep
        accumulating them unsharded (the others): one reduction per optimizer step."""
        self.root.set_requires_gradient_sync(on)
        try:
            yield
        finally:
            self.root.set_requires_gradient_sync(True)

    def _trainable(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def grad_norm(self) -> torch.Tensor:
        """The total gradient norm over all shards (one all-reduce of the squared sums)."""
        squares = torch.zeros((), dtype=torch.float32, device=_local_device(self.model))
        for p in self._trainable():
            if p.grad is not None:
                squares += _local(p.grad).float().pow(2).sum()
        return self.dist.sum_tensor(squares).sqrt()

    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Scale the gradients so their total norm is at most ``max_norm`` (as torch's clip_grad_norm_);
        returns the norm before clipping."""
        norm = self.grad_norm()
        scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for p in self._trainable():
            if p.grad is not None:
                _local(p.grad).mul_(scale.to(_local(p.grad).dtype))
        return norm

    # --------------------------------------------------------------------------- whole state out/in
    def full_trainable(self) -> dict[str, torch.Tensor]:
        """The trainable weights as whole CPU tensors by name (the one-process checkpoint layout), on rank 0
        (which writes them); a collective: every rank takes part in each gather, one tensor at a time."""
        found: dict[str, torch.Tensor] = {}
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                whole = _whole(p)
                if self.dist.is_main:
                    found[name] = whole.cpu()
        return found

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """The optimizer's state_dict with whole tensors, the layout one process saves, on rank 0 (a
        collective, one tensor at a time)."""
        saved = optimizer.state_dict()
        state: dict[int, dict[str, Any]] = {}
        for index, entry in sorted(saved["state"].items()):
            whole = {k: _whole(v) if torch.is_tensor(v) else v for k, v in entry.items()}
            if self.dist.is_main:
                state[index] = {k: v.cpu() if torch.is_tensor(v) else v for k, v in whole.items()}
        return {"state": state, "param_groups": saved["param_groups"]}

    def load_trainable(self, weights: dict[str, torch.Tensor]) -> None:
        """Whole trainable weights (a checkpoint's) into this process's shards."""
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, tensor in weights.items():
                _local(params[name]).copy_(_local(_shard_like(tensor, params[name])))

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
        """A one-process optimizer state (whole tensors) cut into this process's shards, then loaded."""
        params = [p for group in optimizer.param_groups for p in group["params"]]
        state = {
            int(index): {
                key: _shard_like(value, params[int(index)])
                if torch.is_tensor(value) and value.dim()
                else value
                for key, value in entry.items()
            }
            for index, entry in saved["state"].items()
        }
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})

    def gathered_model(self) -> torch.nn.Module | None:
        """The whole model as a plain (unsharded) module in CPU memory on rank 0 — what save_pretrained,
        generation and merge use — and None on the others. A collective: every rank calls it."""
        whole: dict[int, torch.Tensor] = {}
        for p in self.model.parameters():  # the same order on every rank, one tensor at a time
            gathered = _whole(p)
            if self.dist.is_main:
                whole[id(p)] = gathered.cpu()  # in CPU memory: the whole model may not fit one device
        if not self.dist.is_main:
            return None
        return fill_frame(self.frame, self.model, whole)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        for p in self._trainable():
            p.grad = None


def fill_frame(
    frame: torch.nn.Module, model: torch.nn.Module, whole: dict[int, torch.Tensor]
) -> torch.nn.Module:
    """``frame`` (``weightless_copy(model)``) with the whole weights ``whole`` (by id of ``model``'s
    parameters) put in place of its meta ones: a plain module, tied weights still tied."""
    live = dict(model.named_parameters(remove_duplicate=False))
    made: dict[int, torch.nn.Parameter] = {}
    for name, placeholder in frame.named_parameters(remove_duplicate=False):
        if id(placeholder) not in made:
            made[id(placeholder)] = torch.nn.Parameter(
                whole[id(live[name])], requires_grad=placeholder.requires_grad
            )
        owner, _, leaf = name.rpartition(".")
        frame.get_submodule(owner)._parameters[leaf] = made[id(placeholder)]
    frame.train(model.training)
    return frame


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """This process's part of a (possibly distributed) tensor."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor from its shards (an all-gather); a plain tensor as it is."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor.detach()


def _shard_like(whole: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """This process's shard of ``whole``, laid out as ``like`` (a sharded parameter) is: no communication,
    since every process holds the whole tensor."""
    if not hasattr(like, "device_mesh"):
        return whole.to(like.device, like.dtype)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(
        whole.to(_local(like).device, like.dtype), like.device_mesh, like.placements, src_data_rank=None
    )


def _local_device(model: torch.nn.Module) -> torch.device:
    return _local(next(model.parameters())).device
