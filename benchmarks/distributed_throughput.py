"""Throughput of 2 processes × 1 thread (DDP, FSDP, ZeRO-3) against 1 process × 2 threads on a CPU machine.

Not a test: a few minutes. Both runs train the same steps (2 processes with gradient_accumulation_steps 1
make the steps of 1 process with accumulation 2) on a small Llama-shaped model with random weights and
synthetic instruction data; each is a real `llmft train` subprocess. The figure is the training phase's
wall time ("trained N steps in X s"), so imports and tokenization are left out; rounds alternate the runs,
and the median of the rounds is reported, with 1 process × 1 thread for context (on a machine shared with
other jobs, two OpenMP threads in one process can lose far more to waiting on each other than two
single-threaded processes do; the load average is recorded). On CPU expect near parity: the point of
several processes is correctness on one machine and scale on many, not speed here.

    PYTHONPATH=src .venv/bin/python benchmarks/distributed_throughput.py [--rounds 3] [--steps 100]
        [--hidden 256] [--layers 4] [--json benchmarks/results/distributed-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

SRC = Path(__file__).resolve().parents[1] / "src"
ZERO3 = 'training.distributed.deepspeed={"zero_optimization": {"stage": 3}}'


def _config(folder: Path, model: Path, train_file: Path, steps: int, threads: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "output_dir": str(folder / "run"),
        "seed": 0,
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 128}},
        "model": {"name_or_path": str(model), "adapter": {"type": "lora", "r": 8}},
        "training": {
            "max_steps": steps,
            "batch_size": 8,
            "gradient_accumulation_steps": 2,
            "logging_steps": 5,
            "eval_strategy": "no",
            "save_strategy": "no",
            "num_threads": threads,
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _train(config: Path, extra: list[str]) -> float:
    """Seconds of the training phase of one `llmft train` run."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "llmft", "train", str(config), "--overwrite", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"trained (\d+) steps in ([\d.]+) (s|min)\b", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return float(found.group(2)) * (60 if found.group(3) == "min" else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(SRC))
    from llmft.synth.data import write_synthetic_data
    from llmft.synth.models import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="llmft-dist-bench-"))
    os.environ["HF_HOME"] = str(root / "hf")
    model = build_tiny_model("llama", root / "model", hidden_size=args.hidden, num_layers=args.layers)
    train_file = write_synthetic_data("sft", root / "data", rows=400)["train"]
    one = _config(root / "one", model, train_file, args.steps, threads=2)
    two = _config(root / "two", model, train_file, args.steps, threads=1)
    single = _config(root / "single", model, train_file, args.steps, threads=1)
    seconds: dict[str, list[float]] = {
        "1 process x 2 threads": [],
        "2 processes x 1 thread": [],
        "2 processes x 1 thread, fsdp": [],  # the same steps with weights and optimizer state sharded
        "2 processes x 1 thread, deepspeed zero3": [],
        "1 process x 1 thread": [],  # context: what one core alone does
    }
    two_processes = ["--nproc", "2", "training.gradient_accumulation_steps=1"]
    for _ in range(args.rounds):
        seconds["1 process x 2 threads"].append(_train(one, []))
        seconds["1 process x 1 thread"].append(_train(single, []))
        seconds["2 processes x 1 thread"].append(_train(two, two_processes))
        fsdp = [*two_processes, "training.distributed.strategy=fsdp"]
        seconds["2 processes x 1 thread, fsdp"].append(_train(two, fsdp))
        zero3 = [*two_processes, "training.distributed.strategy=deepspeed", ZERO3]
        seconds["2 processes x 1 thread, deepspeed zero3"].append(_train(two, zero3))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    ratio = medians["1 process x 2 threads"] / medians["2 processes x 1 thread"]
    report = {
        "steps": args.steps,
        "global_batch": 16,
        "model": f"llama hidden {args.hidden}, {args.layers} layers, LoRA r=8",
        "cores": len(os.sched_getaffinity(0)),
        "load_average_1min_at_end": os.getloadavg()[0],
        "seconds": seconds,
        "median_seconds": medians,
        "speed_ratio_2proc_over_1proc": ratio,
        "speed_ratio_fsdp_over_ddp": medians["2 processes x 1 thread"]
        / medians["2 processes x 1 thread, fsdp"],
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
