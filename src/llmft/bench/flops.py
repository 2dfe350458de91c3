"""The "useful work" FLOP formula, the same for every contender, and the machine's fp32 matmul peak.

Per training step, counting real tokens only (pad positions and the cross-document attention of packed
rows are waste, not work):

    matmul weights W (every Linear/Conv1D of the backbone, LoRA's A and B included):
        forward 2·W, input-gradient 2·W, weight-gradient 2·W only if W is trained
        → 4·W per token when frozen, 6·W when trained (LoRA: frozen base 4·P + 6·r·(in+out) per layer)
    LM head (vocab × hidden): the same rule, at the positions that carry loss only; logits anywhere else
        feed nothing (a contender that computes them does extra, unneeded work)
    causal attention (no weights): forward QKᵀ and A·V are L²·d each with the causal half kept, backward
        twice the forward → 6·L²·d per layer and sequence of real length L (d = heads × head_dim)

    useful FLOPs = Σ_tokens (4·W_frozen + 6·W_trained) + loss_tokens · (4|6)·V·d + Σ_sequences 6·n_layers·L²·d

Embedding lookups, norms, activations, softmax and the optimizer are not counted (small next to these).
MFU = useful FLOPs per second / the best fp32 matmul rate (2048×2048, ``threads`` threads) seen in the run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FlopCounts:
    """Per-token and per-sequence constants of one model with its adapter."""

    frozen_weights: int  # matmul weights not trained (backbone)
    trained_weights: int  # matmul weights trained (LoRA A/B, full fine-tune)
    head_weights: int  # LM head (vocab × hidden)
    head_trained: bool
    layers: int
    attention_width: int  # heads × head_dim

    def per_real_token(self) -> int:
        return 4 * self.frozen_weights + 6 * self.trained_weights

    def per_loss_token(self) -> int:
        return (6 if self.head_trained else 4) * self.head_weights

    def per_len_sq(self) -> int:
        return 6 * self.layers * self.attention_width

    def useful(self, real_tokens: float, loss_tokens: float, sum_len_sq: float) -> float:
        return (
            self.per_real_token() * real_tokens
            + self.per_loss_token() * loss_tokens
            + self.per_len_sq() * sum_len_sq
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def count_model(model: object) -> FlopCounts:
    """Walk the (peft-wrapped) causal LM: each Linear/Conv1D weight, trained or not; the LM head apart."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # type: ignore[attr-defined]
    head = inner.get_output_embeddings()  # type: ignore[attr-defined]
    frozen = trained = 0
    for module in inner.modules():  # type: ignore[attr-defined]
        if module is head or not isinstance(module, nn.Linear | Conv1D):
            continue
        if module.weight.requires_grad:
            trained += module.weight.numel()
        else:
            frozen += module.weight.numel()
    config = inner.config  # type: ignore[attr-defined]
    layers = getattr(config, "num_hidden_layers", None) or config.n_layer
    heads = getattr(config, "num_attention_heads", None) or config.n_head
    hidden = getattr(config, "hidden_size", None) or config.n_embd
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    return FlopCounts(
        frozen, trained, head.weight.numel(), bool(head.weight.requires_grad), layers, heads * head_dim
    )


def matmul_peak(threads: int, size: int = 2048, seconds: float = 3.0) -> dict[str, float]:
    """fp32 GFLOP/s of a square matmul loop: the best and the median of the timed repeats."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    out = torch.empty(size, size)
    for _ in range(2):
        torch.mm(a, b, out=out)
    rates: list[float] = []
    flops = 2.0 * size**3
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 5:
        t = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(flops / (time.perf_counter() - t) / 1e9)
    rates.sort()
    return {
        "best_gflops": rates[-1],
        "median_gflops": rates[len(rates) // 2],
        "repeats": float(len(rates)),
        "threads": float(threads),
        "size": float(size),
    }
