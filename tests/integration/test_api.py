"""The public Python API: ``llmft.load_config(path, overrides)`` then ``llmft.run(config)``, as the CLI does,
and ``import llmft`` staying light (no torch until ``run`` is called)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import llmft

REPO = Path(__file__).resolve().parents[2]


def test_load_config_with_an_override_then_run(tiny_model, synth_data, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    files = synth_data("sft", rows=64)
    path = tmp_path / "api.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "unused"),
                "data": {
                    "dataset": {
                        "train_file": str(files["train"]),
                        "validation_file": str(files["validation"]),
                    },
                    "tokenization": {"max_length": 64},
                },
                "model": {"name_or_path": str(tiny_model("gpt2")), "adapter": {"type": "lora", "r": 4}},
                "training": {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-3, "eval_strategy": "no"},
            }
        ),
        encoding="utf-8",
    )
    run_dir = tmp_path / "api-run"

    config = llmft.load_config(str(path), [f"output_dir={run_dir}", "training.max_steps=3"])
    assert config.output_dir == str(run_dir) and config.training.max_steps == 3
    metrics = llmft.run(config)

    assert isinstance(metrics, dict)
    assert math.isfinite(metrics["eval_loss"]), metrics
    assert run_dir.is_dir()
    assert {"run.json", "eval_results.json", "config.yaml", "model"} <= {p.name for p in run_dir.iterdir()}
    record = json.loads((run_dir / "run.json").read_text())
    assert record["steps"] == 3 and record["stop_reason"] == "completed"
    assert json.loads((run_dir / "eval_results.json").read_text())["eval_loss"] == metrics["eval_loss"]
    assert f"saved to {run_dir}" in capsys.readouterr().err  # the default `say` writes to stderr

    said: list[str] = []  # the pipeline's options pass through: here a second run over the first
    again = llmft.run(config, say=said.append, progress=False, overwrite=True)
    assert again["eval_loss"] == pytest.approx(metrics["eval_loss"], abs=1e-6)  # same seed, same result
    assert any(line.startswith(f"saved to {run_dir}") for line in said), said


def test_load_config_without_overrides_reads_the_file() -> None:
    config = llmft.load_config(str(REPO / "configs" / "quickstart.yaml"))

    assert (config.seed, config.training.epochs, config.model.adapter.type) == (0, 5, "none")
    # relative paths are resolved against the config file's folder, as the CLI does
    assert Path(config.data.dataset.train_file) == REPO / "outputs" / "quickstart" / "data" / "train.jsonl"
    assert Path(config.output_dir) == REPO / "outputs" / "quickstart" / "run"


def test_importing_llmft_does_not_import_torch() -> None:
    heavy = "sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)"
    code = f"import sys, llmft; print({heavy}); llmft.load_config(sys.argv[1]); print({heavy})"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "configs" / "quickstart.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    after_import, after_load_config = proc.stdout.splitlines()
    assert after_import == "[]", "import llmft pulled in heavy libraries"
    assert after_load_config == "[]", "llmft.load_config pulled in heavy libraries"
