"""`llmft export --quant q4_k_m` (and the other k-quant mixes) read back by the references: gguf-py's reader
for the types llama.cpp's rule gives each tensor, transformers' GGUF loader for the model's logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.unit.export.test_gguf_mix import expected_llama

from llmft.cli.main import main
from llmft.export.gguf import export_gguf
from llmft.export.source import resolve_source

pytestmark = [pytest.mark.numeric, pytest.mark.slow]

LAYERS = 8  # enough for llama.cpp's use_more_bits to pick some layers and not others: 0, 3, 6, 7


@pytest.fixture(scope="module")
def llama_256(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """A Llama whose rows are all multiples of 256 (every matrix a k-quant), with the tiny tokenizer.

    Initialised at std 0.02 (transformers' default), where a small weight error stays small in the
    logits; the session's tiny models use a wider init that amplifies any perturbation layer by layer.
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model("llama"))
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=LAYERS,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=3,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("llama256")
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def reference(llama_256: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, the float32 model's logits for them)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(llama_256, dtype=torch.float32).eval()
    ids = torch.randint(4, model.config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return ids, model(input_ids=ids).logits


def gguf_types(path: Path) -> tuple[dict[str, str], int]:
    """Each tensor's storage type and ``general.file_type``, as gguf-py's reader sees the file."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    field = reader.fields["general.file_type"]
    file_type = int(field.parts[field.data[0]][0])
    return {t.name: t.tensor_type.name.lower() for t in reader.tensors}, file_type


def correlation(path: Path, want: torch.Tensor, ids: torch.Tensor) -> float:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    with torch.no_grad():
        got = model(input_ids=ids).logits
    return float(np.corrcoef(got.flatten().numpy(), want.flatten().numpy())[0, 1])


def test_q4_k_m_export_has_llama_cpps_types_and_loads_in_transformers(
    llama_256: Path, reference: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    from gguf import LlamaFileType

    base, (ids, want) = llama_256, reference
    file = tmp_path / "out" / "m-q4_k_m.gguf"
    assert main(["export", str(base), "--format", "gguf", "--quant", "q4_k_m", "--out", str(file)]) == 0
    types, file_type = gguf_types(file)
    assert file_type == LlamaFileType.MOSTLY_Q4_K_M
    assert types == expected_llama("q4_k_m", LAYERS, {0, 3, 6, 7}, tied=False)
    q4_0 = export_gguf(resolve_source(base), tmp_path / "out" / "m-q4_0.gguf", quant="q4_0").path
    k_m, plain = correlation(file, want, ids), correlation(q4_0, want, ids)
    # Each matrix carries ~7% relative RMS error (Q4_K, unit-tested); through 8 layers this model's logits
    # keep a correlation of ~0.98 with the float32 ones. A wrong block layout, scale or tensor order makes
    # the weights' error as large as the weights and the correlation falls below 0.5; 0.95 separates the
    # two. And llama.cpp's order holds for the whole model: the q4_k_m mix is closer than plain q4_0.
    assert k_m >= 0.95 and k_m > plain, (k_m, plain)


@pytest.mark.parametrize("quant", ["q5_k_m", "q6_k"])
def test_other_k_quant_mixes_follow_the_rule_and_sit_closer_to_float32(
    quant: str, llama_256: Path, reference: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    result = export_gguf(resolve_source(llama_256), tmp_path / f"m-{quant}.gguf", quant=quant)
    types, _ = gguf_types(result.path)
    assert types == expected_llama(quant, LAYERS, {0, 3, 6, 7}, tied=False)
    ids, want = reference
    # Q5_K's and Q6_K's errors are ~1/2 and ~1/4 of Q4_K's (unit-tested), so these sit above q4_k_m's 0.95
    assert correlation(result.path, want, ids) >= 0.97


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_rows_not_a_multiple_of_256_fall_back_as_llama_cpp_does_and_say_so(arch: str, tiny_model) -> None:  # noqa: ANN001
    """The session's tiny models are 64 wide: Q4_K → Q5_0 there; only ffn_down's rows (the 256-wide MLP's)
    stay Q4_K or get Q6_K. GPT-2's position embeddings are not quantized."""
    from transformers import AutoModelForCausalLM

    base = tiny_model(arch)
    result = export_gguf(resolve_source(base), base.parent / f"{arch}-q4_k_m.gguf", quant="q4_k_m")
    types, _ = gguf_types(result.path)
    assert types["blk.0.ffn_up.weight"] == "q5_0"
    # 2 layers: use_more_bits picks layer 1 only (i >= 7·2/8); ffn_down's rows are 256 long
    assert (types["blk.0.ffn_down.weight"], types["blk.1.ffn_down.weight"]) == ("q4_k", "q6_k")
    head = "output.weight" if arch == "llama" else "token_embd.weight"  # GPT-2's head is tied
    assert types[head] == "q8_0"  # Q6_K wanted, but 64 % 256 != 0
    assert any("stored as q5_0 instead of q4_k (as llama.cpp does)" in note for note in result.notes)
    if arch == "gpt2":
        assert types["position_embd.weight"] == "f32"
        # the fused attn_qkv counts as attn_v: Q4_K → Q5_0 in layer 0, Q6_K → Q8_0 in layer 1
        assert (types["blk.0.attn_qkv.weight"], types["blk.1.attn_qkv.weight"]) == ("q5_0", "q8_0")
    model = AutoModelForCausalLM.from_pretrained(base.parent, gguf_file=result.path.name, dtype=torch.float32)
    ids = torch.randint(4, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()
