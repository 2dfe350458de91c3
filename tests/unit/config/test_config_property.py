"""Property: whatever a config file holds, checking it answers with problems or success.

Valid configs (modern and legacy) are mutated at random: keys deleted, unknown keys inserted, values
replaced by JSON-able values of other types, values wrapped in lists and mappings, enum fields given
random strings, the file cut short, random overrides added. ``inspect_config`` may raise ConfigError
(a file that cannot be parsed); any other exception is a bug.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmft.cli.main import main
from llmft.config.load import inspect_config
from llmft.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[3]
SEEDS = [
    {"data": {"dataset": {"train_file": "train.jsonl"}}, "model": {"name_or_path": "gpt2"}},
    yaml.safe_load((REPO_ROOT / "configs" / "tiny.yaml").read_text(encoding="utf-8")),
    json.loads((REPO_ROOT / "configs" / "example_config.json").read_text(encoding="utf-8")),
    json.loads((REPO_ROOT / "configs" / "bert_classifier_config.json").read_text(encoding="utf-8")),
    json.loads(
        (REPO_ROOT / "tests" / "data" / "legacy_configs" / "trainer_dialect.json").read_text(encoding="utf-8")
    ),
    json.loads(
        (REPO_ROOT / "tests" / "data" / "legacy_configs" / "ray_tune_search.json").read_text(encoding="utf-8")
    ),
]
ENUM_PATHS = [
    ("model", "adapter", "type"),
    ("model", "task"),
    ("model", "dtype"),
    ("training", "optimizer"),
    ("training", "lr_scheduler"),
    ("training", "eval_strategy"),
    ("hpo", "backend"),
    ("hpo", "direction"),
    ("data", "preprocessing", "format"),
    ("data", "dataset", "file_format"),
    ("evaluation", "metrics"),
]
KNOWN_KEYS = [
    "type",
    "r",
    "alpha",
    "lora",
    "name",
    "dir",
    "train_file",
    "search_space",
    "parameters",
    "epochs",
    "optimizer",
    "lr_scheduler",
    "learning_rate",
    "enabled",
    "split",
    "load_from_disk",
    "ray_tune",
    "model_type",
    "column_mapping",
    "fp16",
    "bf16",
    "max_steps",
    "warmup_ratio",
    "warmup_steps",
]

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=12), st.integers(-3, 3))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "auto", "lora", "1e-5", "~", "../x", "train[:10]", "a=b", "min"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=10,
)


def paths_of(node: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists (list items by index)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += paths_of(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += paths_of(child, (*prefix, i))
    return out


def parent_of(data: dict, path: tuple) -> object:
    node: object = data
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    return node


@st.composite
def mutated_configs(draw: st.DrawFn) -> dict:
    data = copy.deepcopy(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        paths = paths_of(data)
        action = draw(st.sampled_from(["delete", "insert", "replace", "wrap", "enum"]))
        if action == "enum":
            path = draw(st.sampled_from(ENUM_PATHS))
            node = data
            for key in path[:-1]:
                node = node.setdefault(key, {}) if isinstance(node, dict) else {}
            if isinstance(node, dict):
                node[path[-1]] = draw(st.text(max_size=15))
            continue
        if not paths:
            data[draw(keys)] = draw(values)
            continue
        path = draw(st.sampled_from(paths))
        parent = parent_of(data, path)
        key = path[-1]
        if action == "delete":
            parent.pop(key) if isinstance(parent, (dict, list)) else None  # type: ignore[union-attr]
        elif action == "insert" and isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        elif action == "replace":
            parent[key] = draw(values)  # type: ignore[index]
        elif action == "wrap":
            parent[key] = draw(st.sampled_from([[parent[key]], {draw(keys): parent[key]}]))  # type: ignore[index]
    return data


overrides = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda k, v: f"{k}={v}",
            st.sampled_from(
                [
                    "training.learning_rate",
                    "model.adapter.r",
                    "model.adapter",
                    "hpo.parameters.lr",
                    "training",
                    "data.dataset.dir",
                    "training.optimizer.name",
                    "a..b",
                    "ray_tune.x",
                ]
            ),
            st.text(max_size=15),
        ),
    ),
    max_size=3,
)


def dump(data: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, default=str)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory(prefix="llmft-property-") as folder:
        yield Path(folder)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=mutated_configs(),
    fmt=st.sampled_from(["yaml", "json"]),
    extra=overrides,
    cut=st.one_of(st.none(), st.integers(0, 400)),
)
def test_inspect_config_only_answers_with_problems(
    workdir: Path, data: dict, fmt: str, extra: list[str], cut: int | None
) -> None:
    text = dump(data, fmt)
    path = workdir / f"config.{fmt}"
    path.write_text(text if cut is None else text[:cut], encoding="utf-8")
    try:
        loaded = inspect_config(path, extra)
    except ConfigError as err:
        assert err.message and err.render()
        return
    assert (loaded.config is None) == bool(loaded.errors)
    for problem in loaded.problems:
        assert (
            isinstance(problem.path, str)
            and problem.message
            and problem.severity in ("error", "warning", "notice")
        )
        assert "\n" not in problem.render()
        assert problem.severity != "error" or problem.fix, problem  # every error says what to write


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_configs(), fmt=st.sampled_from(["yaml", "json"]), extra=overrides)
def test_validate_command_exits_0_or_2(workdir: Path, data: dict, fmt: str, extra: list[str]) -> None:
    path = workdir / f"cli.{fmt}"
    path.write_text(dump(data, fmt), encoding="utf-8")
    args = [a for a in extra if not a.startswith("-")]  # an argument starting with "-" would be an option
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(path), *args, "--format", "json"])
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
    report = json.loads(out.getvalue())
    assert report["valid"] == (code == 0)
