"""Whether the local files and folders a config names are there, checked by plain `llmft validate`.

Cheap on purpose (nothing is opened, no torch): a mistyped data file or model folder is found before a run
spends minutes loading a model, and a model path that is not there is not taken for a Hub id (transformers
would try the network and report a confusing "not a valid model identifier"). Values that may be a Hub id
(`model.name_or_path`, a tokenizer, a reference model) are checked only when they look local: they start
with `.`, `/` or `~`, hold a backslash or more than one `/`, or their first folder exists. `org/name` stays
a Hub id. A value ending in `.gguf` names a GGUF file, which must be there.

Works on the normalised dict, so that a missing file is reported with every other problem at once.
"""

from __future__ import annotations

from pathlib import Path

from llmft.config.schema.model import GGUF_SUFFIX
from llmft.errors import Problem

DATA_FILES = ("train_file", "validation_file", "test_file")
# Keys that hold a Hub id or a local folder.
MAYBE_LOCAL: tuple[tuple[str, ...], ...] = (
    ("model", "name_or_path"),
    ("data", "tokenization", "tokenizer"),
    ("training", "preference", "reference_model"),
)
RELATIVE = "relative paths in a config file are relative to its folder"


def looks_like_path(name: str, base: Path | None = None) -> bool:
    """A Hub id is `name` or `org/name`; anything else, or a path whose first folder exists (here or next to
    the config, ``base``), is meant as a local path."""
    if name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1:
        return True
    roots = [Path.cwd()] + ([base] if base is not None else [])
    first = name.split("/", 1)[0]
    return any(_exists(root / name) or ("/" in name and _exists(root / first)) for root in roots)


def _exists(path: Path) -> bool:
    try:
        return path.expanduser().exists()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, ~user of no such user
        return False


def check_local_paths(raw: dict[str, object], base: Path | None) -> list[Problem]:
    """A problem for each local file or folder the config names that is not there (or is the wrong kind)."""
    problems: list[Problem] = []
    data = raw.get("data")
    if isinstance(data, dict):
        for key, dataset in _datasets(data):
            problems += _dataset_problems(key, dataset)
    for keys in MAYBE_LOCAL:
        value = _get(raw, keys)
        if isinstance(value, str) and value.lower().endswith(GGUF_SUFFIX):
            problems += _gguf_problem(".".join(keys), value)
        elif isinstance(value, str) and value and looks_like_path(value, base):
            problems += _folder_problem(".".join(keys), value, "local model folder")
    return problems + _gguf_file_problem(raw, base)


def _gguf_problem(key: str, value: str) -> list[Problem]:
    """A `.gguf` value names a file (a GGUF base, or a tokenizer read from one)."""
    path = Path(value).expanduser()
    if _exists(path) and path.is_dir():
        return [Problem(key, f"`{value}` is a folder, not a GGUF file", "name the .gguf file in it")]
    if not _exists(path):
        return [Problem(key, f"GGUF file not found: {value}", f"correct the path ({RELATIVE})")]
    return []


def _gguf_file_problem(raw: dict[str, object], base: Path | None) -> list[Problem]:
    """`model.gguf_file` must be in `model.name_or_path` when that is a local folder (a Hub repo is not
    checked here: offline, only the run can tell)."""
    folder, name = _get(raw, ("model", "name_or_path")), _get(raw, ("model", "gguf_file"))
    if not (isinstance(folder, str) and isinstance(name, str) and name and looks_like_path(folder, base)):
        return []
    if folder.lower().endswith(GGUF_SUFFIX):
        return []  # both name a file: the model section's own rule says so
    path = Path(folder).expanduser() / name
    if _exists(Path(folder).expanduser()) and not _exists(path):
        return [Problem("model.gguf_file", f"GGUF file not found: {path}", "correct the file name")]
    return []


def _datasets(data: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """``data.dataset`` and each ``data.datasets.N.dataset``, with their dotted keys."""
    found = [("data.dataset", data.get("dataset"))]
    items = data.get("datasets")
    if isinstance(items, list):
        found += [
            (f"data.datasets.{i}.dataset", item.get("dataset"))
            for i, item in enumerate(items)
            if isinstance(item, dict)
        ]
    return [(key, value) for key, value in found if isinstance(value, dict)]


def _dataset_problems(key: str, dataset: dict[str, object]) -> list[Problem]:
    source = dataset.get("source", "auto")
    folder = dataset.get("dir")
    problems = []
    if isinstance(folder, str) and folder:
        problems += _folder_problem(f"{key}.dir", folder, "data folder")
    if source in ("auto", "files") and not problems:
        for name in DATA_FILES:
            value = dataset.get(name)
            if isinstance(value, str) and value:
                path = Path(folder) / value if isinstance(folder, str) and folder else Path(value)
                problems += _file_problem(f"{key}.{name}", str(path))
    path = dataset.get("path")
    if source in ("auto", "disk") and isinstance(path, str) and path:
        problems += _folder_problem(f"{key}.path", path, "saved dataset folder", hub_key="name")
    return problems


def _file_problem(key: str, value: str) -> list[Problem]:
    path = Path(value).expanduser()
    if _exists(path) and path.is_dir():
        return [Problem(key, f"`{value}` is a folder, not a data file", "name a file in it")]
    if not _exists(path):
        return [
            Problem(
                key, f"data file not found: {value}", f"correct the path ({RELATIVE}), or create the file"
            )
        ]
    return []


def _folder_problem(key: str, value: str, what: str, hub_key: str | None = None) -> list[Problem]:
    path = Path(value).expanduser()
    if _exists(path) and not path.is_dir():
        return [Problem(key, f"`{value}` is a file, not a {what}", "name the folder it is in")]
    if _exists(path):
        return []
    if hub_key is not None:
        fix = f"correct the path ({RELATIVE}); a Hub data set id goes in `{hub_key}:` instead"
    elif key.startswith("data.dataset"):
        fix = f"correct the path ({RELATIVE})"
    else:
        fix = f"correct the path ({RELATIVE}), or use a Hub id such as org/name"
    return [Problem(key, f"{what} not found: {value}", fix)]


def _get(raw: dict[str, object], keys: tuple[str, ...]) -> object:
    node: object = raw
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


__all__ = ["check_local_paths", "looks_like_path"]
