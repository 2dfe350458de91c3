"""The table of objectives (config/objectives.py) and the run-time registry (train/objectives/registry.py)
name the same objectives with the same data, and a new objective is a table row plus a module: a toy one
added through the two alone trains a few steps on the tiny model."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest
import torch
from tests.matrix import THREADS

from llmft.config import objectives as table
from llmft.config.load import validate_dict
from llmft.config.schema import TrainingConfig
from llmft.pipeline import run
from llmft.train.loss import full_lm_loss
from llmft.train.objectives import Batch, Context, Objective, instructions, next_token_units
from llmft.train.objectives.registry import REGISTRY


def test_the_registry_has_a_module_for_every_row_that_trains_with_the_rows_data_and_reference() -> None:
    assert set(REGISTRY) == {name for name, row in table.ROWS.items() if row.trains}
    for name in REGISTRY:
        row, module = table.ROWS[name], REGISTRY[name]
        assert (module.NAME, tuple(module.DATA), module.NEEDS_REFERENCE) == (name, row.data, row.reference)


def test_training_objective_accepts_exactly_the_tables_names_and_auto() -> None:
    allowed = typing.get_args(TrainingConfig.model_fields["objective"].annotation)
    assert allowed == ("auto", *table.names())
    assert {"classification", "seq2seq"}.isdisjoint(allowed)  # what sft trains as, not values of their own


def test_auto_picks_an_objective_that_takes_the_data() -> None:
    for data_format in ("preference", "kto", "alpaca", "text"):
        name, _ = table.auto_choice(data_format)
        assert table.kind_of(data_format) in table.ROWS[name].data


class Toy:
    """A toy objective: half the next-token loss, counting its calls."""

    NAME = "toy"
    DATA = (table.INSTRUCTIONS,)
    NEEDS_REFERENCE = False
    encode = staticmethod(instructions.encode)
    collate = staticmethod(instructions.collate)
    calls = 0

    @classmethod
    def build(cls, ctx: Context) -> Objective:
        def loss(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, int]:
            cls.calls += 1
            total, units = full_lm_loss(model, batch)
            return total / 2, units

        return Objective(cls.NAME, loss, next_token_units)


def test_a_toy_objective_added_through_the_table_and_registry_alone_trains(
    tiny_model, synth_data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(table.ROWS, "toy", table.Row("toy", (table.INSTRUCTIONS,)))
    monkeypatch.setitem(REGISTRY, "toy", Toy)  # type: ignore[arg-type]
    monkeypatch.setattr(Toy, "calls", 0)
    files = synth_data("sft", rows=32)
    config, problems = validate_dict(
        {
            "output_dir": str(tmp_path / "run"),
            "data": {
                "dataset": {"train_file": str(files["train"])},
                "tokenization": {"max_length": 64},
            },
            "model": {"name_or_path": str(tiny_model("llama"))},
            "training": {"num_threads": THREADS, "batch_size": 4, "max_steps": 3, "save_strategy": "no"},
        }
    )
    assert config is not None and not [p for p in problems if p.severity == "error"]
    # The schema's values were fixed at import; the table and registry are what the run reads.
    toy = config.model_copy(update={"training": config.training.model_copy(update={"objective": "toy"})})
    lines: list[str] = []
    run(toy, say=lines.append, progress=False)
    assert any("objective: toy (set by training.objective)" in line for line in lines), lines
    assert Toy.calls >= 3, "\n".join(lines)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["objective"] == "toy"
