"""Config file + dotted overrides → validated ``RunConfig``, with every problem collected.

Order: read (YAML/JSON, with lines) → normalise legacy spellings → resolve relative paths against the
config file's folder → apply ``a.b.c=value`` overrides (normalised again, so legacy names work there
too) → validate the schema → cross-section checks. Nothing here imports torch.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from llmft.config.checks import check_config
from llmft.config.legacy import normalise_legacy
from llmft.config.paths import check_local_paths
from llmft.config.render import problems_from
from llmft.config.schema import RunConfig
from llmft.config.schema.rl import REWARD_PATH_ARGS, is_reward_file
from llmft.config.yaml_io import ConfigText, KeyPath, parse_value, read_config_text
from llmft.errors import ConfigError, Problem

# Keys whose values are file paths; relative values are taken relative to the config file. The data set
# keys are relative to the set's `dir` when it has one, and apply to `data.dataset` and to each entry of
# `data.datasets`.
PATH_KEYS: tuple[KeyPath, ...] = (
    ("output_dir",),
    ("training", "distributed", "deepspeed"),  # a DeepSpeed JSON file (a mapping is left alone)
)
DATASET_PATH_KEYS = ("train_file", "validation_file", "test_file", "path")
# Keys that may be a local path or a Hub id: resolved only when the path exists next to the config.
MAYBE_PATH_KEYS: tuple[KeyPath, ...] = (("model", "name_or_path"), ("data", "tokenization", "tokenizer"))


@dataclass
class LoadedConfig:
    """A validated config (or None) plus the problems, notices and warnings found on the way."""

    config: RunConfig | None
    problems: list[Problem] = field(default_factory=list)
    source: str | None = None
    raw: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def notices(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]


def _get(data: dict[str, object], path: KeyPath) -> object:
    node: object = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(data: dict[str, object], path: KeyPath, value: object) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


def _absolute(base: Path, value: str) -> str:
    """``value`` made absolute against ``base``; left as written when the OS cannot read it as a path
    (a NUL byte, ``~user`` of no such user): the builder that opens it reports that."""
    try:
        path = Path(value).expanduser()
        return value if path.is_absolute() else str((base / path).resolve())
    except (ValueError, RuntimeError, OSError):
        return value


def resolve_paths(data: dict[str, object], base: Path) -> None:
    """Make file paths absolute relative to the config's folder (as written in the file, before overrides).

    The data files are relative to the set's ``dir`` when that is set (the legacy layout's
    ``dir`` + ``train_file``), so ``dir`` is resolved first and the files against it.
    """
    for path in PATH_KEYS:
        value = _get(data, path)
        if isinstance(value, str) and value:
            _set(data, path, _absolute(base, value))
    section = data.get("data")
    if isinstance(section, dict):
        sets = [section.get("dataset")] + [
            item.get("dataset") for item in section.get("datasets") or [] if isinstance(item, dict)
        ]
        for dataset in sets:
            if isinstance(dataset, dict):
                _resolve_dataset(dataset, base)
    for path in MAYBE_PATH_KEYS:
        value = _get(data, path)
        if isinstance(value, str) and value and (base / value).exists() and not Path(value).is_absolute():
            _set(data, path, str((base / value).resolve()))
    _resolve_rewards(_get(data, ("training", "rl", "rewards")), base)


def _resolve_rewards(entries: object, base: Path) -> None:
    """training.rl.rewards: a reward file (`path/file.py:function`) and a built-in's path arguments (the
    reward model's `run`) are relative to the config file too, so the run finds them from any folder."""
    for entry in entries if isinstance(entries, list) else []:
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, str):
            continue
        target, colon, name = function.strip().rpartition(":")
        if colon and target and is_reward_file(target):
            entry["function"] = f"{_absolute(base, target)}:{name}"
        args = entry.get("args")
        for key in REWARD_PATH_ARGS.get(function.strip(), ()) if isinstance(args, dict) else ():
            if isinstance(args.get(key), str):  # type: ignore[union-attr]
                args[key] = _absolute(base, args[key])  # type: ignore[index]


def _resolve_dataset(dataset: dict[str, object], base: Path) -> None:
    folder = dataset.get("dir")
    if isinstance(folder, str) and folder:
        folder = dataset["dir"] = _absolute(base, folder)
    for key in DATASET_PATH_KEYS:
        value = dataset.get(key)
        if isinstance(value, str) and value:
            root = Path(folder) if isinstance(folder, str) and folder and key.endswith("_file") else base
            dataset[key] = _absolute(root, value)


def parse_override(text: str) -> tuple[KeyPath, object]:
    """``training.learning_rate=1e-4`` → (("training", "learning_rate"), 0.0001)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override `{text}` is not of the form key.path=value",
            fix="write e.g. training.learning_rate=1e-4 model.adapter.r=16",
        )
    return tuple(key.split(".")), parse_value(value)


def apply_overrides(data: dict[str, object], overrides: list[str]) -> list[Problem]:
    """Apply every well-formed override; each malformed one becomes a problem (all are reported at once)."""
    problems = []
    for text in overrides:
        try:
            path, value = parse_override(text)
        except ConfigError as err:
            key = text.partition("=")[0].strip()
            problems.append(Problem(key, err.message, err.fix, location="command line"))
            continue
        _set(data, path, value)
    return problems


def _written_as(path: str, aliases: dict[str, str]) -> str:
    """The spelling a normalised path had in the file (``hpo.parameters.x`` → ``ray_tune.search_space.x``).

    Renames chain (``ray_tune`` became ``hpo``, whose ``search_space`` became ``parameters``), so they are
    undone until none applies.
    """
    ordered = sorted(aliases.items(), key=lambda item: -len(item[0]))
    for _ in range(len(ordered)):
        new, old = next(((n, o) for n, o in ordered if path == n or path.startswith(n + ".")), (None, None))
        if new is None or old is None:
            break
        path = old + path[len(new) :]
        ordered = [(n, o) for n, o in ordered if n != new]
    return path


def _line_of(path: str, lines: dict[KeyPath, int], aliases: dict[str, str]) -> int | None:
    """The line of a key path, or of its nearest parent; legacy spellings are looked up as written."""
    parts = tuple(path.split(".")) if path else ()
    while parts:
        dotted = ".".join(parts)
        line = lines.get(tuple(_written_as(dotted, aliases).split("."))) or lines.get(parts)
        if line is not None:
            return line
        parts = parts[:-1]
    return None


def _locate(
    problems: list[Problem],
    lines: dict[KeyPath, int],
    aliases: dict[str, str],
    source: str,
    overridden: set[str],
) -> list[Problem]:
    """Attach ``file:line`` to each problem whose key (or nearest parent) has a known line.

    A value set by an override is located on the command line, not at its parent's line in the file.
    """
    out = []
    for problem in problems:
        if not problem.location and _from_override(problem, overridden, aliases):
            location: str | None = "command line"
        else:
            line = None if problem.location else _line_of(problem.path, lines, aliases)
            location = f"{source}:{line}" if line is not None else problem.location
        fix = _one_line(problem.fix) if problem.fix else None
        path, message = _one_line(problem.path), _one_line(problem.message)
        out.append(Problem(path, message, fix, problem.severity, location))
    return out


def _from_override(problem: Problem, overridden: set[str], aliases: dict[str, str]) -> bool:
    """Whether an override caused ``problem``: it is about an overridden key (or a key below one), by its
    schema name or the legacy name the override used, or it is a section's rule about the keys of one
    section (``training: eval_strategy is `steps` but ...``) that names an overridden key of that section.
    """
    names = {problem.path, _written_as(problem.path, aliases)}
    if any(n == o or n.startswith(o + ".") for n in names for o in overridden):
        return True
    for key in overridden | {_modern(o, aliases) for o in overridden}:
        section, _, rest = key.rpartition(".")
        if problem.path == section and re.search(rf"\b{re.escape(rest)}\b", problem.message):
            return True
    return False


def _modern(key: str, aliases: dict[str, str]) -> str:
    """The schema's name of a key an override wrote in a legacy spelling (`training.evaluation_strategy`)."""
    for new, old in aliases.items():
        if key == old or key.startswith(old + "."):
            return new + key[len(old) :]
    return key


def _one_line(text: str) -> str:
    """A user's key or value may hold line breaks; a problem is reported on one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _prune(raw: dict[str, object], path: str) -> None:
    """Delete the value at a dotted path (a list item takes its whole list with it)."""
    node: object = raw
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, dict) else None
        if isinstance(child, list):
            node.pop(part)  # type: ignore[union-attr]
            return
        node = child
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def _second_look(raw: dict[str, object], first: list[Problem]) -> list[Problem]:
    """Problems the first ones hid: section rules and cross-section checks.

    pydantic skips a section's ``mode="after"`` rules when one of its fields is invalid, and the
    cross-section checks need a valid config; so the invalid values are dropped (defaults take their
    place) and the rest is checked once more. Only findings about other paths are kept.
    """
    trial = copy.deepcopy(raw)
    for problem in first:
        _prune(trial, problem.path)
    known = {p.path for p in first}
    try:
        config = RunConfig.model_validate(trial)
    except ValidationError as err:  # only section rules: field errors now would be echoes of the pruning
        return [p for p in problems_from(err, kinds={"value_error"}) if p.path not in known]

    def near(path: str) -> bool:  # a check about a pruned value (or its parent) would judge a default
        return any(path == k or path.startswith(k + ".") or k.startswith(path + ".") for k in known)

    return [p for p in check_config(config, trial) if not near(p.path)]


def validate_dict(raw: dict[str, object]) -> tuple[RunConfig | None, list[Problem]]:
    """Schema validation and cross-section checks of an already normalised dict."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as err:
        problems = problems_from(err)
        return None, problems + _second_look(raw, problems)
    return config, check_config(config, raw)


def _unique(legacy: list[Problem], found: list[Problem]) -> list[Problem]:
    """One message per mistake: repeats dropped (normalising runs twice), and the schema's complaints
    about a key that legacy.py already refused (it said what to write instead)."""
    refused = {p.path for p in legacy if p.severity == "error"}
    seen: set[tuple[str, str]] = set()
    out = []
    for problem in legacy + [p for p in found if p.path not in refused]:
        key = (problem.path, problem.message)
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _duplicate_keys(parsed: ConfigText) -> list[Problem]:
    """YAML and JSON parsers keep the last of two equal keys without a word; it is rarely what was meant."""
    problems = []
    for path, first, again in parsed.duplicates:
        message = f"key written twice (lines {first} and {again}); only the last one would count"
        problems.append(Problem(".".join(path), message, fix="keep one of them"))
    return problems


def inspect_config(
    path: str | Path | None, overrides: list[str] | None = None, *, check_files: bool = False
) -> LoadedConfig:
    """Load and check a config, collecting every problem instead of stopping at the first.

    ``check_files``: also report local data files and model folders that are not there (`llmft validate`;
    a run reads them anyway, and code that builds a config before its files exist must not be refused).
    Raises ConfigError only when the file cannot be read or parsed at all (nothing else can be checked).
    """
    parsed = ConfigText({})
    source = str(path) if path is not None else "<overrides>"
    if path is not None:
        parsed = read_config_text(Path(path))
    state = normalise_legacy(parsed.data)
    if path is not None:  # after normalising: legacy keys (`load_from_disk: dir`) hold paths too
        resolve_paths(state.data, Path(path).resolve().parent)
    override_problems = apply_overrides(state.data, overrides or [])
    again = normalise_legacy(state.data)
    aliases = {**state.aliases, **again.aliases}
    raw_copy = copy.deepcopy(again.data)
    config, found = validate_dict(again.data)
    if check_files:
        found += check_local_paths(raw_copy, Path(path).resolve().parent if path is not None else None)
    problems = _duplicate_keys(parsed) + override_problems + _unique(state.problems + again.problems, found)
    overridden = {o.partition("=")[0].strip() for o in overrides or [] if "=" in o}
    problems = _locate(problems, parsed.lines, aliases, source, overridden)
    if any(p.severity == "error" for p in problems):
        config = None
    return LoadedConfig(config=config, problems=problems, source=source, raw=raw_copy)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Load a config or raise one ConfigError listing every problem found."""
    loaded = inspect_config(path, overrides)
    if loaded.config is None:
        raise ConfigError("invalid config", problems=loaded.problems, source=loaded.source)
    return loaded.config
