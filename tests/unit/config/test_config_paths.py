"""Plain `llmft validate` checks that the local files and folders a config names are there (nothing opened,
no torch), naming the key, the path and the fix; Hub ids (`gpt2`, `org/name`) are never taken for paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmft.cli.main import main
from llmft.config.load import inspect_config
from llmft.config.paths import check_local_paths, looks_like_path

RELATIVE = "relative paths in a config file are relative to its folder"


def config_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def errors(path: Path, overrides: list[str] | None = None) -> list[tuple[str, str, str | None, str | None]]:
    loaded = inspect_config(path, overrides, check_files=True)
    return [(p.path, p.message, p.fix, p.location) for p in loaded.errors]


@pytest.mark.parametrize("name", ["gpt2", "org/name", "Qwen/Qwen2.5-0.5B", "distilbert-base-uncased"])
def test_hub_ids_are_not_paths(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert not looks_like_path(name, tmp_path)
    assert check_local_paths({"model": {"name_or_path": name}}, tmp_path) == []


@pytest.mark.parametrize(
    "name", ["./base", "../base", "/no/such/base", "~/no-such-base", "a/b/c", "models/x"]
)
def test_paths_that_look_local_are_checked(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # `models/x`: its first folder exists, so it is meant as a path
    assert looks_like_path(name, tmp_path)
    [problem] = check_local_paths({"model": {"name_or_path": name}}, tmp_path)
    assert (problem.path, problem.message) == ("model.name_or_path", f"local model folder not found: {name}")
    assert problem.fix == f"correct the path ({RELATIVE}), or use a Hub id such as org/name"


def test_missing_data_files_and_model_folder_are_named_with_key_line_and_fix(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    path = config_file(
        tmp_path,
        {
            "data": {"dataset": {"train_file": "train.jsonl", "validation_file": "data/valid.jsonl"}},
            "model": {"name_or_path": "./base"},
        },
    )
    assert errors(path) == [
        (
            "data.dataset.validation_file",
            f"data file not found: {tmp_path / 'data' / 'valid.jsonl'}",
            f"correct the path ({RELATIVE}), or create the file",
            f"{path}:4",
        ),
        (
            "model.name_or_path",
            "local model folder not found: ./base",
            f"correct the path ({RELATIVE}), or use a Hub id such as org/name",
            f"{path}:6",
        ),
    ]
    (tmp_path / "base").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "valid.jsonl").write_text("{}\n")
    assert errors(path) == []


def test_wrong_kinds_a_missing_dir_a_mixture_and_a_saved_dataset(tmp_path: Path) -> None:
    (tmp_path / "folder.jsonl").mkdir()
    (tmp_path / "model.txt").write_text("x")
    raw = {
        "data": {
            "datasets": [
                {"name": "a", "dataset": {"train_file": str(tmp_path / "folder.jsonl")}},
                {"name": "b", "dataset": {"dir": str(tmp_path / "gone"), "train_file": "t.jsonl"}},
                {"name": "c", "dataset": {"path": str(tmp_path / "tatsu-lab/alpaca")}},
                {"name": "d", "dataset": {"name": "tatsu-lab/alpaca"}},
            ],
            "tokenization": {"tokenizer": str(tmp_path / "model.txt")},
        },
        "model": {"name_or_path": "gpt2"},
    }
    found = [(p.path, p.message, p.fix) for p in check_local_paths(raw, tmp_path)]
    assert found == [
        (
            "data.datasets.0.dataset.train_file",
            f"`{tmp_path / 'folder.jsonl'}` is a folder, not a data file",
            "name a file in it",
        ),
        (
            "data.datasets.1.dataset.dir",
            f"data folder not found: {tmp_path / 'gone'}",
            f"correct the path ({RELATIVE})",
        ),
        (
            "data.datasets.2.dataset.path",
            f"saved dataset folder not found: {tmp_path / 'tatsu-lab/alpaca'}",
            f"correct the path ({RELATIVE}); a Hub data set id goes in `name:` instead",
        ),
        (
            "data.tokenization.tokenizer",
            f"`{tmp_path / 'model.txt'}` is a file, not a local model folder",
            "name the folder it is in",
        ),
    ]


def test_a_path_given_on_the_command_line_is_located_there(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text("{}\n")
    path = config_file(
        tmp_path, {"data": {"dataset": {"train_file": "t.jsonl"}}, "model": {"name_or_path": "gpt2"}}
    )
    assert errors(path, ["data.dataset.test_file=/no/such/test.jsonl"]) == [
        (
            "data.dataset.test_file",
            "data file not found: /no/such/test.jsonl",
            f"correct the path ({RELATIVE}), or create the file",
            "command line",
        )
    ]


def test_only_validate_checks_files_not_loading_a_config(tmp_path: Path) -> None:
    """Code that writes a config before its data (a test, a search) loads it as before."""
    path = config_file(
        tmp_path, {"data": {"dataset": {"train_file": "later.jsonl"}}, "model": {"name_or_path": "./m"}}
    )
    assert inspect_config(path).errors == []


def test_validate_command_exits_2_naming_key_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(
        tmp_path, {"data": {"dataset": {"train_file": "nope.jsonl"}}, "model": {"name_or_path": "gpt2"}}
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: 1 problem",
        f"  - data.dataset.train_file: data file not found: {tmp_path / 'nope.jsonl'} ({path}:3) "
        f"Fix: correct the path ({RELATIVE}), or create the file",
    ]


DATA = {"data": {"dataset": {"name": "org/data"}}}


def test_a_gguf_base_is_a_file_that_must_be_there(tmp_path: Path) -> None:
    path = config_file(tmp_path, {**DATA, "model": {"name_or_path": "base.Q8_0.gguf"}})
    assert errors(path) == [
        (
            "model.name_or_path",
            "GGUF file not found: base.Q8_0.gguf",
            f"correct the path ({RELATIVE})",
            f"{path}:5",
        )
    ]
    (tmp_path / "base.Q8_0.gguf").write_bytes(b"GGUF")
    assert errors(path) == []  # a file, not a folder: no "is a file" error
    (tmp_path / "folder.gguf").mkdir()  # a folder, not a GGUF file
    folder = tmp_path / "folder.gguf"
    assert errors(path, [f"model.name_or_path={folder}"])[0][1] == f"`{folder}` is a folder, not a GGUF file"


def test_gguf_file_must_be_in_its_local_folder_and_not_beside_a_gguf_path(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    path = config_file(tmp_path, {**DATA, "model": {"name_or_path": "models", "gguf_file": "m.gguf"}})
    assert errors(path) == [
        (
            "model.gguf_file",
            f"GGUF file not found: {tmp_path / 'models' / 'm.gguf'}",
            "correct the file name",
            f"{path}:6",
        )
    ]
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF")
    assert errors(path) == []
    assert errors(path, [f"model.name_or_path={tmp_path / 'models' / 'm.gguf'}"]) == [
        (
            "model",
            f"model.name_or_path is already a GGUF file (`{tmp_path / 'models' / 'm.gguf'}`) and "
            "model.gguf_file names another (`m.gguf`)",
            "remove model.gguf_file, or set model.name_or_path to the folder (or Hub repo) that holds it",
            "command line",
        )
    ]
    hub = config_file(
        tmp_path, {**DATA, "model": {"name_or_path": "org/model-GGUF", "gguf_file": "m.Q4_K_M.gguf"}}
    )
    assert errors(hub) == []  # a Hub repo: fetched (or found in the cache) when the run loads it
