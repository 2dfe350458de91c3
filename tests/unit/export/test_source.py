"""What a RUN argument resolves to, and the refusals that need no weights (no torch in these tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmft.errors import ExportError
from llmft.export.load import check_mergeable
from llmft.export.source import resolve_source

SRC = Path(__file__).resolve().parents[3] / "src"


def adapter_dir(path: Path, base: Path | str, peft_type: str = "LORA", task: str = "CAUSAL_LM") -> Path:
    path.mkdir(parents=True)
    config = {"peft_type": peft_type, "task_type": task, "base_model_name_or_path": str(base)}
    (path / "adapter_config.json").write_text(json.dumps(config))
    return path


def test_run_dir_resolves_model_base_task_labels_and_qlora(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    run = tmp_path / "run"
    adapter_dir(run / "model", base, task="SEQ_CLS")
    (run / "labels.json").write_text(
        json.dumps({"id2label": {"1": "pos", "0": "neg", "10": "z", "2": "mid"}})
    )
    (run / "config.yaml").write_text("model:\n  adapter:\n    type: qlora\n")
    source = resolve_source(run)
    assert source.model_dir == run / "model" and source.run_dir == run
    assert source.base == str(base) and source.is_adapter and source.peft_type == "LORA"
    assert source.task == "sequence_classification"
    assert source.label_names == ["neg", "pos", "mid", "z"]  # numeric id order, not string order
    assert source.trained_quantized


def test_model_dir_itself_and_run_json_task(tmp_path: Path) -> None:
    run = tmp_path / "run"
    model = run / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForSequenceClassification"]}))
    by_arch = resolve_source(model)
    assert by_arch.run_dir is None and not by_arch.is_adapter and by_arch.task == "sequence_classification"
    (run / "run.json").write_text(json.dumps({"task": "causal_lm"}))
    by_record = resolve_source(model)
    assert by_record.run_dir == run and by_record.task == "causal_lm"


def test_base_override_and_moved_base(tmp_path: Path) -> None:
    adapter = adapter_dir(tmp_path / "adapter", tmp_path / "gone")
    with pytest.raises(ExportError, match="base model `.*gone` is not there any more") as err:
        resolve_source(adapter)
    assert "--base" in (err.value.fix or "")
    assert resolve_source(adapter, base="org/model").base == "org/model"


def test_a_missing_base_given_with_base_blames_base_not_the_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmft.cli.main import main

    adapter = adapter_dir(tmp_path / "adapter", tmp_path / "gone")
    with pytest.raises(ExportError) as err:
        resolve_source(adapter, base=str(tmp_path / "nope"))
    missing = f"base model `{tmp_path / 'nope'}` does not exist"
    assert (err.value.where, err.value.message) == ("--base", missing)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ExportError, match="is a file, not a model folder"):
        resolve_source(adapter, base=str(tmp_path / "file.txt"))
    assert main(["merge", str(adapter), "--out", str(tmp_path / "out"), "--base", "./nope"]) == 2
    err_text = capsys.readouterr().err
    assert err_text.startswith("error: --base: base model `./nope` does not exist\n")
    assert "adapter_config.json" not in err_text and not (tmp_path / "out").exists()


def test_merging_a_full_fine_tune_says_there_is_nothing_to_merge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmft.cli.main import main

    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: RUN: nothing to merge: {model} holds a full model (a full fine-tune, no adapter), so its "
        "full weights are already saved there\n"
    )
    assert "`llmft merge` is for runs that trained an adapter" in err and not (tmp_path / "out").exists()


def test_missing_and_wrong_paths(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        resolve_source(tmp_path / "nope")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    with pytest.raises(ExportError, match=r"neither a run directory nor a saved model \(there: notes.txt\)"):
        resolve_source(tmp_path / "stuff")


@pytest.mark.parametrize("peft_type", ["PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING"])
def test_prompt_learning_adapters_cannot_merge(tmp_path: Path, peft_type: str) -> None:
    source = resolve_source(adapter_dir(tmp_path / "a", "org/model", peft_type=peft_type))
    with pytest.raises(ExportError, match=f"holds a {peft_type.lower()} adapter: .*nothing to merge") as err:
        check_mergeable(source)
    assert err.value.exit_code == 2 and "lora" in (err.value.fix or "")


def test_cli_modules_import_no_torch_and_help_lists_match() -> None:
    code = (
        "import sys, llmft.cli.merge as m, llmft.cli.export as e\n"
        "assert not {'torch', 'transformers', 'peft', 'gguf'} & set(sys.modules), 'heavy import'\n"
        "from llmft.export.load import DTYPES\n"
        "from llmft.export.gguf_mix import QUANTS\n"
        "assert all(d in m.DTYPE_HELP for d in DTYPES) and all(q in e.QUANT_HELP for q in QUANTS)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(SRC), "PATH": ""})


def test_out_dir_must_be_new_or_empty_and_outside_the_model(tmp_path: Path) -> None:
    from llmft.export.merge import check_out_dir

    source = resolve_source(adapter_dir(tmp_path / "run" / "model", "org/model"))
    with pytest.raises(ExportError, match="is inside the model being merged"):
        check_out_dir(tmp_path / "run" / "model" / "merged", source, overwrite=True)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="already exists and is not an empty folder") as err:
        check_out_dir(taken, source, overwrite=False)
    assert "--overwrite" in (err.value.fix or "")
    assert check_out_dir(taken, source, overwrite=True) == taken.resolve()
    assert (taken / "config.json").is_file()  # nothing is removed until the merge has succeeded


def test_gguf_export_without_the_gguf_package_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from llmft.errors import EnvironmentProblem
    from llmft.export.gguf import export_gguf

    source = resolve_source(adapter_dir(tmp_path / "a", "org/model"))
    with pytest.raises(ExportError, match="unknown --quant `q4_k`"):
        export_gguf(source, quant="q4_k")
    monkeypatch.setitem(sys.modules, "gguf", None)
    with pytest.raises(EnvironmentProblem, match="needs the `gguf` package") as err:
        export_gguf(source, quant="q8_0")
    assert "llmft[export]" in (err.value.fix or "")
