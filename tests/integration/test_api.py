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
from tests.integration.cli_process import HANG_GUARD_S
from tests.matrix import THREADS

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
    config = llmft.load_config(str(REPO / "configs" / "tiny.yaml"))

    assert (config.seed, config.training.epochs, config.model.adapter.type) == (0, 5, "none")
    # relative paths are resolved against the config file's folder, as the CLI does
    assert Path(config.data.dataset.train_file) == REPO / "outputs" / "tiny" / "data" / "train.jsonl"
    assert Path(config.output_dir) == REPO / "outputs" / "tiny" / "run"


def test_importing_llmft_does_not_import_torch() -> None:
    heavy = "sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules)"
    code = f"import sys, llmft; print({heavy}); llmft.load_config(sys.argv[1]); print({heavy})"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "configs" / "tiny.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        timeout=HANG_GUARD_S,
    )
    assert proc.returncode == 0, proc.stderr
    after_import, after_load_config = proc.stdout.splitlines()
    assert after_import == "[]", "import llmft pulled in heavy libraries"
    assert after_load_config == "[]", "llmft.load_config pulled in heavy libraries"


def _search_config(tiny_model, synth_data, tmp_path: Path) -> llmft.RunConfig:  # noqa: ANN001
    files = synth_data("classification", rows=100)
    path = tmp_path / "search.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "search"),
                "data": {
                    "dataset": {
                        "train_file": str(files["train"]),
                        "validation_file": str(files["validation"]),
                    },
                    "tokenization": {"max_length": 64},
                },
                "model": {"name_or_path": str(tiny_model("bert")), "adapter": {"r": 4}},
                "training": {"max_steps": 4, "batch_size": 8, "num_threads": THREADS, "save_strategy": "no"},
                "hpo": {
                    "enabled": True,
                    "backend": "grid",
                    "metric": "eval_loss",
                    "parameters": {"training.learning_rate": [1e-4, 1e-3]},
                },
            }
        ),
        encoding="utf-8",
    )
    return llmft.load_config(str(path))


def test_run_with_hpo_enabled_runs_the_search_as_the_cli_does(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    config = _search_config(tiny_model, synth_data, tmp_path)
    metrics = llmft.run(config, say=lambda _: None, progress=False)

    out = tmp_path / "search"
    results = json.loads((out / "hpo_results.json").read_text())
    assert [t["state"] for t in results["trials"]] == ["complete", "complete"]
    best = min(results["trials"], key=lambda t: t["value"])
    assert metrics["eval_loss"] == pytest.approx(best["value"])  # the best trial's metrics are returned
    assert not (out / "model").exists()  # no single training run beside the search


def test_the_pipeline_refuses_a_search_config_with_the_way_to_run_it(
    tiny_model, synth_data, tmp_path: Path
) -> None:  # noqa: ANN001
    from llmft.errors import ConfigError
    from llmft.pipeline import run

    config = _search_config(tiny_model, synth_data, tmp_path)
    with pytest.raises(ConfigError, match="hpo.enabled is on") as caught:
        run(config, say=lambda _: None, progress=False)
    assert "llmft.search" in (caught.value.fix or "")
    assert not (tmp_path / "search").exists()  # refused before anything was written


def test_a_metric_the_inferred_task_cannot_report_is_an_error_not_a_gap(
    tiny_model, synth_data, tmp_path
) -> None:  # noqa: ANN001
    """With model.task: auto, `validate` cannot know that f1 will not fit; the run says so once the task
    is known, before the model loads."""
    from llmft.errors import ConfigError
    from llmft.pipeline import run

    files = synth_data("sft", rows=40)
    config = llmft.load_config(
        None,
        [
            f"output_dir={tmp_path / 'run'}",
            f"model.name_or_path={tiny_model('llama')}",
            f"data.dataset.train_file={files['train']}",
            "evaluation.metrics=[loss, f1]",
        ],
    )
    with pytest.raises(ConfigError) as caught:
        run(config, say=lambda _: None, progress=False)
    assert "f1 needs a classification task, but model.task is causal_lm" in caught.value.render()


@pytest.mark.parametrize("on_test", [True, False])
def test_evaluation_on_test_decides_whether_the_test_split_is_scored(
    tiny_model,
    synth_data,
    tmp_path: Path,
    on_test: bool,  # noqa: ANN001
) -> None:
    files = synth_data("sft", rows=40)
    config = llmft.load_config(
        None,
        [
            f"output_dir={tmp_path / 'run'}",
            f"model.name_or_path={tiny_model('gpt2')}",
            f"data.dataset.train_file={files['train']}",
            f"data.dataset.test_file={files['test']}",
            "training.max_steps=2",
            "training.save_strategy=no",
            f"evaluation.on_test={str(on_test).lower()}",
        ],
    )
    metrics = llmft.run(config, say=lambda _: None, progress=False)
    assert ("test_loss" in metrics) is on_test, metrics
    assert "eval_loss" in metrics
