"""One run's training time and precision, told the same way everywhere: the log line, run.json and the
end-of-run summary read one measurement, and `mixed_precision: auto` is reported as what it resolved to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tests.matrix import THREADS

from llmft.config.load import validate_dict
from llmft.config.schema import TrainingConfig
from llmft.pipeline import run
from llmft.report.summary import summary_rows
from llmft.run_record import seconds_text
from llmft.train.parts import mixed_precision, precision_used


@pytest.mark.parametrize(
    ("mixed", "dtype", "used"),
    [("no", torch.float32, "fp32"), ("no", torch.bfloat16, "bf16"), ("bf16", torch.float32, "bf16")],
)
def test_precision_used_is_the_autocast_dtype_else_the_weights(
    mixed: str, dtype: torch.dtype, used: str
) -> None:
    assert precision_used(mixed, torch.nn.Linear(2, 2).to(dtype)) == used


def test_seconds_text() -> None:
    assert (seconds_text(3.25), seconds_text(119.0), seconds_text(750.0)) == ("3.2 s", "119.0 s", "12.5 min")


@pytest.mark.skipif(torch.cuda.is_available(), reason="`auto` is fp32 only on a machine without a GPU")
def test_the_log_run_json_and_summary_agree_on_time_and_precision(
    tiny_model, synth_data, tmp_path: Path
) -> None:
    assert mixed_precision(TrainingConfig()) == "no"
    files = synth_data("sft", rows=32)
    config, problems = validate_dict(
        {
            "output_dir": str(tmp_path / "run"),
            "data": {"dataset": {"train_file": str(files["train"])}, "tokenization": {"max_length": 64}},
            "model": {"name_or_path": str(tiny_model("llama"))},
            "training": {"num_threads": THREADS, "batch_size": 4, "max_steps": 2, "save_strategy": "no"},
        }
    )
    assert config is not None and config.training.mixed_precision == "auto", problems
    lines: list[str] = []
    run(config, say=lines.append, progress=False)

    assert "precision: fp32 on cpu (training.mixed_precision: auto)" in lines, lines
    [said] = [m.group(1) for line in lines if (m := re.fullmatch(r"trained 2 steps in (.+)", line))]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["precision"] == "fp32" and seconds_text(record["train_seconds"]) == said
    rows = dict(summary_rows(tmp_path / "run"))
    assert rows["time"].startswith(f"{said} training, ") and rows["time"].endswith(" in all")
    assert rows["precision"] == "fp32"
