"""Next-token accuracy of a language model equals a hand count from the full logits: the argmax at
position t against the label at t+1 (seq2seq: at each label position), only where the label carries loss.

Labels are made from the model's own predictions at chosen positions, so the count is known in advance
and is neither 0 nor everything; the selective-head path (logits only at loss positions) must agree.
"""

from __future__ import annotations

import pytest
import torch

from llmft.evaluate.run import evaluate
from llmft.train.loss import (
    IGNORE,
    full_lm_counts,
    full_lm_loss,
    selective_lm_counts,
    selective_lm_loss,
    seq2seq_counts,
    seq2seq_loss,
)


def load(path: object, seq2seq: bool = False) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    cls = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    return cls.from_pretrained(path).eval()


def causal_batch(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], int, int]:
    """A batch whose labels hit the model's argmax at every third loss position; (batch, right, total)."""
    torch.manual_seed(0)
    vocab = model.config.vocab_size
    input_ids = torch.randint(3, vocab, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 9:] = 0  # a padded row
    with torch.no_grad():
        predicted = model(input_ids=input_ids, attention_mask=attention_mask).logits.argmax(-1)
    labels = torch.full_like(input_ids, IGNORE)
    right = total = 0
    for b in range(3):
        for t in range(4, 11):  # the prompt (positions < 5 as targets) and padding carry no loss
            if attention_mask[b, t + 1] == 0:
                continue
            hit = t % 3 == 0
            guess = int(predicted[b, t])
            labels[b, t + 1] = guess if hit else (guess + 1) % vocab
            right, total = right + hit, total + 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}, right, total


def hand_count(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    right = total = 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            if labels[b, t + 1] != IGNORE:
                total += 1
                right += int(logits[b, t].argmax()) == int(labels[b, t + 1])
    return right, total


@pytest.mark.parametrize("counts", [selective_lm_counts, full_lm_counts])
def test_causal_lm_accuracy_equals_a_hand_count(tiny_model, counts) -> None:  # noqa: ANN001
    model = load(tiny_model("llama"))
    batch, right, total = causal_batch(model)
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss, n, correct = counts(model, batch)
        reference_loss, _ = (selective_lm_loss if counts is selective_lm_counts else full_lm_loss)(
            model, batch
        )
    assert (correct, n) == hand_count(full, batch["labels"]) == (right, total)
    assert 0 < correct < n
    assert float(loss) == pytest.approx(float(reference_loss), rel=1e-5)


def test_evaluate_reports_accuracy_only_when_asked(tiny_model) -> None:  # noqa: ANN001
    model = load(tiny_model("llama"))
    batch, right, total = causal_batch(model)
    asked = evaluate(model, [batch], selective_lm_loss, "causal_lm", metrics=["loss", "accuracy"])
    assert asked["eval_accuracy"] == pytest.approx(right / total)
    assert asked["eval_tokens"] == total
    plain = evaluate(model, [batch], selective_lm_loss, "causal_lm")
    assert "eval_accuracy" not in plain and plain["eval_loss"] == pytest.approx(asked["eval_loss"], rel=1e-5)


def test_seq2seq_accuracy_counts_each_label_position(tiny_model) -> None:  # noqa: ANN001
    model = load(tiny_model("t5"), seq2seq=True)
    torch.manual_seed(0)
    input_ids = torch.randint(3, model.config.vocab_size, (2, 8))
    labels = torch.randint(3, model.config.vocab_size, (2, 6))
    with torch.no_grad():
        predicted = model(input_ids=input_ids, labels=labels).logits.argmax(-1)
    labels = torch.where(torch.arange(6) % 2 == 0, predicted, (predicted + 1) % model.config.vocab_size)
    labels[1, 4:] = IGNORE
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}
    with torch.no_grad():
        logits = model(**batch).logits  # labels feed the decoder: recompute with the final labels
        loss, n, correct = seq2seq_counts(model, batch)
        reference_loss, _ = seq2seq_loss(model, batch)
    expected = int(((logits.argmax(-1) == labels) & (labels != IGNORE)).sum())
    assert (correct, n) == (expected, 10)
    assert float(loss) == pytest.approx(float(reference_loss), rel=1e-5)
