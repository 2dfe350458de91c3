"""Tiny models: every architecture builds, reloads offline through the right Auto class, and its
tokenizer looks like the real one (special tokens, post-processing, chat template or none)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)
from typer.testing import CliRunner

from llmft.errors import ModelError
from llmft.synth.models import (
    ARCHS,
    CHATML_END,
    build_tiny_model,
    builtin_corpus,
    parameter_count,
    train_tokenizer,
)

CAUSAL = ("gpt2", "llama", "qwen2")
MASKED = ("bert", "distilbert")
CHAT_MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Reverse the words.\nred blue cat"},
    {"role": "assistant", "content": "cat blue red"},
    {"role": "user", "content": "What colour is the sky?"},
]
SAMPLES = ["Reverse the words. red blue cat", "I'm 12, it's 3.14!", "  two  spaces\nnew line", "héllo 你好"]


def _batch(tokenizer: AutoTokenizer) -> dict[str, torch.Tensor]:
    return tokenizer(
        ["hello world", "the sky is blue and the grass is green"], return_tensors="pt", padding=True
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_builds_and_reloads_with_vocab_from_tokenizer(arch: str, tiny_model) -> None:
    path = tiny_model(arch)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = AutoConfig.from_pretrained(path)
    assert config.vocab_size == len(tokenizer)
    assert config.pad_token_id == tokenizer.pad_token_id is not None
    if tokenizer.eos_token is not None:
        assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert (path / "model.safetensors").is_file()
    assert tokenizer.model_max_length == (1024 if arch == "gpt2" else 512)


@pytest.mark.parametrize("arch", CAUSAL + MASKED)
def test_forward_gives_finite_logits_over_the_whole_vocab(arch: str, tiny_model) -> None:
    path = tiny_model(arch)
    tokenizer = AutoTokenizer.from_pretrained(path)
    auto = AutoModelForCausalLM if arch in CAUSAL else AutoModelForMaskedLM
    model = auto.from_pretrained(path)
    batch = _batch(tokenizer)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, len(tokenizer))
    assert torch.isfinite(logits).all()


def test_t5_is_a_seq2seq_model_that_starts_decoding_at_pad(tiny_model) -> None:
    path = tiny_model("t5")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path)
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id
    batch = _batch(tokenizer)
    labels = tokenizer(["cat blue red", "yes"], return_tensors="pt", padding=True).input_ids
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert out.logits.shape == (2, labels.shape[1], len(tokenizer))
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)


@pytest.mark.parametrize("arch", ("bert", "distilbert", "gpt2", "llama"))
def test_loads_for_sequence_classification(arch: str, tiny_model) -> None:
    path = tiny_model(arch)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=3)
    with torch.no_grad():
        logits = model(**_batch(tokenizer)).logits
    assert logits.shape == (2, 3)
    assert model.config.pad_token_id == tokenizer.pad_token_id


@pytest.mark.parametrize("arch", ("llama", "qwen2"))
def test_chat_archs_render_chatml(arch: str, tiny_model) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model(arch))
    text = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nReverse the words.\nred blue cat<|im_end|>\n"
        "<|im_start|>assistant\ncat blue red<|im_end|>\n"
        "<|im_start|>user\nWhat colour is the sky?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    without = tokenizer.apply_chat_template(CHAT_MESSAGES, tokenize=False, add_generation_prompt=False)
    assert not without.endswith("<|im_start|>assistant\n")
    for token in ("<|im_start|>", "<|im_end|>"):
        assert len(tokenizer(token, add_special_tokens=False).input_ids) == 1, (
            "ChatML markers are single tokens"
        )


@pytest.mark.parametrize("arch", ("gpt2", "t5", "bert", "distilbert"))
def test_other_archs_have_no_chat_template(arch: str, tiny_model) -> None:
    assert AutoTokenizer.from_pretrained(tiny_model(arch)).chat_template is None


@pytest.mark.parametrize("arch", ("llama", "qwen2"))
def test_chat_models_stop_generating_at_im_end(arch: str, tiny_model) -> None:
    path = tiny_model(arch)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert tokenizer.convert_tokens_to_ids(CHATML_END) in model.generation_config.eos_token_id


def test_special_token_layout_matches_the_real_families(tiny_model) -> None:
    gpt2 = AutoTokenizer.from_pretrained(tiny_model("gpt2"))
    assert gpt2.eos_token == gpt2.bos_token == "<|endoftext|>" and gpt2.pad_token == "<|pad|>"
    assert gpt2("hi").input_ids == gpt2("hi", add_special_tokens=False).input_ids  # gpt2 adds nothing

    llama = AutoTokenizer.from_pretrained(tiny_model("llama"))
    assert (llama.bos_token, llama.eos_token, llama.pad_token, llama.unk_token) == (
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
    )
    assert llama("hi").input_ids[0] == llama.bos_token_id

    qwen = AutoTokenizer.from_pretrained(tiny_model("qwen2"))
    assert qwen.eos_token == "<|endoftext|>" and qwen.bos_token is None and qwen.pad_token == "<|pad|>"

    t5 = AutoTokenizer.from_pretrained(tiny_model("t5"))
    assert (t5.pad_token_id, t5.eos_token_id) == (0, 1) and t5.unk_token == "<unk>"
    assert t5("hi").input_ids[-1] == t5.eos_token_id

    for arch in MASKED:
        bert = AutoTokenizer.from_pretrained(tiny_model(arch))
        enc = bert("Hello World", "second")
        tokens = bert.convert_ids_to_tokens(enc.input_ids)
        assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
        assert "hello" in tokens, "BERT tokenizers lowercase"
        if arch == "bert":
            assert enc.token_type_ids[0] == 0 and enc.token_type_ids[-1] == 1
        else:
            assert "token_type_ids" not in enc, "DistilBERT's forward() takes no segment ids"
        assert bert.mask_token == "[MASK]" and bert.pad_token == "[PAD]"


@pytest.mark.parametrize("arch", ARCHS)
def test_saved_tokenizer_encodes_like_the_trained_one(arch: str, tiny_model) -> None:
    trained = train_tokenizer(
        builtin_corpus(0),
        kind=arch,
        chat=arch in ("llama", "qwen2"),
        model_max_length=1024 if arch == "gpt2" else 512,
    )
    loaded = AutoTokenizer.from_pretrained(tiny_model(arch))
    assert loaded.get_vocab() == trained.get_vocab()
    for text in SAMPLES:
        assert loaded(text, "pair").input_ids == trained(text, "pair").input_ids, text


def test_train_tokenizer_marks_pad_distinct_from_eos_and_honours_model_max_length() -> None:
    tok = train_tokenizer(
        ["a few words", "and a few more words here"], kind="gpt2", vocab_size=300, model_max_length=77
    )
    assert tok.model_max_length == 77
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.chat_template is None


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = build_tiny_model("bert", tmp_path / "a", seed=3)
    b = build_tiny_model("bert", tmp_path / "b", seed=3)
    c = build_tiny_model("bert", tmp_path / "c", seed=4)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_text_file_trains_the_tokenizer_and_sizes_are_honoured(tmp_path: Path) -> None:
    text = tmp_path / "corpus.txt"
    text.write_text("zyzzyva quokka " * 20 + "\n" + "quokka zyzzyva jumps\n" * 20, encoding="utf-8")
    path = build_tiny_model(
        "llama", tmp_path / "m", text_file=text, vocab_size=400, hidden_size=32, num_heads=2
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert len(tokenizer(" quokka", add_special_tokens=False).input_ids) == 1
    config = AutoConfig.from_pretrained(path)
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (32, 2, 2)
    assert config.vocab_size == len(tokenizer) <= 400 + 8


def test_llama_uses_gqa_and_untied_embeddings(tiny_model) -> None:
    config = AutoConfig.from_pretrained(tiny_model("llama"))
    assert config.num_key_value_heads == 2 < config.num_attention_heads
    assert config.tie_word_embeddings is False
    assert config.intermediate_size == 4 * config.hidden_size


def test_parameter_count_reads_the_safetensors_headers(tiny_model) -> None:
    path = tiny_model("llama")
    model = AutoModelForCausalLM.from_pretrained(path)
    assert parameter_count(path) == sum(p.numel() for p in model.parameters())


def test_unknown_arch_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as err:
        build_tiny_model("mamba", tmp_path)
    rendered = err.value.render()
    assert "mamba" in rendered and all(arch in rendered for arch in ARCHS)


@pytest.mark.parametrize(("hidden", "heads", "layers"), [(64, 3, 2), (0, 4, 2), (64, 4, 0)])
def test_bad_sizes_are_a_model_error(tmp_path: Path, hidden: int, heads: int, layers: int) -> None:
    with pytest.raises(ModelError):
        build_tiny_model("gpt2", tmp_path, hidden_size=hidden, num_heads=heads, num_layers=layers)


def test_missing_text_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        build_tiny_model("gpt2", tmp_path / "m", text_file=tmp_path / "nope.txt")


def test_cli_synth_model_writes_a_loadable_model(tmp_path: Path) -> None:
    from llmft.cli.synth import app

    out = tmp_path / "cli-model"
    result = CliRunner().invoke(
        app, ["model", "--arch", "qwen2", "--out", str(out), "--layers", "1", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "qwen2" in result.output and "parameters" in result.output and len(result.output.splitlines()) == 1
    assert AutoConfig.from_pretrained(out).num_hidden_layers == 1


def test_cli_module_does_not_import_torch_and_help_lists_match() -> None:
    code = (
        "import sys, llmft.cli.synth as s\n"
        "assert not {'torch', 'transformers', 'tokenizers'} & set(sys.modules), 'heavy import'\n"
        "from llmft.synth.models import ARCHS\n"
        "from llmft.synth.data import TASKS\n"
        "assert all(a in s.ARCH_HELP for a in ARCHS) and all(t in s.TASK_HELP for t in TASKS)\n"
    )
    src = str(Path(__file__).resolve().parents[3] / "src")
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": src, "PATH": ""})


SYNTH_ERRORS = [
    (["model", "--arch", "foo"], "error: --arch: unknown tiny model architecture 'foo'"),
    (["model", "--arch", "llama", "--layers", "0"], "error: --layers: expected a whole number > 0, got 0"),
    (
        ["model", "--arch", "llama", "--hidden-size", "65"],
        "error: --hidden-size: 65 is not a multiple of --heads 4",
    ),
    (
        ["model", "--arch", "llama", "--vocab-size", "100"],
        "error: --vocab-size: 100 is too small for a byte-level tokenizer (256 bytes + specials)",
    ),
    (
        ["model", "--arch", "gpt2", "--text", "{tmp}"],
        "error: --text: tokenizer training text {tmp} is a folder, not a text file",
    ),
    (
        ["model", "--arch", "gpt2", "--text", "{tmp}/bytes.bin"],
        "error: --text: {tmp}/bytes.bin is not UTF-8 text",
    ),
    (["data", "--task", "foo"], "error: --task: unknown synthetic task 'foo'"),
    (["data", "--task", "sft", "--rows", "-3"], "error: --rows: expected a whole number > 0, got -3"),
    (
        ["data", "--task", "sft", "--validation-fraction", "1.5"],
        "error: --validation-fraction: expected a fraction in [0, 1), got 1.5",
    ),
    (["data", "--task", "sft", "--style", "foo"], "error: --style: style 'foo' does not apply to task 'sft'"),
]


@pytest.mark.parametrize(
    ("args", "first_line"), SYNTH_ERRORS, ids=lambda a: " ".join(a) if isinstance(a, list) else ""
)
def test_synth_errors_name_the_option_not_a_python_module(
    args: list[str], first_line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmft.cli.main import main

    (tmp_path / "bytes.bin").write_bytes(b"ok\n\xff\xfe\n")
    argv = ["synth", *[a.format(tmp=tmp_path) for a in args], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(first_line.format(tmp=tmp_path)) and "\nFix: " in err, err
    assert "llmft." not in err and "internal error" not in err


@pytest.mark.parametrize(
    "command",
    [
        [
            "model",
            "--arch",
            "gpt2",
            "--vocab-size",
            "300",
            "--hidden-size",
            "8",
            "--heads",
            "2",
            "--layers",
            "1",
        ],
        ["data", "--task", "sft"],
    ],
)
def test_synth_out_that_is_a_file_is_named(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmft.cli.main import main

    (tmp_path / "taken").write_text("x")
    assert main(["synth", *command, "--out", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.splitlines()[:2] == [
        f"error: --out: {tmp_path / 'taken'} is a file, not a folder",
        "Fix: choose a folder you can write to (--out)",
    ]
