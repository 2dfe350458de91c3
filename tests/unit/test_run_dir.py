"""run_dir.py: the names of a run directory, and what its readers make of written, missing, garbled and
cut-short files. Torch-free: the report, export and a web UI read runs through it without loading torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llmft import run_dir
from llmft.run_dir import RunDir


def test_each_file_has_its_place_in_the_run_dir(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.config_file == tmp_path / "config.yaml"
    assert run.record_file == tmp_path / "run.json"
    assert run.metrics_file == tmp_path / "metrics.jsonl"
    assert run.eval_results_file == tmp_path / "eval_results.json"
    assert run.data_report_file == tmp_path / "data_report.json"
    assert run.labels_file == tmp_path / "labels.json"
    assert run.generations_file == tmp_path / "generations.jsonl"
    assert run.model_dir == tmp_path / "model"
    assert run.tensorboard_dir == tmp_path / "tensorboard"
    assert run.best_file == tmp_path / "checkpoints" / "best.json"
    assert run.checkpoint(120) == tmp_path / "checkpoints" / "step-0000120"


def test_checkpoint_names_sort_by_step_and_only_complete_ones_count(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for step in (100, 20):
        run.checkpoint(step).mkdir(parents=True)
        (run.checkpoint(step) / run_dir.COMPLETE).write_text("ok\n")
    run.checkpoint(300).mkdir()  # a kill mid-write: no COMPLETE
    (run.checkpoints_dir / f"{run_dir.TMP_PREFIX}step-0000400-7").mkdir()
    assert run_dir.complete_checkpoints(run.checkpoints_dir) == [run.checkpoint(20), run.checkpoint(100)]
    assert run_dir.latest_checkpoint(tmp_path) == run.checkpoint(100)
    assert run_dir.latest_checkpoint(tmp_path / "elsewhere") is None
    assert run_dir.rank_rng(2) == "rng-rank2.pt"


def test_written_files_read_back_with_secrets_redacted(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run_dir.write_json(run.record_file, {"task": "causal_lm", "hf_token": "hf_secret", "when": Path("x")})
    run_dir.write_config(run.config_file, {"model": {"name_or_path": "gpt2"}, "hf_token": "hf_secret"})
    record, config = run.record(), run.config()
    assert record["task"] == "causal_lm" and record["when"] == "x"
    assert config["model"] == {"name_or_path": "gpt2"}
    assert "hf_secret" not in run.record_file.read_text() + run.config_file.read_text()
    assert run.contents() == ["config.yaml", "run.json"], "a temporary file was left behind"


def test_labels_round_trip_in_id_order() -> None:
    record = json.loads(json.dumps(run_dir.labels_record(["neg", "pos", "mixed"])))  # keys become strings
    assert record == {"id2label": {"0": "neg", "1": "pos", "2": "mixed"}}
    assert run_dir.label_names(record) == ["neg", "pos", "mixed"]
    assert run_dir.label_names({"id2label": {"1": "b", "0": "a"}}) == ["a", "b"]
    assert run_dir.label_names(None) is None and run_dir.label_names({"labels": []}) is None


def test_a_killed_run_reads_as_what_it_has(tmp_path: Path) -> None:
    """No run.json, eval_results.json or config.yaml yet, and the last metrics line cut short by the kill."""
    run = RunDir(tmp_path)
    run.metrics_file.write_text('{"step": 1, "loss": 2.0}\n\n[1]\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')
    assert run.metrics() == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]
    assert run.record() == {} and run.eval_results() == {} and run.data_report() == {} and run.config() == {}
    assert run.has_metrics() and not run.finished()
    assert run.markers() == ["metrics.jsonl"]
    assert run.samples(5) == []


def test_a_finished_run_has_its_model_and_record(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    assert run.markers() == [] and not run.has_metrics()
    run.model_dir.mkdir()
    assert not run.finished()
    run_dir.write_json(run.record_file, {"steps": 3})
    assert run.finished() and run.markers() == ["run.json", "model"]
    assert run.contents() == ["model", "run.json"]


def test_samples_come_from_the_first_sample_file_present(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.generations_file.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(5)))
    (tmp_path / "generation_samples.jsonl").write_text('{"other": 1}\n')
    assert run.samples(2) == [{"i": 0}, {"i": 1}]
    (tmp_path / "samples.jsonl").write_text('{"first": 1}\n')
    assert run.samples(2) == [{"first": 1}]


def test_garbled_files_are_empty_to_the_lenient_readers_and_raise_from_the_strict_one(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.record_file.write_text("{cut sh")
    run.eval_results_file.write_text("[1, 2]")  # valid JSON, but not an object
    assert run.record() == {} and run.eval_results() == {}
    with pytest.raises(ValueError):
        run_dir.read_json(run.record_file)
    assert run_dir.read_json(run.eval_results_file) is None
    assert run_dir.read_json(tmp_path / "missing.json") is None
    run.config_file.write_text("- just\n- a list\n")
    assert run.config() == {}
    run.config_file.write_text("model: [unclosed\n")
    with pytest.raises(yaml.YAMLError):
        run.config()


def test_a_checkpoints_state_and_config_are_read_strictly(tmp_path: Path) -> None:
    folder = tmp_path / "step-0000004"
    folder.mkdir()
    (folder / run_dir.STATE).write_text('{"step": 4, "config_hash": "abc"}')
    (folder / run_dir.CONFIG).write_text("seed: 1\n")
    assert run_dir.read_state(folder) == {"step": 4, "config_hash": "abc"}
    assert run_dir.read_checkpoint_config(folder) == "seed: 1\n"
    with pytest.raises(FileNotFoundError):
        run_dir.read_state(tmp_path)


def test_reading_runs_needs_no_torch() -> None:
    code = "import sys, llmft.run_dir; sys.exit('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr or "run_dir imported torch"
