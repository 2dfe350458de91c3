"""The storage type of each tensor, against tables written out from llama.cpp's rule.

Source: llama.cpp src/llama-quant.cpp (ggml-org/llama.cpp at 007dbbf3), ``llama_tensor_get_type_impl``:
  - the OUTPUT / tied TOKEN_EMBD branch: ``nx % qk_k != 0`` → Q8_0, else ``new_type != Q8_0`` → Q6_K;
  - ``category_is_attn_v`` (attn_v, attn_qkv): ``(Q4_K_M || Q5_K_M) && use_more_bits(i_attention_wv,
    n_attention_wv)`` → Q6_K;
  - FFN_DOWN: ``Q4_K_M`` (not Falcon) and ``Q5_K_M``: ``use_more_bits(i_layer, n_layer)`` → Q6_K;
  - ``use_more_bits = i < n/8 || i >= 7*n/8 || (i - n/8) % 3 == 2``;
``tensor_type_fallback``: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, then F16 if 32 does not divide the row;
``tensor_allows_quantization``: 1-D tensors, ``*_norm.weight`` and position embeddings are not quantized.
"""

from __future__ import annotations

import pytest

from llmft.export.gguf_mix import QUANTS, tensor_type, use_more_bits

# 8 layers: n/8 = 1, 7n/8 = 7, so layers 0 and 7, and 3 and 6 ((i - 1) % 3 == 2), get more bits.
MORE_BITS_8 = {0, 3, 6, 7}
# 30 layers (SmolLM2-135M): n/8 = 3, 7n/8 = 26: layers 0-2 and 26-29, and 5, 8, ..., 23.
MORE_BITS_30 = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29}


def llama_tensors(hidden: int, ffn: int, vocab: int, layers: int, tied: bool) -> dict[str, tuple[int, int]]:
    """GGUF names and GGUF shapes ``[rows, row length]`` of a Llama (the output head left out when tied)."""
    shapes = {"token_embd.weight": (vocab, hidden), "output_norm.weight": (hidden,)}
    if not tied:
        shapes["output.weight"] = (vocab, hidden)
    for i in range(layers):
        for name, shape in {
            "attn_norm": (hidden,), "ffn_norm": (hidden,), "attn_q": (hidden, hidden),
            "attn_k": (hidden // 4, hidden), "attn_v": (hidden // 4, hidden), "attn_output": (hidden, hidden),
            "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden), "ffn_down": (hidden, ffn),
        }.items():  # fmt: skip
            shapes[f"blk.{i}.{name}.weight"] = shape
    return shapes


def expected_llama(quant: str, layers: int, more_bits: set[int], tied: bool) -> dict[str, str]:
    """llama.cpp's table for a Llama whose rows are all multiples of 256 (no fallback)."""
    default, head, more = {
        "q4_k_m": ("q4_k", "q6_k", "q6_k"),
        "q5_k_m": ("q5_k", "q6_k", "q6_k"),
        "q6_k": ("q6_k", "q6_k", "q6_k"),
        "q4_0": ("q4_0", "q6_k", "q4_0"),
        "q8_0": ("q8_0", "q8_0", "q8_0"),
        "f16": ("f16", "f16", "f16"),
    }[quant]
    table = {"token_embd.weight": head if tied else default, "output_norm.weight": "f32"}
    if not tied:
        table["output.weight"] = head
    for i in range(layers):
        for role in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            table[f"blk.{i}.{role}.weight"] = default
        for role in ("attn_v", "ffn_down"):
            table[f"blk.{i}.{role}.weight"] = more if i in more_bits else default
        table[f"blk.{i}.attn_norm.weight"] = table[f"blk.{i}.ffn_norm.weight"] = "f32"
    return table


def types_of(shapes: dict[str, tuple[int, ...]], quant: str, layers: int, tied: bool) -> dict[str, str]:
    return {name: tensor_type(name, shape, quant, layers, tied) for name, shape in shapes.items()}


def test_use_more_bits_picks_llama_cpps_layers() -> None:
    assert {i for i in range(8) if use_more_bits(i, 8)} == MORE_BITS_8
    assert {i for i in range(30) if use_more_bits(i, 30)} == MORE_BITS_30


@pytest.mark.parametrize("quant", ["q4_k_m", "q5_k_m", "q6_k", "q4_0", "q8_0", "f16"])
@pytest.mark.parametrize("tied", [False, True])
def test_each_tensor_of_a_small_llama_gets_llama_cpps_type(quant: str, tied: bool) -> None:
    shapes = llama_tensors(hidden=256, ffn=512, vocab=1024, layers=8, tied=tied)
    assert types_of(shapes, quant, 8, tied) == expected_llama(quant, 8, MORE_BITS_8, tied)


def test_smollm2_135m_shapes_fall_back_where_256_does_not_divide_the_row() -> None:
    """hidden 576 = 18·32 is not a multiple of 256: its rows fall back; ffn_down's (1536 = 6·256) do not."""
    shapes = llama_tensors(hidden=576, ffn=1536, vocab=49152, layers=30, tied=True)
    q4 = types_of(shapes, "q4_k_m", 30, tied=True)
    assert q4["token_embd.weight"] == "q8_0"  # the tied head: 576 % 256 != 0 → Q8_0 (not Q6_K)
    assert q4["blk.0.attn_q.weight"] == q4["blk.4.attn_v.weight"] == q4["blk.9.ffn_up.weight"] == "q5_0"
    assert q4["blk.5.attn_v.weight"] == "q8_0"  # more bits (Q6_K), then Q6_K's fallback
    assert [q4[f"blk.{i}.ffn_down.weight"] for i in (0, 4, 5, 29)] == ["q6_k", "q4_k", "q6_k", "q6_k"]
    q5 = types_of(shapes, "q5_k_m", 30, tied=True)
    assert q5["blk.4.attn_q.weight"] == "q5_1" and q5["blk.4.ffn_down.weight"] == "q5_k"
    assert types_of(shapes, "q6_k", 30, tied=True)["blk.4.attn_q.weight"] == "q8_0"
    assert types_of(shapes, "q4_0", 30, tied=True)["token_embd.weight"] == "q8_0"


def test_rows_not_a_multiple_of_32_are_f16_and_gpt2_parts_follow_the_rule() -> None:
    assert (
        tensor_type("blk.0.ffn_down.weight", (48, 192), "q4_k_m", 1, tied=False) == "q8_0"
    )  # Q6_K's stand-in
    assert tensor_type("blk.0.attn_q.weight", (48, 48), "q4_k_m", 1, tied=False) == "f16"  # 48 % 32 != 0
    assert tensor_type("blk.0.attn_q.weight", (48, 48), "q4_0", 1, tied=False) == "f16"
    # GPT-2: the fused attn_qkv counts as attn_v; position embeddings and biases are not quantized
    assert tensor_type("blk.0.attn_qkv.weight", (768, 256), "q4_k_m", 8, tied=True) == "q6_k"
    assert tensor_type("blk.1.attn_qkv.weight", (768, 256), "q4_k_m", 8, tied=True) == "q4_k"
    assert tensor_type("position_embd.weight", (1024, 256), "q4_k_m", 8, tied=True) == "f32"
    assert tensor_type("blk.0.attn_qkv.bias", (768,), "q4_k_m", 8, tied=True) == "f32"
    assert tensor_type("position_embd.weight", (1024, 256), "f16", 8, tied=True) == "f16"


def test_every_quant_is_a_mix() -> None:
    assert QUANTS == ("f32", "f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0")
