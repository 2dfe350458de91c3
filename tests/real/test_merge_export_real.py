"""`llmft merge` and `llmft export --format gguf --quant f32` of a LoRA run on the real model read back equal.

Part of `make test` (not marked `real_model`): the shortest real-model check, two LoRA steps and the round
trip, and the one that proves the real model is fetched and cached. The f32 file is read back by
transformers' own GGUF reader, the reference, and must hold the merged weights to the bit and give the
merged model's logits.

Measured (2 steps): 2.9 min wall on the 2-core machine at a load average of 2.5; weights and logits
bitwise equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.tolerances import assert_same_function

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

TEXTS = [
    "The capital of France is Paris, and the capital of Italy is Rome.",
    "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nI am Llamalo.",
]


@pytest.fixture(scope="module")
def outputs(real_model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:  # noqa: ANN001
    """A 2-step LoRA run (lr 1e-2, so the merge visibly changes the model), merged and exported."""
    tmp = tmp_path_factory.mktemp("merge-export")
    rows = [{"instruction": f"Who are you? ({i})", "input": "", "output": "I am Llamalo."} for i in range(16)]
    data = tmp / "rows.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    run_dir = real_model.train(
        {
            "data": {"dataset": {"train_file": str(data)}, "tokenization": {"max_length": 48}},
            "model": {"adapter": {"type": "lora", "r": 8, "alpha": 16}},
            "training": {"max_steps": 2, "batch_size": 8, "learning_rate": 1e-2, "eval_strategy": "no",
                         "save_strategy": "no"},
        },
        tmp,
    )  # fmt: skip
    merged, gguf = tmp / "merged", tmp / "export" / "model-f32.gguf"
    real_model.llmft("merge", run_dir, "--out", merged, "--dtype", "float32", cwd=tmp)
    real_model.llmft("export", run_dir, "--format", "gguf", "--quant", "f32", "--out", gguf, cwd=tmp)
    return {"merged": merged, "gguf": gguf, "base": real_model.copy}


def test_the_f32_gguf_reads_back_as_the_merged_model(outputs: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged = AutoModelForCausalLM.from_pretrained(outputs["merged"], dtype=torch.float32).eval()
    gguf = outputs["gguf"]
    read = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    mine, theirs = merged.state_dict(), read.state_dict()
    assert mine.keys() == theirs.keys()
    differ = [name for name, value in mine.items() if not torch.equal(value, theirs[name])]
    assert differ == []  # f32 stores every float32 weight as it is

    tokenizer = AutoTokenizer.from_pretrained(outputs["merged"])
    read_tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    assert [read_tokenizer(t)["input_ids"] for t in TEXTS] == [tokenizer(t)["input_ids"] for t in TEXTS]
    with torch.no_grad():
        ids = tokenizer(TEXTS, return_tensors="pt", padding=True)
        want, got = merged(**ids).logits, read(**ids).logits
    # The weights are equal to the bit (above) and the configs alike, so the logits differ only if a tensor's
    # memory layout sends a matmul down another summation order: FORWARD_REL's margin. Measured: 0.0
    # (bitwise equal, max |logit| 38.7).
    assert_same_function(got, want)


def test_the_merge_changed_the_attention_projections_only(outputs: dict[str, Path]) -> None:
    """The round trip above would also pass for an adapter that did nothing: this one changed the weights
    LoRA targets (`auto`: the attention projections), and no others."""
    from safetensors.torch import load_file

    base = load_file(outputs["base"] / "model.safetensors")
    merged = load_file(outputs["merged"] / "model.safetensors")
    assert base.keys() == merged.keys()
    changed = {name.split(".")[-2] for name, w in base.items() if not torch.equal(w, merged[name])}
    assert changed and changed <= {"q_proj", "k_proj", "v_proj", "o_proj"}, changed
