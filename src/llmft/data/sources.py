"""Where rows come from: local files, a `datasets` folder saved to disk, or the Hub.

Local JSON/JSONL/text files are read here, line by line, rather than by `datasets`' builders: a broken
line then yields an error naming ``file:line`` and the parser's message, and nothing is cached under
HF_HOME for a file the user edits between runs. CSV and Parquet go through `datasets`.
The result is always train/validation/test (validation carved off train with the run's seed when absent).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from llmft.config.schema import DatasetConfig
from llmft.errors import DataError

EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".txt": "text",
              ".text": "text", ".tsv": "csv"}


@dataclass
class RawSplits:
    """Rows per split as `datasets.Dataset` objects, plus a human description of where they came from."""

    train: object  # datasets.Dataset (kept untyped here so this module's import stays light)
    validation: object | None
    test: object | None
    origin: str
    validation_carved: bool = False


def file_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot tell the format of {path} from its extension",
            fix="set data.dataset.file_format to one of json, jsonl, csv, parquet, text",
        )
    return fmt


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror}", where=str(path)) from None
    if not raw.strip():
        raise DataError("the file is empty", where=str(path), fix="check that the file was written completely")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 (byte {err.start}, line {line})",
            where=f"{path}:{line}",
            fix="convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8 in > out`",
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataError("the file contains a NUL byte (binary data?)", where=f"{path}:{line}",
                        fix="remove the NUL bytes or re-export the file as text")
    return text


def _parse_jsonl(text: str, path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            hint = " (the file looks like one JSON array: name it .json)" if number == 1 and line.lstrip()[:1] == "[" else ""
            raise DataError(f"line {number} is not valid JSON: {err.msg} at column {err.colno}{hint}",
                            where=f"{path}:{number}",
                            fix="each line of a .jsonl file must be one JSON object") from None
        if not isinstance(row, dict):
            raise DataError(f"line {number} is a JSON {type(row).__name__}, not an object", where=f"{path}:{number}",
                            fix="each line of a .jsonl file must be one JSON object like {\"text\": ...}")
        rows.append(row)
    return rows


def _parse_json(text: str, path: Path) -> list[dict[str, object]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg.startswith("Extra data"):
            return _parse_jsonl(text, path)  # JSON Lines in a .json file: accept it
        raise DataError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                        where=f"{path}:{err.lineno}", fix="fix the JSON syntax (no trailing commas)") from None
    if isinstance(data, dict):
        for key in ("data", "rows", "train", "examples"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        raise DataError("a .json data file must hold a list of objects (or JSON Lines)", where=str(path))
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"row {index} is a JSON {type(row).__name__}, not an object", where=f"{path} (row {index})",
                            fix="make every element of the list an object like {\"text\": ...}")
    return data


def read_local_rows(path: Path, fmt: str) -> list[dict[str, object]]:
    """Rows of a JSON/JSONL/text file as dicts. Errors carry file:line."""
    text = _read_text(path)
    if fmt == "jsonl":
        rows = _parse_jsonl(text, path)
    elif fmt == "json":
        rows = _parse_json(text, path)
    else:
        rows = [{"text": line} for line in text.splitlines() if line.strip()]
    if not rows:
        raise DataError("the file holds no rows", where=str(path), fix="check the file's content")
    return rows


def rows_to_dataset(rows: list[dict[str, object]], path: Path) -> object:
    """Columns are the union of all rows' keys (a row may lack an optional key such as `system`)."""
    import datasets
    import pyarrow

    keys = list(dict.fromkeys(k for row in rows for k in row))
    try:
        return datasets.Dataset.from_dict({k: [row.get(k) for row in rows] for k in keys})
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, TypeError, ValueError) as err:
        column = next((k for k in keys if len({type(r.get(k)) for r in rows if r.get(k) is not None}) > 1), None)
        detail = f" column `{column}` mixes value types" if column else f" {err}"
        raise DataError(f"rows do not share one structure:{detail}", where=str(path),
                        fix="give each column one type in every row (e.g. all labels strings)") from None


def _load_file(path: Path, fmt: str) -> object:
    import datasets

    if not path.exists():
        near = sorted(p.name for p in path.parent.glob("*"))[:10] if path.parent.exists() else []
        listing = f" Files in {path.parent}: {', '.join(near)}." if near else ""
        raise DataError(f"data file not found: {path}.{listing}", fix="check data.dataset.train_file and friends "
                        "(relative paths are relative to the config file)")
    if fmt in ("json", "jsonl", "text"):
        return rows_to_dataset(read_local_rows(path, fmt), path)
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as err:  # noqa: BLE001 - datasets raises many types for unreadable files
        raise DataError(f"cannot read {fmt} file: {err}", where=str(path)) from None


def _local(cfg: DatasetConfig) -> tuple[object, object | None, object | None, str]:
    base = Path(cfg.dir) if cfg.dir else None

    def locate(name: str | None) -> Path | None:
        if not name:
            return None
        path = Path(name).expanduser()
        return base / path if base is not None and not path.is_absolute() else path

    train_path = locate(cfg.train_file)
    assert train_path is not None  # the schema guarantees a train_file for local sources
    splits = [(locate(n), n) for n in (cfg.validation_file, cfg.test_file)]
    loaded = [_load_file(p, file_format(p, cfg.file_format)) if p else None for p, _ in splits]
    train = _load_file(train_path, file_format(train_path, cfg.file_format))
    return train, loaded[0], loaded[1], str(train_path)


def _disk(cfg: DatasetConfig) -> tuple[object, object | None, object | None, str]:
    import datasets

    path = Path(str(cfg.path))
    if not path.exists():
        raise DataError(f"saved dataset folder not found: {path}", fix="check data.dataset.path")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001
        raise DataError(f"not a dataset saved with save_to_disk: {err}", where=str(path)) from None
    if isinstance(loaded, datasets.Dataset):
        return loaded, None, None, str(path)
    names = cfg.split
    pick = {k: _disk_split(loaded, getattr(names, k), k, path) for k in ("train", "validation", "test")}
    return pick["train"], pick["validation"], pick["test"], str(path)


def _disk_split(dd: object, name: str | None, role: str, path: Path) -> object | None:
    available = list(dd.keys())  # type: ignore[attr-defined]
    if name is None:
        alias = {"validation": ("validation", "valid", "dev", "eval"), "test": ("test",)}.get(role, ())
        name = next((a for a in alias if a in available), None)
        if name is None:
            return None
    base, _, _ = name.partition("[")
    if base not in available:
        raise DataError(f"split `{base}` not in the saved dataset; it has {', '.join(available)}", where=str(path),
                        fix=f"set data.dataset.split.{role} to one of them")
    import datasets

    return datasets.load_from_disk(str(path / base)) if "[" not in name else dd[base]  # type: ignore[index]


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes") or os.environ.get(
        "HF_DATASETS_OFFLINE", "0"
    ).lower() in ("1", "true", "yes")


def _hub(cfg: DatasetConfig, token: str | None) -> tuple[object, object | None, object | None, str]:
    import datasets

    def fetch(split: str | None) -> object | None:
        if split is None:
            return None
        try:
            return datasets.load_dataset(str(cfg.name), cfg.subset, split=split, token=token)
        except Exception as err:  # noqa: BLE001 - network, missing dataset, bad split: all the user's to fix
            if hub_offline() or "offline" in str(err).lower() or "connect" in str(err).lower():
                raise DataError(
                    f"dataset `{cfg.name}` is not available offline (and not in the local cache)",
                    fix="run once online to cache it, or save it with `save_to_disk` and set data.dataset.path",
                ) from None
            raise DataError(f"cannot load `{cfg.name}` split `{split}` from the Hub: {err}",
                            fix="check data.dataset.name, subset and split") from None

    names = cfg.split
    label = f"hub:{cfg.name}" + (f"/{cfg.subset}" if cfg.subset else "")
    return fetch(names.train), fetch(names.validation), fetch(names.test), label


def load_splits(cfg: DatasetConfig, seed: int, token: str | None = None) -> RawSplits:
    """Load train/validation/test rows as configured; carve validation off train when it is missing."""
    source = cfg.resolved_source()
    loader = {"files": _local, "disk": _disk}.get(source)
    train, validation, test, origin = loader(cfg) if loader else _hub(cfg, token)
    carved = False
    if cfg.max_train_rows is not None and len(train) > cfg.max_train_rows:  # type: ignore[arg-type]
        train = train.select(range(cfg.max_train_rows))  # type: ignore[attr-defined]
    if validation is None and cfg.validation_fraction > 0 and len(train) >= 2:  # type: ignore[arg-type]
        parts = train.train_test_split(test_size=cfg.validation_fraction, seed=seed)  # type: ignore[attr-defined]
        train, validation, carved = parts["train"], parts["test"], True
    if cfg.max_eval_rows is not None:
        validation, test = (_cap(s, cfg.max_eval_rows) for s in (validation, test))
    return RawSplits(train=train, validation=validation, test=test, origin=origin, validation_carved=carved)


def _cap(split: object | None, limit: int) -> object | None:
    if split is None or len(split) <= limit:  # type: ignore[arg-type]
        return split
    return split.select(range(limit))  # type: ignore[attr-defined]
