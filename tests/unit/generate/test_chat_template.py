"""Templates and stopping settled at training time: the template a run trained with, built-ins included, is
saved as a Jinja chat template, and plain ``apply_chat_template`` on the saved tokenizer gives exactly the ids
training used; ``generation_config.json`` lists every end-of-turn id; the end-of-turn token carries loss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from llmft.config.schema import PreprocessingConfig, TokenizationConfig
from llmft.data.collate import PadCollator
from llmft.data.formats import format_rows
from llmft.data.labels import IGNORE
from llmft.data.templates import choose_template
from llmft.data.tokenize import Encoder, encode_conversation
from llmft.generate.chat_template import save_generation_files, settle_generation
from llmft.synth.data import generate_rows


def _tokenizer(tiny_model, arch: str):
    tok = AutoTokenizer.from_pretrained(tiny_model(arch))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


@pytest.fixture(scope="module")
def conversations(shared_data_dir: Path) -> list[list[dict[str, str]]]:
    """Real rows (every 3rd of the alpaca demo, all of identity.json), and multi-turn chats with system
    turns."""
    raw = json.loads((shared_data_dir / "alpaca_en_demo.json").read_text(encoding="utf-8"))[::3]
    raw += json.loads((shared_data_dir / "identity.json").read_text(encoding="utf-8"))
    rows, report = format_rows(raw, "alpaca", PreprocessingConfig(), "demo")
    assert report.kept == len(raw) > 400
    chats = [r["messages"] for r in generate_rows("chat", 60, seed=3)]  # type: ignore[index]
    assert any(len(c) > 3 for c in chats) and any(c[0]["role"] == "system" for c in chats)
    return [r["messages"] for r in rows] + chats  # type: ignore[misc]


@pytest.mark.parametrize(
    ("arch", "name"),
    [
        ("llama", "chatml"),
        ("llama", "alpaca"),
        ("llama", "tokenizer"),
        ("qwen2", "chatml"),
        ("gpt2", "alpaca"),
    ],
)
def test_saved_template_reproduces_training_ids(tiny_model, conversations, tmp_path, arch, name) -> None:
    """Llama's tokenizer adds BOS on its own (training prepends it), Qwen2's does not; GPT-2 has no
    template of its own."""
    tok = _tokenizer(tiny_model, arch)
    template = choose_template(name, tok, "alpaca")
    expected = [encode_conversation(c, tok, template, False)[0] for c in conversations]
    model = AutoModelForCausalLM.from_pretrained(tiny_model(arch))
    settle_generation(model, tok, template)
    tok.save_pretrained(tmp_path)
    save_generation_files(model, tok, tmp_path)

    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"] == (tmp_path / "chat_template.jinja").read_text(encoding="utf-8")
    saved = AutoTokenizer.from_pretrained(tmp_path)
    for conversation, ids in zip(conversations, expected, strict=True):
        assert saved.apply_chat_template(conversation)["input_ids"] == ids
    prompt = saved.apply_chat_template(conversations[0][:-1], add_generation_prompt=True)["input_ids"]
    assert expected[0][: len(prompt)] == prompt  # the generation prompt is where the trained answer starts


def test_generation_config_lists_every_end_of_turn_token(tiny_model, tmp_path) -> None:
    shutil.copytree(tiny_model("llama"), tmp_path / "base")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base")
    tok = _tokenizer(tiny_model, "llama")
    im_end, eos = tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id
    for name, ids in (("chatml", [im_end, eos]), ("alpaca", [eos]), ("tokenizer", [im_end, eos])):
        tok = _tokenizer(tiny_model, "llama")  # settling sets the template on the tokenizer: a fresh one each
        model.generation_config.eos_token_id = eos  # as a base checkpoint without chat tuning ships it
        assert settle_generation(model, tok, choose_template(name, tok, "alpaca")) == ids
        save_generation_files(model, tok, tmp_path / name)
        saved = GenerationConfig.from_pretrained(tmp_path / name)
        assert saved.eos_token_id == (ids if len(ids) > 1 else ids[0])
        assert saved.pad_token_id == tok.pad_token_id


@pytest.mark.parametrize("name", ["alpaca", "chatml"])
def test_end_of_turn_token_carries_loss_when_pad_is_the_same_id(tiny_model, name: str) -> None:
    """GPT-2's pad is set to its EOS here (as for tokenizers without a pad token): the EOS that ends each
    answer keeps its label in the padded batch, while the padding after it is masked."""
    tok = AutoTokenizer.from_pretrained(tiny_model("gpt2"))
    tok.pad_token = tok.eos_token
    eos = tok.eos_token_id
    assert tok.pad_token_id == eos
    encoder = Encoder(
        "causal_lm", tok, TokenizationConfig(), PreprocessingConfig(), choose_template(name, tok, "messages")
    )
    chat = [
        {"role": "user", "content": "Colour of the sky?"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "And grass?"},
        {"role": "assistant", "content": "Green."},
    ]
    long, short = encoder.encode({"messages": chat})[0], encoder.encode({"messages": chat[:2]})[0]
    batch = PadCollator(pad_id=eos, pad_to_multiple_of=8)([long, short])
    for row, example in enumerate((long, short)):
        ids, labels = batch["input_ids"][row], batch["labels"][row]
        ends = [i for i, t in enumerate(example["input_ids"]) if t == eos]
        assert len(ends) == (2 if example is long else 1)  # one EOS closes each answer
        assert all(labels[i] == eos for i in ends)
        padding = torch.arange(len(ids)) >= len(example["input_ids"])
        assert bool((ids[padding] == eos).all()) and bool((labels[padding] == IGNORE).all())
