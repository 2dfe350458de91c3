"""`llmft validate --deep`: a target module the model lacks and a column the data lacks, named with the
real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from tests.integration.cli_process import HANG_GUARD_S

REPO = Path(__file__).resolve().parents[2]


def run_validate(cfg: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "validate", str(cfg), "--deep", *extra],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )


def test_deep_catches_missing_target_module_and_column(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("sft", rows=40)
    cfg = tmp_path / "deep.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "dataset": {"train_file": str(files["train"])},
                    "preprocessing": {"format": "classification", "text_column": "sentence"},
                },
                "model": {
                    "name_or_path": str(tiny_model("llama")),
                    "adapter": {"type": "lora", "target_modules": ["q_proj", "query"]},
                },
            }
        )
    )
    proc = run_validate(cfg)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "`sentence`" in proc.stderr and "the columns there are: instruction, input, output" in proc.stderr
    assert "`query` matches no module" in proc.stderr
    assert "q_proj, up_proj, v_proj" in proc.stderr  # the model's real linear layers are listed

    report = json.loads(run_validate(cfg, "--format", "json").stdout)
    paths = {p["path"] for p in report["problems"] if p["severity"] == "error"}
    assert paths == {"data.dataset.train_file", "model.adapter.target_modules"}


def test_deep_on_a_good_config_reports_what_it_resolved(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("sft", rows=40)
    cfg = tmp_path / "ok.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"dataset": {"train_file": str(files["train"])}},
                "model": {"name_or_path": str(tiny_model("llama"))},
            }
        )
    )
    proc = run_validate(cfg)
    assert proc.returncode == 0, proc.stderr
    assert "format detected: alpaca" in proc.stderr
    assert "targets: q_proj, k_proj, v_proj, o_proj" in proc.stderr
    assert "tokenizer's chat template" in proc.stderr


def test_deep_offline_hub_model_is_a_clear_problem(synth_data, tmp_path: Path) -> None:
    files = synth_data("sft", rows=40)
    cfg = tmp_path / "hub.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"dataset": {"train_file": str(files["train"])}},
                "model": {"name_or_path": "someorg/not-cached-model"},
            }
        )
    )
    proc = run_validate(cfg)
    assert proc.returncode == 2
    assert "not available offline" in proc.stderr and "Traceback" not in proc.stderr
