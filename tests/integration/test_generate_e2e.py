"""After training, the model answers: a tiny Llama fully fine-tuned on `llmft synth data --task sft` (answers
that are a rule of the question) generates the rule's answers with the run's chat template and stops at the
end-of-turn token, through evaluation.generate, `llmft generate --split test`, `llmft.load` and `llmft chat`
(driven through a pseudo-terminal). A seq2seq model (T5) is scored through the same path."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

import llmft
from llmft.config.load import load_config
from llmft.config.schema import GenerationEvalConfig, PreprocessingConfig
from llmft.data.formats import format_rows
from llmft.data.templates import choose_template
from llmft.data.tokenize import encode_conversation
from llmft.evaluate.generation import generation_metrics
from llmft.pipeline import run

pytestmark = pytest.mark.numeric  # compares numbers: make test-matrix runs it
REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(
        [sys.executable, "-m", "llmft.cli.main", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def trained(tiny_model, synth_data, tmp_path_factory) -> tuple[Path, dict[str, Path], object]:
    """The config `make quickstart` runs (full fine-tuning, ~150 steps), pointed at fresh tiny files, with
    evaluation by generation added."""
    files = synth_data("sft", rows=600)
    out = tmp_path_factory.mktemp("generate-e2e")
    shutil.copytree(tiny_model("llama"), out / "base")
    overrides = [
        f"output_dir={out / 'run'}",
        f"model.name_or_path={out / 'base'}",
        *(f"data.dataset.{split}_file={path}" for split, path in files.items()),
        "evaluation.generate.max_new_tokens=16",
        "evaluation.generate.max_rows=60",
    ]
    result = run(load_config(REPO / "configs" / "tiny.yaml", overrides), say=lambda _: None, progress=False)
    return out / "run", files, result


def test_quickstart_config_learns(trained) -> None:
    _, _, result = trained
    losses = [loss for _, loss in result.train_losses]
    assert losses[-1] < 0.5 * losses[0], result.train_losses
    assert result.metrics["test_loss"] < losses[0]


def test_evaluation_generate_beats_an_untrained_model_and_stops_at_end_of_turn(trained, tiny_model) -> None:
    from transformers import AutoModelForCausalLM

    run_dir, files, result = trained
    metrics = json.loads((run_dir / "eval_results.json").read_text(encoding="utf-8"))
    for key in ("exact_match", "rouge1", "rouge2", "rougeL", "bleu", "chrf", "stopped_at_eos"):
        assert 0 <= metrics[f"test_{key}"] and f"eval_{key}" in metrics
    assert metrics["test_generated_rows"] == 60
    assert metrics["test_stopped_at_eos"] >= 0.95

    rows, _ = format_rows(jsonl(files["test"]), "alpaca", PreprocessingConfig(), "test")
    untrained = AutoModelForCausalLM.from_pretrained(tiny_model("llama"))
    cfg = GenerationEvalConfig(max_new_tokens=16)
    baseline, _ = generation_metrics(untrained, result.tokenizer, rows, cfg, "test")
    assert metrics["test_exact_match"] >= baseline["test_exact_match"] + 0.2, (metrics, baseline)

    samples = jsonl(run_dir / "generations.jsonl")
    assert len(samples) == 120 and {"prompt", "reference", "prediction", "stop_reason"} <= set(samples[0])


def test_saved_template_and_stop_ids_are_the_ones_training_used(trained, tiny_model) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    run_dir, files, _ = trained
    saved = AutoTokenizer.from_pretrained(run_dir / "model")
    assert json.loads((run_dir / "model" / "tokenizer_config.json").read_text())["chat_template"]
    base = AutoTokenizer.from_pretrained(tiny_model("llama"))
    template = choose_template("auto", base, "alpaca")
    rows, _ = format_rows(jsonl(files["test"]), "alpaca", PreprocessingConfig(), "test")
    for row in rows:
        ids, _ = encode_conversation(row["messages"], base, template, False)  # type: ignore[arg-type]
        assert saved.apply_chat_template(row["messages"])["input_ids"] == ids
    ends = GenerationConfig.from_pretrained(run_dir / "model").eos_token_id
    assert ends == [saved.convert_tokens_to_ids("<|im_end|>"), saved.eos_token_id]


def test_llmft_generate_split_test_gives_the_same_answers(trained, tmp_path: Path) -> None:
    run_dir, _, _ = trained
    out = tmp_path / "test.jsonl"
    done = cli("generate", str(run_dir), "--split", "test", "--max-new-tokens", "16", "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = jsonl(out)
    assert len(records) == 60 and set(records[0]) == {
        "prompt",
        "output",
        "new_tokens",
        "stop_reason",
        "reference",
    }
    assert sum(r["stop_reason"] == "eos" for r in records) >= 57
    assert "60 prompts" in done.stderr and "tok/s" in done.stderr
    evaluated = [s["prediction"] for s in jsonl(run_dir / "generations.jsonl") if s["split"] == "test"]
    assert [r["output"] for r in records] == evaluated


def test_llmft_load_is_ready_to_generate(trained) -> None:
    run_dir, _, _ = trained
    model, tokenizer = llmft.load(str(run_dir), device="cpu")
    messages = [{"role": "user", "content": "What colour is the big sky?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=16)
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    assert new[-1] in model.generation_config.eos_token_id  # stopped at the end-of-turn token
    assert tokenizer.decode(new, skip_special_tokens=True).startswith("The ")


def _read_until(fd: int, buffer: bytearray, token: bytes, count: int, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while buffer.count(token) < count and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                buffer.extend(os.read(fd, 4096))
            except OSError:
                return


def test_llmft_chat_answers_two_turns_in_a_terminal(trained) -> None:
    run_dir, _, _ = trained
    parent, child = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, "-m", "llmft.cli.main", "chat", str(run_dir), "--max-new-tokens", "16"]
    proc = subprocess.Popen(command, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    seen = bytearray()
    try:
        _read_until(parent, seen, b"you> ", 1)
        os.write(parent, b"What colour is the big sky?\n")
        _read_until(parent, seen, b"you> ", 2)
        os.write(parent, b"What colour is the old coal?\n")
        _read_until(parent, seen, b"you> ", 3)
        os.write(parent, b"/exit\n")
        assert proc.wait(timeout=HANG_GUARD_S) == 0
    finally:
        proc.kill()
        os.close(parent)
    text = seen.decode("utf-8", errors="replace").replace("\r", "")
    answers = [line.split("assistant> ", 1)[1] for line in text.splitlines() if "assistant> " in line]
    assert len(answers) == 2, text
    assert all(a.startswith("The ") for a in answers), text  # the shape of the colour answers it learned
    assert "cut off" not in text  # both answers ended at the end-of-turn token


def test_seq2seq_is_scored_through_the_same_path(tiny_model, synth_data, tmp_path: Path) -> None:
    files = synth_data("sft", rows=120)
    config = {
        "output_dir": str(tmp_path / "run"),
        "data": {"dataset": {k + "_file": str(v) for k, v in files.items()}},
        "model": {"name_or_path": str(tiny_model("t5")), "adapter": {"type": "none"}},
        "training": {"max_steps": 3, "batch_size": 8, "eval_strategy": "no"},
        "evaluation": {"generate": {"max_new_tokens": 4, "max_rows": 5}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = run(load_config(tmp_path / "c.yaml", []), say=lambda _: None, progress=False)
    assert result.task == "seq2seq_lm"
    assert result.metrics["test_generated_rows"] == 5 and "test_chrf" in result.metrics
    samples = jsonl(tmp_path / "run" / "generations.jsonl")
    assert len(samples) == 10 and all(s["new_tokens"] <= 4 for s in samples)


def test_every_eval_scores_each_evaluation(tiny_model, synth_data, tmp_path: Path) -> None:
    """`when: every_eval`: the scores are in each in-training evaluation, where early stopping sees them."""
    files = synth_data("sft", rows=120)
    config = {
        "output_dir": str(tmp_path / "run"),
        "data": {"dataset": {k + "_file": str(v) for k, v in files.items()}},
        "model": {"name_or_path": str(tiny_model("llama")), "adapter": {"type": "none"}},
        "training": {
            "max_steps": 4,
            "batch_size": 8,
            "eval_strategy": "steps",
            "eval_steps": 2,
            "early_stopping_patience": 5,
            "early_stopping_metric": "eval_rougeL",
        },
        "evaluation": {"generate": {"max_new_tokens": 3, "max_rows": 4, "when": "every_eval"}},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    run(load_config(tmp_path / "c.yaml", []), say=lambda _: None, progress=False)
    evals = [r for r in jsonl(tmp_path / "run" / "metrics.jsonl") if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval_generated_rows"] == 4 and "eval_rougeL" in r for r in evals)
