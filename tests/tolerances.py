"""Tolerances of the tests that compare numbers, each with the claim it checks and where its size comes from.

float32 carries a 24-bit significand: a unit in the last place (ulp) is EPS = 2**-23 ≈ 1.2e-7 of a value.
Two computations that do the same arithmetic in another order (another SIMD width under
ATEN_CPU_CAPABILITY, another thread count, gloo's reduce-scatter, another library's kernel) round
differently: a sum of n terms moves by at most n·EPS of the terms' absolute sum (Higham), and by about
√n·EPS as a random walk. Nothing here is tuned to what one CPU happened to produce; `make test-matrix` runs
the tests that use these under every kernel width and thread count the machine has.

What no tolerance can cover is Adam: it divides each update by √v + ε, so where a gradient is near zero
(|g| ≲ ε, often a cancellation of larger terms), a last-bit difference in g can flip the update's sign and
move that weight by up to ~lr per step. Tests that compare weights trained in another order therefore train
with SGD, whose update is linear in the gradient: a rounding difference in g stays a rounding difference in
the weight. Where the same arithmetic replays in the same order (a resumed run on the same machine), the
result is the same to the bit and the comparison is exact.
"""

from __future__ import annotations

import torch

EPS = 2.0**-23

# A loss computed in another order: through ~10 reductions of ≤ 10^3 terms (matmuls, softmax over the
# vocabulary, the mean over a batch's tokens), each ~√n·EPS ≈ 4e-6 relative: 1e-5 is ~80 ulps.
LOSS_REL = 1e-5

# Weights trained with SGD in another order, relative to the tensor's largest magnitude: each step's
# gradient is a sum over ≤ 10^3 token terms, so it moves by ≤ n·EPS ≈ 1.2e-4 of its scale in the worst case
# (Higham), and SGD carries that into the update unamplified (lr·steps·momentum only rescales it alike).
SGD_WEIGHT_REL = 2e-4


def assert_weights_alike(mine: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], rel: float) -> None:
    """Every tensor equal within ``rel`` of its own largest magnitude (a zero tensor must stay zero)."""
    assert mine.keys() == theirs.keys()
    for name, want in theirs.items():
        scale = float(want.abs().max()) if want.numel() else 0.0
        torch.testing.assert_close(mine[name], want, atol=rel * scale, rtol=0, msg=name)


# The same function computed by other arithmetic (merged weights, a fused projection, a reloaded or exported
# model, a packed row with per-document attention, another attention kernel): each weight rounds by at most
# half an ulp, and the outputs, through a few layers of matmuls over ≤ 256 terms (~√n·EPS ≈ 2e-6 each, a few
# dozen in a tiny model's forward), move by ≲ 1e-5 of their scale. 1e-4 of the largest output leaves a 10×
# margin and still catches any real difference (a missing adapter scale, a wrong mask: ≥ 1e-2 of the scale).
FORWARD_REL = 1e-4


def assert_same_function(got: torch.Tensor, want: torch.Tensor, rel: float = FORWARD_REL) -> None:
    """Outputs (logits, gradients) equal within ``rel`` of the reference's largest magnitude."""
    scale = float(want.detach().abs().max()) if want.numel() else 0.0
    torch.testing.assert_close(got, want, atol=rel * scale, rtol=0)
