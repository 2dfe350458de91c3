"""`llmft merge` and `llmft export --format gguf` on trained tiny runs, checked against the references:
peft's adapter model, plain `from_pretrained` of the merged folder, and transformers' own GGUF reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tests.tolerances import assert_same_function

from llmft.cli.main import main
from llmft.config.load import load_config
from llmft.export.gguf import export_gguf
from llmft.export.load import load_merged, load_tokenizer
from llmft.export.source import resolve_source
from llmft.pipeline import run

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

SAMPLES = [
    "Hello world, the cat reads a book.",
    "naïve café — 東京 🙂 Ünïcödé, Ελληνικά и русский, العربية",
    "  two  spaces\n\nand\ttabs 12345 3.14",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
]


def train(tmp: Path, base: Path, train_file: Path, max_steps: int = 12, max_length: int = 64) -> Path:
    """A short LoRA run of the real pipeline; its adapter is trained (not the zero init)."""
    config = {
        "output_dir": str(tmp / "run"),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": max_length}},
        "model": {
            "name_or_path": str(base),
            "adapter": {"type": "lora", "r": 4, "target_modules": "all-linear"},
        },
        "training": {"max_steps": max_steps, "batch_size": 8, "learning_rate": 1e-2, "eval_strategy": "no"},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    run(load_config(path, []), say=lambda _: None, progress=False)
    return tmp / "run"


def byte_level_llama(out: Path) -> Path:
    """A tiny Llama whose tokenizer is byte-level BPE with a few fixed merges: the same in every session.

    The session's tiny models train their BPE with `tokenizers`, which orders merges of equal count
    differently from process to process; the q8_0 agreement of a model trained on top then ranged from
    95.8% to 99.8% between sessions. With this vocabulary the run, and the figure, are the same each time.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from llmft.synth.models import CHATML_TEMPLATE, INIT_STD

    specials = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("Ġ", "a"), ("o", "u")]
    tokens = specials + sorted(pre_tokenizers.ByteLevel.alphabet()) + [a + b for a, b in merges]
    backend = Tokenizer(models.BPE(vocab={token: i for i, token in enumerate(tokens)}, merges=merges))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        chat_template=CHATML_TEMPLATE, extra_special_tokens=specials[4:],
    )  # fmt: skip
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=3,
        initializer_range=INIT_STD,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def byte_llama(tmp_path_factory) -> Path:  # noqa: ANN001
    return byte_level_llama(tmp_path_factory.mktemp("byte-llama"))


@pytest.fixture(scope="module")
def sft_run(byte_llama: Path, synth_data, tmp_path_factory) -> Path:  # noqa: ANN001
    """A llama SFT LoRA run whose model dir also has a generation config with an end-of-turn id, as chat
    training writes it. Trained for 60 steps: an undertrained model's next-token choices are near-ties
    that any rounding flips (q8_0 agreement: 98.9% of 5,017 held-out positions here; 90-96% after 12 steps
    on the session's tiny Llama)."""
    from transformers import GenerationConfig

    data = synth_data("sft", rows=400)["train"]
    out = train(tmp_path_factory.mktemp("sft"), byte_llama, data, max_steps=60, max_length=192)
    GenerationConfig(bos_token_id=1, eos_token_id=[2, 5], pad_token_id=3).save_pretrained(out / "model")
    return out


def peft_reference(base: Path, adapter: Path, auto: type, **config: object) -> torch.nn.Module:
    from peft import PeftModel

    model = auto.from_pretrained(base, dtype=torch.float32, **config)
    return PeftModel.from_pretrained(model, adapter).eval()


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def token_ids(vocab_size: int) -> torch.Tensor:
    return torch.randint(4, vocab_size, (3, 24), generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------------ merge


def test_merge_cli_gives_a_model_equal_to_the_adapter_model(
    sft_run: Path, byte_llama: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    out = tmp_path / "merged"
    assert main(["merge", str(sft_run), "--out", str(out), "--max-shard-size", "100KB"]) == 0
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").is_file()
    assert not list(out.glob("adapter_*"))
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    reference = peft_reference(byte_llama, sft_run / "model", AutoModelForCausalLM)
    ids = token_ids(merged.config.vocab_size)
    assert_same_function(logits(merged, ids), logits(reference, ids))
    base = AutoModelForCausalLM.from_pretrained(byte_llama).eval()
    assert (logits(merged, ids) - logits(base, ids)).abs().max() > 1e-2  # the adapter was trained
    saved, run_tok = AutoTokenizer.from_pretrained(out), AutoTokenizer.from_pretrained(sft_run / "model")
    assert [saved(t)["input_ids"] for t in SAMPLES] == [run_tok(t)["input_ids"] for t in SAMPLES]
    assert saved.chat_template == run_tok.chat_template and saved.chat_template
    assert GenerationConfig.from_pretrained(out).eos_token_id == [2, 5]


def test_merge_to_bfloat16_stores_bfloat16(sft_run: Path, tmp_path: Path) -> None:
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    out = tmp_path / "bf16"
    assert main(["merge", str(sft_run / "model"), "--out", str(out), "--dtype", "bfloat16"]) == 0
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.bfloat16}  # noqa: SIM118
    merged32 = load_merged(resolve_source(sft_run), dtype="float32")
    merged16 = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = token_ids(merged32.config.vocab_size)
    agree = (logits(merged16, ids).argmax(-1) == logits(merged32, ids).argmax(-1)).float().mean()
    assert agree >= 0.9, agree


def test_merge_classifier_keeps_its_trained_head(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    from transformers import AutoModelForSequenceClassification

    run_dir = train(
        tmp_path, tiny_model("llama"), synth_data("classification", rows=100)["train"], max_steps=6
    )
    out = tmp_path / "merged"
    assert main(["merge", str(run_dir), "--out", str(out)]) == 0
    merged = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert merged.config.id2label == {0: "negative", 1: "positive"} and merged.config.pad_token_id == 3
    reference = peft_reference(
        tiny_model("llama"),
        run_dir / "model",
        AutoModelForSequenceClassification,
        num_labels=2,
        pad_token_id=3,
    )
    ids = token_ids(merged.config.vocab_size)
    ids[0, -5:] = 3  # a padded row: the head reads the last real token
    assert_same_function(logits(merged, ids), logits(reference, ids))


def test_merge_refuses_prefix_tuning_with_the_reason(tiny_model, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from peft import PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    peft_model = get_peft_model(model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    peft_model.save_pretrained(tmp_path / "prefix")
    assert main(["merge", str(tmp_path / "prefix"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "holds a prefix_tuning adapter" in err and "nothing to merge into the base" in err
    assert "LLMFT800" in err and not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------- gguf


def gguf_model_and_tokenizer(path: Path) -> tuple[torch.nn.Module, object]:
    """The file read back by transformers' own GGUF reader (dequantized to float32)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


def test_export_gguf_f32_cli_reads_back_equal(sft_run: Path, tmp_path: Path) -> None:
    file = tmp_path / "model.gguf"
    assert main(["export", str(sft_run), "--format", "gguf", "--quant", "f32", "--out", str(file)]) == 0
    source = resolve_source(sft_run)
    merged, saved_tok = load_merged(source), load_tokenizer(source)
    model, tok = gguf_model_and_tokenizer(file)
    ids = token_ids(merged.config.vocab_size)
    assert_same_function(logits(model, ids), logits(merged, ids))
    assert [tok(t)["input_ids"] for t in SAMPLES] == [saved_tok(t)["input_ids"] for t in SAMPLES]
    assert tok.chat_template == saved_tok.chat_template and tok.chat_template
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<s>", "</s>", "<pad>")


def test_export_gguf_q8_0_agrees_on_held_out_rows(sft_run: Path, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    source = resolve_source(sft_run)
    file = export_gguf(source, tmp_path / "q8.gguf", quant="q8_0").path
    f32 = export_gguf(source, tmp_path / "f32.gguf", quant="f32").path
    assert file.stat().st_size < 0.4 * f32.stat().st_size
    merged, tok = load_merged(source), load_tokenizer(source)
    model, _ = gguf_model_and_tokenizer(file)
    files = synth_data("sft", rows=400)
    rows = [
        json.loads(line) for split in ("validation", "test") for line in files[split].read_text().splitlines()
    ]
    agree = total = 0
    for row in rows:  # rendered as training rendered them: the run's chat template, prompt and answer
        prompt = f"{row['instruction']}\n\n{row['input']}" if row["input"] else row["instruction"]
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
        ids = tok(tok.apply_chat_template(messages, tokenize=False), return_tensors="pt")["input_ids"]
        same = logits(model, ids).argmax(-1) == logits(merged, ids).argmax(-1)
        agree, total = agree + int(same.sum()), total + same.numel()
    assert total >= 500 and agree / total >= 0.98, (agree, total)


def test_export_gguf_q8_0_adds_no_error_beyond_q8_0_rounding(sft_run: Path, tmp_path: Path) -> None:
    """The file read back equals the merged model with each matrix rounded by gguf's own q8_0 code."""
    from gguf import GGMLQuantizationType, quants

    source = resolve_source(sft_run)
    model, _ = gguf_model_and_tokenizer(export_gguf(source, tmp_path / "q8.gguf", quant="q8_0").path)
    rounded = load_merged(source)
    q8 = GGMLQuantizationType.Q8_0
    with torch.no_grad():
        for param in rounded.parameters():
            if param.ndim == 2:
                param.copy_(torch.from_numpy(quants.dequantize(quants.quantize(param.numpy(), q8), q8)))
    ids = token_ids(rounded.config.vocab_size)
    assert_same_function(logits(model, ids), logits(rounded, ids))


def tiny_mistral(tiny_model, out: Path) -> Path:  # noqa: ANN001
    """A Mistral-shaped model with the tiny Llama tokenizer (same tensor names, its own model_type)."""
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_model("llama"))
    config = MistralConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, sliding_window=None, bos_token_id=1, eos_token_id=2,
        pad_token_id=3, initializer_range=0.15,
    )  # fmt: skip
    torch.manual_seed(0)
    MistralForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2", "mistral"])
def test_export_gguf_other_architectures_with_a_lora(arch: str, tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    """An adapter with random (non-zero) LoRA weights on each base, GPT-2's Conv1D layers included."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_mistral(tiny_model, tmp_path / "mistral-base") if arch == "mistral" else tiny_model(arch)
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora).eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path / "adapter")
    result = export_gguf(resolve_source(tmp_path / "adapter"), tmp_path / "out" / "m.gguf", quant="f32")
    assert result.arch == {"mistral": "llama"}.get(arch, arch)
    gguf_model, gguf_tok = gguf_model_and_tokenizer(result.path)
    ids = token_ids(model.config.vocab_size)
    assert_same_function(logits(gguf_model, ids), logits(peft_model, ids))
    tok = AutoTokenizer.from_pretrained(base)
    assert [gguf_tok(t)["input_ids"] for t in SAMPLES] == [tok(t)["input_ids"] for t in SAMPLES]


def test_export_q8_0_falls_back_to_f16_for_rows_not_a_multiple_of_32(tmp_path: Path) -> None:
    from llmft.synth.models import build_tiny_model

    base = build_tiny_model("llama", tmp_path / "llama48", hidden_size=48, num_layers=1, vocab_size=400)
    result = export_gguf(resolve_source(base), tmp_path / "m.gguf", quant="q8_0")
    assert result.tensor_types["f16"] > 0 and result.tensor_types["q8_0"] > 0  # the MLP's 192-wide rows
    assert any("stored as f16 instead of q8_0" in note for note in result.notes), result.notes
    gguf_model, _ = gguf_model_and_tokenizer(result.path)
    merged = load_merged(resolve_source(base))
    ids = token_ids(merged.config.vocab_size)
    # Not the same function: q8_0 rounds each weight to 1/127 of its 32-block's largest (≤ 0.4% of it), and
    # the tiny model's logits (|logit| of a few units) move by a few hundredths; 0.2 bounds that and catches a
    # wrong block layout or scale (logits then move by whole units).
    torch.testing.assert_close(logits(gguf_model, ids), logits(merged, ids), atol=0.2, rtol=0)


def test_export_refuses_other_architectures_listing_the_supported_ones(tiny_model, capsys) -> None:  # noqa: ANN001
    assert main(["export", str(tiny_model("bert")), "--format", "gguf"]) == 2
    err = capsys.readouterr().err
    assert "GGUF export does not support the `bert` architecture" in err
    assert "supported: gpt2, llama, mistral, qwen2" in err


def test_merge_keeps_a_fully_trained_head_of_a_tied_model(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    """Qwen2's output head shares the embedding; trained in full (modules_to_save) it must not re-tie."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_model("qwen2")
    lora = LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["lm_head"], task_type="CAUSAL_LM")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).eval()
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "modules_to_save" in name:
                param.add_(0.1)
    peft_model.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path / "adapter")
    assert main(["merge", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    assert not merged.config.tie_word_embeddings
    ids = token_ids(merged.config.vocab_size)
    assert_same_function(logits(merged, ids), logits(peft_model, ids))


def test_merge_seq2seq_lora(tiny_model, tmp_path: Path) -> None:  # noqa: ANN001
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    base = tiny_model("t5")
    lora = LoraConfig(r=4, target_modules=["q", "v"], init_lora_weights=False, task_type="SEQ_2_SEQ_LM")
    peft_model = get_peft_model(AutoModelForSeq2SeqLM.from_pretrained(base), lora).eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path / "adapter")
    assert main(["merge", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")]) == 0
    merged = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "merged").eval()
    ids, decoder = token_ids(merged.config.vocab_size), token_ids(merged.config.vocab_size)[:, :8]
    with torch.no_grad():
        got = merged(input_ids=ids, decoder_input_ids=decoder).logits
        want = peft_model(input_ids=ids, decoder_input_ids=decoder).logits
    assert_same_function(got, want)
