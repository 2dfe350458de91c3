"""Packing: rows share a sequence but never attend across their boundary, and learn the same."""

from __future__ import annotations

import pytest
import torch

from llmft.data.collate import IGNORE, PackedCollator, pack_examples
from llmft.train.loss import full_lm_loss, selective_lm_loss


def rows(lengths: list[int], vocab: int, seed: int = 0) -> list[dict[str, object]]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(5, vocab, (n,), generator=gen).tolist()
        out.append({"input_ids": ids, "labels": list(ids)})
    return out


def test_first_fit_packs_every_row_once_within_length() -> None:
    examples = rows([5, 9, 3, 7, 2, 8], vocab=50)
    packed = pack_examples(examples, max_length=12)
    assert all(len(p["input_ids"]) <= 12 for p in packed)
    assert sum(len(p["input_ids"]) for p in packed) == sum(len(e["input_ids"]) for e in examples)
    assert len(packed) == 3  # 34 tokens in bins of 12 → 3 bins at best
    for p in packed:
        starts = [i for i, pos in enumerate(p["position_ids"]) if pos == 0]
        assert all(p["labels"][i] == IGNORE for i in starts)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_no_token_attends_across_a_boundary(arch: str, tiny_model) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch)).eval()
    vocab = model.config.vocab_size
    a, b = rows([7, 11], vocab)
    packed = pack_examples([a, b], max_length=32)
    assert len(packed) == 1
    batch = PackedCollator(pad_id=0, length=24)([packed[0]])
    with torch.no_grad():
        together = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        alone = {
            len(r["input_ids"]): model(input_ids=torch.tensor([r["input_ids"]]), use_cache=False).logits[0]
            for r in (a, b)
        }
    first, second = (11, 7)  # first-fit decreasing puts the longer row first
    torch.testing.assert_close(together[0, :first], alone[first], atol=1e-5, rtol=0)
    torch.testing.assert_close(together[0, first : first + second], alone[second], atol=1e-5, rtol=0)


def test_packed_loss_equals_sum_of_row_losses(tiny_model) -> None:
    """The selective loss on a packed batch is exactly the per-row losses added up."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama")).eval()
    examples = rows([6, 9, 4], model.config.vocab_size, seed=3)
    packed = pack_examples(examples, max_length=32)
    batch = PackedCollator(pad_id=0, length=32)(packed)
    with torch.no_grad():
        total, count = selective_lm_loss(model, {k: v for k, v in batch.items() if k != "token_mask"})
        parts = [
            full_lm_loss(
                model, {"input_ids": torch.tensor([e["input_ids"]]), "labels": torch.tensor([e["labels"]])}
            )
            for e in examples
        ]
    assert count == sum(n for _, n in parts) == sum(len(e["input_ids"]) - 1 for e in examples)
    torch.testing.assert_close(total, sum(loss for loss, _ in parts), atol=1e-4, rtol=1e-5)
