"""What `--help` shows and how the commands refuse bad arguments before any work (no torch here)."""

from __future__ import annotations

import re

import pytest

from llmft.cli.main import main

COMMANDS = [
    [],
    ["train"],
    ["validate"],
    ["doctor"],
    ["hpo"],
    ["preview"],
    ["schema"],
    ["selftest"],
    ["bench"],
    ["report"],
    ["merge"],
    ["export"],
    ["generate"],
    ["chat"],
    ["synth"],
    ["synth", "model"],
    ["synth", "data"],
]


def help_of(command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one line per option
    assert main([*command, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "llmft")
def test_no_flag_is_labelled_with_a_type(
    command: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_of(command, capsys, monkeypatch)
    options = text.split("Options")[-1]  # typer's Python-type labels (`<str>`, `<int range>`) on no option
    assert not re.search(r"<(bool|str|int|float|path|list)", options), options
    assert re.search(r"--help\s+Show this message and exit\.", text), text


def test_flags_show_their_names_and_options_with_a_value_their_kind(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = help_of(["train"], capsys, monkeypatch)
    assert re.search(r"--overwrite\s+Replace an earlier run in output_dir\.", text), text
    assert re.search(r"--quiet\s+-q\s+No progress bar or notices\.", text), text
    assert re.search(r"--resume-from\s+PATH\s+Continue from this checkpoint folder", text), text
    assert re.search(r"--nproc\s+N\s+Train with N processes", text), text
    bench = help_of(["bench"], capsys, monkeypatch)
    assert re.search(r"--cli-timing\s+--no-cli-timing\s+Also time", bench), bench


@pytest.mark.parametrize("rows", ["-1", "-20"])
def test_preview_refuses_a_negative_count_before_loading_anything(
    rows: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preview", "no-such-config.yaml", "-n", rows]) == 2
    assert capsys.readouterr().err.splitlines()[:2] == [
        f"error: -n/--rows: expected 0 or more examples, got {rows}",
        "Fix: e.g. -n 3 shows three",
    ]
