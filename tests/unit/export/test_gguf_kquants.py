"""Our k-quant blocks (and q4_0) read back by gguf-py's own dequantizers, the reference for the format.

gguf-py cannot write Q4_K/Q5_K/Q6_K, so the encoders are llmft's (``gguf_kquants``); what counts is what the
reader makes of our bytes: each weight within the format's error bound, the RMS error in llama.cpp's order
of the types, and a block the format represents exactly coming back byte for byte when requantized.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmft.export.gguf_tensors import encode

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

KINDS = ("q4_k", "q5_k", "q6_k", "q4_0")
F16_HALF_ULP = 2.0**-11  # a float16 scale is stored to within half an ulp: 2^-11 of itself


def weights(kind: str) -> np.ndarray:
    """64 rows of 512 float32 weights, shaped like a model's: the sizes of a small layer's matrix."""
    rng = np.random.default_rng(7)
    if kind == "normal":
        return (rng.standard_normal((64, 512)) * 0.02).astype(np.float32)
    if kind == "heavy_tailed":  # Student-t with 2 degrees of freedom: outliers ~100x the typical weight
        return (rng.standard_t(2, (64, 512)) * 0.02).astype(np.float32)
    array = (rng.standard_normal((64, 512)) * 0.02).astype(np.float32)
    if kind == "zero_rows":
        array[::3] = 0.0
        array[1, :300] = 0.0  # a zero first super-block and half of the next
    else:  # constant rows: one positive, one negative, one of each sign per half
        array[0], array[1] = 0.37, -0.21
        array[2, :256], array[2, 256:] = 0.05, -0.05
    return array


def dequantized(kind: str, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(our bytes, gguf-py's reading of them)."""
    from gguf import GGMLQuantizationType, dequantize

    tensor = encode("blk.0.ffn_down.weight", array, kind)
    assert tensor.type_name == kind and tensor.raw_type == GGMLQuantizationType[kind.upper()]
    back = dequantize(tensor.data, GGMLQuantizationType[kind.upper()])
    assert back.shape == array.shape and back.dtype == np.float32
    return tensor.data, back


def error_bound(kind: str, data: np.ndarray) -> np.ndarray:
    """Largest error the format allows each block, from the scales stored in it (gguf-py reads them).

    A weight is rounded to the nearest level of its sub-block's grid (≤ half a step). Past the grid's ends
    it is clamped, by at most: the search's stretch (a candidate scale maps the extreme weight up to
    ``rmin + rdelta·nstep`` = 1.0 step (Q4_K, Q5_K) or 0.9 step (Q6_K) past the last level), plus the
    rounding of the sub-block scale to 6 bits (Q4_K, Q5_K: ≤ d/2 per level, ≤ nmax·d/2 at the top level)
    or 8 bits (Q6_K: ≤ 32·d/2) and, for Q4_K/Q5_K, of its min (≤ dmin/2). With S the block's largest step
    (63·d or 128·|d|): S/2 + S + nmax·d/2 (+ dmin/2). Q4_0: d = max/−8, so the +8 end clamps to +7, one
    step; d's float16 rounding moves the ±8 levels by 8·2^-11·|d|.
    """
    from gguf.quants import Q4_K

    if kind == "q4_0":
        d = np.abs(data.reshape(-1, 18)[:, :2].view(np.float16).astype(np.float32))
        return d * (1 + 8 * F16_HALF_ULP) * (1 + F16_HALF_ULP)
    if kind == "q6_k":
        blocks = data.reshape(-1, 210)
        d = np.abs(blocks[:, 208:].view(np.float16).astype(np.float32))
        sc = np.abs(blocks[:, 192:208].view(np.int8).astype(np.float32)).max(axis=-1, keepdims=True)
        return d * sc * 1.5 + d * 32 / 2
    size, nmax = {"q4_k": (144, 15), "q5_k": (176, 31)}[kind]
    blocks = data.reshape(-1, size)
    d, dmin = (blocks[:, i : i + 2].view(np.float16).astype(np.float32) for i in (0, 2))
    sc, _ = Q4_K.get_scale_min(blocks[:, 4:16])
    return d * sc.max(axis=-1, keepdims=True) * 1.5 + d * nmax / 2 + dmin / 2


@pytest.mark.parametrize("case", ["normal", "heavy_tailed", "zero_rows", "constant_rows"])
@pytest.mark.parametrize("kind", KINDS)
def test_blocks_dequantize_within_the_formats_error_bound(kind: str, case: str) -> None:
    array = weights(case)
    data, back = dequantized(kind, array)
    block = 32 if kind == "q4_0" else 256
    err = np.abs(back - array).reshape(-1, block)
    assert (err <= error_bound(kind, data) * (1 + 1e-6)).all()  # 1e-6: the float32 products of the bound
    if case == "zero_rows":
        assert (back[::3] == 0).all() and (back[1, :256] == 0).all()
        if kind != "q4_0":  # llama.cpp writes an all-zero super-block as zero bytes (+0.0 scales too)
            assert not data[::3].any()
    if case == "constant_rows":
        # The constant is K whole steps of d (the top or bottom level times the largest scale): only d's
        # float16 rounding remains, half an ulp: 2^-11 of d, or 2^-25 where d is subnormal (below 2^-14).
        steps = {"q4_0": 8, "q4_k": 63 * 15, "q5_k": 63 * 31, "q6_k": 128 * 32}[kind]
        tol = np.maximum(F16_HALF_ULP * np.abs(array[:3]), 2.0**-25 * steps) * (1 + 1e-3)
        assert (np.abs(back[:3] - array[:3]) <= tol).all()


def test_rms_error_follows_llama_cpps_order_of_the_types() -> None:
    """q6_k < q5_k < q4_k < q4_0 on normal and on heavy-tailed weights (llama.cpp's quality ranking)."""
    for case in ("normal", "heavy_tailed"):
        array = weights(case)
        rms = {
            kind: float(np.sqrt(np.mean((dequantized(kind, array)[1] - array) ** 2) / np.mean(array**2)))
            for kind in KINDS
        }
        assert rms["q6_k"] < rms["q5_k"] < rms["q4_k"] < rms["q4_0"], (case, rms)
        # Uniform rounding costs step/√12. A normal 32-block spans about ±2.1σ, so 15 steps (Q4_K) are
        # 0.28σ and cost ≥ 0.08σ before the search; Q4_K's fitted scale and min do better than that,
        # Q6_K's 63 steps over ±2.3σ (16-blocks) cost ~0.02σ. The bands catch a layout bug (errors ~σ).
        if case == "normal":
            assert 0.01 < rms["q6_k"] < 0.03 and 0.05 < rms["q4_k"] < 0.09, rms


def representable(kind: str, blocks: int, seed: int = 0) -> np.ndarray:
    """Super-blocks the format holds exactly: every sub-block uses its lowest and highest level, the
    largest 6-bit scale and min are 63 (Q6_K: one scale −128), so llama.cpp's search finds that grid."""
    rng = np.random.default_rng(seed)
    sub, nmax = (16, 32) if kind == "q6_k" else (32, {"q4_k": 15, "q5_k": 31}[kind])
    groups = 256 // sub
    d = rng.uniform(1e-4, 1e-3, (blocks, 1, 1)).astype(np.float16).astype(np.float32)
    if kind == "q6_k":
        sc = rng.integers(-128, 128, (blocks, groups, 1)).astype(np.float32)
        sc[sc == 0], sc[:, :1] = 1, -128
        levels = rng.integers(-nmax, nmax, (blocks, groups, sub)).astype(np.float32)
        levels[..., 0] = -nmax  # the sub-block's peak sits on the lowest level
        return ((d * sc) * levels).reshape(blocks, 256)
    dmin = rng.uniform(1e-4, 1e-3, (blocks, 1, 1)).astype(np.float16).astype(np.float32)
    sc = rng.integers(1, 64, (blocks, groups, 1)).astype(np.float32)
    mins = rng.integers(0, 64, (blocks, groups, 1)).astype(np.float32)
    sc[:, :1], mins[:, 1:2] = 63, 63
    levels = rng.integers(0, nmax + 1, (blocks, groups, sub)).astype(np.float32)
    levels[..., 0], levels[..., 1] = 0, nmax
    return ((d * sc) * levels - (dmin * mins)).reshape(blocks, 256)  # gguf-py's order of operations


@pytest.mark.parametrize("kind", ["q4_k", "q5_k", "q6_k"])
def test_a_block_the_format_holds_exactly_comes_back_exactly_and_requantizes_to_the_same_bytes(
    kind: str,
) -> None:
    array = representable(kind, blocks=512)
    data, back = dequantized(kind, array)
    np.testing.assert_array_equal(back, array)
    again, _ = dequantized(kind, back)
    np.testing.assert_array_equal(again, data)


@pytest.mark.parametrize("case", ["normal", "heavy_tailed"])
@pytest.mark.parametrize("kind", KINDS)
def test_requantizing_dequantized_weights_is_stable(kind: str, case: str) -> None:
    """Quantize → gguf-py dequantize → quantize → dequantize: the second pass moves no weight beyond the
    bound, and never further than the first pass did in RMS: errors do not build up. (llama.cpp's k-quant
    search itself is not a fixpoint: where 6-bit rounding left a sub-block's end level unused, the second
    search sees a narrower range and may pick another grid. Blocks using their full range come back byte
    for byte: the test above.)"""
    array = weights(case)
    data, back = dequantized(kind, array)
    data2, back2 = dequantized(kind, back)
    block = 32 if kind == "q4_0" else 256
    assert (np.abs(back2 - back).reshape(-1, block) <= error_bound(kind, data2) * (1 + 1e-6)).all()
    assert np.sqrt(np.mean((back2 - back) ** 2)) <= np.sqrt(np.mean((back - array) ** 2))
    if kind == "q4_0":  # absmax scaling: the dequantized block's largest weight gives back the same d
        np.testing.assert_array_equal(data2, data)


def test_k_quants_need_rows_of_whole_super_blocks() -> None:
    from llmft.export.gguf_kquants import quantize_q4_k

    with pytest.raises(ValueError, match="multiple of 256 long, got 576"):
        quantize_q4_k(np.zeros((2, 576), dtype=np.float32))
