"""`llmft train` on broken data: every file of tests/data/bad_data/ must stop the run with exit code 2 and a
message that names the file, the line or row where that applies, and what is wrong - never a traceback.

The corpus is committed with a sidecar, ``expectations.json`` (file → message fragment, line or row).
Every file runs through the CLI entry point in-process (fast); a handful also run as a real subprocess,
exactly as a user would type the command. Data is read before the model is loaded, so all of them fail
within the data step. ``on_bad_rows: skip`` is checked here too: bad rows are dropped and counted by reason.
Other bad input - a missing data file, filters that leave no row, a LoRA target the model lacks - must stop
the same way: exit code 2, one short message that names the problem and says how to fix it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.cli_process import HANG_GUARD_S

from llmft.cli.main import main
from llmft.config.load import load_config
from llmft.data.build import encode_splits, prepare_rows

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "bad_data"
EXPECTATIONS: dict[str, dict[str, object]] = {
    name: case
    for name, case in json.loads((CORPUS / "expectations.json").read_text(encoding="utf-8")).items()
    if not name.startswith("_")
}
# One of each kind of failure, run as real subprocesses (each costs seconds of imports).
SUBPROCESS_CASES = [
    "malformed.jsonl",
    "latin1.csv",
    "object_not_list.json",
    "mixed_label_types.jsonl",
    "two_users_in_a_row.jsonl",
]


def _main_in_process(*args: str) -> int:
    """`llmft.cli.main.main`, as the console script calls it.

    `datasets` logs through a handler bound to the sys.stderr of the moment it was created; in-process that
    is an earlier test's capture, closed by now, and logging would print its own "Traceback" about it.
    """
    import logging

    for handler in logging.getLogger("datasets").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # not setStream(): that flushes the closed one
    return main(list(args))


def _write_config(tmp_path: Path, data_file: Path, model_dir: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'run'}\n"
        "data:\n"
        "  dataset:\n"
        f"    train_file: {data_file}\n"
        "model:\n"
        f"  name_or_path: {model_dir}\n"
        "training:\n"
        "  max_steps: 1\n",
        encoding="utf-8",
    )
    return config


def _overrides(case: dict[str, object]) -> list[str]:
    return [f"{key}={value}" for key, value in dict(case.get("overrides", {})).items()]  # type: ignore[arg-type]


def _check_message(name: str, case: dict[str, object], output: str) -> None:
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    assert name in output, f"the message does not name the file:\n{output}"
    assert str(case["message"]) in output, output
    if "line" in case:
        assert f"{name}:{case['line']}" in output, f"no {name}:{case['line']} in:\n{output}"
    if "row" in case:
        assert re.search(rf"\brow {case['row']}\b", output), f"no `row {case['row']}` in:\n{output}"


def test_every_corpus_file_has_an_expectation() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "expectations.json"}
    assert files == set(EXPECTATIONS), "every bad file needs an entry in expectations.json and vice versa"
    assert len(files) >= 30
    assert (CORPUS / "zero_bytes.jsonl").stat().st_size == 0
    suffixes = {Path(name).suffix for name in files}
    assert {".json", ".jsonl", ".csv", ".txt", ".parquet"} <= suffixes


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_bad_file_stops_train_with_exit_code_2_and_a_located_message(
    name: str, tmp_path: Path, tiny_model, capsys: pytest.CaptureFixture[str]
) -> None:
    case = EXPECTATIONS[name]
    config = _write_config(tmp_path, CORPUS / name, tiny_model("gpt2"))

    code = _main_in_process("train", str(config), *_overrides(case))

    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2, output
    _check_message(name, case, output)
    assert not (tmp_path / "run" / "model").exists()


@pytest.fixture(scope="module")
def cli_runs(
    tmp_path_factory: pytest.TempPathFactory, tiny_model, synth_data
) -> Iterator[dict[str, subprocess.Popen]]:
    """Start every subprocess case at once: each spends seconds importing torch, so they overlap."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("LLMFT_DEBUG", None)
    commands = {}
    for name in SUBPROCESS_CASES:
        config = _write_config(tmp_path_factory.mktemp("cli"), CORPUS / name, tiny_model("gpt2"))
        commands[name] = [str(config), *_overrides(EXPECTATIONS[name])]
    # Good data, then a LoRA target the model lacks: fails after the model is loaded, not in the data step.
    config = _write_config(
        tmp_path_factory.mktemp("cli"), synth_data("sft", rows=16)["train"], tiny_model("llama")
    )
    commands[UNKNOWN_TARGET] = [str(config), UNKNOWN_TARGET]
    runs = {}
    for name, args in commands.items():
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", "llmft.cli.main", "train", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
    yield runs
    for process in runs.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_file_through_the_real_cli(name: str, cli_runs: dict[str, subprocess.Popen]) -> None:
    stdout, stderr = cli_runs[name].communicate(timeout=HANG_GUARD_S)

    output = stdout + stderr
    assert cli_runs[name].returncode == 2, output
    assert "error:" in stderr
    _check_message(name, EXPECTATIONS[name], output)


def test_a_1mb_broken_line_is_reported_by_line_without_echoing_it(
    tmp_path: Path, tiny_model, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "huge_line.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "' + "x" * 1_000_000 + "\n", encoding="utf-8")
    config = _write_config(tmp_path, data, tiny_model("gpt2"))

    code = _main_in_process("train", str(config))

    output = "".join(capsys.readouterr())
    assert code == 2
    expected = {"message": "line 2 is not valid JSON: Unterminated string", "line": 2}
    _check_message("huge_line.jsonl", expected, output)
    assert len(output) < 2_000, "the 1 MB line must not be echoed back"


# ----------------------------------------------------------------------- other bad input, through the CLI
UNKNOWN_TARGET = "model.adapter.target_modules=[c_attn]"  # GPT-2's fused q/k/v; Llama has no such layer
LLAMA_LINEAR = "down_proj, gate_proj, k_proj, o_proj, q_proj, up_proj, v_proj"


def _check_bad_input(output: str, stderr: str, fragments: list[str], fix: str) -> None:
    """No traceback; a short `error:` paragraph holding every fragment, then a `Fix:` line."""
    assert "Traceback" not in output, output
    assert "internal error" not in output, output
    found = re.search(r"^error: ", stderr, re.MULTILINE)
    assert found, f"no `error:` line in stderr:\n{stderr}"
    message = stderr[found.start() :].strip().splitlines()
    assert len(message) <= 4, f"the message is not one short paragraph:\n{stderr}"
    for fragment in fragments:
        assert fragment in message[0], f"no {fragment!r} in:\n{stderr}"
    assert any(line.startswith("Fix: ") and fix in line for line in message[1:]), f"no fix line in:\n{stderr}"


def _bad_input(kind: str, tmp_path: Path) -> tuple[str, list[str], str]:
    """The override that breaks a good config, what the message must name, and what the fix must say."""
    if kind == "missing_file":
        missing = tmp_path / "not_there" / "train.jsonl"
        return (
            f"data.dataset.train_file={missing}",
            ["data file not found", str(missing)],
            "check data.dataset.train_file",
        )
    if kind == "no_rows_left":
        return (
            "data.preprocessing.min_length=1000000",
            ["no training rows left", "shorter than min_length (1000000 chars)"],
            "loosen data.preprocessing filters",
        )
    assert kind == "unknown_target"
    return (
        UNKNOWN_TARGET,
        ["`c_attn` matches no module in the model"],
        f"use names of the model's linear layers: {LLAMA_LINEAR}",
    )


@pytest.mark.parametrize("kind", ["missing_file", "no_rows_left", "unknown_target"])
def test_bad_input_stops_train_with_exit_code_2_and_a_fix(
    kind: str, tmp_path: Path, tiny_model, synth_data, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_config(tmp_path, synth_data("sft", rows=16)["train"], tiny_model("llama"))
    override, fragments, fix = _bad_input(kind, tmp_path)

    code = _main_in_process("train", str(config), override)

    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == 2, output
    _check_bad_input(output, captured.err, fragments, fix)
    assert "self_attn" not in output  # a container LoRA refuses is never suggested
    assert not (tmp_path / "run" / "model").exists()


def test_unknown_target_module_through_the_real_cli(cli_runs: dict[str, subprocess.Popen]) -> None:
    stdout, stderr = cli_runs[UNKNOWN_TARGET].communicate(timeout=HANG_GUARD_S)

    assert cli_runs[UNKNOWN_TARGET].returncode == 2, stdout + stderr
    _, fragments, fix = _bad_input("unknown_target", Path())
    _check_bad_input(stdout + stderr, stderr, fragments, fix)
    assert "self_attn" not in stderr


# ------------------------------------------------------------------------------------- on_bad_rows: skip
SKIP = "data.preprocessing.on_bad_rows=skip"
NO_CARVE = "data.dataset.validation_fraction=0"


def _prepared(data_file: Path, *overrides: str):
    config = load_config(None, [f"data.dataset.train_file={data_file}", "model.name_or_path=x", *overrides])
    return config, prepare_rows(config.data, config.seed)


def _conversations(tmp_path: Path) -> Path:
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    rows = [
        good,
        {"messages": [{"role": "user", "content": "hi"}, {"role": "robot", "content": "beep"}]},
        {"messages": [{"role": "assistant", "content": "me first"}, {"role": "user", "content": "ok"}]},
        good,
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "{}"}]},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}]},
        good,
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_skip_drops_bad_rows_and_counts_them_by_reason(tmp_path: Path) -> None:
    _, prepared = _prepared(_conversations(tmp_path), SKIP, NO_CARVE)

    report = prepared.reports["train"]
    assert report.rows_in == 8 and report.kept == 3
    assert dict(report.dropped) == {
        "unknown role": 1,
        "wrong turn order: a tool result after a user turn without tool calls": 1,
        "wrong turn order: the conversation must start with a user turn": 1,
        "wrong turn order: two user turns in a row": 1,
        "empty turn content": 1,
    }
    assert [n for n, _ in report.bad_rows] == [2, 3, 5, 6, 7]
    assert "3/8 rows kept" in report.summary() and "1 unknown role" in report.summary()
    assert len(prepared.rows["train"]) == 3


def test_skip_counts_across_carved_splits_and_error_names_the_file_row(tmp_path: Path) -> None:
    data = _conversations(tmp_path)
    _, prepared = _prepared(data, SKIP, "data.dataset.validation_fraction=0.3")
    dropped = sum(sum(r.dropped.values()) for r in prepared.reports.values())
    kept = sum(r.kept for r in prepared.reports.values())
    assert (dropped, kept) == (5, 3)
    # Row numbers are the file's even though train/validation were shuffled when carved.
    numbers = sorted(n for r in prepared.reports.values() for n, _ in r.bad_rows)
    assert numbers == [2, 3, 5, 6, 7]


def test_skip_with_every_row_bad_says_what_was_dropped(tmp_path: Path) -> None:
    from llmft.errors import DataError

    data = tmp_path / "all_bad.jsonl"
    data.write_text('{"text": ""}\n{"text": "  "}\n{"text": null}\n', encoding="utf-8")
    expected = r"no training rows left .*0/3 rows kept; dropped: 2 empty text, 1 missing text"
    with pytest.raises(DataError, match=expected):
        _prepared(data, SKIP, NO_CARVE)


# ------------------------------------------------------------------------------------ rows that are too long
def test_a_row_longer_than_the_character_limit_is_dropped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "long.jsonl"
    rows = [{"text": "short row"}, {"text": "x" * 1_000_000}, {"text": "another short row"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    _, prepared = _prepared(data, "data.preprocessing.max_length=1000", NO_CARVE)

    assert prepared.reports["train"].dropped == {"longer than max_length (1000 chars)": 1}
    assert [r["text"] for r in prepared.rows["train"]] == ["short row", "another short row"]


@pytest.mark.parametrize("truncation", [True, False])
def test_a_row_longer_than_max_length_tokens_is_truncated_or_dropped_as_configured(
    truncation: bool, tmp_path: Path, tiny_model
) -> None:
    from transformers import AutoTokenizer

    data = tmp_path / "long_chat.jsonl"
    long_answer = "the cat sat on the mat. " * 400
    rows = [{"instruction": "Tell a story.", "input": "", "output": long_answer}] + [
        {"instruction": f"Say {w}.", "input": "", "output": w} for w in ("yes", "no", "maybe")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    model = tiny_model("llama")
    config, prepared = _prepared(
        data, NO_CARVE, "data.tokenization.max_length=64", f"data.tokenization.truncation={truncation}"
    )

    encoded = encode_splits(prepared, config.data, AutoTokenizer.from_pretrained(model), "causal_lm")

    stats = encoded.stats["train"]
    assert max(len(e["input_ids"]) for e in encoded.examples["train"]) <= 64
    if truncation:
        assert (stats.truncated, stats.dropped_too_long, stats.rows) == (1, 0, 4)
    else:
        assert (stats.truncated, stats.dropped_too_long, stats.rows) == (0, 1, 3)
