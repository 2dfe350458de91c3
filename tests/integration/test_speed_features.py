"""Speed features keep results the same: packing learns like padding; the tokenization cache hits and misses
exactly when it should; the CLI's fast paths import nothing heavy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

from llmft.config.load import load_config
from llmft.data.build import encode_splits, prepare_rows
from llmft.pipeline import run

REPO = Path(__file__).resolve().parents[2]


def sft_config(tmp_path: Path, files: dict[str, Path], model: Path, **training: object) -> Path:
    cfg = {
        "output_dir": str(tmp_path / "run"),
        "data": {
            "dataset": {"train_file": str(files["train"]), "validation_file": str(files["validation"])},
            "tokenization": {"max_length": 128},
        },
        "model": {
            "name_or_path": str(model),
            "adapter": {"type": "lora", "r": 8, "target_modules": "all-linear"},
        },
        "training": {
            "epochs": 2,
            "batch_size": 8,
            "learning_rate": 5e-3,
            "eval_strategy": "no",
            "num_threads": 2,
            **training,
        },
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_packing_learns_like_padding(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("sft", rows=300)
    model = tiny_model("llama")
    results = {}
    for packing in (False, True):
        cfg = sft_config(tmp_path / str(packing), files, model)
        # About the same rows per optimizer step both ways: 2 packs of 128 tokens hold ~10 rows of ~25 tokens.
        config = load_config(
            cfg,
            [
                f"data.packing={str(packing).lower()}",
                "training.batch_size=2" if packing else "training.batch_size=10",
            ],
        )
        said: list[str] = []
        results[packing] = run(config, say=said.append, progress=False)
    padded, packed = results[False], results[True]
    packing_lines = [line for line in said if line.startswith("packing:")]
    assert len(packing_lines) == 1 and "attention per document" in packing_lines[0], said
    # Packed training ran with per-document attention; the returned (and saved) model is back on plain sdpa.
    assert packed.model.get_base_model().config._attn_implementation == "sdpa"
    seen = {k: json.loads((r.output_dir / "run.json").read_text())["tokens_seen"] for k, r in results.items()}
    assert seen[True] == seen[False]  # the same real tokens were trained on
    a, b = padded.metrics["eval_loss"], packed.metrics["eval_loss"]
    assert abs(a - b) / a < 0.1, (a, b)


def test_tokenization_cache_hits_and_misses(tiny_model, synth_data, tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoTokenizer

    monkeypatch.setenv("LLMFT_CACHE", str(tmp_path / "cache"))
    files = synth_data("sft", rows=60)
    llama, qwen = tiny_model("llama"), tiny_model("qwen2")
    config = load_config(sft_config(tmp_path, files, llama))
    prepared = prepare_rows(config.data, config.seed)
    tok = AutoTokenizer.from_pretrained(llama)

    first = encode_splits(prepared, config.data, tok, "causal_lm")
    again = encode_splits(prepared, config.data, tok, "causal_lm")
    assert not first.from_cache and again.from_cache
    assert again.examples == first.examples

    changed_settings = config.data.model_copy(
        update={"tokenization": config.data.tokenization.model_copy(update={"max_length": 100})}
    )
    assert not encode_splits(prepared, changed_settings, tok, "causal_lm").from_cache
    changed_template = config.data.model_copy(
        update={"preprocessing": config.data.preprocessing.model_copy(update={"template": "alpaca"})}
    )
    assert not encode_splits(prepared, changed_template, tok, "causal_lm").from_cache
    assert not encode_splits(
        prepared, config.data, AutoTokenizer.from_pretrained(qwen), "causal_lm"
    ).from_cache
    fewer = load_config(sft_config(tmp_path, files, llama), ["data.dataset.max_train_rows=20"])
    assert not encode_splits(prepare_rows(fewer.data, fewer.seed), fewer.data, tok, "causal_lm").from_cache


@pytest.mark.parametrize("argv", [["--help"], ["validate", str(REPO / "configs" / "example_config.json")]])
def test_fast_paths_import_no_torch(argv: list[str]) -> None:
    code = (
        "import sys\nfrom llmft.cli.main import main\nrc = main(sys.argv[1:])\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\nsys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
