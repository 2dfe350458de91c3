"""`llmft validate --deep`: resolve what the config points at, without training or loading weights.

- the model's config (local folder, or the Hub when online; offline gives a clear message),
- the adapter's target modules against the model's real module names (built on the meta device),
- the data files: present, readable, format detected from the first rows, the columns the config names,
- the tokenizer's chat template when the data needs one.
Each finding is a Problem; nothing here raises for the user's input.
"""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

from llmft.config.schema import RunConfig
from llmft.errors import LlmftError, Problem

SAMPLE_ROWS = 200


def _problem(path: str, err: LlmftError, severity: str = "error") -> Problem:
    return Problem(path, err.message, err.fix, severity, err.where)


def sample_rows(path: Path, fmt: str) -> list[dict[str, object]]:
    """The first rows of a local file (a JSONL/CSV/text file is not read past them)."""
    from llmft.data.sources import read_local_rows

    if fmt == "jsonl":
        with path.open(encoding="utf-8") as handle:
            head = "".join(itertools.islice(handle, SAMPLE_ROWS))
        tmp_rows = [json.loads(line) for line in head.splitlines() if line.strip()]
        if tmp_rows and all(isinstance(r, dict) for r in tmp_rows):
            return tmp_rows
        return read_local_rows(path, fmt)  # let the full reader produce the precise error
    if fmt == "csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(itertools.islice(csv.DictReader(handle), SAMPLE_ROWS))
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).read_row_group(0).slice(0, SAMPLE_ROWS).to_pylist()
    return read_local_rows(path, fmt)[:SAMPLE_ROWS]


def check_data(config: RunConfig) -> tuple[list[Problem], str | None]:
    """Problems with the data files, and the detected format (None when it could not be read)."""
    from llmft.data.formats import prepare_columns
    from llmft.data.rows import check_columns, detect_format
    from llmft.data.sources import file_format

    if config.data.datasets is not None:
        return _check_sets(config)
    ds = config.data.dataset
    if ds is None or ds.resolved_source() != "files":
        return [], None
    base = Path(ds.dir) if ds.dir else None
    problems: list[Problem] = []
    fmt_found: str | None = None
    for key in ("train_file", "validation_file", "test_file"):
        name = getattr(ds, key)
        if not name:
            continue
        path = base / name if base is not None and not Path(name).is_absolute() else Path(name)
        where = f"data.dataset.{key}"
        try:
            if not path.exists():
                problems.append(
                    Problem(where, f"file not found: {path}", "check the path (relative to the config file)")
                )
                continue
            rows = prepare_columns(
                sample_rows(path, file_format(path, ds.file_format)), config.data.preprocessing, str(path)
            )
            columns = list(dict.fromkeys(k for r in rows for k in r))
            fmt_found = fmt_found or detect_format(columns, config.data.preprocessing)
            check_columns(columns, fmt_found, config.data.preprocessing, str(path))
        except LlmftError as err:
            problems.append(_problem(where, err))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError, ValueError) as err:
            fix = "save it as UTF-8 in the format its extension names, or set data.dataset.file_format"
            problems.append(Problem(where, f"cannot read {path}: {err}", fix))
    if fmt_found:
        problems.append(Problem("data", f"format detected: {fmt_found}", severity="notice"))
    return problems, fmt_found


def _check_sets(config: RunConfig) -> tuple[list[Problem], str | None]:
    """data.datasets: each set checked as a run of its own, its problems under its own path."""
    from dataclasses import replace

    problems: list[Problem] = []
    formats: list[str | None] = []
    for i, (_, view) in enumerate(config.data.sets()):
        found, fmt = check_data(config.model_copy(update={"data": view}))
        problems += [
            replace(p, path=p.path.replace("data.dataset", f"data.datasets.{i}.dataset", 1)) for p in found
        ]
        formats.append(fmt)
    known = {f for f in formats if f}
    return problems, known.pop() if len(known) == 1 else None


def check_model(config: RunConfig, data_format: str | None) -> list[Problem]:
    """Model config reachable; adapter targets exist (meta-device model, no weights); chat template."""
    from llmft.errors import ModelError
    from llmft.models.gguf_copy import plan_note
    from llmft.models.load import infer_task, load_model_config

    try:
        model_config = load_model_config(config.model, config.hf_token)
        gguf = plan_note(config.model, config.hf_token)
    except LlmftError as err:
        return [_problem("model.name_or_path", err)]
    task, why = infer_task(config.model, model_config, data_format == "classification")
    problems = [Problem("model.name_or_path", gguf, severity="notice")] if gguf else []
    problems.append(Problem("model.task", f"task: {task} ({why})", severity="notice"))
    adapter = config.model.adapter
    if adapter.type in ("lora", "qlora", "loha", "lokr", "vera", "oft") or (
        adapter.type == "ia3" and adapter.target_modules != "auto"
    ):
        try:
            model = _meta_model(model_config, task)
            from llmft.models.targets import resolve_target_modules

            targets = resolve_target_modules(model, adapter.target_modules)
            shown = targets if isinstance(targets, str) else ", ".join(targets)
            problems.append(Problem("model.adapter.target_modules", f"targets: {shown}", severity="notice"))
        except ModelError as err:
            problems.append(_problem("model.adapter.target_modules", err))
    if data_format in ("alpaca", "sharegpt", "messages", "preference") and task == "causal_lm":
        problems += _check_template(config)
    return problems


def _meta_model(model_config: object, task: str) -> object:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

    cls = {"causal_lm": AutoModelForCausalLM, "seq2seq_lm": AutoModelForSeq2SeqLM}.get(
        task, AutoModelForSequenceClassification
    )
    with torch.device("meta"):
        return cls.from_config(model_config)


def _check_template(config: RunConfig) -> list[Problem]:
    from llmft.models.load import load_tokenizer

    own = config.data.tokenization.tokenizer
    try:
        tokenizer = load_tokenizer(
            own or config.model.name_or_path,
            trust_remote_code=config.model.trust_remote_code,
            token=config.hf_token,
            gguf_file=None if own else config.model.gguf_file,
        )
    except LlmftError as err:
        return [_problem("data.tokenization.tokenizer", err)]
    has_template = bool(getattr(tokenizer, "chat_template", None))
    choice = config.data.preprocessing.template
    if choice == "tokenizer" and not has_template:
        return [
            Problem(
                "data.preprocessing.template",
                "the tokenizer has no chat template",
                "set template: chatml or alpaca",
            )
        ]
    used = (
        "the tokenizer's chat template"
        if (choice in ("auto", "tokenizer") and has_template)
        else (f"the built-in {choice if choice != 'auto' else 'alpaca/chatml'} template")
    )
    return [
        Problem(
            "data.preprocessing.template", f"conversations will be rendered with {used}", severity="notice"
        )
    ]


def deep_check(config: RunConfig) -> list[Problem]:
    data_problems, data_format = check_data(config)
    return data_problems + check_model(config, data_format)
