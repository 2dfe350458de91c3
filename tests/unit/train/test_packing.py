"""Packing: rows share a sequence but never attend across their boundary, and learn the same.

Per-document packed attention (llmft.train.packed_attention) gives the same logits and gradients as the
dense block-diagonal mask, standard SDPA wherever a padding mask exists, and is only switched on where
it is exact."""

from __future__ import annotations

import pytest
import torch
from tests.tolerances import LOSS_REL, assert_same_function

from llmft.data.collate import IGNORE, PackedCollator, pack_examples
from llmft.train import packed_attention
from llmft.train.loss import full_lm_loss, selective_lm_loss

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


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
    assert_same_function(together[0, :first], alone[first])
    assert_same_function(together[0, first : first + second], alone[second])


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
    torch.testing.assert_close(total, sum(loss for loss, _ in parts), atol=0, rtol=LOSS_REL)  # summed apart


# ------------------------------------------------------------------------- per-document attention
def _model(tiny_model, arch: str, attn: str = "sdpa") -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model(arch), attn_implementation=attn)


def _forward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits


@pytest.mark.parametrize("arch", ["gpt2", "llama", "qwen2"])
def test_each_packed_document_gets_the_logits_it_gets_alone(tiny_model, arch: str) -> None:
    model = _model(tiny_model, arch).eval()
    documents = rows([7, 11, 5, 9, 3], model.config.vocab_size)
    packs = pack_examples(documents, max_length=20)
    batch = PackedCollator(pad_id=0, length=24)(packs)
    assert packed_attention.enable(model, 24)
    assert model.config._attn_implementation == packed_attention.NAME
    with torch.no_grad():
        logits = _forward(model, batch)
        alone = {
            tuple(r["input_ids"]): model(input_ids=torch.tensor([r["input_ids"]]), use_cache=False).logits[0]
            for r in documents
        }
    checked = 0
    for b, pack in enumerate(packs):
        starts = [i for i, p in enumerate(pack["position_ids"]) if p == 0] + [len(pack["input_ids"])]
        for s, e in zip(starts, starts[1:], strict=False):
            key = tuple(pack["input_ids"][s:e])
            assert_same_function(logits[b, s:e], alone[key])
            checked += 1
    assert checked == len(documents)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_gradients_equal_the_dense_mask_path(tiny_model, arch: str) -> None:
    torch.manual_seed(0)
    dense = _model(tiny_model, arch).eval()  # eval: no dropout; gradients still flow
    segmented = _model(tiny_model, arch).eval()
    segmented.load_state_dict(dense.state_dict())
    assert packed_attention.enable(segmented, 32)
    packs = pack_examples(rows([9, 6, 12, 4, 8], dense.config.vocab_size, seed=1), max_length=32)
    batch = PackedCollator(pad_id=0, length=32)(packs)
    real = batch["token_mask"].bool()
    for model in (dense, segmented):
        (_forward(model, batch)[real].float().square().mean()).backward()
    for a, b in zip(dense.parameters(), segmented.parameters(), strict=True):
        assert_same_function(b.grad, a.grad)


def test_padded_batches_and_generation_are_unchanged(tiny_model) -> None:
    model = _model(tiny_model, "llama").eval()
    ids = torch.randint(5, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.no_grad():
        standard = model(input_ids=ids, attention_mask=mask).logits
        generated = model.generate(ids[:1, :4], max_new_tokens=6, do_sample=False)
        packed_attention.enable(model, 16)
        segmented = model(input_ids=ids, attention_mask=mask).logits
        generated_segmented = model.generate(ids[:1, :4], max_new_tokens=6, do_sample=False)
    # One document per row: the segmented path hands the same mask to the same kernel, so to the bit.
    torch.testing.assert_close(segmented[mask.bool()], standard[mask.bool()], atol=0, rtol=0)
    assert torch.equal(generated, generated_segmented)


def test_disable_restores_standard_sdpa(tiny_model) -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_model(tiny_model, "llama"), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    assert packed_attention.enable(model, 64)
    assert model.get_base_model().config._attn_implementation == packed_attention.NAME
    packed_attention.disable(model)
    assert model.get_base_model().config._attn_implementation == "sdpa"


def test_not_enabled_for_eager_attention(tiny_model) -> None:
    model = _model(tiny_model, "llama", attn="eager")
    assert not packed_attention.enable(model, 64)
    assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize(("window", "enabled"), [(16, False), (64, True), (None, True)])
def test_a_sliding_window_shorter_than_a_row_keeps_the_dense_mask(tiny_model, window, enabled: bool) -> None:
    model = _model(tiny_model, "qwen2")
    model.config.use_sliding_window = window is not None
    model.config.sliding_window = window
    assert packed_attention.enable(model, 64) is enabled


def test_segments_split_where_positions_do_not_increase_by_one() -> None:
    positions = torch.tensor([0, 1, 2, 0, 1, 0, 0, 1, 2, 3])
    assert packed_attention._segment_bounds(positions) == [0, 3, 5, 6, 10]
    assert packed_attention._segment_bounds(torch.arange(5)) == [0, 5]


def test_packed_batches_are_cut_to_their_longest_pack() -> None:
    packs = pack_examples(rows([9, 6, 3], vocab=50), max_length=64)
    assert len(packs) == 1 and len(packs[0]["input_ids"]) == 18
    batch = PackedCollator(pad_id=0, length=64)(packs)
    assert batch["input_ids"].shape == (1, 24)  # 18 rounded up to a multiple of 8, not 64
    assert int(batch["token_mask"].sum()) == 18
    assert batch["position_ids"][0, 18:].tolist() == list(range(6))  # the padding is its own 'document'
    exact = PackedCollator(pad_id=0, length=64, pad_to_multiple_of=None)(packs)
    assert exact["input_ids"].shape == (1, 18)
    assert PackedCollator(pad_id=0, length=20)(packs)["input_ids"].shape == (1, 20)  # never beyond length
