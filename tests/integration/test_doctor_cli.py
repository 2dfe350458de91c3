"""`llmft doctor` end to end: the typer command on an app built here (the CLI may register it later),
``run_doctor`` directly, and, once the command is registered, a real subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from llmft.cli.doctor import doctor
from llmft.doctor.report import CATEGORIES, DOCTOR_JSON_SCHEMA, run_doctor

REPO = Path(__file__).resolve().parents[2]
LLAMA = {
    "model_type": "llama", "vocab_size": 1000, "hidden_size": 64, "intermediate_size": 172,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
}  # fmt: skip


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    app.command("doctor")(doctor)
    app.command("noop")(lambda: None)  # a second command, so `doctor` is a subcommand as in llmft
    return app


@pytest.fixture(scope="module", autouse=True)
def _torch_imported() -> None:
    """Import torch once up front, so the timings below measure the doctor, not the first torch import."""
    import torch  # noqa: F401


def _write_config(tmp_path: Path, **training: object) -> Path:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps(LLAMA))
    (tmp_path / "train.jsonl").write_text('{"text": "hello"}\n')
    config = {
        "output_dir": "out",
        "data": {"dataset": {"train_file": "train.jsonl"}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(model), "adapter": {"type": "qlora"}},
        "training": {"batch_size": 2, **training},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config))
    return path


def test_run_doctor_offline_is_fast_and_valid() -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # tests/conftest.py
    start = time.perf_counter()
    report = run_doctor(config_path=None)
    elapsed = time.perf_counter() - start
    print(f"run_doctor (torch already imported): {elapsed:.2f} s")
    assert elapsed < 20
    document = report.to_dict()
    jsonschema.validate(document, DOCTOR_JSON_SCHEMA)
    jsonschema.Draft202012Validator.check_schema(DOCTOR_JSON_SCHEMA)
    assert document["ok"] is (report.exit_code == 0)
    assert {check.category for check in report.checks} == set(CATEGORIES) - {"config"}
    hub = next(check for check in report.checks if check.name == "Hub")
    assert hub.status == "ok" and "not contacted" in hub.detail


def test_cli_json_validates_and_exit_code_follows_failures(app: typer.Typer) -> None:
    start = time.perf_counter()
    result = CliRunner().invoke(app, ["doctor", "--json"])
    print(f"doctor --json: {time.perf_counter() - start:.2f} s")
    document = json.loads(result.stdout)
    jsonschema.validate(document, DOCTOR_JSON_SCHEMA)
    assert result.exit_code == (0 if document["ok"] else 1)
    assert document["ok"] is not any(check["status"] == "fail" for check in document["checks"])


def test_cli_text_output(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["doctor"])
    lines = result.stdout.splitlines()
    assert lines[0] == "python" and any(line.startswith("  OK    Python") for line in lines)
    summary = lines[-1] if "failure" in lines[-1] else lines[-2]
    assert summary.endswith(("failure", "failures")) and " ok, " in summary
    assert (lines[-1] == "next: run `llmft selftest`") is (result.exit_code == 0)


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def test_qlora_on_cpu_is_judged_by_bitsandbytes(app: typer.Typer, tmp_path: Path) -> None:
    if _has_cuda():
        pytest.skip("this machine has CUDA: the CPU verdict is not what runs here")
    config = _write_config(tmp_path)
    result = CliRunner().invoke(app, ["doctor", str(config), "--json"])
    document = json.loads(result.stdout)
    jsonschema.validate(document, DOCTOR_JSON_SCHEMA)
    config_lines = {check["name"]: check for check in document["checks"] if check["category"] == "config"}
    if importlib.util.find_spec("bitsandbytes") is None:  # no CPU kernels to run on: a failure with a fix
        assert result.exit_code == 1 and document["ok"] is False
        assert (
            config_lines["needs bitsandbytes"]["status"] == "fail"
            and config_lines["needs bitsandbytes"]["fix"]
        )
    else:
        assert config_lines["quantized base"]["status"] == "ok"
        assert "bnb-4bit with bitsandbytes" in config_lines["quantized base"]["detail"]
    assert config_lines["memory estimate"]["status"] == "ok"  # a tiny model fits
    assert config_lines["output dir"]["detail"] == f"{tmp_path / 'out'} is writable"


def test_overrides_and_text_show_the_fix(app: typer.Typer, tmp_path: Path) -> None:
    config = _write_config(tmp_path)
    result = CliRunner().invoke(
        app, ["doctor", str(config), "model.adapter.type=lora", "training.mixed_precision=fp16"]
    )
    if not _has_cuda():
        assert result.exit_code == 1
        assert (
            "FAIL  mixed precision" in result.stdout and "fix: set training.mixed_precision" in result.stdout
        )
    assert "quantized base" not in result.stdout  # the override switched the adapter to lora


def test_invalid_config_is_a_failure_line(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name_or_path: m\n")
    result = CliRunner().invoke(app, ["doctor", str(bad), "--json"])
    document = json.loads(result.stdout)
    assert result.exit_code == 1
    assert [c["name"] for c in document["checks"] if c["status"] == "fail"][-1] == "config"


def _doctor_registered() -> bool:
    try:
        from llmft.cli import commands

        probe = typer.Typer()
        commands.register(probe)
    except Exception:  # noqa: BLE001 - another command's import problem is not this test's business
        return False
    return any(info.name == "doctor" for info in probe.registered_commands)


@pytest.mark.skipif(
    not _doctor_registered(), reason="`llmft doctor` is not registered in cli/commands.py yet"
)
def test_subprocess_llmft_doctor_json() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", "doctor", "--json"], capture_output=True, text=True, env=env
    )
    elapsed = time.perf_counter() - start
    print(f"python -m llmft.cli.main doctor --json: {elapsed:.2f} s (torch import included)")
    document = json.loads(done.stdout)
    jsonschema.validate(document, DOCTOR_JSON_SCHEMA)
    assert done.returncode == (0 if document["ok"] else 1)
    assert elapsed < 60
