"""Batched generation: left padding and the KV cache change nothing about greedy answers; outputs stop at
the first end-of-turn id (stop reason `eos`) or run to max_new_tokens (`length`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmft.errors import ConfigError, DataError, ModelError
from llmft.generate.batch import Sampling, decode_output, generate_ids, prompt_ids
from llmft.generate.load import load_run
from llmft.generate.prompts import Prompt, from_raw, read_prompt_file
from llmft.generate.runner import choose_prompts, generate_records

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


@pytest.fixture(scope="module")
def llama(tiny_model):
    return load_run(tiny_model("llama"), device="cpu")


PROMPTS = [
    "What is the first word?\n\ncat dog",
    "Reverse the words.\n\nred blue green tree house car",
    "Hi",
    "What colour is the big sky?",
    "Repeat the words twice.\n\nmoon star",
]


def test_batched_greedy_equals_one_prompt_at_a_time(llama) -> None:
    ids = [prompt_ids(Prompt(text=t), llama.tokenizer, chat=True) for t in PROMPTS]
    assert len({len(i) for i in ids}) == len(ids)  # every row is padded differently in the batch
    sampling = Sampling(max_new_tokens=8, batch_size=len(ids))
    batched = generate_ids(llama.model, llama.tokenizer, ids, sampling)
    single = [generate_ids(llama.model, llama.tokenizer, [i], sampling)[0] for i in ids]
    assert [o.text for o in batched] == [o.text for o in single]
    assert all(o.stop_reason == "length" and o.new_tokens == 8 for o in batched)  # random weights


def test_sampling_is_seeded(llama) -> None:
    ids = [prompt_ids(Prompt(text=t), llama.tokenizer, chat=True) for t in PROMPTS[:2]]
    sampling = Sampling(max_new_tokens=8, temperature=1.5, top_k=50, top_p=0.95, seed=7)
    first = generate_ids(llama.model, llama.tokenizer, ids, sampling)
    again = generate_ids(llama.model, llama.tokenizer, ids, sampling)
    greedy = generate_ids(llama.model, llama.tokenizer, ids, Sampling(max_new_tokens=8))
    assert [o.text for o in first] == [o.text for o in again]
    assert [o.text for o in first] != [o.text for o in greedy]


def test_output_stops_at_the_first_end_of_turn_id(llama) -> None:
    tok = llama.tokenizer
    words = tok("blue sky", add_special_tokens=False)["input_ids"]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    stops = {im_end, tok.eos_token_id}
    ended = decode_output(words + [im_end, tok.eos_token_id, tok.pad_token_id], tok, stops)
    assert (ended.text, ended.new_tokens, ended.stop_reason) == ("blue sky", len(words) + 1, "eos")
    cut = decode_output(words, tok, stops)
    assert (cut.text, cut.new_tokens, cut.stop_reason) == ("blue sky", len(words), "length")
    textual = decode_output(tok("sky<|im_end|>", add_special_tokens=False)["input_ids"], tok, {999999})
    assert textual.stop_reason == "length"


def test_generation_config_stop_ids_end_answers(llama) -> None:
    """Make the model's first greedy token an end-of-turn id: every answer then stops at once with `eos`."""
    ids = [prompt_ids(Prompt(text=t), llama.tokenizer, chat=True) for t in PROMPTS]
    first = generate_ids(llama.model, llama.tokenizer, ids, Sampling(max_new_tokens=1))
    tok = llama.tokenizer
    firsts = {tok(o.text, add_special_tokens=False)["input_ids"][0] for o in first if o.text}
    config = llama.model.generation_config
    saved = config.eos_token_id
    config.eos_token_id = sorted(firsts | {tok.eos_token_id})
    try:
        outputs = generate_ids(llama.model, tok, ids, Sampling(max_new_tokens=6))
    finally:
        config.eos_token_id = saved
    assert all(o.stop_reason == "eos" and o.new_tokens == 1 and o.text == "" for o in outputs)


def test_prompts_from_every_data_format(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Reverse the words.", "input": "a b", "output": "b a"},
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
        {"conversations": [{"from": "human", "value": "Hey"}]},
        {"prompt": "Sky?", "chosen": "Blue", "rejected": "Red"},
        {"input": "translate", "target": "übersetzen"},
        {"text": "Once upon a time"},
    ]
    file = tmp_path / "p.jsonl"
    file.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    got = [(p.shown(), p.reference, p.messages is not None) for p in read_prompt_file(file)]
    assert got == [
        ("Reverse the words.\n\na b", "b a", True),
        ("Hi", "Hello", True),
        ("Hey", None, True),
        ("Sky?", "Blue", True),
        ("translate", "übersetzen", False),
        ("Once upon a time", None, False),
    ]
    lines = tmp_path / "p.txt"
    lines.write_text("first prompt\n\nsecond prompt\n", encoding="utf-8")
    assert [p.text for p in read_prompt_file(lines)] == ["first prompt", "second prompt"]
    assert from_raw({"instruction": "x", "system": "Be brief."}).conversation("ignored")[0]["content"] == (
        "Be brief."
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x"}\n{"label": 1}\n', encoding="utf-8")
    with pytest.raises(DataError, match="row 2 is not a prompt: no prompt column among label"):
        read_prompt_file(bad)


def test_prompts_come_from_exactly_one_source(llama, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give prompts one way: none was given"):
        choose_prompts(llama)
    with pytest.raises(ConfigError, match="got --prompt and --split"):
        choose_prompts(llama, prompts=["hi"], split="test")
    with pytest.raises(ConfigError, match="--split needs a run dir"):
        choose_prompts(llama, split="test")
    records = generate_records(llama, choose_prompts(llama, prompts=["a", "b", "c"], max_rows=2), Sampling(4))
    assert [(r["prompt"], r["new_tokens"], r["stop_reason"]) for r in records] == [
        ("a", 4, "length"),
        ("b", 4, "length"),
    ]


def test_loading_something_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="neither a finished run dir"):
        load_run(tmp_path)


def test_compare_base_answers_with_the_adapter_off(tiny_model, tmp_path: Path) -> None:
    """`--compare-base`: base_output is what the base model alone answers; output is the adapter's."""
    import torch
    from peft import LoraConfig, get_peft_model

    base_dir = tiny_model("llama")
    loaded = load_run(base_dir, device="cpu")
    prompts = [Prompt(text=t) for t in PROMPTS[:3]]
    sampling = Sampling(max_new_tokens=6, batch_size=3)
    alone = generate_records(loaded, prompts, sampling)
    torch.manual_seed(0)
    adapted = get_peft_model(loaded.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    for name, weight in adapted.named_parameters():
        if "lora_B" in name:  # peft starts B at zero (no change); make the adapter change the answers
            weight.data.normal_(0, 2.0)
    loaded.model = adapted.eval()
    records = generate_records(loaded, prompts, sampling, compare_base=True)
    assert [r["base_output"] for r in records] == [r["output"] for r in alone]
    assert [r["output"] for r in records] != [r["base_output"] for r in records]


def test_compare_base_of_a_full_fine_tune_says_there_is_no_adapter(llama) -> None:
    with pytest.raises(ConfigError, match="--compare-base needs a run trained with an adapter"):
        generate_records(llama, [Prompt(text="Hi")], Sampling(max_new_tokens=2), compare_base=True)
