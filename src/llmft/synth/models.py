"""Tiny random-weight models with locally trained tokenizers, for tests and demos that run offline.

Each architecture gets a real transformers config class at toy size and a tokenizer trained here with the
``tokenizers`` library, shaped like the real one (special tokens, BOS/EOS post-processing, chat template
or the lack of one), so the code paths a real checkpoint takes are exercised in seconds on a CPU. The
embedding size is ``len(tokenizer)``, never the requested vocab size, as after a real tokenizer resize.

torch, transformers and tokenizers are imported inside the functions: ``ARCHS`` must stay cheap to import.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.errors import ModelError
from llmft.synth.data import WRITE_FIX, writable_folder

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer
    from transformers import PreTrainedConfig, PreTrainedModel, PreTrainedTokenizerFast

ARCHS: tuple[str, ...] = ("gpt2", "llama", "qwen2", "bert", "distilbert", "t5")

CHATML_START = "<|im_start|>"
CHATML_END = "<|im_end|>"
# ChatML as Qwen uses it; any role (system included) renders the same way. Tools, tool calls and tool results
# render as in Qwen2.5's template (without its default system prompt), so tool-calling data has a real
# template to be checked against; llmft's built-in `chatml` renders them the same way.
CHATML_TEMPLATE = (
    "{%- if tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if messages[0]['role'] == 'system' -%}{{- messages[0]['content'] + '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -}}"
    "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, '
    '\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\' -}}'
    "{%- endif -%}"
    "{%- for message in messages -%}"
    "{%- if tools and message['role'] == 'system' and loop.first -%}"
    "{%- elif message['role'] == 'assistant' and message.tool_calls -%}"
    "{{- '<|im_start|>assistant' -}}"
    "{%- if message['content'] -%}{{- '\\n' + message['content'] -}}{%- endif -%}"
    "{%- for call in message.tool_calls -%}"
    "{%- if call.function is defined -%}{%- set call = call.function -%}{%- endif -%}"
    '{{- \'\\n<tool_call>\\n{\\"name\\": \\"\' + call.name + \'\\", \\"arguments\\": \' -}}'
    "{{- call.arguments | tojson -}}{{- '}\\n</tool_call>' -}}"
    "{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- elif message['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}"
    "{{- '<|im_start|>user' -}}{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}{{- '<|im_end|>\\n' -}}{%- endif -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)
CHAT_ARCHS: tuple[str, ...] = ("llama", "qwen2")


@dataclass(frozen=True)
class _Specials:
    """The special tokens of one tokenizer family, in the id order they get (first is id 0)."""

    ordered: tuple[str, ...]
    pad: str
    eos: str | None = None
    bos: str | None = None
    unk: str | None = None
    cls: str | None = None
    sep: str | None = None
    mask: str | None = None


_SPECIALS: dict[str, _Specials] = {
    "gpt2": _Specials(("<|endoftext|>", "<|pad|>"), pad="<|pad|>", eos="<|endoftext|>", bos="<|endoftext|>"),
    "llama": _Specials(("<unk>", "<s>", "</s>", "<pad>"), pad="<pad>", eos="</s>", bos="<s>", unk="<unk>"),
    # unk as transformers' Qwen2Tokenizer sets it on reload, so the in-memory and saved tokenizers agree.
    "qwen2": _Specials(("<|endoftext|>", "<|pad|>"), pad="<|pad|>", eos="<|endoftext|>", unk="<|endoftext|>"),
    "t5": _Specials(("<pad>", "</s>", "<unk>"), pad="<pad>", eos="</s>", unk="<unk>"),
    "bert": _Specials(
        ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"),
        pad="[PAD]",
        unk="[UNK]",
        cls="[CLS]",
        sep="[SEP]",
        mask="[MASK]",
    ),
}
_SPECIALS["distilbert"] = _SPECIALS["bert"]


def _check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ModelError(
            f"unknown tiny model architecture {arch!r}",
            fix=f"use one of: {', '.join(ARCHS)}",
            where="--arch",
        )


# ---------------------------------------------------------------------------------------------- corpus


_SUBJECTS = (
    "The cat",
    "A small dog",
    "My friend",
    "The teacher",
    "Our team",
    "The old man",
    "She",
    "He",
    "They",
)
_VERBS = ("reads", "writes", "finds", "likes", "sees", "builds", "buys", "paints", "cleans", "opens")
_OBJECTS = (
    "a book",
    "the red door",
    "two apples",
    "a letter",
    "the blue car",
    "a model",
    "the house",
    "data",
)
_ENDINGS = (".", "!", "?", " today.", " every day.", " in the morning.", ", again.", " (quietly).")
_FIXED_LINES = (
    "Below is an instruction that describes a task.",
    "Write a response that appropriately completes the request.",
    "Below is an instruction that describes a task, paired with an input that provides further context.",
    "### Instruction:",
    "### Input:",
    "### Response:",
    "Human: hello there. Assistant: hello, how can I help?",
    "System: You are a helpful assistant.",
    "user assistant system",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 20 42 100 2024 3.14 -7 50%",
    "Punctuation: a, b; c: d. e! f? (g) [h] {i} \"j\" 'k' - l_m / n \\ o @ p # q $ r & s * t",
    "More: 1 + 2 = 3, 4 < 5 > 3, x | y ~ z, 100% & more; 'quoted' and \"double\" (nested [brackets]).",
    "Answer: yes. Answer: no. Question: why? Because it is.",
    "I'm sure it's fine; we'll see what they've done.",
)


def _template_sentences(rng: random.Random, count: int) -> list[str]:
    """Varied English sentences with digits and punctuation, so BPE learns ordinary words and numbers."""
    lines: list[str] = []
    for _ in range(count):
        subject, verb, obj = rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)
        sentence = f"{subject} {verb} {obj}{rng.choice(_ENDINGS)}"
        if rng.random() < 0.3:
            sentence += (
                f" It costs {rng.randint(1, 999)} coins, about {rng.randint(1, 99)}.{rng.randint(0, 9)}%."
            )
        lines.append(sentence)
    return lines


def _flatten(row: object) -> str:
    """Every string inside a synthetic row, so the corpus covers the synthetic vocabulary."""
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        return " ".join(_flatten(v) for v in row.values())
    if isinstance(row, list):
        return " ".join(_flatten(v) for v in row)
    return str(row)


def builtin_corpus(seed: int = 0) -> list[str]:
    """A few hundred deterministic lines: template English plus rows of every synthetic task."""
    from llmft.synth.data import TASKS, generate_rows

    rng = random.Random(f"llmft-tiny-corpus-{seed}")
    lines = list(_FIXED_LINES) + _template_sentences(rng, 300)
    for task in TASKS:
        lines += [_flatten(row) for row in generate_rows(task, 80, seed)]
    return lines


def _read_text_file(path: str | Path) -> list[str]:
    file = Path(path).expanduser()
    fix = "pass a UTF-8 text file, or leave --text out to use the built-in corpus"
    if not file.is_file():
        what = "is a folder, not a text file" if file.is_dir() else "does not exist"
        raise ModelError(f"tokenizer training text {file} {what}", fix=fix, where="--text")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ModelError(
            f"{file} is not UTF-8 text ({err.reason} at byte {err.start})", fix=fix, where="--text"
        ) from None
    except OSError as err:
        raise ModelError(f"cannot read {file}: {err.strerror}", fix=fix, where="--text") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ModelError(f"tokenizer training text {file} is empty", fix=fix, where="--text")
    return lines


# ------------------------------------------------------------------------------------------- tokenizers


# Qwen2's split (digits one by one, contractions apart). transformers rebuilds a saved qwen2 tokenizer
# with exactly this pre-tokenizer and NFC, so training with it keeps the reloaded tokenizer identical.
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def _byte_level_bpe(texts: Iterable[str], vocab_size: int, specials: list[str], *, qwen: bool) -> Tokenizer:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if qwen:
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _wordpiece_vocab(words: list[str], vocab_size: int, specials: list[str]) -> dict[str, int]:
    """A WordPiece vocabulary derived from a byte-pair model trained on ``words``.

    ``WordPieceTrainer`` numbers its "##" symbols in hash-map order, so the same text can give different
    vocabularies from run to run. Plain BPE (no prefix) is deterministic; its pieces, marked "##" where
    they continue a word and ranked by count then spelling, make the same vocabulary every time.
    """
    from collections import Counter

    from tokenizers import Tokenizer, models, trainers

    ascii_chars = [chr(c) for c in range(33, 127)]
    bpe = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=1, initial_alphabet=ascii_chars, show_progress=False
    )
    bpe.train_from_iterator(words, trainer=trainer)
    counts: Counter[str] = Counter()
    for word in words:
        for i, piece in enumerate(bpe.model.tokenize(word)):
            counts[piece.value if i == 0 else "##" + piece.value] += 1
    chars = sorted(set(ascii_chars) | {ch for word in words for ch in word})
    base = [c for ch in chars for c in (ch, "##" + ch)]
    taken = set(specials) | set(base)
    ranked = sorted((p for p in counts if p not in taken), key=lambda p: (-counts[p], p))
    ordered = specials + base + ranked[: max(0, vocab_size - len(specials) - len(base))]
    return {token: i for i, token in enumerate(ordered)}


def _wordpiece(texts: Iterable[str], vocab_size: int, specials: list[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(lowercase=True, clean_text=True, handle_chinese_chars=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = [w for text in texts for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))]
    vocab = _wordpiece_vocab(words, vocab_size, specials)
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(specials)
    return tok


def _post_processor(kind: str, tok: Tokenizer, spec: _Specials) -> None:
    """BOS for llama, EOS for t5, [CLS]/[SEP] for BERT, as the real tokenizers add them."""
    from tokenizers import processors

    def template(single: str, pair: str, names: tuple[str, ...]) -> processors.TemplateProcessing:
        ids = [(name, tok.token_to_id(name)) for name in names]
        return processors.TemplateProcessing(single=single, pair=pair, special_tokens=ids)

    byte_level = processors.ByteLevel(trim_offsets=False)
    if kind == "llama":
        bos = template("<s> $A", "<s> $A <s>:1 $B:1", ("<s>",))
        tok.post_processor = processors.Sequence([byte_level, bos])
    elif kind == "t5":
        eos = template("$A </s>", "$A </s> $B:1 </s>:1", ("</s>",))
        tok.post_processor = processors.Sequence([byte_level, eos])
    elif kind in ("bert", "distilbert"):
        tok.post_processor = template("[CLS] $A [SEP]", "[CLS] $A [SEP] $B:1 [SEP]:1", ("[CLS]", "[SEP]"))
    else:
        tok.post_processor = byte_level


def train_tokenizer(
    texts: Iterable[str],
    *,
    kind: str,
    vocab_size: int = 1000,
    chat: bool = False,
    model_max_length: int = 512,
) -> PreTrainedTokenizerFast:
    """Train a tokenizer shaped like ``kind``'s real one (``kind`` is one of ``ARCHS``).

    ``chat`` adds the ChatML tokens and template. The result may hold fewer than ``vocab_size`` tokens
    when the text is small; size embeddings with ``len(tokenizer)``.
    """
    from transformers import PreTrainedTokenizerFast

    _check_arch(kind)
    if vocab_size < 300 and kind not in ("bert", "distilbert"):
        raise ModelError(
            f"{vocab_size} is too small for a byte-level tokenizer (256 bytes + specials)",
            fix="use --vocab-size 300 or more",
            where="--vocab-size",
        )
    if vocab_size < 1:
        raise ModelError(
            f"expected a whole number > 0, got {vocab_size}",
            fix="e.g. --vocab-size 1000",
            where="--vocab-size",
        )
    spec = _SPECIALS[kind]
    specials = list(spec.ordered) + ([CHATML_START, CHATML_END] if chat else [])
    lines = list(texts)
    if kind in ("bert", "distilbert"):
        tok = _wordpiece(lines, vocab_size, specials)
    else:
        tok = _byte_level_bpe(lines, vocab_size, specials, qwen=kind == "qwen2")
    _post_processor(kind, tok, spec)
    named = {
        "pad_token": spec.pad,
        "eos_token": spec.eos,
        "bos_token": spec.bos,
        "unk_token": spec.unk,
        "cls_token": spec.cls,
        "sep_token": spec.sep,
        "mask_token": spec.mask,
    }
    # BERT reads segment ids; DistilBERT's forward() rejects them, as with the real tokenizers.
    input_names = (
        ["input_ids", "token_type_ids", "attention_mask"]
        if kind == "bert"
        else ["input_ids", "attention_mask"]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=model_max_length,
        chat_template=CHATML_TEMPLATE if chat else None,
        extra_special_tokens=[CHATML_START, CHATML_END] if chat else [],
        clean_up_tokenization_spaces=False,
        model_input_names=input_names,
        **{k: v for k, v in named.items() if v is not None},
    )


# --------------------------------------------------------------------------------------------- models


# Wider than the usual 0.02: at hidden size 64 a 0.02-scale LM head can only give near-uniform next-token
# distributions (logits within about ±1), so an adapter on a random tiny model could barely lower the loss.
# With 0.15 the head has the range of a trained model's and LoRA runs show real learning.
INIT_STD = 0.15


def _model_config(
    arch: str, tokenizer: PreTrainedTokenizerFast, hidden: int, layers: int, heads: int
) -> PreTrainedConfig:
    """A real config class at toy size, with token ids taken from the tokenizer."""
    from transformers import BertConfig, DistilBertConfig, GPT2Config, LlamaConfig, Qwen2Config, T5Config

    vocab, pad = len(tokenizer), tokenizer.pad_token_id
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if arch == "gpt2":
        return GPT2Config(
            vocab_size=vocab, n_positions=1024, n_embd=hidden, n_layer=layers, n_head=heads,
            n_inner=4 * hidden, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
            initializer_range=INIT_STD,
        )  # fmt: skip
    if arch in ("llama", "qwen2"):
        cls = LlamaConfig if arch == "llama" else Qwen2Config
        return cls(
            vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=2 if heads % 2 == 0 else heads,
            max_position_embeddings=2048, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad,
            tie_word_embeddings=arch == "qwen2", initializer_range=INIT_STD,
        )  # fmt: skip
    if arch == "bert":
        return BertConfig(
            vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=4 * hidden, max_position_embeddings=2048, pad_token_id=pad,
            initializer_range=INIT_STD,
        )  # fmt: skip
    if arch == "distilbert":
        return DistilBertConfig(
            vocab_size=vocab, dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=4 * hidden,
            max_position_embeddings=2048, pad_token_id=pad, initializer_range=INIT_STD,
        )  # fmt: skip
    return T5Config(
        vocab_size=vocab, d_model=hidden, d_kv=hidden // heads, d_ff=4 * hidden, num_layers=layers,
        num_decoder_layers=layers, num_heads=heads, pad_token_id=pad, eos_token_id=eos,
        decoder_start_token_id=pad,
    )  # fmt: skip


def _model_class(arch: str) -> type[PreTrainedModel]:
    """The pretraining head: causal LM, masked LM or seq2seq, as a real base checkpoint ships."""
    import transformers

    name = {
        "gpt2": "GPT2LMHeadModel",
        "llama": "LlamaForCausalLM",
        "qwen2": "Qwen2ForCausalLM",
        "bert": "BertForMaskedLM",
        "distilbert": "DistilBertForMaskedLM",
        "t5": "T5ForConditionalGeneration",
    }[arch]
    return getattr(transformers, name)


def _check_sizes(hidden_size: int, num_layers: int, num_heads: int) -> None:
    """Each size named by its option, the value repeated back."""
    for option, value, example in (
        ("--layers", num_layers, 2),
        ("--heads", num_heads, 4),
        ("--hidden-size", hidden_size, 64),
    ):
        if value < 1:
            raise ModelError(
                f"expected a whole number > 0, got {value}", fix=f"e.g. {option} {example}", where=option
            )
    if hidden_size % num_heads:
        raise ModelError(
            f"{hidden_size} is not a multiple of --heads {num_heads}",
            fix=f"e.g. --hidden-size {num_heads * max(1, round(hidden_size / num_heads))}",
            where="--hidden-size",
        )


def build_tiny_model(
    arch: str,
    out_dir: str | Path,
    *,
    text_file: str | Path | None = None,
    vocab_size: int = 1000,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
) -> Path:
    """Train a tokenizer, build a seeded random model of ``arch`` and save both to ``out_dir``.

    The directory loads with ``AutoTokenizer`` and the matching ``AutoModelFor...`` class offline.
    """
    import torch

    _check_arch(arch)
    _check_sizes(hidden_size, num_layers, num_heads)
    texts = _read_text_file(text_file) if text_file is not None else builtin_corpus(seed)
    max_len = 1024 if arch == "gpt2" else 512
    tokenizer = train_tokenizer(
        texts, kind=arch, vocab_size=vocab_size, chat=arch in CHAT_ARCHS, model_max_length=max_len
    )
    config = _model_config(arch, tokenizer, hidden_size, num_layers, num_heads)
    torch.manual_seed(seed)
    model = _model_class(arch)(config)
    if arch in CHAT_ARCHS and model.generation_config is not None:
        # Chat turns end with <|im_end|>; generation should stop there as well as at EOS.
        model.generation_config.eos_token_id = [
            tokenizer.eos_token_id,
            tokenizer.convert_tokens_to_ids(CHATML_END),
        ]
    out = writable_folder(out_dir, ModelError)
    try:
        with _no_progress_bars():
            model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    except OSError as err:
        raise ModelError(f"cannot write to {out}: {err.strerror}", fix=WRITE_FIX, where="--out") from None
    return out


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Hide the one-shard "Writing model shards" bar, restoring the user's setting afterwards."""
    from transformers.utils import logging as hf_logging

    was_disabled = not hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if not was_disabled:
            hf_logging.enable_progress_bar()


def parameter_count(model_dir: str | Path) -> int:
    """Parameters stored in a saved model's safetensors files, read from the headers (no torch needed)."""
    total = 0
    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with file.open("rb") as fh:
            header_len = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(header_len))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total


__all__ = [
    "ARCHS",
    "CHATML_TEMPLATE",
    "build_tiny_model",
    "builtin_corpus",
    "parameter_count",
    "train_tokenizer",
]
