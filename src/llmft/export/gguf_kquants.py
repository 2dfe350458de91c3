"""llama.cpp's k-quants (Q4_K, Q5_K, Q6_K) written with numpy, vectorised over blocks.

The ``gguf`` package reads these types but cannot write them, so the encoders are here, written from the
format's definition and llama.cpp's reference quantizers (``quantize_row_q{4,5,6}_K_ref`` in
ggml/src/ggml-quants.c). A super-block is 256 weights of one row:

* Q4_K / Q5_K: 8 sub-blocks of 32, each ``x ≈ d·sc·q − dmin·m`` with ``q`` of 4 / 5 bits and the
  sub-block's scale ``sc`` and min ``m`` as 6-bit multiples of the super-block's float16 ``d`` and ``dmin``.
  Each sub-block's (scale, min) is the best of a small search over scales, every candidate refitted by
  weighted least squares (llama.cpp's ``make_qkx2_quants``; weights ``rms(x) + |x|``).
* Q6_K: 16 sub-blocks of 16, ``x ≈ d·sc·q`` with ``q`` of 6 bits (−32..31) and ``sc`` a signed 8-bit
  multiple of the float16 ``d``; each sub-block's scale is the best of 19 candidates under an ``x²``-weighted
  error (``make_qx_quants``).

Why vectorised: the search runs ~20 candidate scales per sub-block, so a loop per block in Python would
take minutes for a small model. Here every candidate is one numpy pass over all sub-blocks at once (in
chunks that stay in cache), and only the index of the best candidate is kept per sub-block: its levels are
recomputed once at the end. A candidate's weighted error is expanded into the sums the least-squares fit
already has, so it costs no extra pass. Arithmetic is float32, like the reference; the sums run in another
order, so a byte can differ from llama.cpp's own output where two candidates tie to the last bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

QK_K = 256
CHUNK_ROWS = 1024  # super-blocks per numpy pass: 1 MiB a float32 buffer, so a pass stays in cache
GROUP_MAX_EPS = np.float32(1e-15)  # llama.cpp: a sub-block with |x| below this is all zero


def quantize_q4_k(array: np.ndarray) -> np.ndarray:
    """``array`` (rows a multiple of 256 long) as Q4_K bytes, one 144-byte block per 256 weights."""
    return _by_chunks(
        array, 144, lambda x: _pack_q4_k(*_scaled_min_blocks(x, nmax=15, search=(-1.0, 0.1, 20)))
    )


def quantize_q5_k(array: np.ndarray) -> np.ndarray:
    """``array`` as Q5_K bytes, one 176-byte block per 256 weights."""
    return _by_chunks(
        array, 176, lambda x: _pack_q5_k(*_scaled_min_blocks(x, nmax=31, search=(-0.5, 0.1, 15)))
    )


def quantize_q6_k(array: np.ndarray) -> np.ndarray:
    """``array`` as Q6_K bytes, one 210-byte block per 256 weights."""
    return _by_chunks(array, 210, lambda x: _pack_q6_k(*_symmetric_blocks(x)))


def _by_chunks(array: np.ndarray, block_bytes: int, encode: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Encode super-blocks a chunk at a time; the result has ``array``'s shape with rows in bytes.

    Chunks are independent, and numpy releases the GIL in its loops, so they run on a thread per core
    (as llama.cpp's quantizer does): the bytes are the same whatever the number of threads.
    """
    if array.shape[-1] % QK_K:
        raise ValueError(f"k-quants need rows a multiple of {QK_K} long, got {array.shape[-1]}")
    blocks = np.ascontiguousarray(array, dtype=np.float32).reshape(-1, QK_K)
    out = np.empty((blocks.shape[0], block_bytes), dtype=np.uint8)

    def work(start: int) -> None:
        out[start : start + CHUNK_ROWS] = encode(blocks[start : start + CHUNK_ROWS])

    starts = range(0, blocks.shape[0], CHUNK_ROWS)
    workers = min(
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8
    )
    if workers < 2 or len(starts) < 2:
        for start in starts:
            work(start)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
            list(pool.map(work, starts))
    return out.reshape(*array.shape[:-1], array.shape[-1] // QK_K * block_bytes)


def _rint(values: np.ndarray) -> np.ndarray:
    """llama.cpp's ``nearest_int``: round half to even, as the FPU does."""
    return np.rint(values)


def _f16(values: np.ndarray) -> np.ndarray:
    """What a float16 field stores, read back as float32 (the encoder must round with what is stored)."""
    return values.astype(np.float16).astype(np.float32)


# ------------------------------------------------------------------------------------------ Q4_K and Q5_K


def _scaled_min_blocks(
    x: np.ndarray, nmax: int, search: tuple[float, float, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Super-blocks ``[n, 256]`` → (levels ``[n, 256]``, d, dmin, 6-bit scales, 6-bit mins ``[n, 8]``)."""
    n = x.shape[0]
    sub = x.reshape(n, 8, 32)
    weights = np.sqrt(np.mean(sub * sub, axis=-1, keepdims=True)) + np.abs(sub)
    scale, neg_min, levels = _fit_scale_min(sub, weights, nmax, search)
    max_scale, max_min = scale.max(axis=-1), neg_min.max(axis=-1)
    inv_scale = np.divide(63.0, max_scale, out=np.zeros_like(max_scale), where=max_scale > 0)
    inv_min = np.divide(63.0, max_min, out=np.zeros_like(max_min), where=max_min > 0)
    sc = np.clip(_rint(inv_scale[:, None] * scale), 0, 63)
    mn = np.clip(_rint(inv_min[:, None] * neg_min), 0, 63)
    d, dmin = _f16(max_scale / np.float32(63)), _f16(max_min / np.float32(63))
    step = (d[:, None] * sc)[..., None]
    offset = (dmin[:, None] * mn)[..., None]
    safe = np.where(step == 0, 1, step)
    requant = np.clip(_rint((sub + offset) / safe), 0, nmax)
    levels = np.where(step == 0, levels, requant)  # llama.cpp keeps the search's levels where d·sc is 0
    return levels.reshape(n, QK_K).astype(np.uint8), d, dmin, sc.astype(np.uint8), mn.astype(np.uint8)


def _fit_scale_min(
    x: np.ndarray, w: np.ndarray, nmax: int, search: tuple[float, float, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sub-block (last axis): scale, −min and levels of the best fit ``x ≈ scale·L + min`` (min ≤ 0).

    ``make_qkx2_quants``: start from the range, then try ``nstep + 1`` stretched scales; each candidate's
    levels get the weighted least-squares scale and min, kept where they lower the weighted squared error.
    """
    rmin, rdelta, nstep = search
    shape = x.shape
    x, w = x.reshape(-1, shape[-1]), w.reshape(-1, shape[-1])
    lo = np.minimum(x.min(axis=-1), 0)
    span = x.max(axis=-1) - lo
    flat = span == 0  # a sub-block of one value ≤ 0: levels 0, the value as −min
    span = np.where(flat, 1, span)
    shifted = x - lo[:, None]  # ≥ 0, so a level is never below 0: only the top needs a clamp
    wx = w * x
    sum_w, sum_x, sum_x2 = _rowsum(w), _rowsum(wx), _rowsum(wx * x)
    best_iscale = nmax / span
    levels = _levels(shifted, best_iscale, nmax, np.empty_like(x))
    best_scale, best_min = 1 / best_iscale, lo
    diff = best_scale[:, None] * levels + (lo[:, None] - x)
    best_error = _rowsum(w * diff * diff)
    cand, wl, scratch = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for step in range(nstep + 1):
        iscale = (np.float32(rmin) + np.float32(rdelta) * step + nmax) / span
        _levels(shifted, iscale, nmax, cand)
        np.multiply(w, cand, out=wl)
        sum_l, sum_l2, sum_xl = _rowsum(wl), _dot(wl, cand, scratch), _dot(wl, x, scratch)
        scale, minimum, ok = _weighted_fit(sum_w, sum_x, sum_l, sum_l2, sum_xl)
        error = (
            scale * scale * sum_l2 + 2 * scale * minimum * sum_l + minimum * minimum * sum_w
            - 2 * scale * sum_xl - 2 * minimum * sum_x + sum_x2
        )  # fmt: skip  # Σw(scale·l + min − x)², expanded into the sums above
        better = ok & (error < best_error)
        best_error = np.where(better, error, best_error)
        best_iscale = np.where(better, iscale, best_iscale)
        best_scale, best_min = np.where(better, scale, best_scale), np.where(better, minimum, best_min)
    _levels(shifted, best_iscale, nmax, levels)
    levels[flat] = 0
    best_scale = np.where(flat, 0, best_scale)
    return (
        best_scale.reshape(shape[:-1]).astype(np.float32),
        (0 - best_min).reshape(shape[:-1]).astype(np.float32),  # 0 − x: never −0.0 (llama.cpp: +0)
        levels.reshape(shape),
    )


def _levels(shifted: np.ndarray, iscale: np.ndarray, nmax: int, out: np.ndarray) -> np.ndarray:
    """``min(nmax, round(iscale·shifted))`` into ``out``: preallocated, since numpy's temporaries of a
    chunk's size cost more in page faults than the arithmetic itself."""
    np.multiply(shifted, iscale[:, None], out=out)
    np.rint(out, out=out)
    return np.minimum(out, np.float32(nmax), out=out)


def _dot(a: np.ndarray, b: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Row-wise dot product: the product into ``scratch``, summed by a matrix-vector product (numpy's
    ``sum(axis=-1)`` over rows of 16 or 32 is several times slower, ``einsum`` about 1.5x)."""
    return _rowsum(np.multiply(a, b, out=scratch))


def _rowsum(a: np.ndarray) -> np.ndarray:
    return a @ np.ones(a.shape[-1], dtype=a.dtype)


def _weighted_fit(
    sum_w: np.ndarray, sum_x: np.ndarray, sum_l: np.ndarray, sum_l2: np.ndarray, sum_xl: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``x ≈ scale·l + min`` from the weighted sums; a min above 0 is clamped to 0 and the
    scale refitted through the origin. ``ok`` is False where the levels are all alike (no fit)."""
    det = sum_w * sum_l2 - sum_l * sum_l
    ok = det > 0
    safe = np.where(ok, det, 1)
    scale = (sum_w * sum_xl - sum_x * sum_l) / safe
    minimum = (sum_l2 * sum_x - sum_l * sum_xl) / safe
    positive = minimum > 0
    scale = np.where(positive, sum_xl / np.where(sum_l2 > 0, sum_l2, 1), scale)
    return scale, np.where(positive, 0, minimum), ok


def _pack_scales(sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    """Eight 6-bit scales and mins in 12 bytes (``get_scale_min_k4``'s layout)."""
    packed = np.empty((sc.shape[0], 12), dtype=np.uint8)
    packed[:, 0:4] = sc[:, 0:4] | ((sc[:, 4:8] >> 4) << 6)
    packed[:, 4:8] = mn[:, 0:4] | ((mn[:, 4:8] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:8] & 0xF) | ((mn[:, 4:8] & 0xF) << 4)
    return packed


def _halves(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each 64 weights → (first 32, last 32), ``[n, 4, 32]`` each: the nibble pairs of Q4_K and Q5_K."""
    pairs = levels.reshape(-1, 4, 2, 32)
    return pairs[:, :, 0], pairs[:, :, 1]


def _header(d: np.ndarray, dmin: np.ndarray, sc: np.ndarray, mn: np.ndarray) -> np.ndarray:
    scales = [
        d.astype(np.float16).view(np.uint8).reshape(-1, 2),
        dmin.astype(np.float16).view(np.uint8).reshape(-1, 2),
    ]
    return np.concatenate([*scales, _pack_scales(sc, mn)], axis=-1)


def _pack_q4_k(
    levels: np.ndarray, d: np.ndarray, dmin: np.ndarray, sc: np.ndarray, mn: np.ndarray
) -> np.ndarray:
    low, high = _halves(levels)
    qs = (low | (high << 4)).reshape(-1, 128)
    return np.concatenate([_header(d, dmin, sc, mn), qs], axis=-1)


def _pack_q5_k(
    levels: np.ndarray, d: np.ndarray, dmin: np.ndarray, sc: np.ndarray, mn: np.ndarray
) -> np.ndarray:
    low, high = _halves(levels)
    qs = ((low & 0xF) | ((high & 0xF) << 4)).reshape(-1, 128)
    shifts = (2 * np.arange(4, dtype=np.uint8))[None, :, None]  # chunk i: bits 2i (first half), 2i+1
    qh = (((low >> 4) << shifts) | ((high >> 4) << (shifts + 1))).sum(axis=1, dtype=np.uint8)
    return np.concatenate([_header(d, dmin, sc, mn), qh, qs], axis=-1)


# ------------------------------------------------------------------------------------------------- Q6_K


def _symmetric_blocks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Super-blocks ``[n, 256]`` → (levels 0..63 ``[n, 256]``, d ``[n]``, signed 8-bit scales ``[n, 16]``)."""
    n = x.shape[0]
    sub = x.reshape(n, 16, 16)
    scale, levels = _fit_symmetric(sub, nmax=32)
    pick = np.argmax(np.abs(scale), axis=-1)
    max_scale = np.take_along_axis(scale, pick[:, None], axis=-1)[:, 0]
    zero = np.abs(max_scale) < GROUP_MAX_EPS  # llama.cpp writes the whole block as zeros
    iscale = np.float32(-128) / np.where(zero, 1, max_scale)
    d = np.where(zero, 0, _f16(1 / iscale))
    sc = np.where(zero[:, None], 0, np.minimum(127, _rint(iscale[:, None] * scale)))
    step = (d[:, None] * sc)[..., None]
    requant = np.clip(_rint(sub / np.where(step == 0, 1, step)), -32, 31) + 32
    levels = np.where(step == 0, levels, requant)
    levels = np.where(zero[:, None, None], 0, levels)
    return levels.reshape(n, QK_K).astype(np.uint8), d, sc.astype(np.int8)


def _fit_symmetric(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Per sub-block: scale and levels (``l + nmax``) of ``x ≈ scale·l``, ``l`` in −nmax..nmax−1.

    ``make_qx_quants`` with ``rmse_type`` 1: 19 candidate scales around ``−nmax / max`` (``max`` the
    sub-block's value of largest magnitude, with its sign), each refitted by least squares weighted by x²;
    a candidate is kept where it explains more of the weighted energy (``sumlx² / suml2``).
    """
    shape = x.shape
    x = x.reshape(-1, shape[-1])
    peak = np.take_along_axis(x, np.argmax(np.abs(x), axis=-1)[:, None], axis=-1)[:, 0]
    zero = np.abs(peak) < GROUP_MAX_EPS
    peak = np.where(zero, 1, peak)
    w = x * x
    wx, cand, wl, scratch = w * x, np.empty_like(x), np.empty_like(x), np.empty_like(x)
    best_iscale = best_scale = best = np.zeros_like(peak)
    for number, step in enumerate((0, *range(-9, 0), *range(1, 10))):
        iscale = -(nmax + np.float32(0.1) * step) / peak
        _signed_levels(x, iscale, nmax, cand)
        np.multiply(w, cand, out=wl)
        sumlx, suml2 = _dot(wx, cand, scratch), _dot(wl, cand, scratch)
        scale = sumlx / np.where(suml2 > 0, suml2, 1)
        # the first candidate is taken as it is; a later one where it fits better
        better = (suml2 > 0) & (sumlx * sumlx > best * suml2) if number else np.ones_like(zero)
        best_iscale = np.where(better, iscale, best_iscale)
        best_scale = np.where(better, scale, best_scale)
        best = np.where(better, scale * sumlx, best)
    levels = _signed_levels(x, best_iscale, nmax, cand) + nmax
    levels[zero] = 0
    return np.where(zero, 0, best_scale).astype(np.float32).reshape(shape[:-1]), levels.reshape(shape)


def _signed_levels(x: np.ndarray, iscale: np.ndarray, nmax: int, out: np.ndarray) -> np.ndarray:
    """``clip(round(iscale·x), −nmax, nmax − 1)`` into ``out``."""
    np.multiply(x, iscale[:, None], out=out)
    np.rint(out, out=out)
    return np.clip(out, np.float32(-nmax), np.float32(nmax - 1), out=out)


def _pack_q6_k(levels: np.ndarray, d: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """``ql`` (low nibbles), ``qh`` (high 2 bits), the 16 scales, then ``d``: 128 + 64 + 16 + 2 bytes."""
    quarters = levels.reshape(-1, 2, 4, 32)  # each half of 128: four runs of 32
    low = quarters & 0xF
    ql = np.concatenate([low[:, :, 0] | (low[:, :, 2] << 4), low[:, :, 1] | (low[:, :, 3] << 4)], axis=-1)
    shifts = (2 * np.arange(4, dtype=np.uint8))[None, None, :, None]
    qh = ((quarters >> 4) << shifts).sum(axis=2, dtype=np.uint8)
    parts = [
        ql.reshape(-1, 128),
        qh.reshape(-1, 64),
        sc.view(np.uint8),
        d.astype(np.float16).view(np.uint8).reshape(-1, 2),
    ]
    return np.concatenate(parts, axis=-1)


QUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "q4_k": quantize_q4_k,
    "q5_k": quantize_q5_k,
    "q6_k": quantize_q6_k,
}

__all__ = ["QK_K", "QUANTIZERS", "quantize_q4_k", "quantize_q5_k", "quantize_q6_k"]
