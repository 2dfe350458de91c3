"""Time and error of GGUF export quantization on 135M-parameter-shaped random weights, per ``--quant``.

Two shape sets, weights ~ N(0, 0.02²) (the usual init scale), each tensor typed by llama.cpp's mix rule
(``gguf_mix.tensor_type``) and encoded as the export does (``gguf_tensors.encode``):

* ``smollm2-135m``: SmolLM2-135M's shapes (hidden 576, ffn 1536, 30 layers, 49152 tokens, tied head). 576 is
  not a multiple of 256, so only ffn_down is a k-quant; the rest falls back as llama.cpp does.
* ``llama-768x12``: a Llama of GPT-2-small's widths (768 / 3072, 12 layers, 50257 tokens, tied head; 152M):
  every row a multiple of 256, so every matrix is a k-quant: the encoders' worst case.

    PYTHONPATH=src .venv/bin/python benchmarks/gguf_kquants.py [--quant q4_k_m ...] [--shapes llama-768x12]

Printed per (shapes, quant): encode wall and CPU seconds (CPU is the steadier figure on a shared machine),
tensors per storage type, and each storage type's relative RMS error (‖x̂ − x‖ / ‖x‖, gguf-py's dequantizer
reading our bytes) over the first tensors of that type (up to 8M weights).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from llmft.export.gguf_mix import tensor_type
from llmft.export.gguf_tensors import encode

SHAPES = {
    "smollm2-135m": {"hidden": 576, "ffn": 1536, "kv": 192, "layers": 30, "vocab": 49152, "tied": True},
    "llama-768x12": {"hidden": 768, "ffn": 3072, "kv": 768, "layers": 12, "vocab": 50257, "tied": True},
}


def tensors(spec: dict) -> list[tuple[str, tuple[int, int]]]:
    h, f, kv = spec["hidden"], spec["ffn"], spec["kv"]
    names = [("token_embd.weight", (spec["vocab"], h))]
    if not spec["tied"]:
        names.append(("output.weight", (spec["vocab"], h)))
    for i in range(spec["layers"]):
        roles = {"attn_q": (h, h), "attn_k": (kv, h), "attn_v": (kv, h), "attn_output": (h, h)}
        roles |= {"ffn_gate": (f, h), "ffn_up": (f, h), "ffn_down": (h, f)}
        names += [(f"blk.{i}.{role}.weight", shape) for role, shape in roles.items()]
    return names


def measure(shapes: str, quant: str) -> None:
    from gguf import GGMLQuantizationType, dequantize

    spec = SHAPES[shapes]
    rng = np.random.default_rng(0)
    wall = cpu = 0.0
    counts: dict[str, int] = {}
    sq_err: dict[str, float] = {}
    sq_sum: dict[str, float] = {}
    weights = 0
    for name, shape in tensors(spec):
        array = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
        kind = tensor_type(name, shape, quant, spec["layers"], spec["tied"])
        start, start_cpu = time.perf_counter(), time.process_time()
        tensor = encode(name, array, kind)
        wall, cpu = wall + time.perf_counter() - start, cpu + time.process_time() - start_cpu
        counts[kind] = counts.get(kind, 0) + 1
        weights += array.size
        if kind not in ("f32", "f16") and sq_sum.get(kind, 0) < 8e6 * 4e-4:  # ~8M weights of variance 4e-4
            back = dequantize(tensor.data, GGMLQuantizationType[kind.upper()])
            sq_err[kind] = sq_err.get(kind, 0.0) + float(np.sum((back - array) ** 2, dtype=np.float64))
            sq_sum[kind] = sq_sum.get(kind, 0.0) + float(np.sum(array.astype(np.float64) ** 2))
    rms = ", ".join(f"{kind} {np.sqrt(sq_err[kind] / sq_sum[kind]):.4f}" for kind in sorted(sq_err))
    types = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    print(f"{shapes} {quant}: {weights / 1e6:.0f}M weights, encode {wall:.1f} s wall / {cpu:.1f} s CPU")
    print(f"    tensors: {types}\n    relative RMS error: {rms}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quant", nargs="*", default=["q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0"])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    args = parser.parse_args()
    for shapes in args.shapes:
        for quant in args.quant:
            measure(shapes, quant)


if __name__ == "__main__":
    main()
