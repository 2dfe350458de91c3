"""The shipped-style legacy files train as written (only the model, data and length pointed at tiny local
ones): the causal LM reports next-token accuracy, the classifier its classification metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from llmft.config.load import inspect_config
from llmft.pipeline import run

LEGACY_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "legacy_configs"


def place(name: str, tmp_path: Path, folder: str, files: dict[str, Path]) -> Path:
    """The legacy file in ``tmp_path`` with its data files (``folder/train.json``...) next to it."""
    config = tmp_path / name
    shutil.copy(LEGACY_DIR / name, config)
    (tmp_path / folder).mkdir()
    for split, source in files.items():
        shutil.copy(source, tmp_path / folder / f"{split}.json")  # JSON lines: the `json` loader reads both
    return config


def train(config: Path, overrides: list[str]):  # noqa: ANN201
    loaded = inspect_config(config, overrides)
    assert loaded.errors == [] and loaded.config is not None, [p.render() for p in loaded.errors]
    return run(loaded.config, say=lambda _: None, progress=False)


def test_shipped_causal_lm_file_trains_and_reports_next_token_accuracy(
    tiny_model, synth_data, tmp_path
) -> None:  # noqa: ANN001
    files = synth_data("sft", rows=32)
    config = place(
        "shipped_causal_lm.json", tmp_path, "instructions", {k: files[k] for k in ("train", "validation")}
    )
    llama = tiny_model("llama")
    result = train(
        config,
        [
            f"model.name_or_path={llama}",
            f"data.tokenization.tokenizer={llama}",
            "data.tokenization.max_length=64",
            "training.epochs=1",
            "training.gradient_accumulation_steps=1",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    assert result.task == "causal_lm"
    accuracy = result.metrics["eval_accuracy"]
    assert 0.0 <= accuracy <= 1.0 and "eval_f1" not in result.metrics
    saved = (tmp_path / "run" / "config.yaml").read_text(encoding="utf-8")
    assert "eval_batch_size: 8" in saved and "optimizer: adamw" in saved
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in r for r in records), records[-1]  # logged by the evaluation during training


def test_shipped_classifier_file_trains(tiny_model, synth_data, tmp_path) -> None:  # noqa: ANN001
    files = synth_data("classification", rows=96)
    config = place("shipped_classifier.json", tmp_path, "sentiment", files)
    distilbert = tiny_model("distilbert")
    result = train(
        config,
        [
            f"model.name_or_path={distilbert}",
            f"data.tokenization.tokenizer={distilbert}",
            "data.tokenization.max_length=32",
            "training.epochs=1",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    assert result.task == "sequence_classification"
    assert {"test_accuracy", "test_precision", "test_recall", "test_f1"} <= set(result.metrics)
