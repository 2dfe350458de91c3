"""Peak memory of a training run, estimated from the model's shape alone (no weights are loaded).

Used by ``llmft doctor CONFIG`` (does the run fit this machine?) and by ``llmft preview``. The figures are
calibrated against the peak RSS of real CPU LoRA runs by ``benchmarks/memory_calibration.py``; the
aim is to be within 30% of the measured peak, erring on the high side.

What is counted (bytes):

* **weights**: every parameter (base + adapter) × the weight dtype's size.
* **gradients**: trainable parameters × 4 (adapter weights stay float32 under peft).
* **optimizer**: AdamW's two float32 moments per trainable parameter (8 bytes).
* **activations**: what autograd keeps for backward, plus the logits (see ``ActivationProfile``).
* **overhead**: the process itself plus allocator slack. The runtime is ``PROCESS_OVERHEAD``: RSS right
  after ``import torch, transformers, peft, datasets`` is about 430 MiB on a Linux CPU machine. The
  slack is ``CPU_ALLOCATOR_SLACK`` × activations: glibc serves tensors under 32 MiB from its heap
  once its dynamic mmap threshold has risen, and freed activation memory stays resident, fragmented,
  from step to step. Measured: peak RSS settles after ~5 steps at about 1.65× the live activation
  bytes (with ``MALLOC_MMAP_THRESHOLD_=1048576`` the slack disappears; see the calibration script).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import RunConfig

MIB = 1024**2
GIB = 1024**3
PROCESS_OVERHEAD = 450 * MIB  # RSS of the Python/torch/transformers/peft/datasets runtime on CPU
CPU_ALLOCATOR_SLACK = 0.65  # freed-but-resident heap memory, as a fraction of activations (calibrated)
CUDA_OVERHEAD = 1 * GIB  # CUDA context and cuBLAS workspaces (not calibrated: no GPU at hand)
CUDA_ALLOCATOR_SLACK = 0.25  # the caching allocator's fragmentation (not calibrated)
LOGITS_COPIES = 3  # logits, log-softmax kept for backward, and the gradient made from them
HEAD_CHUNK = 2048  # positions per LM-head chunk in llmft.train.loss (each chunk is checkpointed)
ADAMW_BYTES = 8
GRAD_BYTES = 4


@dataclass(frozen=True)
class ActivationProfile:
    """Elements one transformer block keeps for backward, per token.

    Per layer and token: ``hidden_factor × hidden + intermediate_factor × intermediate`` elements, plus
    ``score_copies × heads × seq`` for eager attention, which materialises the seq × seq scores (SDPA's
    memory-efficient kernels keep only q, k, v, the output and a log-sum-exp per row, so 0 there).

    This is Korthikanti et al. (2022)'s count, ``s·b·h·(34 + 5·a·s/h)`` bytes per layer in fp16 with
    dropout, redone for how fine-tuning runs today: no dropout masks (dropout is off), SDPA instead
    of stored attention probabilities, and, because autograd saves the input of a linear layer only when
    its weight needs a gradient, frozen layers keep nothing: with LoRA only the inputs of adapted layers
    are kept. A Llama block with LoRA on the attention projections keeps: the two norm inputs (2h),
    q, k, v and the attention output (2h + 2·kv), the inputs of the adapted q/k/v and o projections (2h)
    and the SwiGLU's gate, activation and up outputs (3i). Multiply by the activation dtype's size.
    The default (8h + 4i) is the conservative generic figure for a block with a plain GELU MLP.
    """

    hidden_factor: float = 8.0
    intermediate_factor: float = 4.0
    score_copies: float = 0.0

    def elements_per_token(self, hidden: int, intermediate: int, heads: int, seq_len: int) -> float:
        scores = self.score_copies * heads * seq_len
        return self.hidden_factor * hidden + self.intermediate_factor * intermediate + scores


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak training memory by part, in bytes. ``activations`` includes the logits."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total()}

    def describe(self) -> str:
        labels = {"overhead": "runtime and allocator"}
        parts = ", ".join(f"{labels.get(k, k)} {format_bytes(v)}" for k, v in asdict(self).items())
        return f"~{format_bytes(self.total())} peak ({parts})"


def format_bytes(size: float) -> str:
    """1536 → '1.5 KiB'; binary units, one decimal."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def estimate_training_memory(
    *,
    total_params: int,
    trainable_params: int,
    batch_size: int,
    seq_len: int,
    hidden_size: int,
    num_layers: int,
    vocab_size: int,
    intermediate_size: int | None = None,
    num_heads: int | None = None,
    dtype_bytes: int = 4,
    gradient_checkpointing: bool = False,
    logits_positions: int | None = None,
    profile: ActivationProfile | None = None,
    overhead: int = PROCESS_OVERHEAD,
    allocator_slack: float = CPU_ALLOCATOR_SLACK,
) -> MemoryEstimate:
    """Peak memory of training a transformer, by part (see the module docstring for what is counted).

    Activations per layer are ``profile.elements_per_token(...) × batch × seq × dtype_bytes``. With
    gradient checkpointing each layer keeps only its input (``batch × seq × hidden``) and one layer's
    full activations exist at a time, while it is recomputed in backward. The logits cost
    ``positions × vocab × 4 × LOGITS_COPIES`` (computed in float32); ``logits_positions`` defaults to
    every token (``batch × seq``), llmft's chunked LM head passes fewer. ``overhead`` (the runtime)
    plus ``allocator_slack`` × activations make the overhead part.
    """
    profile = profile or ActivationProfile()
    intermediate = intermediate_size or 4 * hidden_size
    tokens = batch_size * seq_len
    per_layer = int(profile.elements_per_token(hidden_size, intermediate, num_heads or 0, seq_len) * tokens)
    per_layer *= dtype_bytes
    if gradient_checkpointing:
        layers = num_layers * tokens * hidden_size * dtype_bytes + per_layer
    else:
        layers = num_layers * per_layer
    positions = logits_positions if logits_positions is not None else tokens
    logits = positions * vocab_size * 4 * LOGITS_COPIES
    return MemoryEstimate(
        weights=total_params * dtype_bytes,
        gradients=trainable_params * GRAD_BYTES,
        optimizer=trainable_params * ADAMW_BYTES,
        activations=layers + logits,
        overhead=overhead + int(allocator_slack * (layers + logits)),
    )


# ------------------------------------------------------------------------------------ model shapes
@dataclass(frozen=True)
class Linear:
    """One linear layer of a block. ``role`` says which tensor feeds it (for saved-input accounting)."""

    name: str  # dotted suffix as in the module tree, e.g. "self_attn.q_proj"
    fan_in: int
    fan_out: int
    bias: bool
    role: str  # "qkv" (normed input), "o" (attention output), "up" (normed input), "down" (MLP hidden)


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about an architecture, read from its config.json."""

    model_type: str
    hidden: int
    layers: int
    heads: int
    q_dim: int  # width of q (heads × head_dim), also the attention output's
    kv_dim: int  # width of k (and of v)
    intermediate: int
    vocab: int
    block: tuple[Linear, ...]
    mlp_saved: float  # elements per intermediate unit the MLP's nonlinearity keeps (see _MLP_SAVED)
    tied: bool = True
    extra_params: int = 0  # embeddings besides the token embedding, norms, heads, cross-attention
    decoder_only: bool = True

    def block_params(self) -> int:
        return sum(lin.fan_in * lin.fan_out + (lin.fan_out if lin.bias else 0) for lin in self.block)

    def total_params(self) -> int:
        head = 0 if self.tied else self.vocab * self.hidden
        return self.vocab * self.hidden + head + self.layers * self.block_params() + self.extra_params

    def matching(self, targets: str | list[str]) -> list[Linear]:
        """The block's linears a LoRA ``target_modules`` value selects (peft matches name suffixes)."""
        if targets == "all-linear":
            return list(self.block)
        if targets == "auto":
            from llmft.models.targets import AUTO_TARGETS

            if self.model_type not in AUTO_TARGETS:
                return [lin for lin in self.block if lin.role in ("qkv", "o")]
            targets = AUTO_TARGETS[self.model_type]
        names = [targets] if isinstance(targets, str) else targets
        return [lin for lin in self.block if any(lin.name == t or lin.name.endswith("." + t) for t in names)]


# Saved elements per intermediate unit: SwiGLU keeps gate, silu(gate) and up (3); GPT-2's gelu_new is
# Python arithmetic that keeps x, tanh(.), 0.5x and 1 + tanh(.) (4); a fused activation keeps 1.
_MLP_SAVED = {"gated": 3.0, "gelu_new": 4.0, "fused": 1.0}
LLAMA_LIKE = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo", "olmo2", "granite", "smollm3"}
ENCODERS = {"bert", "roberta", "distilbert", "xlm-roberta", "electra", "deberta", "deberta-v2"}

_ALIASES = {
    "hidden": ("hidden_size", "n_embd", "d_model", "dim"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "intermediate": ("intermediate_size", "n_inner", "d_ff", "hidden_dim", "ffn_dim"),
}


def _get(raw: dict[str, object], key: str) -> int | None:
    for name in _ALIASES[key]:
        value = raw.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _llama_block(h: int, q_dim: int, kv: int, i: int, attn_bias: bool, mlp_bias: bool) -> tuple[Linear, ...]:
    return (
        Linear("self_attn.q_proj", h, q_dim, attn_bias, "qkv"),
        Linear("self_attn.k_proj", h, kv, attn_bias, "qkv"),
        Linear("self_attn.v_proj", h, kv, attn_bias, "qkv"),
        Linear("self_attn.o_proj", q_dim, h, False, "o"),
        Linear("mlp.gate_proj", h, i, mlp_bias, "up"),
        Linear("mlp.up_proj", h, i, mlp_bias, "up"),
        Linear("mlp.down_proj", i, h, mlp_bias, "down"),
    )


def _plain_block(names: tuple[str, str, str, str, str, str], h: int, i: int) -> tuple[Linear, ...]:
    """q, k, v, o, up, down with biases (BERT-style naming passed in)."""
    q, k, v, o, up, down = names
    return (
        Linear(q, h, h, True, "qkv"),
        Linear(k, h, h, True, "qkv"),
        Linear(v, h, h, True, "qkv"),
        Linear(o, h, h, True, "o"),
        Linear(up, h, i, True, "up"),
        Linear(down, i, h, True, "down"),
    )


def model_shape(raw: dict[str, object]) -> ModelShape | None:
    """The shape of a model from its config.json dict; None when the sizes cannot be read."""
    text = raw.get("text_config")
    if isinstance(text, dict) and _get(raw, "hidden") is None:
        raw = {**text, "model_type": text.get("model_type", raw.get("model_type"))}
    h, layers, heads = _get(raw, "hidden"), _get(raw, "layers"), _get(raw, "heads")
    vocab = raw.get("vocab_size")
    if h is None or layers is None or heads is None or not isinstance(vocab, int):
        return None
    kind = str(raw.get("model_type", ""))
    i = _get(raw, "intermediate") or 4 * h
    tied = bool(raw.get("tie_word_embeddings", True))
    if kind in LLAMA_LIKE:
        head_dim = raw.get("head_dim") if isinstance(raw.get("head_dim"), int) else h // heads
        kv_heads = raw.get("num_key_value_heads") or heads
        q_dim, kv = heads * head_dim, int(kv_heads) * head_dim  # type: ignore[operator]
        bias = bool(raw.get("attention_bias", kind == "qwen2"))
        block = _llama_block(h, q_dim, kv, i, bias, bool(raw.get("mlp_bias", False)))
        norms = layers * 2 * h + h
        return ModelShape(
            kind, h, layers, heads, q_dim, kv, i, vocab, block, _MLP_SAVED["gated"], tied, norms
        )
    if kind == "gpt2":
        block = (
            Linear("attn.c_attn", h, 3 * h, True, "qkv"),
            Linear("attn.c_proj", h, h, True, "o"),
            Linear("mlp.c_fc", h, i, True, "up"),
            Linear("mlp.c_proj", i, h, True, "down"),
        )
        extra = int(raw.get("n_positions", 1024)) * h + layers * 4 * h + 2 * h  # type: ignore[arg-type]
        return ModelShape(kind, h, layers, heads, h, h, i, vocab, block, _MLP_SAVED["gelu_new"], tied, extra)
    if kind in ENCODERS or kind == "distilbert":
        names = (
            (
                "attention.q_lin",
                "attention.k_lin",
                "attention.v_lin",
                "attention.out_lin",
                "ffn.lin1",
                "ffn.lin2",
            )
            if kind == "distilbert"
            else (
                "self.query",
                "self.key",
                "self.value",
                "attention.output.dense",
                "intermediate.dense",
                "output.dense",
            )
        )
        positions = int(raw.get("max_position_embeddings", 512))  # type: ignore[arg-type]
        extra = (positions + 2) * h + layers * 4 * h + 2 * h + (h * h + 3 * h + vocab)  # + MLM head
        block = _plain_block(names, h, i)
        return ModelShape(kind, h, layers, heads, h, h, i, vocab, block, 1.0, True, extra, False)
    if kind in ("t5", "mt5", "umt5"):
        return _t5_shape(raw, h, layers, heads, i, vocab, tied)
    # Unknown architecture: a generic pre-norm block with separate q/k/v/o and a plain MLP.
    generic = ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.up", "mlp.down")
    block = _plain_block(generic, h, i)
    return ModelShape(kind, h, layers, heads, h, h, i, vocab, block, 4.0, tied, layers * 4 * h)


def _t5_shape(
    raw: dict[str, object], h: int, layers: int, heads: int, i: int, vocab: int, tied: bool
) -> ModelShape:
    """Encoder and decoder blocks averaged into one: decoder cross-attention goes to ``extra_params``."""
    d_kv = raw.get("d_kv") if isinstance(raw.get("d_kv"), int) else h // heads
    inner = heads * int(d_kv)  # type: ignore[arg-type]
    decoder = int(raw.get("num_decoder_layers") or layers)  # type: ignore[arg-type]
    gated = str(raw.get("feed_forward_proj", "relu")).startswith("gated")
    mlp = (Linear("DenseReluDense.wi_0", h, i, False, "up"), Linear("DenseReluDense.wi_1", h, i, False, "up"))
    block = (
        Linear("SelfAttention.q", h, inner, False, "qkv"),
        Linear("SelfAttention.k", h, inner, False, "qkv"),
        Linear("SelfAttention.v", h, inner, False, "qkv"),
        Linear("SelfAttention.o", inner, h, False, "o"),
        *(mlp if gated else (Linear("DenseReluDense.wi", h, i, False, "up"),)),
        Linear("DenseReluDense.wo", i, h, False, "down"),
    )
    cross = decoder * (4 * h * inner + h)
    extra = cross + (layers + decoder) * 2 * h + 2 * h
    saved = _MLP_SAVED["gated"] if gated else _MLP_SAVED["fused"]
    return ModelShape(
        "t5", h, layers + decoder, heads, inner, inner, i, vocab, block, saved, tied, extra, False
    )


def activation_profile(
    shape: ModelShape, trainable: list[Linear], *, eager: bool = False
) -> ActivationProfile:
    """The saved-tensor count of one block of ``shape`` when the ``trainable`` linears get gradients."""
    h, q_dim = shape.hidden, shape.q_dim
    core = 2 * h + 2 * q_dim + 2 * shape.kv_dim  # norm inputs; q, k, v and the attention output
    roles = {lin.role for lin in trainable}
    inputs = h * ("qkv" in roles) + q_dim * ("o" in roles) + h * ("up" in roles)
    intermediate = shape.mlp_saved + ("down" in roles)
    return ActivationProfile(
        hidden_factor=(core + inputs) / h,
        intermediate_factor=intermediate,
        score_copies=2.5 if eager else 0.0,  # softmax output, dropout output and its mask (eager keeps p=0)
    )


# ------------------------------------------------------------------------------------ from a config
def read_model_config(name_or_path: str, revision: str | None = None) -> dict[str, object] | None:
    """The model's config.json as a dict, from a local directory or the Hub cache (never the network)."""
    local = Path(name_or_path).expanduser()
    candidates = [local / "config.json"] if local.is_dir() else []
    if not candidates:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
        except Exception:  # noqa: BLE001 - an invalid repo id or a broken cache means "unknown"
            cached = None
        if isinstance(cached, str):
            candidates.append(Path(cached))
    for path in candidates:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def _trainable(config: RunConfig, shape: ModelShape) -> tuple[int, list[Linear]]:
    """Trainable parameters and the block linears that get gradients, for the configured adapter."""
    adapter = config.model.adapter
    if adapter.type in ("lora", "qlora"):
        linears = shape.matching(adapter.target_modules)  # type: ignore[union-attr]
        r = adapter.r  # type: ignore[union-attr]
        return shape.layers * sum(r * (lin.fan_in + lin.fan_out) for lin in linears), linears
    if adapter.type == "prefix_tuning":
        return adapter.num_virtual_tokens * shape.layers * 2 * shape.hidden, []
    if adapter.type == "prompt_tuning":
        return adapter.num_virtual_tokens * shape.hidden, []
    return shape.total_params(), list(shape.block)


def _weight_bytes(config: RunConfig, raw: dict[str, object], device: str) -> int:
    dtype = config.model.dtype
    if dtype == "auto":
        dtype = (
            str(raw.get("torch_dtype") or raw.get("dtype") or "float32") if device == "cuda" else "float32"
        )
    return 2 if dtype in ("bfloat16", "float16") else 4


def _logits(config: RunConfig, shape: ModelShape) -> tuple[int, int]:
    """Positions that get logits at once, and the logit width (vocabulary, or labels for classification)."""
    batch, seq = config.training.batch_size, config.data.tokenization.max_length
    task = config.model.task
    if task == "auto":
        encoder_task = "seq2seq_lm" if shape.model_type == "t5" else "sequence_classification"
        task = "causal_lm" if shape.decoder_only else encoder_task
    if task == "sequence_classification":
        return batch, len(config.data.preprocessing.label_names or ()) or 2
    if task == "causal_lm" and shape.model_type in LLAMA_LIKE | {"gpt2"}:
        return min(batch * (seq - 1), HEAD_CHUNK), shape.vocab  # llmft's selective, chunked LM head
    return batch * seq, shape.vocab


def estimate_from_config(config: RunConfig, *, device: str = "cpu") -> MemoryEstimate | None:
    """Peak memory of training ``config`` on ``device`` ("cpu": peak RSS; "cuda": GPU memory).

    Reads only the model's config.json (local directory or Hub cache); None when it is not available,
    e.g. a Hub id never downloaded on an offline machine. Sequences are taken at ``max_length``: the
    longest batch sets the peak.
    """
    raw = read_model_config(config.model.name_or_path, config.model.revision)
    shape = model_shape(raw) if raw is not None else None
    if raw is None or shape is None:
        return None
    adapter = config.model.adapter
    trainable, linears = _trainable(config, shape)
    positions, vocab = _logits(config, shape)
    quant = config.model.resolved_quantization()
    cuda = device == "cuda"
    # Quantised: the rest of the weights (embeddings, norms) in the compute dtype, float32 on CPU.
    dtype_bytes = (2 if cuda else 4) if quant is not None else _weight_bytes(config, raw, device)
    estimate = estimate_training_memory(
        total_params=shape.total_params() + (trainable if adapter.type != "none" else 0),
        trainable_params=trainable,
        batch_size=config.training.batch_size,
        seq_len=config.data.tokenization.max_length,
        hidden_size=shape.hidden,
        num_layers=shape.layers,
        vocab_size=vocab,
        intermediate_size=shape.intermediate,
        num_heads=shape.heads,
        dtype_bytes=dtype_bytes,
        gradient_checkpointing=config.training.gradient_checkpointing,
        logits_positions=positions,
        profile=activation_profile(shape, linears, eager=config.model.attn_implementation == "eager"),
        overhead=CUDA_OVERHEAD if cuda else PROCESS_OVERHEAD,
        allocator_slack=CUDA_ALLOCATOR_SLACK if cuda else CPU_ALLOCATOR_SLACK,
    )
    if quant is not None:  # block weights in 4/8 bits (+ ~6% quantisation constants)
        quantised = shape.layers * shape.block_params()
        weights = estimate.weights - quantised * dtype_bytes + int(quantised * quant.bits / 8 * 1.06)
        estimate = dataclasses.replace(estimate, weights=weights)
    return estimate
