"""GGUF pieces checked against their readers: transformers' q/k un-permutation, gguf's q8_0, the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from llmft.errors import ExportError
from llmft.export.gguf_arch import arch_spec
from llmft.export.gguf_mix import tensor_type
from llmft.export.gguf_tensors import encode, permute_rotary
from llmft.export.gguf_tokenizer import tokenizer_meta

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_rotary_permutation_is_undone_by_transformers_reader(heads: int) -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    weight = np.random.default_rng(heads).standard_normal((heads * 8, 12)).astype(np.float32)
    permuted = permute_rotary(weight, heads)
    assert not np.array_equal(permuted, weight)
    config = {"num_attention_heads": heads, "num_key_value_heads": heads}
    restored = LlamaTensorProcessor(config).process(permuted, "blk.0.attn_q.weight").weights
    np.testing.assert_array_equal(restored, weight)


def test_encode_quantizes_matrices_and_keeps_vectors_and_odd_rows_readable() -> None:
    from gguf import GGMLQuantizationType, dequantize

    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((8, 64)).astype(np.float32)
    q8 = encode("blk.0.attn_q.weight", matrix, "q8_0")
    assert q8.type_name == "q8_0" and q8.raw_type == GGMLQuantizationType.Q8_0
    back = dequantize(q8.data, GGMLQuantizationType.Q8_0)
    assert back.shape == matrix.shape and np.abs(back - matrix).max() < np.abs(matrix).max() / 127
    assert tensor_type("blk.0.attn_q.weight", (8, 48), "q8_0", 1, tied=True) == "f16"  # 48 % 32 != 0
    assert tensor_type("output_norm.weight", (64,), "q8_0", 1, tied=True) == "f32"
    f16 = encode("blk.0.attn_q.weight", matrix[:, :48], "f16")
    assert f16.raw_type is None and f16.data.dtype == np.float16
    bf16 = encode("blk.0.attn_q.weight", matrix, "bf16")
    np.testing.assert_allclose(dequantize(bf16.data, GGMLQuantizationType.BF16), matrix, rtol=1e-2)


def test_unsupported_architecture_and_task_are_refused_with_the_supported_list() -> None:
    from transformers import BertConfig, LlamaConfig

    with pytest.raises(ExportError, match="does not support the `bert` architecture") as err:
        arch_spec(BertConfig(), "causal_lm")
    assert "gpt2, llama, mistral, qwen2" in (err.value.fix or "")
    with pytest.raises(
        ExportError, match="for causal language models; this run is a sequence_classification"
    ):
        arch_spec(LlamaConfig(), "sequence_classification")
    scaled = LlamaConfig(rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0})
    with pytest.raises(ExportError, match="rope scaling `linear`"):
        arch_spec(scaled, "causal_lm")
    with pytest.raises(ExportError, match="has attention_bias"):
        arch_spec(LlamaConfig(attention_bias=True), "causal_lm")


def test_tokenizer_kinds(tiny_model) -> None:  # noqa: ANN001
    from transformers import AutoTokenizer

    llama = tokenizer_meta(AutoTokenizer.from_pretrained(tiny_model("llama")), 2000, [2, 5])
    assert llama.pre == "gpt-2" and llama.add_bos and not llama.add_eos and llama.end_of_turn == 5
    assert len(llama.tokens) == 2000 and llama.tokens[-1] == "[PAD1999]" and llama.types[-1] == 5
    assert llama.types[:4] == [3, 3, 3, 3]  # <unk> <s> </s> <pad> are control tokens
    qwen = tokenizer_meta(AutoTokenizer.from_pretrained(tiny_model("qwen2")), 1, [])
    assert qwen.pre == "qwen2" and not qwen.add_bos and "NFC" in qwen.notes[0]
    with pytest.raises(ExportError, match="byte-level BPE tokenizers only; this one is WordPiece"):
        tokenizer_meta(AutoTokenizer.from_pretrained(tiny_model("bert")), 1, [])


def test_a_bpe_without_merges_is_refused() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    with pytest.raises(ExportError, match="byte-level BPE without any merges: a GGUF cannot carry"):
        tokenizer_meta(PreTrainedTokenizerFast(tokenizer_object=backend), len(alphabet), [])
