"""A GGUF file as the base of a run, end to end: `llmft validate --deep` accepts it, `llmft train` says it in
one line and dequantizes it into a float32 copy once (a second run reuses it), and `llmft merge` of the run
gives the model that peft's base + adapter gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from tests.tolerances import assert_same_function

from llmft.cli.main import main
from llmft.config.load import load_config
from llmft.export.gguf import export_gguf
from llmft.export.source import resolve_source
from llmft.pipeline import run

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it


@pytest.fixture(scope="module")
def setup(tiny_model, synth_data, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:  # noqa: ANN001
    """The session's tiny Llama as a q8_0 GGUF, trained on twice (4 LoRA steps each) with its own cache."""
    tmp = tmp_path_factory.mktemp("gguf-base")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMFT_CACHE", str(tmp / "cache" / "tokenized"))
        gguf = export_gguf(resolve_source(tiny_model("llama")), tmp / "tiny.Q8_0.gguf", quant="q8_0").path
        config = tmp / "sft.yaml"
        config.write_text(yaml.safe_dump(sft_config(gguf, synth_data("sft", rows=40)["train"], tmp / "run")))
        first: list[str] = []
        run(load_config(config, []), say=first.append, progress=False)
        copy = next((tmp / "cache" / "gguf").iterdir())
        written = (copy / "model.safetensors").stat().st_mtime_ns
        second: list[str] = []
        run(load_config(config, [f"output_dir={tmp / 'run2'}"]), say=second.append, progress=False)
    return {
        "tmp": tmp,
        "gguf": gguf,
        "config": config,
        "copy": copy,
        "written": written,
        "says": (first, second),
    }


def sft_config(gguf: Path, train_file: Path, out: Path) -> dict[str, object]:
    return {
        "output_dir": str(out),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}},
        "model": {
            "name_or_path": str(gguf),
            "adapter": {"type": "lora", "r": 4, "target_modules": "all-linear"},
        },
        "training": {"max_steps": 4, "batch_size": 4, "learning_rate": 1e-2, "eval_strategy": "no"},
    }


def test_the_run_says_its_gguf_base_and_writes_the_copy_once(setup: dict[str, object]) -> None:
    first, second = setup["says"]
    copy = setup["copy"]
    line = "model: tiny.Q8_0.gguf (llama, GGUF Q8_0 dequantized to float32, 236K parameters); float32 copy"
    assert [s for s in first if s.startswith("model: ")] == [s for s in first if s.startswith(line)]
    assert any(s.startswith(f"{line} written to {copy} (") for s in first)
    assert any(s.startswith(f"{line} reused from {copy} (") for s in second)
    assert (copy / "model.safetensors").stat().st_mtime_ns == setup["written"]  # not written again
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # one copy, no partial one left


def test_the_adapter_names_the_copy_and_run_json_the_gguf(setup: dict[str, object]) -> None:
    run_dir = setup["tmp"] / "run"
    adapter = json.loads((run_dir / "model" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(setup["copy"])
    record = json.loads((run_dir / "run.json").read_text())["base_gguf"]
    assert record == {
        "file": str(setup["gguf"]),
        "architecture": "llama",
        "storage": "Q8_0",
        "parameters": 235712,
        "copy": str(setup["copy"]),
    }
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["name_or_path"] == str(
        setup["gguf"]
    )


def test_merge_of_the_run_gives_base_plus_adapter(setup: dict[str, object]) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir, out = setup["tmp"] / "run", setup["tmp"] / "merged"
    assert main(["merge", str(run_dir), "--out", str(out)]) == 0
    base = AutoModelForCausalLM.from_pretrained(setup["copy"], dtype=torch.float32).eval()
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    ids = torch.randint(4, merged.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        untrained = base(input_ids=ids).logits
        # Plain peft finds the base through adapter_config.json (it wraps `base` in place).
        want = PeftModel.from_pretrained(base, run_dir / "model").eval()(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert_same_function(got, want)
    assert not torch.allclose(got, untrained, atol=1e-3)  # the adapter did change the model


def test_validate_deep_accepts_a_gguf_base(
    setup: dict[str, object], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMFT_CACHE", str(setup["tmp"] / "cache" / "tokenized"))
    assert main(["validate", str(setup["config"]), "--deep"]) == 0
    err = capsys.readouterr().err
    assert "is a file, not a model directory" not in err
    assert "GGUF base tiny.Q8_0.gguf: llama, Q8_0, 236K parameters; its float32 copy in" in err
