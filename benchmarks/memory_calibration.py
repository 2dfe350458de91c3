"""Calibrate ``llmft.doctor.memory`` against the peak RSS of real CPU LoRA training runs.

Not a test: it takes a few minutes. For each case a child process builds a random-weight model from a
real transformers config, saves it, and a second child loads it with ``from_pretrained`` (as a run
does), adds LoRA on the attention projections, and runs a few AdamW steps with llmft's own loss
(``llmft.train.loss``: selective, chunked LM head). The child reports ``ru_maxrss``; the parent
compares it with ``estimate_from_config`` for the same config. Goal: every estimate within 30%.

    PYTHONPATH=src .venv/bin/python benchmarks/memory_calibration.py [--only NAME ...] [--steps 5]
        [--mmap-threshold BYTES]

Peak RSS keeps rising for the first ~4 steps (glibc's heap fills with freed activation memory), so use
at least 5 steps. ``--mmap-threshold`` runs the children with ``MALLOC_MMAP_THRESHOLD_`` set, which
makes glibc return large blocks at once: the peak then drops to the live tensors (the estimate's
parts without the allocator slack), at the cost of page faults on every large allocation.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Case:
    name: str
    arch: str  # "llama" or "gpt2"
    hidden: int
    layers: int
    heads: int
    vocab: int
    batch: int = 8
    seq: int = 256
    kv_heads: int | None = None
    intermediate: int | None = None
    gradient_checkpointing: bool = False
    attn: str = "sdpa"


CASES = (
    Case("llama-h256-l4-v8k", "llama", 256, 4, 4, 8000, kv_heads=2, intermediate=1024),
    Case("gpt2-h256-l4-v8k", "gpt2", 256, 4, 4, 8000),
    Case("llama-h256-l4-v8k-eager", "llama", 256, 4, 4, 8000, kv_heads=2, intermediate=1024, attn="eager"),
    Case("llama-h512-l8-v32k", "llama", 512, 8, 8, 32000, intermediate=1376),
    Case("llama-h512-l8-v32k-gc", "llama", 512, 8, 8, 32000, intermediate=1376, gradient_checkpointing=True),
    Case("llama-h512-l8-v32k-b4s1024", "llama", 512, 8, 8, 32000, batch=4, seq=1024, intermediate=1376),
    Case("gpt2-small", "gpt2", 768, 12, 12, 50257),
)


def _hf_config(case: Case):  # noqa: ANN202 - a transformers config
    from transformers import GPT2Config, LlamaConfig

    if case.arch == "gpt2":
        return GPT2Config(
            vocab_size=case.vocab,
            n_embd=case.hidden,
            n_layer=case.layers,
            n_head=case.heads,
            n_positions=max(1024, case.seq),
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=0,
            eos_token_id=0,
        )
    return LlamaConfig(
        vocab_size=case.vocab,
        hidden_size=case.hidden,
        intermediate_size=case.intermediate,
        num_hidden_layers=case.layers,
        num_attention_heads=case.heads,
        num_key_value_heads=case.kv_heads or case.heads,
        max_position_embeddings=max(2048, case.seq),
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


def _targets(arch: str) -> list[str]:
    return ["c_attn", "attn.c_proj"] if arch == "gpt2" else ["q_proj", "k_proj", "v_proj", "o_proj"]


def child_prepare(case: Case, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(_hf_config(case)).save_pretrained(out)


def child_run(case: Case, model_dir: Path, steps: int) -> dict[str, float]:
    """Load, adapt, train ``steps`` steps; return peak RSS and timings (run in a fresh process)."""
    import datasets  # noqa: F401 - a run imports it too; it is part of the baseline RSS
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from llmft.train.loss import selective_lm_loss

    torch.manual_seed(0)
    rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation=case.attn
    )
    model.config.use_cache = False
    if case.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=_targets(case.arch))
    )
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    for _ in range(steps):
        ids = torch.randint(3, case.vocab, (case.batch, case.seq))
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
        loss, count = selective_lm_loss(model, batch)
        (loss / count).backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
    return {
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_after_import": rss_import,
        "rss_after_load": rss_loaded,
        "seconds_per_step": (time.perf_counter() - start) / steps,
        "cpu_seconds_per_step": (_cpu_seconds() - cpu_start) / steps,
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_baseline() -> dict[str, float]:
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    return {"peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def _child(*args: str, threshold: int | None = None) -> dict[str, float]:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin", "HF_HUB_OFFLINE": "1"}
    if threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(threshold)
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _estimate(case: Case, model_dir: Path):  # noqa: ANN202 - MemoryEstimate
    from llmft.config.schema import RunConfig
    from llmft.doctor.memory import estimate_from_config

    config = RunConfig.model_validate(
        {
            "data": {"dataset": {"train_file": "unused.jsonl"}, "tokenization": {"max_length": case.seq}},
            "model": {
                "name_or_path": str(model_dir),
                "attn_implementation": case.attn,
                "adapter": {"type": "lora", "r": 8, "target_modules": _targets(case.arch)},
            },
            "training": {"batch_size": case.batch, "gradient_checkpointing": case.gradient_checkpointing},
        }
    )
    return estimate_from_config(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="case names to run (default: all)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--mmap-threshold", type=int, help="set MALLOC_MMAP_THRESHOLD_ in the children")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "baseline":
            print(json.dumps(child_baseline()))
            return
        case = Case(**json.loads(rest[0]))
        if kind == "prepare":
            child_prepare(case, Path(rest[1]))
            print("{}")
        else:
            print(json.dumps(child_run(case, Path(rest[1]), int(rest[2]))))
        return
    sys.path.insert(0, str(SRC))
    from llmft.doctor.memory import MIB, PROCESS_OVERHEAD

    base = _child("--child", "baseline")["peak_rss"]
    print(f"RSS after import torch, transformers, peft, datasets: {base / MIB:.0f} MiB")
    print(
        f"{'case':27} {'estimate':>9} {'measured':>9} {'error':>7} {'no-slack':>9}  "
        f"{'s/step':>6} {'cpu-s':>6}  parts"
    )
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        with tempfile.TemporaryDirectory(prefix="llmft-memcal-") as tmp:
            spec = json.dumps(asdict(case))
            _child("--child", "prepare", spec, tmp)
            measured = _child("--child", "run", spec, tmp, str(args.steps), threshold=args.mmap_threshold)
            estimate = _estimate(case, Path(tmp))
        peak, total = measured["peak_rss"], estimate.total()
        no_slack = total - (estimate.overhead - PROCESS_OVERHEAD)  # the live tensors + runtime
        parts = " ".join(f"{k[:3]}={v / MIB:.0f}" for k, v in estimate.to_dict().items() if k != "total")
        print(
            f"{case.name:27} {total / MIB:8.0f}M {peak / MIB:8.0f}M {(total - peak) / peak:+7.1%} "
            f"{no_slack / MIB:8.0f}M  {measured['seconds_per_step']:6.2f} "
            f"{measured['cpu_seconds_per_step']:6.2f}  "
            f"{parts} (MiB)",
            flush=True,
        )


if __name__ == "__main__":
    main()
