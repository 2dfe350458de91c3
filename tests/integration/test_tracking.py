"""Trackers end to end: a tiny run streams to TensorBoard, MLflow (its local store) and W&B (offline), and
each stream is read back with the library's own reader and compared with metrics.jsonl."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S
from tests.matrix import THREADS, thread_env

from llmft.config.load import load_config
from llmft.pipeline import run

NOT_INSTALLED = "not installed: pip install 'llmft[test]'"
for _module in ("tensorboard", "mlflow", "wandb"):
    pytest.importorskip(_module, reason=f"{_module} {NOT_INSTALLED}")

SECRET = "wandbkey-0123456789abcdef0123456789abcdef"
TRAIN_KEYS = ("loss", "learning_rate", "grad_norm", "tokens_per_second", "tokens_seen", "epoch")


def tiny_config(tmp_path: Path, tiny_model, synth_data, **tracking: object) -> Path:  # noqa: ANN001
    files = synth_data("sft", rows=48)
    config = {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "data": {
            "dataset": {
                "train_file": str(files["train"]),
                "validation_file": str(files["validation"]),
            },
            "tokenization": {"max_length": 48},
        },
        "model": {"name_or_path": str(tiny_model("llama")), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": 6,
            "batch_size": 8,
            "learning_rate": 1e-2,
            "logging_steps": 1,
            "eval_strategy": "steps",
            "eval_steps": 3,
            "num_threads": THREADS,
        },
        "tracking": tracking,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def jsonl_series(out: Path) -> dict[str, dict[int, float]]:
    """metrics.jsonl as key → {step: value}."""
    series: dict[str, dict[int, float]] = {}
    for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key, value in record.items():
            if key != "step":
                series.setdefault(key, {})[record["step"]] = float(value)
    return series


def tensorboard_series(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def mlflow_series(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    keys = client.get_run(run_id).data.metrics
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys}


def wandb_records(run_dir: Path) -> list[object]:
    """The records of an offline run's .wandb file: W&B's LevelDB-style log (32 KiB blocks of chunks with
    a 7-byte header) after a 7-byte file header, each record a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    data = next(run_dir.glob("run-*.wandb")).read_bytes()
    assert data[:4] == b":W&B", data[:7]
    pos, block, chunk, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = chunk + data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def wandb_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    for record in wandb_records(run_dir):
        if record.WhichOneof("record_type") != "history":
            continue
        step = record.history.step.num
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            if not key.startswith("_"):
                series.setdefault(key, []).append((step, float(json.loads(item.value_json))))
    return series


Series = dict[str, list[tuple[int, float]]]


def assert_same_stream(found: Series, expected: dict[str, dict[int, float]]) -> None:
    """Every metrics.jsonl key, each of its steps exactly once and in order, with the same value."""
    for key, by_step in expected.items():
        assert key in found, f"{key} missing; found {sorted(found)}"
        steps = [s for s, _ in found[key]]
        assert steps == sorted(by_step), (key, steps)  # every step once, in order
        for step, value in found[key]:
            assert value == pytest.approx(by_step[step], rel=1e-6, abs=1e-9), (key, step)


def test_each_tracker_stream_reads_back_as_metrics_jsonl(
    tiny_model, synth_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    path = tiny_config(
        tmp_path,
        tiny_model,
        synth_data,
        report_to=["tensorboard", "mlflow", "wandb"],
        api_key=SECRET,
        log_model=True,
    )
    result = run(load_config(path), say=lambda _: None, progress=False)
    out = result.output_dir
    expected = jsonl_series(out)
    assert set(TRAIN_KEYS) | {"eval_loss"} <= set(expected), sorted(expected)
    assert sorted(expected["loss"]) == [1, 2, 3, 4, 5, 6] and sorted(expected["eval_loss"]) == [3, 6]
    tracking = json.loads((out / "run.json").read_text())["tracking"]
    final = {f"final/{k}": v for k, v in result.metrics.items()}

    tb = tensorboard_series(out / "tensorboard")
    assert_same_stream(tb, expected)
    for key, value in final.items():
        assert tb[key] == [(6, pytest.approx(value, rel=1e-6))]

    ml = mlflow_series(tracking["mlflow"]["uri"], tracking["mlflow"]["run_id"])
    assert tracking["mlflow"]["uri"] == f"sqlite:///{(out / 'mlflow.db').resolve()}"
    assert_same_stream(ml, expected)
    assert {k: v[0][1] for k, v in ml.items() if k.startswith("final/")} == pytest.approx(final)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking["mlflow"]["uri"])
    artifacts = {a.path for a in client.list_artifacts(tracking["mlflow"]["run_id"])}
    assert {"config.yaml", "eval_results.json", "data_report.json", "model"} <= artifacts, artifacts
    model_files = {a.path for a in client.list_artifacts(tracking["mlflow"]["run_id"], "model")}
    assert "model/adapter_model.safetensors" in model_files, model_files  # tracking.log_model
    tags = client.get_run(tracking["mlflow"]["run_id"]).data.tags
    assert tags["llmft.task"] == "causal_lm" and tags["llmft.data_fingerprint"]

    wb = wandb_series(Path(tracking["wandb"]["dir"]))
    assert_same_stream(wb, expected)

    from llmft.report.build import write_report

    page = write_report([out]).html.read_text(encoding="utf-8")  # the report of a real run
    assert page.count('class="chart"') == 7  # loss, lr, tokens/s, grad norm, eval loss, perplexity, lengths

    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "config.yaml"]  # ours: the input
    leaks = [str(p) for p in written if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"the W&B key was written to {leaks}"
    assert not (Path.home() / ".netrc").exists() or SECRET not in (Path.home() / ".netrc").read_text()


# ------------------------------------------------------------------------- SIGKILL, then --resume
REPO = Path(__file__).resolve().parents[2]
DETERMINISTIC = ("loss", "learning_rate", "grad_norm", "tokens_seen", "epoch", "eval_loss")


def _cli(config: Path, log: Path, *extra: str, delay: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), **thread_env()}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("LLMFT_TEST_CHECKPOINT_DELAY", None)
    if delay:
        env["LLMFT_TEST_CHECKPOINT_DELAY"] = delay  # hold:NAME holds that checkpoint half-written
    handle = log.open("w", encoding="utf-8")
    cmd = [sys.executable, "-m", "llmft.cli.main", "train", str(config), "-q", *extra]
    return subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO)


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 300) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_sigkill_and_resume_leave_one_gapless_tracker_series(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    path = tiny_config(tmp_path, tiny_model, synth_data, report_to=["tensorboard", "mlflow"])
    config = yaml.safe_load(path.read_text())
    config["training"].update({"max_steps": 9, "save_strategy": "steps", "save_steps": 3})
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "run"

    # Killed while the step-6 checkpoint is half-written: step-3 is the last complete one, and the trackers
    # already hold steps 4-6 (TensorBoard flushed them as the checkpoint began).
    first = _cli(path, tmp_path / "first.log", delay="hold:step-0000006")  # until it is killed
    held = _wait_for(first, lambda: any((out / "checkpoints").glob(".tmp-step-0000006-*")))
    first.kill()
    first.wait()
    assert held, (tmp_path / "first.log").read_text()
    before = json.loads((out / "checkpoints" / "step-0000003" / "tracking.json").read_text())
    logged_before = sorted(jsonl_series(out)["loss"])
    assert logged_before == [1, 2, 3, 4, 5, 6], logged_before

    second = _cli(path, tmp_path / "second.log", "--resume")
    assert second.wait(timeout=HANG_GUARD_S) == 0, (tmp_path / "second.log").read_text()

    expected = jsonl_series(out)
    assert sorted(expected["loss"]) == list(range(1, 10))
    tracking = json.loads((out / "run.json").read_text())["tracking"]
    assert tracking["mlflow"]["run_id"] == before["mlflow"]["run_id"], "the resume started a new MLflow run"
    series = {
        "tensorboard": tensorboard_series(out / "tensorboard"),
        "mlflow": mlflow_series(tracking["mlflow"]["uri"], tracking["mlflow"]["run_id"]),
    }
    for name, found in series.items():
        assert_same_stream(found, {k: expected[k] for k in DETERMINISTIC}), name
        tokens = [v for _, v in found["tokens_seen"]]
        assert tokens == sorted(set(tokens)), f"{name}: token counter went back: {tokens}"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking["mlflow"]["uri"])
    runs = client.search_runs([tracking["mlflow"]["experiment_id"]])
    assert [r.info.run_id for r in runs] == [before["mlflow"]["run_id"]]
    assert runs[0].info.status == "FINISHED"


# ------------------------------------------------------------------------------ a search in MLflow
def test_optuna_search_is_one_mlflow_parent_run_with_a_nested_run_per_trial(
    tiny_model, synth_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    pytest.importorskip("optuna", reason=f"optuna {NOT_INSTALLED}")
    from mlflow import MlflowClient

    from llmft.hpo.search import run_search

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tiny_config(tmp_path, tiny_model, synth_data, report_to=["mlflow"])
    config = yaml.safe_load(path.read_text())
    config["training"].update({"max_steps": 4, "eval_steps": 2, "logging_steps": 2})
    config["hpo"] = {
        "enabled": True,
        "backend": "optuna",
        "max_trials": 3,
        "pruner": "none",
        "parameters": {"training.learning_rate": [1e-2, 1e-4, 3e-3]},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run_search(load_config(path), say=lambda _: None, progress=False)
    out = tmp_path / "run"

    link = json.loads((out / "tracking.json").read_text())["mlflow"]
    assert link["uri"] == f"sqlite:///{(out / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=link["uri"])
    runs = client.search_runs([link["experiment_id"]])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_id for r in parents] == [link["run_id"]]
    children = {
        r.data.tags["llmft.trial"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == link["run_id"]
    }
    assert sorted(children) == ["0", "1", "2"] and len(runs) == 4
    assert {r.info.status for r in children.values()} == {"FINISHED"}
    for trial in result.trials:
        run = children[str(trial.number)]
        assert float(run.data.params["training.learning_rate"]) == trial.params["training.learning_rate"]
        assert run.data.metrics["final/eval_loss"] == pytest.approx(trial.value, rel=1e-6)
    best = [n for n, r in children.items() if r.data.tags.get("llmft.best") == "true"]
    assert best == [str(result.best.number)]
    parent = client.get_run(link["run_id"])
    assert parent.data.tags["llmft.best_trial"] == str(result.best.number)
    assert parent.data.metrics["best/eval_loss"] == pytest.approx(result.best.value)
    assert parent.info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(link["run_id"])} >= {"hpo_results.csv", "best_config.yaml"}

    from llmft.report.build import write_report

    page = write_report([out]).html.read_text(encoding="utf-8")  # the report of a real search
    assert page.count('<tr class="best"><td class="num">' + str(result.best.number) + "</td>") == 1
    assert page.count('class="chart"') >= 1 + 4  # eval_loss against lr, and the trials' curves
