"""Per-token log-probs of completions equal a hand computation from the full logits (softmax of the
logits divided by the temperature, at the next token), TRL's own ``selective_log_softmax``, and TRL 1.16's
``GRPOTrainer._get_per_token_logps_and_entropies`` on a real (tiny) model through TRL's fused LM head."""

from __future__ import annotations

import copy
from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch
from tests.tolerances import EPS

from llmft.train.rl.logprobs import completion_logprobs, selective_logprobs

pytestmark = pytest.mark.numeric  # compares numbers with another library and a hand computation
trl = pytest.importorskip("trl", reason="TRL is the reference implementation (test extra)")
from trl import GRPOTrainer  # noqa: E402
from trl.trainer.utils import add_fused_lm_head, selective_log_softmax  # noqa: E402

# float64 on both sides, a log-softmax over ≤ 50 logits of size ≲ 5: they agree to ~1e-14; 1e-6 is the
# issue's bar, and a wrong position (off by one token) or a missing temperature moves a log-prob by ≥ 1e-2.
TOL = 1e-6


def _by_hand(logits: torch.Tensor, ids: torch.Tensor, completion: int, temperature: float) -> torch.Tensor:
    """log p(token t+1 | ..t) for the completion's tokens, one softmax at a time, in float64."""
    rows, length = ids.shape
    out = torch.zeros(rows, completion, dtype=torch.float64)
    for row in range(rows):
        for k, position in enumerate(range(length - completion - 1, length - 1)):
            z = logits[row, position].double() / temperature
            p = torch.exp(z - z.max()) / torch.exp(z - z.max()).sum()
            out[row, k] = torch.log(p[ids[row, position + 1]])
    return out


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_completion_logprobs_equal_a_hand_computation_and_trls(temperature: float) -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (3, 9))
    logits = 2 * torch.randn(3, 9, 50, dtype=torch.float64)
    ours = completion_logprobs(logits, ids, completion_length=4, temperature=temperature)
    torch.testing.assert_close(ours, _by_hand(logits, ids, 4, temperature), atol=TOL, rtol=0)
    theirs = selective_log_softmax(logits[:, -5:-1], ids[:, -4:], temperature=temperature)
    torch.testing.assert_close(ours, theirs, atol=TOL, rtol=0)


def test_half_precision_logits_are_scored_in_float32() -> None:
    logits = torch.randn(2, 5, 30).bfloat16()
    ids = torch.randint(0, 30, (2, 5))
    ours = selective_logprobs(logits[:, :-1], ids[:, 1:])
    assert ours.dtype == torch.float32
    want = torch.log_softmax(logits[:, :-1].double(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    torch.testing.assert_close(ours.double(), want, atol=TOL, rtol=0)


def test_bad_lengths_and_temperatures_are_refused() -> None:
    logits, ids = torch.zeros(1, 4, 5), torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="completion_length must be in 1..3"):
        completion_logprobs(logits, ids, completion_length=4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        selective_logprobs(logits, ids, temperature=0.0)


# TRL's fused head scores float32 in vocabulary tiles with an online logsumexp; ours takes the model's full
# float32 logits. A log-prob (|x| ≲ 12 here) is a logit (a dot product of 64 terms) minus a logsumexp over
# the vocabulary (879 terms): each rounds by ~√n·EPS of its size, ≈ (8 + 30)·EPS·12 ≈ 5e-5 at worst together
# (measured: 1e-6). 1e-4 covers that; a token off by one position moves a log-prob by ≥ 1e-1.
FUSED_TOL = 1e-4
assert FUSED_TOL > (8 + 30) * EPS * 12


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_completion_logprobs_equal_grpo_trainers_on_a_tiny_model(tiny_model, temperature: float) -> None:  # noqa: ANN001
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama")).eval()
    fused = copy.deepcopy(model)
    add_fused_lm_head(fused, temperature=temperature)
    torch.manual_seed(0)
    ids = torch.randint(4, model.config.vocab_size, (3, 10))
    attention = torch.ones_like(ids)
    attention[0, :2] = 0  # a left-padded prompt
    attention[2, -3:] = 0  # a short completion, right-padded
    fake = SimpleNamespace(accelerator=SimpleNamespace(autocast=nullcontext, is_main_process=True))
    with torch.no_grad():
        theirs, _, _ = GRPOTrainer._get_per_token_logps_and_entropies(fake, fused, ids, attention, 6)
        logits = model(input_ids=ids, attention_mask=attention).logits
    ours = completion_logprobs(logits, ids, 6, temperature)
    completion_mask = attention[:, -6:]
    torch.testing.assert_close(ours * completion_mask, theirs * completion_mask, atol=FUSED_TOL, rtol=0)
