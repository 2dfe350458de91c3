"""End to end: config → data → model + adapter → train → evaluate → run directory, on tiny models offline."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import torch
import yaml
from tests.integration.cli_process import HANG_GUARD_S
from tests.tolerances import assert_same_function

import llmft
from llmft.config.load import load_config
from llmft.pipeline import run

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it

REPO = Path(__file__).resolve().parents[2]


def write_config(path: Path, config: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def quiet_run(config_path: Path, overrides: list[str] | None = None):  # noqa: ANN201
    return run(load_config(config_path, overrides or []), say=lambda _: None, progress=False)


def importlib_version_or_none(name: str) -> str | None:
    """The installed version of ``name``, or None when it runs from source without package metadata."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def first_and_last_loss(result) -> tuple[float, float]:  # noqa: ANN001
    losses = [loss for _, loss in result.train_losses]
    return losses[0], losses[-1]


@pytest.fixture
def alpaca_200(shared_data_dir: Path, tmp_path: Path) -> Path:
    rows = json.loads((shared_data_dir / "alpaca_en_demo.json").read_text())[:200]
    out = tmp_path / "alpaca200.json"
    out.write_text(json.dumps(rows))
    return out


def test_sft_alpaca_llama_lora_reloads_with_plain_peft(tiny_model, alpaca_200: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = tiny_model("llama")
    cfg = write_config(
        tmp_path / "sft.yaml",
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"dataset": {"train_file": str(alpaca_200)}, "tokenization": {"max_length": 256}},
            "model": {
                "name_or_path": str(base),
                "adapter": {"type": "lora", "r": 8, "target_modules": "all-linear"},
            },
            "training": {
                "max_steps": 30,
                "batch_size": 8,
                "learning_rate": 1e-2,
                "logging_steps": 5,
                "eval_strategy": "no",
            },
        },
    )
    result = quiet_run(cfg)
    first, last = first_and_last_loss(result)
    assert last < first - 0.5, result.train_losses

    run_dir = tmp_path / "run"
    assert {"config.yaml", "metrics.jsonl", "eval_results.json", "run.json", "data_report.json", "model"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert (run_dir / "model" / "adapter_model.safetensors").exists()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["task"] == "causal_lm"
    versions = record["versions"]
    for package in ("torch", "transformers", "peft", "llmft"):
        assert versions.get(package) not in (None, "", "not installed"), versions
    assert versions["llmft"] in (llmft.__version__, importlib_version_or_none("llmft")), versions
    assert record["seed"] == load_config(cfg, []).seed == 42  # the default seed
    started, finished = (datetime.fromisoformat(record[k]) for k in ("started", "finished"))
    assert started.tzinfo is not None and started <= finished, record
    assert isinstance(record["data_fingerprint"], str) and record["data_fingerprint"]
    assert record["steps"] == 30
    assert record["tokens_seen"] > 0
    assert record["stop_reason"] == "completed"

    batch = torch.tensor([[1, 5, 9, 13, 17, 21, 25, 29]])
    live = result.model.eval()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), run_dir / "model").eval()
    with torch.no_grad():
        assert_same_function(reloaded(input_ids=batch).logits, live(input_ids=batch).logits)


def test_classification_bert_beats_chance_and_saves_labels(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("classification", rows=400)
    cfg = write_config(
        tmp_path / "cls.yaml",
        {
            "output_dir": str(tmp_path / "run"),
            "data": {
                "dataset": {
                    "train_file": str(files["train"]),
                    "validation_file": str(files["validation"]),
                    "test_file": str(files["test"]),
                },
                "tokenization": {"max_length": 64},
            },
            "model": {"name_or_path": str(tiny_model("bert")), "adapter": {"type": "lora", "r": 8}},
            "training": {"epochs": 4, "batch_size": 16, "learning_rate": 5e-3, "eval_strategy": "no"},
            "evaluation": {"metrics": ["accuracy", "f1"]},
        },
    )
    result = quiet_run(cfg)
    assert result.task == "sequence_classification"
    assert result.metrics["test_accuracy"] >= 0.75, result.metrics
    labels = json.loads((tmp_path / "run" / "labels.json").read_text())
    assert labels["id2label"] == {"0": "negative", "1": "positive"}


def test_legacy_bert_classifier_config_trains_as_written(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("classification", rows=200)
    legacy = json.loads((REPO / "configs" / "bert_classifier_config.json").read_text())
    legacy["data"]["dataset"] = {
        "dir": str(files["train"].parent),
        "train_file": "train.jsonl",
        "validation_file": "validation.jsonl",
        "test_file": "test.jsonl",
        "dataset_format": "jsonl",
    }
    cfg = tmp_path / "legacy.json"
    cfg.write_text(json.dumps(legacy))
    overrides = [
        f"model.name_or_path={tiny_model('distilbert')}",
        f"data.tokenization.tokenizer={tiny_model('distilbert')}",
        "data.preprocessing.text_column=text",
        f"output_dir={tmp_path / 'run'}",
        "training.epochs=1",
    ]
    result = quiet_run(cfg, overrides)
    assert result.task == "sequence_classification"
    assert "test_accuracy" in result.metrics and "test_f1" in result.metrics
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["adapter"]["target_modules"] == ["q_lin", "k_lin", "v_lin"]


@pytest.mark.parametrize(
    "adapter",
    [
        {"type": "lora", "r": 4},
        {"type": "prefix_tuning", "num_virtual_tokens": 4},
        {"type": "prompt_tuning", "num_virtual_tokens": 4},
        {"type": "none"},
    ],
)
def test_each_adapter_trains_and_reloads(adapter, tiny_model, synth_data, tmp_path: Path) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    files = synth_data("sft", rows=64)
    cfg = write_config(
        tmp_path / "a.yaml",
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"dataset": {"train_file": str(files["train"])}, "tokenization": {"max_length": 64}},
            "model": {"name_or_path": str(tiny_model("gpt2")), "adapter": adapter},
            "training": {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-3, "eval_strategy": "no"},
        },
    )
    result = quiet_run(cfg)
    assert all(torch.isfinite(torch.tensor(loss)) for _, loss in result.train_losses)
    model_dir = tmp_path / "run" / "model"
    batch = torch.tensor([[3, 4, 5, 6]])
    loader = AutoModelForCausalLM if adapter["type"] == "none" else AutoPeftModelForCausalLM
    reloaded = loader.from_pretrained(model_dir).eval()
    with torch.no_grad():
        assert_same_function(reloaded(input_ids=batch).logits, result.model.eval()(input_ids=batch).logits)


def test_qlora_trains_on_cpu_through_the_cli(tiny_model, synth_data, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is optional (pip install 'llmft[quant]')")
    files = synth_data("sft", rows=32)
    cfg = write_config(
        tmp_path / "q.yaml",
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"dataset": {"train_file": str(files["train"])}},
            "model": {"name_or_path": str(tiny_model("llama")), "adapter": {"type": "qlora"}},
            "training": {"max_steps": 4, "batch_size": 4, "eval_strategy": "no", "logging_steps": 1},
        },
    )
    proc = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "train", str(cfg)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")},
        timeout=HANG_GUARD_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "run" / "model" / "adapter_model.safetensors").exists()


def test_seq2seq_t5_loss_falls(tiny_model, tmp_path: Path) -> None:
    rows = [
        {"input": f"copy: {w} {v}", "target": f"{w} {v}"}
        for w in ("red", "blue", "green", "cat", "dog")
        for v in ("one", "two", "three", "four")
    ] * 4
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    cfg = write_config(
        tmp_path / "t5.yaml",
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"dataset": {"train_file": str(data)}},
            "model": {
                "name_or_path": str(tiny_model("t5")),
                "adapter": {"type": "lora", "r": 8, "target_modules": "all-linear"},
            },
            "training": {
                "max_steps": 40,
                "batch_size": 8,
                "learning_rate": 1e-2,
                "logging_steps": 5,
                "eval_strategy": "no",
            },
        },
    )
    result = quiet_run(cfg)
    assert result.task == "seq2seq_lm"
    first, last = first_and_last_loss(result)
    assert last < first - 0.5, result.train_losses
