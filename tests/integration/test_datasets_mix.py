"""Two data sets in one run (an alpaca file and a chat file, each with its own format), mixed 3:1: the rows
trained on follow the mix, each set is evaluated on its own and together, and the report says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmft.config.load import load_config


def _config(tmp_path: Path, tiny_model, synth_data, mixing: dict[str, object]) -> Path:  # noqa: ANN001
    alpaca, chat = synth_data("sft", rows=80), synth_data("chat", rows=80)
    text = f"""
output_dir: {tmp_path / "run"}
seed: 0
data:
  datasets:
    - name: alpaca
      dataset: {{train_file: {alpaca["train"]}, validation_file: {alpaca["validation"]}}}
      weight: 3
    - name: chat
      dataset: {{train_file: {chat["train"]}, validation_file: {chat["validation"]}}}
  mixing: {mixing.get("mixing", "weighted")}
  tokenization: {{max_length: 64}}
model:
  name_or_path: {tiny_model("llama")}
  adapter: {{type: lora, r: 4}}
training: {{epochs: 2, batch_size: 8, learning_rate: 1.0e-3, save_strategy: "no", num_threads: 1}}
"""
    path = tmp_path / "mix.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_two_sets_mixed_three_to_one(tiny_model, synth_data, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from llmft.data import build
    from llmft.pipeline import run
    from llmft.train import batches as fixed_batches

    captured: dict[str, object] = {}
    real_encode = build.encode_splits

    def encode(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        captured["encoded"] = real_encode(*args, **kwargs)
        return captured["encoded"]

    trained: list[int] = []
    real_order = fixed_batches.batch_order

    def order(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        batches = real_order(*args, **kwargs)
        trained.extend(i for batch in batches for i in batch)
        return batches

    monkeypatch.setattr(build, "encode_splits", encode)
    monkeypatch.setattr(fixed_batches, "batch_order", order)
    said: list[str] = []
    config = load_config(str(_config(tmp_path, tiny_model, synth_data, {})), [])
    result = run(config, say=said.append, progress=False)

    (_, a_start, a_end), (_, b_start, b_end) = captured["encoded"].sources["train"]  # type: ignore[attr-defined]
    from_a = sum(a_start <= i < a_end for i in trained)
    from_b = sum(b_start <= i < b_end for i in trained)
    assert from_a + from_b == len(trained) > 0
    assert abs(from_a / from_b - 3.0) / 3.0 <= 0.02, (from_a, from_b)

    metrics = result.metrics
    for name in ("eval_loss", "eval_alpaca_loss", "eval_chat_loss"):
        assert name in metrics, metrics
    tokens = metrics["eval_alpaca_tokens"] + metrics["eval_chat_tokens"]
    pooled = (
        metrics["eval_alpaca_loss"] * metrics["eval_alpaca_tokens"]
        + metrics["eval_chat_loss"] * metrics["eval_chat_tokens"]
    ) / tokens
    assert metrics["eval_loss"] == pytest.approx(pooled, rel=1e-5)  # together = the token-weighted sets
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert (
        report["datasets"]["alpaca"]["format"] == "alpaca"
        and report["datasets"]["chat"]["format"] == "messages"
    )
    assert report["format"] == "mixed"
    assert any(line.startswith("datasets: 2 mixed by weighted") for line in said), said


def test_sets_that_cannot_share_a_model_are_refused(tiny_model, synth_data, tmp_path: Path) -> None:  # noqa: ANN001
    from llmft.data.build import prepare_rows
    from llmft.errors import DataError

    sft, labelled = synth_data("sft", rows=40), synth_data("classification", rows=40)
    config = load_config(
        None,
        [
            f"output_dir={tmp_path / 'run'}",
            f"model.name_or_path={tiny_model('llama')}",
            f'data.datasets=[{{name: gen, dataset: {{train_file: "{sft["train"]}"}}}}, '
            f'{{name: cls, dataset: {{train_file: "{labelled["train"]}"}}}}]',
        ],
    )
    with pytest.raises(DataError, match="cls are classification data and gen are not"):
        prepare_rows(config.data, 0)
