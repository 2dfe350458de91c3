"""Where rows come from: local files, a `datasets` folder saved to disk, or the Hub.

Local JSON/JSONL/text files are read here, line by line, rather than by `datasets`' builders: a broken
line then yields an error naming ``file:line`` and the parser's message, and nothing is cached under
HF_HOME for a file the user edits between runs. CSV and Parquet go through `datasets`.
The result is always train/validation/test (validation carved off train with the run's seed when absent).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from llmft.config.schema import DatasetConfig
from llmft.errors import DataError

EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
    ".tsv": "csv",
}


@dataclass
class RawSplits:
    """Rows per split as `datasets.Dataset` objects, plus a human description of where they came from.

    ``files`` names the file of each split where it differs from ``origin``; ``row_numbers`` gives, for a
    split whose rows were reordered (validation carved off train), each row's 1-based number in its file, so
    that a message about a bad row points at the right place.
    """

    train: object  # datasets.Dataset (kept untyped here so this module's import stays light)
    validation: object | None
    test: object | None
    origin: str
    validation_carved: bool = False
    files: dict[str, str] = field(default_factory=dict)
    row_numbers: dict[str, list[int]] = field(default_factory=dict)

    def where(self, split: str) -> str:
        """``file (split split)``: where a message about one of this split's rows should point."""
        return f"{self.files.get(split, self.origin)} ({split} split)"


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
        raise DataError(
            "the file is empty", where=str(path), fix="check that the file was written completely"
        )
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
        raise DataError(
            "the file contains a NUL byte (binary data?)",
            where=f"{path}:{line}",
            fix="remove the NUL bytes or re-export the file as text",
        )
    return text


def _parse_jsonl(text: str, path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            array = number == 1 and line.lstrip()[:1] == "["
            hint = " (the file looks like one JSON array: name it .json)" if array else ""
            raise DataError(
                f"line {number} is not valid JSON: {err.msg} at column {err.colno}{hint}",
                where=f"{path}:{number}",
                fix="each line of a .jsonl file must be one JSON object",
            ) from None
        if not isinstance(row, dict):
            hint = " (the file looks like one JSON array: name it .json)" if isinstance(row, list) else ""
            raise DataError(
                f"line {number} is a JSON {type(row).__name__}, not an object{hint}",
                where=f"{path}:{number}",
                fix='each line of a .jsonl file must be one JSON object like {"text": ...}',
            )
        rows.append(row)
    return rows


def _parse_json(text: str, path: Path) -> list[dict[str, object]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg.startswith("Extra data"):
            return _parse_jsonl(text, path)  # JSON Lines in a .json file: accept it
        raise DataError(
            f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
            where=f"{path}:{err.lineno}",
            fix="fix the JSON syntax (no trailing commas)",
        ) from None
    if isinstance(data, dict):
        for key in ("data", "rows", "train", "examples"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list):
        found = (
            f"an object with keys {', '.join(data) or '(none)'}"
            if isinstance(data, dict)
            else (f"a JSON {type(data).__name__}")
        )
        raise DataError(
            f"a .json data file must hold a list of objects (or JSON Lines); it holds {found}",
            where=str(path),
            fix="write a list [{...}, {...}], or put the list under a `data` key",
        )
    for number, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise DataError(
                f"row {number} is a JSON {type(row).__name__}, not an object",
                where=f"{path} (row {number})",
                fix='make every element of the list an object like {"text": ...}',
            )
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
    """Columns are the union of all rows' keys (a row may lack an optional key such as `system`).

    Columns holding objects (conversations, tool schemas) are kept as JSON text, which the formats decode:
    Arrow would give every object the keys of all the others (None-filled: tool-call arguments would grow
    other calls' parameters) and refuse differing shapes (a string content beside a list of parts).
    """
    import datasets
    import pyarrow

    keys = list(dict.fromkeys(k for row in rows for k in row))
    rows = _objects_as_json(rows, keys)
    errors = (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, TypeError, ValueError)
    try:
        return datasets.Dataset.from_dict({k: [row.get(k) for row in rows] for k in keys})
    except errors as err:
        detail = str(err)
        for key in keys:
            try:
                pyarrow.array([row.get(key) for row in rows])
            except errors as column_err:
                detail = _mixed_types(rows, key) or f"column `{key}`: {column_err}"
                break
        raise DataError(
            f"rows do not share one structure: {detail}",
            where=str(path),
            fix="give each column one type in every row (e.g. all labels strings)",
        ) from None


def _objects_as_json(rows: list[dict[str, object]], keys: list[str]) -> list[dict[str, object]]:
    def has_object(value: object) -> bool:
        if isinstance(value, list):
            return any(isinstance(v, dict) for v in value)
        return isinstance(value, dict)

    nested = {k for k in keys if any(has_object(row.get(k)) for row in rows)}
    if not nested:
        return rows
    return [
        {k: json.dumps(v, ensure_ascii=False) if k in nested and not _text(v) else v for k, v in row.items()}
        for row in rows
    ]


def _text(value: object) -> bool:
    """Left as it is: None, and strings (a column may already hold JSON text in some rows)."""
    return value is None or isinstance(value, str)


def _mixed_types(rows: list[dict[str, object]], key: str) -> str | None:
    """Name the first row whose value in ``key`` has another type than the rows before it."""
    first: tuple[int, str] | None = None
    for number, row in enumerate(rows, start=1):
        value = row.get(key)
        if value is None:
            continue
        kind = "number" if type(value) in (int, float) else type(value).__name__
        if first is None:
            first = (number, kind)
        elif kind != first[1]:
            return f"column `{key}` mixes value types (row {first[0]}: {first[1]}, row {number}: {kind})"
    return None


def _load_file(path: Path, fmt: str) -> object:
    import datasets

    if not path.exists():
        near = sorted(p.name for p in path.parent.glob("*"))[:10] if path.parent.exists() else []
        listing = f" Files in {path.parent}: {', '.join(near)}." if near else ""
        raise DataError(
            f"data file not found: {path}.{listing}",
            fix="check data.dataset.train_file and friends (relative paths are relative to the config file)",
        )
    if fmt in ("json", "jsonl", "text"):
        return rows_to_dataset(read_local_rows(path, fmt), path)
    options: dict[str, str] = {}
    if fmt == "csv":
        _check_csv_text(_read_text(path), path)  # encoding, NUL bytes and emptiness, with file:line
        options = {"sep": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train", **options)
    except Exception as err:  # noqa: BLE001 - datasets raises many types for unreadable files
        raise DataError(f"cannot read {fmt} file: {_root_cause(err)}", where=str(path)) from None


def _check_csv_text(text: str, path: Path) -> None:
    if sum(1 for line in text.splitlines() if line.strip()) < 2:
        raise DataError(
            "the file holds no rows (a CSV file needs a header line and at least one row)",
            where=str(path),
            fix="check the file's content",
        )


def _root_cause(err: BaseException) -> str:
    """The parser's own error, which `datasets` wraps in "An error occurred while generating the dataset"."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {str(err).strip()}"


def local_files(cfg: DatasetConfig) -> dict[str, Path]:
    """The file of each configured split, relative to ``dir`` when that is set."""
    base = Path(cfg.dir).expanduser() if cfg.dir else None
    names = {"train": cfg.train_file, "validation": cfg.validation_file, "test": cfg.test_file}
    out = {}
    for split, name in names.items():
        if name:
            path = Path(name).expanduser()
            out[split] = base / path if base is not None and not path.is_absolute() else path
    return out


def _local(cfg: DatasetConfig) -> tuple[object, object | None, object | None, str]:
    files = local_files(cfg)
    loaded = {split: _load_file(path, file_format(path, cfg.file_format)) for split, path in files.items()}
    return loaded["train"], loaded.get("validation"), loaded.get("test"), str(files["train"])


def _disk(cfg: DatasetConfig) -> tuple[object, object | None, object | None, str]:
    import datasets

    path = Path(str(cfg.path))
    if not path.exists():
        raise DataError(f"saved dataset folder not found: {path}", fix="check data.dataset.path")
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # noqa: BLE001
        raise DataError(f"not a dataset saved with save_to_disk: {err}", where=str(path)) from None
    if isinstance(loaded, datasets.Dataset):  # one split: `train[:100]` may still slice it
        _, bracket, rest = cfg.split.train.partition("[")
        return (_slice(loaded, bracket + rest, "train") if bracket else loaded), None, None, str(path)
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
    base, bracket, rest = name.partition("[")
    if base not in available:
        raise DataError(
            f"split `{base}` not in the saved dataset; it has {', '.join(available)}",
            where=str(path),
            fix=f"set data.dataset.split.{role} to one of them",
        )
    split = dd[base]  # type: ignore[index]
    return _slice(split, bracket + rest, role) if bracket else split


SLICE = re.compile(r"^\[(-?\d*)(%?):(-?\d*)(%?)\]$")


def _slice(split: object, spec: str, role: str) -> object:
    """Apply ``[10:20]``, ``[:1000]`` or ``[:10%]``, the slice syntax `datasets` takes for Hub splits."""
    match = SLICE.match(spec.replace(" ", ""))
    if match is None:
        raise DataError(
            f"cannot read the slice `{spec}` of data.dataset.split.{role}",
            fix="write it as e.g. train[:1000], train[100:200] or train[:10%]",
        )
    size = len(split)  # type: ignore[arg-type]

    def bound(value: str, percent: str) -> int | None:
        return None if not value else round(size * int(value) / 100) if percent else int(value)

    rows = range(size)[slice(bound(*match.group(1, 2)), bound(*match.group(3, 4)))]
    return split.select(rows)  # type: ignore[attr-defined]


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
                    fix="run once online to cache it, or save it with `save_to_disk` "
                    "and set data.dataset.path",
                ) from None
            raise DataError(
                f"cannot load `{cfg.name}` split `{split}` from the Hub: {err}",
                fix="check data.dataset.name, subset and split",
            ) from None

    names = cfg.split
    label = f"hub:{cfg.name}" + (f"/{cfg.subset}" if cfg.subset else "")
    return fetch(names.train), fetch(names.validation), fetch(names.test), label


def load_splits(cfg: DatasetConfig, seed: int, token: str | None = None) -> RawSplits:
    """Load train/validation/test rows as configured; carve validation off train when it is missing."""
    source = cfg.resolved_source()
    loader = {"files": _local, "disk": _disk}.get(source)
    train, validation, test, origin = loader(cfg) if loader else _hub(cfg, token)
    files = {split: str(path) for split, path in local_files(cfg).items()} if source == "files" else {}
    numbers: dict[str, list[int]] = {}
    carved = False
    if cfg.max_train_rows is not None and len(train) > cfg.max_train_rows:  # type: ignore[arg-type]
        train = train.select(range(cfg.max_train_rows))  # type: ignore[attr-defined]
    if validation is None and cfg.validation_fraction > 0 and len(train) >= 2:  # type: ignore[arg-type]
        train, validation, numbers = _carve(train, cfg.validation_fraction, seed)
        files["validation"] = files.get("train", origin)
        carved = True
    if cfg.max_eval_rows is not None:
        validation, test = (_cap(s, cfg.max_eval_rows) for s in (validation, test))
        if "validation" in numbers:
            numbers["validation"] = numbers["validation"][: cfg.max_eval_rows]
    return RawSplits(
        train=train,
        validation=validation,
        test=test,
        origin=origin,
        validation_carved=carved,
        files=files,
        row_numbers=numbers,
    )


def _carve(train: object, fraction: float, seed: int) -> tuple[object, object, dict[str, list[int]]]:
    """Hold out a seeded random ``fraction`` of train, keeping each row's 1-based number in the source."""
    import datasets

    index = datasets.Dataset.from_dict({"row": list(range(len(train)))})  # type: ignore[arg-type]
    parts = index.train_test_split(test_size=fraction, seed=seed)  # same draw as splitting train itself
    kept, held = list(parts["train"]["row"]), list(parts["test"]["row"])
    numbers = {"train": [i + 1 for i in kept], "validation": [i + 1 for i in held]}
    return train.select(kept), train.select(held), numbers  # type: ignore[attr-defined]


def _cap(split: object | None, limit: int) -> object | None:
    if split is None or len(split) <= limit:  # type: ignore[arg-type]
        return split
    return split.select(range(limit))  # type: ignore[attr-defined]
