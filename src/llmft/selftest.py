"""`llmft selftest`: the whole pipeline on synthetic data and a tiny model, in a temporary folder.

Stages: data → tokenize (loss mask checked) → LoRA training (loss must fall) → evaluation → save → reload
with plain peft (logits must match). Each stage prints PASS/FAIL with its time; the first failure stops.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmft.run_dir import RunDir

Say = Callable[[str], None]


@dataclass
class SelftestReport:
    stages: list[tuple[str, bool, float, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.stages) and all(ok for _, ok, _, _ in self.stages)


class StageFailed(AssertionError):
    """A stage's check did not hold."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise StageFailed(message)


def run_selftest(say: Say, workdir: Path | None = None, debug: bool = False) -> SelftestReport:
    report = SelftestReport()
    ctx: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="llmft-selftest-") as tmp:
        root = Path(workdir or tmp)
        for name, stage in STAGES:
            started = time.perf_counter()
            try:
                detail = stage(root, ctx) or ""
                ok = True
            except Exception as err:  # noqa: BLE001 - a selftest reports every failure as FAIL
                ok, detail = False, f"{type(err).__name__}: {err}"
                if debug:
                    traceback.print_exc()
            seconds = time.perf_counter() - started
            report.stages.append((name, ok, seconds, detail))
            say(f"{'PASS' if ok else 'FAIL'}  {name:<10} {seconds:5.1f}s  {detail}")
            if not ok:
                break
    return report


def _data(root: Path, ctx: dict[str, object]) -> str:
    from llmft.synth.data import write_synthetic_data
    from llmft.synth.models import build_tiny_model

    ctx["files"] = write_synthetic_data("sft", root / "data", rows=240, seed=0)
    ctx["base"] = build_tiny_model("llama", root / "base")
    return "synthetic alpaca data (240 rows) and a tiny Llama"


def _tokenize(root: Path, ctx: dict[str, object]) -> str:
    from llmft.config.load import load_config
    from llmft.data.build import encode_splits, prepare_rows
    from llmft.models.load import load_tokenizer

    files = ctx["files"]
    config = load_config(
        None,
        [
            f"output_dir={root / 'run'}",
            f"model.name_or_path={ctx['base']}",
            f"data.dataset.train_file={files['train']}",
            f"data.dataset.validation_file={files['validation']}",  # type: ignore[index]
            "data.tokenization.max_length=64",
            "model.adapter.target_modules=all-linear",
            "training.max_steps=40",
            "training.batch_size=16",
            "training.learning_rate=1e-2",
            "training.eval_strategy=no",
            "training.logging_steps=5",
            "training.num_threads=1",
        ],
    )
    prepared = prepare_rows(config.data, config.seed)
    tokenizer = load_tokenizer(str(ctx["base"]))
    encoded = encode_splits(prepared, config.data, tokenizer, "causal_lm")
    example, row = encoded.examples["train"][0], prepared.rows["train"][0]
    trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != -100]  # type: ignore[arg-type]
    response = row["messages"][-1]["content"]  # type: ignore[index]
    _check(
        tokenizer.decode(trained, skip_special_tokens=True) == response,
        "loss mask does not match the response",
    )
    ctx["config"] = config
    return f"{len(encoded.examples['train'])} examples; loss mask covers exactly the responses"


def _train(root: Path, ctx: dict[str, object]) -> str:
    from llmft.pipeline import run

    result = run(ctx["config"], say=lambda _: None, progress=False)  # type: ignore[arg-type]
    first, last = result.train_losses[0][1], result.train_losses[-1][1]
    _check(last < first * 0.9, f"loss did not fall ({first:.3f} → {last:.3f})")
    ctx["result"] = result
    return f"40 LoRA steps, loss {first:.3f} → {last:.3f}"


def _evaluate(root: Path, ctx: dict[str, object]) -> str:
    import math

    loss = ctx["result"].metrics["eval_loss"]  # type: ignore[attr-defined]
    _check(math.isfinite(loss), f"eval loss is {loss}")
    return f"eval_loss {loss:.3f}"


def _reload(root: Path, ctx: dict[str, object]) -> str:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    result = ctx["result"]
    model_dir = RunDir(result.output_dir).model_dir  # type: ignore[attr-defined]
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ctx["base"]), model_dir).eval()
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        diff = (reloaded(input_ids=ids).logits - result.model.eval()(input_ids=ids).logits).abs().max().item()  # type: ignore[attr-defined]
    _check(diff < 1e-5, f"reloaded logits differ by {diff:.2e}")
    return f"saved adapter reloads with plain peft (max logit diff {diff:.1e})"


STAGES: list[tuple[str, Callable[[Path, dict[str, object]], str | None]]] = [
    ("data", _data),
    ("tokenize", _tokenize),
    ("train", _train),
    ("evaluate", _evaluate),
    ("reload", _reload),
]
