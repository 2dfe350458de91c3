"""Benchmark scenarios: a model, a data set, the llmft run config and the contenders that train on it.

A scenario's core is an ordinary llmft run config: the baselines read their model, LoRA settings, batch
size, learning rate, schedule and seed from it, and their token ids from llmft's data pipeline on it.
Every contender trains exactly one pass over the same training rows (same tokens); padded contenders take
``batch_size`` rows a step, packed ones ``packed_batch_size`` packed rows, chosen so that both make about
the same number of optimizer steps (and so about the same tokens per update).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from llmft.bench.models import MODELS, build_model, describe

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
VALIDATION_ROWS = 32


@dataclass
class Scenario:
    name: str
    model: str  # key of MODELS
    data: str  # "alpaca" or "fixed"
    contenders: list[str]
    batch_size: int = 8
    steps: int = 20  # measured steps (padded contenders), after `warmup`
    warmup: int = 3
    max_length: int = 512
    rounds: int = 3
    once: list[str] = field(
        default_factory=list
    )  # contenders run in the first round only (slow side figures)
    template: str = "chatml"  # how alpaca rows become text: a built-in template, or `tokenizer` (the model's)
    config: dict[str, object] = field(default_factory=dict)  # the llmft run config (filled by prepare)
    stats: dict[str, object] = field(default_factory=dict)
    model_facts: dict[str, object] = field(default_factory=dict)

    def lineup(self, round_no: int) -> list[str]:
        """This round's contenders, rotated so that no one always runs first."""
        names = self.contenders + (self.once if round_no == 0 else [])
        shift = round_no % len(names)
        return names[shift:] + names[:shift]

    @property
    def all_contenders(self) -> list[str]:
        return self.contenders + [c for c in self.once if c not in self.contenders]

    @property
    def train_rows(self) -> int:
        """Warm-up steps, measured steps, and one more: the epoch's last step, left out of the figures."""
        return (self.steps + self.warmup + 1) * self.batch_size


# ------------------------------------------------------------------------------------------ suites
def suite(
    name: str, steps: int | None = None, rounds: int | None = None, batch_size: int | None = None
) -> list[Scenario]:
    """`short` (the default): the headline comparison once, llmft against the HF Trainer script on GPT-2
    small with alpaca rows (a few minutes); `full`: the documented benchmark (about half an hour on 2 busy
    cores); `ci`: tiny, for the smoke test; `dpo`/`dpo-ci`: DPO against TRL's DPOTrainer.

    The headline comparison (llmft, the HF script, and TRL's best CPU setting: packing in fp32) gets three
    interleaved rounds; the side figures (HF without dropout, llmft with gradient checkpointing, llmft
    without packing) run in the first round only. TRL with its own defaults (`trl`, `trl-packed`) is
    a `--contenders` choice: on a CPU its bf16 autocast and checkpointing make it too slow for this budget.
    """
    if name == "short":
        out = [
            Scenario(
                "gpt2-124m/alpaca",
                "gpt2-124m",
                "alpaca",
                ["llmft", "hf"],
                batch_size=4,
                steps=3,
                warmup=1,
                rounds=1,
            )
        ]
    elif name == "ci":
        out = [
            Scenario(
                "tiny-gpt2/alpaca",
                "tiny-gpt2",
                "alpaca",
                ["llmft", "hf", "trl"],
                batch_size=4,
                steps=2,
                warmup=1,
                rounds=1,
                max_length=256,
            )
        ]
    elif name == "full":
        out = [
            Scenario(
                "gpt2-124m/alpaca",
                "gpt2-124m",
                "alpaca",
                ["llmft", "hf", "trl-packed-fp32"],
                once=["hf-nodrop", "llmft-gc", "llmft-nopack"],
                batch_size=4,
                steps=3,
                warmup=1,
            ),
            Scenario(
                "gpt2-124m/fixed",
                "gpt2-124m",
                "fixed",
                ["llmft", "hf-nodrop"],
                once=["hf"],
                batch_size=1,
                steps=4,
                warmup=1,
                rounds=2,
            ),
            Scenario(
                "llama-100m/alpaca",
                "llama-100m",
                "alpaca",
                ["llmft", "hf"],
                batch_size=4,
                steps=3,
                warmup=1,
                rounds=1,
            ),
        ]
    elif name in ("dpo", "dpo-ci"):
        out = [dpo_scenario(tiny=name == "dpo-ci")]
    elif name == "smollm2":
        out = [smollm2_scenario()]
    else:
        raise ValueError(f"unknown suite {name!r} (short, full, ci, dpo, dpo-ci or smollm2)")
    for s in out:
        s.steps = steps or s.steps
        s.rounds = rounds or s.rounds
        s.batch_size = batch_size or s.batch_size
    return out


def smollm2_scenario() -> Scenario:
    """A real pretrained model (`--suite smollm2`): SmolLM2-135M-Instruct on 120 alpaca rows in its own chat
    template, LoRA on attention, llmft packed against the HF Trainer script."""
    return Scenario(
        "smollm2-135m/alpaca",
        "smollm2-135m",
        "alpaca",
        ["llmft", "hf"],
        batch_size=4,
        steps=26,  # (26 measured + 3 warm-up + 1 last) steps x 4 rows = 120 rows
        warmup=3,
        rounds=1,
        template="tokenizer",
    )


def dpo_scenario(tiny: bool = False) -> Scenario:
    """DPO with LoRA on alpaca-length pairs against TRL's DPOTrainer on the same pairs (`--suite dpo`);
    `dpo-ci` is the tiny smoke version."""
    if tiny:
        contenders = ["llmft", "trl-dpo"]
        return Scenario("tiny-gpt2/dpo", "tiny-gpt2", "preference", contenders, 2, 2, 1, 256, rounds=1)
    return Scenario(
        "gpt2-124m/dpo-alpaca",
        "gpt2-124m",
        "preference",
        ["llmft", "trl-dpo"],
        once=["llmft-nopack"],
        batch_size=4,
        steps=3,
        warmup=1,
    )


# ------------------------------------------------------------------------------------------ data files
def _preference_files(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    """Alpaca-length pairs from the demo rows: each instruction's own output is chosen, the next row's
    output (a real answer, to another question) rejected."""
    rows = json.loads((SHARED_DATA / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    need = scenario.train_rows + VALIDATION_ROWS + 1
    if len(rows) < need:
        raise ValueError(f"alpaca_en_demo.json has {len(rows)} rows; {need} needed for {scenario.name}")
    pairs = [
        {
            "instruction": a["instruction"],
            "input": a.get("input", ""),
            "chosen": a["output"],
            "rejected": b["output"],
        }
        for a, b in zip(rows, rows[1:])
        if a["output"].strip() != b["output"].strip()
    ]
    train, val = out / "train.jsonl", out / "validation.jsonl"
    train.write_text("".join(json.dumps(p) + "\n" for p in pairs[: scenario.train_rows]), encoding="utf-8")
    val.write_text("".join(json.dumps(p) + "\n" for p in pairs[-VALIDATION_ROWS:]), encoding="utf-8")
    return train, val


def _alpaca_files(scenario: Scenario, out: Path) -> tuple[Path, Path]:
    rows = json.loads((SHARED_DATA / "alpaca_en_demo.json").read_text(encoding="utf-8"))
    need = scenario.train_rows + VALIDATION_ROWS
    if len(rows) < need:
        raise ValueError(f"alpaca_en_demo.json has {len(rows)} rows; {need} needed for {scenario.name}")
    train, val = out / "train.json", out / "validation.json"
    train.write_text(json.dumps(rows[: scenario.train_rows]), encoding="utf-8")
    val.write_text(json.dumps(rows[-VALIDATION_ROWS:]), encoding="utf-8")
    return train, val


def _fixed_files(scenario: Scenario, model_dir: Path, out: Path) -> tuple[Path, Path]:
    """Text rows that llmft's own encoder turns into exactly one example of max_length tokens each."""
    from llmft.config.schema import TokenizationConfig
    from llmft.data.tokenize import encode_text
    from llmft.models.load import load_tokenizer

    tok = load_tokenizer(str(model_dir))
    size = scenario.max_length
    cfg = TokenizationConfig(max_length=size)
    overhead = len(encode_text("a", tok, cfg)[0]) - len(tok("a", add_special_tokens=False)["input_ids"])
    words = (SHARED_DATA / "wiki_demo.txt").read_text(encoding="utf-8").split()
    rows: list[dict[str, str]] = []
    need = scenario.train_rows + VALIDATION_ROWS
    start = 0
    while len(rows) < need and start < len(words):
        ids = tok(" ".join(words[start : start + size]), add_special_tokens=False)["input_ids"]
        text = tok.decode(ids[: size - overhead])
        chunks = encode_text(text, tok, cfg)
        if len(chunks) == 1 and len(chunks[0]) == size:  # the decoded cut re-encodes to exactly `size`
            rows.append({"text": text})
            start += max(1, len(text.split()))
        else:
            start += 1
    if len(rows) < need:
        raise ValueError(
            f"wiki_demo.txt gave only {len(rows)} rows of {scenario.max_length} tokens; {need} needed"
        )
    train, val = out / "train.jsonl", out / "validation.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[: scenario.train_rows]), encoding="utf-8")
    val.write_text("".join(json.dumps(r) + "\n" for r in rows[-VALIDATION_ROWS:]), encoding="utf-8")
    return train, val


def llmft_config(scenario: Scenario, model_dir: Path, train: Path, val: Path) -> dict[str, object]:
    """The llmft run config of the scenario: LoRA r=16 on the attention projections, one epoch, fp32."""
    alpaca = scenario.data == "alpaca"
    if scenario.data == "preference":
        return _dpo_config(scenario, model_dir, train, val)
    return {
        "seed": 0,
        "data": {
            "dataset": {"train_file": str(train), "validation_file": str(val)},
            "preprocessing": {"template": scenario.template} if alpaca else {},
            "tokenization": {"max_length": scenario.max_length},
            "packing": alpaca,
        },
        "model": {"name_or_path": str(model_dir), "adapter": {"type": "lora", "r": 16, "alpha": 32}},
        "training": {
            "epochs": 1,
            "batch_size": scenario.batch_size,
            "learning_rate": 2e-4,
            "eval_strategy": "no",
            "save_strategy": "no",
        },
    }


def _dpo_config(scenario: Scenario, model_dir: Path, train: Path, val: Path) -> dict[str, object]:
    """DPO (sigmoid, beta 0.1, reference = base with the adapter disabled), LoRA r=16, one epoch, fp32,
    the pairs packed."""
    return {
        "seed": 0,
        "data": {
            "dataset": {"train_file": str(train), "validation_file": str(val)},
            "preprocessing": {"template": "chatml"},
            "tokenization": {"max_length": scenario.max_length},
            "packing": True,  # each batch's chosen and rejected sequences as documents (llmft-nopack: padded)
        },
        "model": {"name_or_path": str(model_dir), "adapter": {"type": "lora", "r": 16, "alpha": 32}},
        "training": {
            "epochs": 1,
            "batch_size": scenario.batch_size,
            "learning_rate": 2e-4,
            "logging_steps": 1,
            "eval_strategy": "no",
            "save_strategy": "no",
            "objective": "dpo",
            "preference": {"beta": 0.1},
        },
    }


def _pair_stats(scenario: Scenario, config: object, tok: object) -> dict[str, object]:
    """The report's statistics of the pairs: each pair is two sequences through the model."""
    from llmft.data.build import prepare_rows
    from llmft.train.objectives.choose import encode_for_objective

    prepared = prepare_rows(config.data, config.seed)  # type: ignore[attr-defined]
    preference = config.training.preference  # type: ignore[attr-defined]
    encoded = encode_for_objective("dpo", prepared, config.data, preference, tok, "causal_lm")  # type: ignore[attr-defined]
    train = encoded.examples["train"]
    lengths = [2 * len(e["prompt_ids"]) + len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in train]  # type: ignore[arg-type]
    scored = sum(len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in train)  # type: ignore[arg-type]
    steps = math.ceil(len(train) / scenario.batch_size)
    return {
        "train_examples": len(train),
        "validation_examples": len(encoded.examples["validation"]),
        "real_tokens": sum(lengths),
        "loss_tokens": scored,
        "loss_fraction": scored / sum(lengths),
        "mean_length": sum(lengths) / len(lengths) / 2,
        "max_length_seen": max(encoded.stats["train"].lengths),
        "min_length": min(encoded.stats["train"].lengths),
        "padded_steps": steps,
        "packs": len(train),
        "packed_batch_size": scenario.batch_size,
        "pad_id": int(tok.pad_token_id),  # type: ignore[attr-defined]
        "template": encoded.template,
    }


def prepare(scenario: Scenario, out: Path, cache: Path) -> Scenario:
    """Build the model, write the data files, and encode once to get the statistics the report needs."""
    from llmft.config.schema import RunConfig
    from llmft.data.build import encode_splits, prepare_rows
    from llmft.data.collate import pack_examples
    from llmft.models.load import load_tokenizer

    spec = MODELS[scenario.model]
    model_dir = build_model(spec, [SHARED_DATA / "alpaca_en_demo.json", SHARED_DATA / "wiki_demo.txt"], cache)
    data_dir = out / "data" / scenario.name.replace("/", "-")
    data_dir.mkdir(parents=True, exist_ok=True)
    if scenario.data == "preference":
        files = _preference_files(scenario, data_dir)
    elif scenario.data == "alpaca":
        files = _alpaca_files(scenario, data_dir)
    else:
        files = _fixed_files(scenario, model_dir, data_dir)
    scenario.config = llmft_config(scenario, model_dir, *files)
    config = RunConfig.model_validate(scenario.config)
    tok = load_tokenizer(str(model_dir))
    scenario.model_facts = {"name": spec.name, **describe(model_dir)}
    if scenario.data == "preference":
        scenario.stats = _pair_stats(scenario, config, tok)
        return scenario
    encoded = encode_splits(prepare_rows(config.data, config.seed), config.data, tok, "causal_lm")
    train = encoded.examples["train"]
    lengths = [len(e["input_ids"]) for e in train]  # type: ignore[arg-type]
    loss_tokens = sum(sum(1 for t in e["labels"][1:] if t != -100) for e in train)  # type: ignore[index]
    padded_steps = math.ceil(len(train) / scenario.batch_size)
    packs = len(pack_examples(train, scenario.max_length))
    scenario.stats = {
        "train_examples": len(train),
        "validation_examples": len(encoded.examples["validation"]),
        "real_tokens": sum(lengths),
        "loss_tokens": loss_tokens,
        "loss_fraction": loss_tokens / sum(lengths),
        "mean_length": sum(lengths) / len(lengths),
        "max_length_seen": max(lengths),
        "min_length": min(lengths),
        "padded_steps": padded_steps,
        "packs": packs,
        "packed_batch_size": max(1, round(packs / padded_steps)),
        "pad_id": int(tok.pad_token_id),
        "template": encoded.template,
    }
    return scenario
