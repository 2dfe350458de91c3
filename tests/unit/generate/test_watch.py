"""Per-row controls of batched generation (stop strings, streaming, cancellation): without controls, or with
controls that ask nothing, outputs are exactly `llmft generate`'s; each control changes only its own row."""

from __future__ import annotations

import pytest

from llmft.generate.batch import Sampling, generate_ids, prompt_ids
from llmft.generate.load import load_run
from llmft.generate.prompts import Prompt
from llmft.generate.watch import RowControl, _held_back, cut_at_stop

pytestmark = pytest.mark.numeric  # compares generated tokens across calls

PROMPTS = ["What is the first word?\n\ncat dog", "Hi", "Reverse the words.\n\nred blue green tree house car"]
SAMPLING = Sampling(max_new_tokens=12, batch_size=8)


@pytest.fixture(scope="module")
def llama(tiny_model):
    return load_run(tiny_model("llama"), device="cpu")


@pytest.fixture(scope="module")
def ids(llama) -> list[list[int]]:
    return [prompt_ids(Prompt(text=t), llama.tokenizer, chat=True) for t in PROMPTS]


@pytest.fixture(scope="module")
def plain(llama, ids):
    return generate_ids(llama.model, llama.tokenizer, ids, SAMPLING)


def test_empty_controls_change_nothing(llama, ids, plain) -> None:
    watched = generate_ids(llama.model, llama.tokenizer, ids, SAMPLING, controls=[RowControl()] * len(ids))
    assert watched == plain


def test_streamed_pieces_join_to_the_final_text(llama, ids, plain) -> None:
    pieces: list[list[str]] = [[] for _ in ids]
    controls = [RowControl(on_text=pieces[i].append) for i in range(len(ids))]
    watched = generate_ids(llama.model, llama.tokenizer, ids, SAMPLING, controls=controls)
    assert watched == plain
    assert ["".join(p) for p in pieces] == [o.text for o in plain]
    assert max(len(p) for p in pieces) > 1  # streamed as it was made, not once at the end


def test_a_stop_string_ends_only_its_own_row(llama, ids, plain) -> None:
    """Stop at a piece of row 0's greedy answer: row 0 ends before it, the other rows are unchanged."""
    text = plain[0].text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assert stop.strip() and text.index(stop) > 0
    pieces: list[str] = []
    controls = [RowControl(stop=(stop,), on_text=pieces.append), RowControl(), RowControl()]
    watched = generate_ids(llama.model, llama.tokenizer, ids, SAMPLING, controls=controls)
    assert watched[0].text == text[: text.index(stop)] and watched[0].stop_reason == "stop"
    assert watched[0].new_tokens < plain[0].new_tokens
    assert "".join(pieces) == watched[0].text
    assert watched[1:] == plain[1:]


def test_a_cancelled_row_stops_and_the_rest_go_on(llama, ids, plain) -> None:
    steps = [0]

    def cancelled() -> bool:
        steps[0] += 1
        return steps[0] > 3

    controls = [RowControl(), RowControl(cancelled=cancelled), RowControl()]
    watched = generate_ids(llama.model, llama.tokenizer, ids, SAMPLING, controls=controls)
    assert (watched[1].stop_reason, watched[1].new_tokens) == ("cancelled", 4)
    assert plain[1].text.startswith(watched[1].text)
    assert [watched[0], watched[2]] == [plain[0], plain[2]]


def test_a_row_may_end_sooner_than_the_batch(llama, ids, plain) -> None:
    controls = [RowControl(), RowControl(max_new_tokens=3), RowControl()]
    watched = generate_ids(llama.model, llama.tokenizer, ids, SAMPLING, controls=controls)
    alone = generate_ids(llama.model, llama.tokenizer, ids[1:2], Sampling(max_new_tokens=3))
    assert watched[1] == alone[0] and watched[1].stop_reason == "length"
    assert [watched[0], watched[2]] == [plain[0], plain[2]]


def test_stop_string_helpers() -> None:
    assert cut_at_stop("a cat sat", ("sat", "cat")) == ("a ", True)
    assert cut_at_stop("a cat", ("dog", "")) == ("a cat", False)
    assert _held_back("hello wor", ("world",)) == 3
    assert _held_back("answer<|im", ()) == 4  # the textual ChatML end marker is never streamed
    assert _held_back("plain", ("xyz",)) == 0
