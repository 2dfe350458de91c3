"""Reading configs: YAML and JSON alike, numbers as numbers, dotted overrides, paths relative to the file,
file:line for every problem, and every problem collected before anything is raised."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from llmft.config.load import apply_overrides, inspect_config, load_config, parse_override
from llmft.config.schema import LoraAdapter, RunConfig
from llmft.config.yaml_io import parse_value, read_config_text
from llmft.errors import ConfigError, LlmftError

REPO_ROOT = Path(__file__).resolve().parents[3]
MINIMAL = {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path, overrides: list[str] | None = None) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in inspect_config(path, overrides).errors]


# ------------------------------------------------------------------------------------- YAML and JSON
def test_yaml_and_json_give_the_same_config(tmp_path: Path) -> None:
    data = {
        "seed": 3,
        "data": {"dataset": {"name": "imdb", "split": {"train": "train[:100]"}}},
        "model": {"name_or_path": "gpt2", "adapter": {"type": "lora", "r": 4, "target_modules": ["c_attn"]}},
        "training": {"max_steps": 10, "learning_rate": 1e-4, "warmup_ratio": 0.1},
        "evaluation": {"metrics": ["loss", "perplexity"]},
    }
    from_yaml = load_config(write(tmp_path, "run.yaml", yaml.safe_dump(data)))
    from_json = load_config(write(tmp_path, "run.json", json.dumps(data)))
    assert from_yaml == from_json
    assert from_json.model.adapter == LoraAdapter(r=4, target_modules=["c_attn"])
    assert from_json.training.max_steps == 10 and from_json.seed == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-5", 1e-5),
        ("5E+3", 5000.0),
        ("3.0e-3", 3e-3),
        (".5", 0.5),
        ("-2e-4", -2e-4),
        ("1_000", 1000),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ("gpt2", "gpt2"),
        ("'1e-5'", "1e-5"),
        ("a: [", "a: ["),
    ],
)
def test_values_are_read_as_yaml_1_2_numbers(text: str, expected: object) -> None:
    """PyYAML alone reads `1e-5` as a string (YAML 1.1); configs write learning rates that way."""
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_a_number_python_cannot_read(tmp_path: Path) -> None:
    """Python refuses integers of more than 4300 digits; that is the file's problem, not a crash."""
    assert parse_value("9" * 5000) == "9" * 5000
    for name in ("run.yaml", "run.json"):
        path = write(tmp_path, name, '{"seed": ' + "9" * 5000 + "}")
        with pytest.raises(ConfigError, match="a value in the file cannot be read"):
            inspect_config(path)


def test_scientific_notation_in_a_yaml_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "run.yaml",
        "data: {dataset: {name: imdb}}\nmodel: {name_or_path: gpt2}\n"
        "training:\n  learning_rate: 1e-5\n  adam_epsilon: 1E-6\n  weight_decay: 5e-2\n",
    )
    training = load_config(path).training
    assert (training.learning_rate, training.adam_epsilon, training.weight_decay) == (1e-5, 1e-6, 0.05)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """Windows editors start files with a byte-order mark; `json` refuses it unless it is stripped."""
    path = tmp_path / "run.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(MINIMAL).encode())
    assert load_config(path).model.name_or_path == "gpt2"


def test_line_of_every_key_yaml_and_json(tmp_path: Path) -> None:
    text = json.dumps(
        {"model": {"name_or_path": "gpt2", "adapter": {"r": 4}}, "training": {"epochs": 1}}, indent=2
    )
    lines = read_config_text(write(tmp_path, "run.json", text)).lines
    assert (
        lines[("model",)] == 2
        and lines[("model", "adapter", "r")] == 5
        and lines[("training", "epochs")] == 9
    )
    tabbed = write(tmp_path, "tabs.json", text.replace("  ", "\t"))  # JSON allows tabs, YAML does not
    assert read_config_text(tabbed).lines == lines


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "run.yaml",
        "data: {dataset: {name: imdb}}\nmodel:\n  name_or_path: gpt2\n  name_or_path: llama\n",
    )
    [problem] = inspect_config(path).errors
    assert problem.render() == (
        f"model.name_or_path: key written twice (lines 3 and 4); only the last one "
        f"would count ({path}:4) Fix: keep one of them"
    )


# ----------------------------------------------------------------------------------------- overrides
def test_overrides_as_in_the_issue(tmp_path: Path) -> None:
    path = write(tmp_path, "run.yaml", yaml.safe_dump(MINIMAL))
    config = load_config(path, ["training.learning_rate=1e-4", "model.adapter.r=16"])
    assert config.training.learning_rate == 1e-4
    assert (
        config.model.adapter.type == "lora" and config.model.adapter.r == 16
    )  # no adapter section in the file


@pytest.mark.parametrize(
    ("override", "path", "value"),
    [
        ("training.gradient_checkpointing=true", ("training", "gradient_checkpointing"), True),
        ("training.max_grad_norm=null", ("training", "max_grad_norm"), None),
        (
            "model.adapter.target_modules=[q_proj, v_proj]",
            ("model", "adapter", "target_modules"),
            ["q_proj", "v_proj"],
        ),
        ("model.name_or_path=org/model=v2", ("model", "name_or_path"), "org/model=v2"),
        ("  training.epochs = 2 ", ("training", "epochs"), 2.0),
        ("training.num_train_epochs=4", ("training", "epochs"), 4.0),  # legacy names work in overrides too
    ],
)
def test_override_values(tmp_path: Path, override: str, path: tuple[str, ...], value: object) -> None:
    config = load_config(write(tmp_path, "run.yaml", yaml.safe_dump(MINIMAL)), [override])
    node: object = config
    for key in path:
        node = getattr(node, key)
    assert node == value


def test_override_without_a_file() -> None:
    config = load_config(None, ["data.dataset.name=imdb", "model.name_or_path=gpt2", "training.max_steps=5"])
    assert config.data.dataset.resolved_source() == "hub" and config.training.max_steps == 5


@pytest.mark.parametrize("text", ["training.learning_rate", "=3", "a..b=1", ".a=1", "training.=1", "=", ""])
def test_malformed_override_raises(text: str) -> None:
    with pytest.raises(ConfigError, match="is not of the form key.path=value"):
        parse_override(text)


def test_malformed_overrides_are_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "run.yaml", yaml.safe_dump(MINIMAL))
    loaded = inspect_config(
        path, ["training.learning_rate", "training.epochs=2", "=3", "training.max_steps=-1x"]
    )
    assert [(p.path, p.location) for p in loaded.errors] == [
        ("training.learning_rate", "command line"),
        ("", "command line"),
        ("training.max_steps", "command line"),
    ]
    assert loaded.errors[0].fix == "write e.g. training.learning_rate=1e-4 model.adapter.r=16"


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        (  # a section's rule about keys set on the command line, not at the section's line in the file
            ["training.eval_strategy=steps"],
            "training",
            "eval_strategy is `steps` but eval_steps is not set",
        ),
        (["training.warmup_steps=5", "training.warmup_ratio=0.1"], "training", "set warmup_steps or"),
        (["training.evaluation_strategy=steps"], "training", "eval_strategy is `steps`"),  # legacy spelling
        (["evaluation.batch_size=-2"], "training.eval_batch_size", "expected a number > 0, got -2"),
        (["model.adapter.r=-1"], "model.adapter.r", "expected a number > 0, got -1"),
    ],
)
def test_problems_caused_by_an_override_are_on_the_command_line(
    tmp_path: Path, overrides: list[str], path: str, message: str
) -> None:
    text = "data:\n  dataset:\n    train_file: t.jsonl\nmodel:\n  name_or_path: gpt2\n"
    text += "training:\n  epochs: 1\n"
    loaded = inspect_config(write(tmp_path, "run.yaml", text), overrides)
    assert [(p.path, p.location) for p in loaded.errors if p.message.startswith(message)] == [
        (path, "command line")
    ]


def test_a_section_rule_the_file_broke_stays_at_its_line(tmp_path: Path) -> None:
    text = "data: {dataset: {train_file: t.jsonl}}\nmodel: {name_or_path: gpt2}\n"
    text += "training:\n  eval_strategy: steps\n"
    loaded = inspect_config(write(tmp_path, "run.yaml", text), ["training.epochs=2"])
    assert [(p.path, p.location) for p in loaded.errors] == [("training", f"{tmp_path / 'run.yaml'}:3")]


def test_apply_overrides_replaces_a_scalar_on_the_way() -> None:
    data: dict[str, object] = {"training": 5}
    assert apply_overrides(data, ["training.epochs=1"]) == []
    assert data == {"training": {"epochs": 1}}


# ------------------------------------------------------------------------------------- relative paths
def test_relative_paths_are_relative_to_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "base").mkdir()
    path = write(
        folder,
        "run.yaml",
        "output_dir: ../outputs/run\n"
        "data:\n  dataset:\n    train_file: data/train.jsonl\n    validation_file: /abs/valid.jsonl\n"
        "  tokenization:\n    tokenizer: gpt2\n"
        "model:\n  name_or_path: base\n",
    )
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(path)
    assert config.output_dir == str(tmp_path / "outputs" / "run")
    assert config.data.dataset.train_file == str(folder / "data" / "train.jsonl")
    assert config.data.dataset.validation_file == "/abs/valid.jsonl"
    assert config.model.name_or_path == str(folder / "base")  # exists next to the config: a local model
    assert config.data.tokenization.tokenizer == "gpt2"  # does not exist there: a Hub id


def test_files_are_relative_to_dataset_dir(tmp_path: Path) -> None:
    """The legacy `dir` + `train_file` layout: the files live in `dir`, which lives next to the config."""
    path = write(
        tmp_path,
        "run.json",
        json.dumps(
            {
                "data": {
                    "dataset": {
                        "dir": "reviews",
                        "train_file": "train.csv",
                        "test_file": "/data/test.csv",
                        "dataset_format": "csv",
                    }
                },
                "model": {"name_or_path": "distilbert-base-uncased"},
            }
        ),
    )
    dataset = load_config(path).data.dataset
    assert dataset.dir == str(tmp_path / "reviews")
    assert dataset.train_file == str(tmp_path / "reviews" / "train.csv")
    assert dataset.test_file == "/data/test.csv"
    assert dataset.file_format == "csv"


def test_legacy_load_from_disk_path_is_relative_to_the_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "run.json",
        json.dumps(
            {"data": {"dataset": {"load_from_disk": "saved/imdb"}}, "model": {"name_or_path": "gpt2"}}
        ),
    )
    dataset = load_config(path).data.dataset
    assert dataset.path == str(tmp_path / "saved" / "imdb") and dataset.resolved_source() == "disk"


def test_override_paths_are_left_as_given(tmp_path: Path) -> None:
    """Paths on the command line are the user's, relative to where llmft runs, not to the config."""
    path = write(tmp_path, "run.yaml", yaml.safe_dump(MINIMAL))
    assert load_config(path, ["output_dir=runs/x"]).output_dir == "runs/x"


# ------------------------------------------------------------------------------ collecting problems
def test_load_config_raises_one_error_with_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sft.yaml",
        "data:\n  dataset:\n    train_file: t.jsonl\nmodel:\n  name_or_path: gpt2\n"
        "  adapter:\n    lora_alpah: 16\ntraining:\n  learning_rate: fast\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    err = caught.value
    assert isinstance(err, LlmftError) and isinstance(err, ValueError) and err.exit_code == 2
    assert err.render() == (
        f"{path}: 2 problems\n"
        f"  - model.adapter.lora_alpah: unknown key (did you mean `lora_alpha`?) ({path}:7) "
        "Fix: rename `lora_alpah` to `alpha` (the current name of `lora_alpha`)\n"
        f'  - training.learning_rate: expected a number, got "fast" ({path}:9) '
        "Fix: write a number such as 2e-4 (no quotes)"
    )


def test_section_rules_are_checked_even_when_a_field_of_the_section_is_wrong(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "run.yaml",
        yaml.safe_dump({**MINIMAL, "training": {"batch_size": "eight", "epochs": 1, "max_steps": 10}}),
    )
    assert errors_of(path) == [
        ("training.batch_size", 'expected a whole number, got "eight"'),
        ("training", "set epochs or max_steps, not both"),
    ]


def test_cross_section_checks_run_despite_unrelated_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "run.yaml",
        yaml.safe_dump(
            {
                **MINIMAL,
                "model": {"name_or_path": "gpt2", "task": "causal_lm"},
                "evaluation": {"metrics": ["f1"]},
                "training": {"learning_rate": -1},
            }
        ),
    )
    assert [p for p, _ in errors_of(path)] == ["training.learning_rate", "evaluation.metrics"]


def test_no_cross_section_check_on_a_value_that_was_itself_wrong(tmp_path: Path) -> None:
    """The second look replaces wrong values by defaults; rules about them would judge the defaults."""
    path = write(
        tmp_path,
        "run.yaml",
        yaml.safe_dump({**MINIMAL, "hpo": {"enabled": True, "parameters": "learning_rate"}}),
    )
    assert errors_of(path) == [
        ("hpo.parameters", 'expected a mapping (key: value pairs), got "learning_rate"')
    ]


def test_one_message_per_mistake(tmp_path: Path) -> None:
    """A legacy value refused by legacy.py is not reported again by the schema, nor twice."""
    path = write(
        tmp_path, "run.json", json.dumps({**MINIMAL, "model": {"name_or_path": "gpt2", "type": "keras"}})
    )
    assert errors_of(path) == [("model.type", "legacy `type: keras` has no certain meaning here")]


def test_unreadable_file_raises_config_error_with_location(tmp_path: Path) -> None:
    path = write(tmp_path, "run.yaml", "model:\n  name_or_path: gpt2\n  adapter: {r: 4\n")
    with pytest.raises(ConfigError) as caught:
        inspect_config(path)
    assert caught.value.where == f"{path}:4"
    assert caught.value.render().startswith(f"{path}:4: invalid YAML: ")


def test_warnings_and_notices_do_not_make_a_config_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "run.json", json.dumps({**MINIMAL, "training": {"num_train_epochs": 2}}))
    loaded = inspect_config(path)
    assert isinstance(loaded.config, RunConfig) and loaded.errors == []
    assert [p.severity for p in loaded.notices] == ["notice"]


@pytest.mark.parametrize("config", sorted((REPO_ROOT / "configs").glob("*.*")), ids=lambda p: p.name)
def test_example_configs_load(config: Path) -> None:
    loaded = inspect_config(config)
    assert loaded.errors == [] and loaded.config is not None
