"""Quiet by default: a LoRA run with gradient checkpointing, `llmft generate` and `llmft merge` on a tiny
Llama print llmft's lines and none of the libraries' (progress bars, FutureWarnings, log lines);
`llmft --verbose` brings them back. Real subprocesses, each a fresh process as a user starts it: the
libraries read their settings when first imported.

The run's tokenizer is given a model_max_length of 8 after training, so a longer prompt makes transformers
log "Token indices sequence length is longer than the specified maximum" when `generate` tokenizes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llmft.cli.quiet import QUIET_ENV, VERBOSE_ENV

pytestmark = pytest.mark.slow  # six CLI processes, each importing torch and transformers

REPO = Path(__file__).resolve().parents[2]
LONG_PROMPT = "a prompt of many more words than the eight tokens this tokenizer now says it can take"

THIRD_PARTY_LINES = (
    "Loading weights",  # transformers' progress bar loading a model
    "Writing model shards",  # ... and saving one
    "it/s]",  # any tqdm bar
    "Warning: ",  # a Python warning: `file.py:12: FutureWarning: ...` (llmft's own say `warning: `)
    "warnings.warn(",  # the source line Python prints under it
    "site-packages",  # a library's file, named by a warning or a log line
    "Token indices sequence length is longer",  # a tokenizer's log line
    "Setting accelerator to CPU",  # DeepSpeed's, on stdout, when something imports it
    "[transformers]",  # transformers' logger
)
"""Marks of the libraries' output lines: none may appear by default."""


def third_party(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(mark in line for mark in THIRD_PARTY_LINES)]


@dataclass(frozen=True)
class Said:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str) -> Said:
    """`python -m llmft ...` in the environment a user has: none of the variables the CLI sets itself."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for name in (*QUIET_ENV, VERBOSE_ENV, "LLMFT_DEBUG"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "llmft", *args], capture_output=True, text=True, env=env, cwd=REPO
    )
    return Said(done.returncode, done.stdout, done.stderr)


def _config(folder: Path, base: Path, train_file: Path) -> Path:
    config = {
        "output_dir": str(folder / "run"),
        "data": {"dataset": {"train_file": str(train_file)}, "tokenization": {"max_length": 64}},
        "model": {"name_or_path": str(base), "adapter": {"type": "lora", "r": 4}},
        "training": {
            "max_steps": 2,
            "batch_size": 8,
            "eval_strategy": "no",
            "gradient_checkpointing": True,  # transformers' FutureWarning on every such load
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _shorten_tokenizer(model_dir: Path) -> None:
    path = model_dir / "tokenizer_config.json"
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["model_max_length"] = 8
    path.write_text(json.dumps(settings), encoding="utf-8")


@pytest.fixture(scope="module")
def said(tiny_model, synth_data, tmp_path_factory) -> dict[str, Said]:
    folder = tmp_path_factory.mktemp("quiet")
    config = _config(folder, tiny_model("llama"), synth_data("sft", rows=48)["train"])
    run_dir = folder / "run"
    outputs = {"train": cli("train", str(config))}
    assert outputs["train"].rc == 0, outputs["train"].output
    _shorten_tokenizer(run_dir / "model")
    generate = ("generate", str(run_dir), "-p", LONG_PROMPT, "--max-new-tokens", "2")
    outputs["generate"] = cli(*generate)
    outputs["merge"] = cli("merge", str(run_dir), "--out", str(folder / "merged"))
    outputs["verbose_train"] = cli("--verbose", "train", str(config), f"output_dir={folder / 'verbose'}")
    outputs["verbose_generate"] = cli("--verbose", *generate)
    return outputs


@pytest.mark.parametrize("command", ["train", "generate", "merge"])
def test_a_command_prints_none_of_the_libraries_lines(command: str, said: dict[str, Said]) -> None:
    out = said[command]
    assert out.rc == 0, out.output
    assert third_party(out.output) == [], out.output


def test_llmfts_own_lines_stay(said: dict[str, Said]) -> None:
    assert "adapter lora r=4" in said["train"].stderr
    assert "run directory:" in said["train"].stdout
    assert "1 prompts," in said["generate"].stderr
    assert said["merge"].stdout.startswith("wrote ")


def test_generate_writes_only_its_jsonl_to_stdout(said: dict[str, Said]) -> None:
    rows = [json.loads(line) for line in said["generate"].stdout.splitlines()]
    assert [row["prompt"] for row in rows] == [LONG_PROMPT]


def test_verbose_brings_the_libraries_lines_back(said: dict[str, Said]) -> None:
    train, generate = said["verbose_train"], said["verbose_generate"]
    assert train.rc == 0 and generate.rc == 0, train.output + generate.output
    assert any("Loading weights" in line for line in third_party(train.output)), train.output
    assert any("Token indices sequence length is longer" in line for line in third_party(generate.output))
    assert "adapter lora r=4" in train.stderr  # llmft's lines as well
