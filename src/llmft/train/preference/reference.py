"""The reference model of DPO and KTO, and the optional one-pass precomputation of its log-probs.

With an adapter the reference is the base with the adapter disabled (no second copy in memory); without
one, a frozen copy; ``preference.reference_model`` loads another model. ``precompute_reference`` scores
every split once before training and caches the values on disk, keyed by the tokenized rows and the
reference's identity, so a resumed run (or a rerun with the same data and model) reads them back.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from llmft.atomic import write_atomic
from llmft.train.objectives.base import Batch, Reference
from llmft.train.preference.logps import sequence_logps

Example = dict[str, object]
Say = Callable[[str], None]


def peft_model(model: torch.nn.Module) -> torch.nn.Module | None:
    """The peft model inside accelerate/DDP wrappers, or None without an adapter."""
    inner = getattr(model, "module", model)
    return inner if hasattr(inner, "disable_adapter") and hasattr(inner, "peft_config") else None


def adapter_disabled() -> Reference:
    """The policy's own base: the same forward with the adapter switched off."""

    def reference(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
        peft = peft_model(model)
        with torch.no_grad(), peft.disable_adapter():  # type: ignore[union-attr,operator]
            return sequence_logps(model, batch).sums

    return reference


def frozen(model: torch.nn.Module) -> Reference:
    """A separate model that never trains (a copy of the base, or ``reference_model``)."""
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)

    def reference(policy: torch.nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return sequence_logps(model, batch).sums

    return reference


def frozen_scoring(model: torch.nn.Module) -> Reference:
    """The model as it is now, before training: only for the one pass of ``precompute``."""

    def reference(policy: torch.nn.Module, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            return sequence_logps(model, batch).sums

    return reference


def frozen_copy(model: torch.nn.Module) -> Reference:
    inner = getattr(model, "module", model)
    return frozen(copy.deepcopy(inner))


# ----------------------------------------------------------------------------------- precomputation
def cache_file(examples: dict[str, list[Example]], identity: dict[str, object]) -> Path:
    """Where the reference log-probs of these examples under this reference are cached."""
    from llmft.data.cache import cache_dir

    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    id_keys = ("prompt_ids", "chosen_ids", "rejected_ids", "completion_ids", "kl_completion_ids")
    for split in sorted(examples):
        for example in examples[split]:
            digest.update(json.dumps([example.get(k) for k in id_keys]).encode())
    return cache_dir().parent / "reference_logps" / f"{digest.hexdigest()[:24]}.json"


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A cheap identity of the weights: a checksum of the first and last parameter tensors (not all of
    them: hashing a 7B model would take longer than the pass it saves)."""
    named = sorted(getattr(model, "module", model).named_parameters(), key=lambda item: item[0])
    params = [p for name, p in named if "lora_" not in name and "modules_to_save" not in name]
    picked = [params[0], params[-1]] if params else []
    return ";".join(f"{p.shape}:{float(p.detach().double().sum()):.10e}" for p in picked)


def _score(
    reference: Reference,
    model: torch.nn.Module,
    examples: list[Example],
    collate: Callable[..., Batch],
    size: int,
) -> list[list[float]]:
    """Per example: [chosen, rejected] (pairs) or [completion, kl completion] (KTO) reference log-probs."""
    device = next(model.parameters()).device
    out: list[list[float]] = []
    was_training = model.training
    model.eval()
    for start in range(0, len(examples), size):
        batch = {k: v.to(device) for k, v in collate(examples[start : start + size]).items()}
        if "kl_input_ids" in batch:
            kl = {k[3:]: v for k, v in batch.items() if k.startswith("kl_")}
            first, second = reference(model, batch), reference(model, kl)
        else:
            first, second = reference(model, batch).chunk(2)
        out += [[float(a), float(b)] for a, b in zip(first.tolist(), second.tolist(), strict=True)]
    model.train(was_training)
    return out


def precompute(
    reference: Reference,
    model: torch.nn.Module,
    examples: dict[str, list[Example]],
    collate: Callable[..., Batch],
    identity: dict[str, object],
    batch_size: int,
) -> tuple[Path, bool]:
    """Attach reference log-probs to every example of every split; returns the cache file and whether it
    was read (True) or computed and written (False)."""
    path = cache_file(examples, identity)
    values: dict[str, list[list[float]]] | None = None
    if path.exists():
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            values = None
    hit = values is not None and all(len(values.get(s, [])) == len(e) for s, e in examples.items())
    if not hit:
        values = {s: _score(reference, model, e, collate, batch_size) for s, e in examples.items()}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(values))
        except OSError:
            pass  # a cache that cannot be written costs the next run one pass, nothing more
    for split, rows in examples.items():
        for example, (first, second) in zip(rows, values[split], strict=True):  # type: ignore[index]
            keys = (
                ("ref_logps", "ref_kl_logps")
                if "completion_ids" in example
                else ("ref_chosen_logps", "ref_rejected_logps")
            )
            example[keys[0]], example[keys[1]] = first, second
    return path, hit
