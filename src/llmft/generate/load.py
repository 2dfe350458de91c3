"""Load a finished run (or any saved model dir) ready to generate: adapter applied, template set.

A run dir holds ``model/`` (an adapter or a full model, the tokenizer with the run's chat template, and
``generation_config.json`` with its stop ids) and ``run.json`` (the task and the data format). A model dir
works on its own: the task is then read from its config.

torch, transformers and peft are imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from llmft.config.schema.model import GGUF_SUFFIX
from llmft.errors import ModelError
from llmft.run_dir import RunDir, read_json

GENERATIVE = ("causal_lm", "seq2seq_lm")
CONVERSATIONAL = ("alpaca", "sharegpt", "messages", "preference", "prompt")


@dataclass
class LoadedRun:
    """A model ready to generate, with what prompts need to know about how it was trained."""

    model: object
    tokenizer: object
    task: str
    model_dir: Path
    run_dir: Path | None = None
    chat: bool = True  # prompts go through the chat template (the run trained on conversations)
    system_prompt: str | None = None  # the run's data.preprocessing.system_prompt
    record: dict[str, object] = field(default_factory=dict)


def model_dir_of(path: str | Path) -> tuple[Path, Path | None]:
    """(model dir, run dir or None) for a run dir, a model dir or a GGUF file (its float32 copy in the cache,
    written on first use, as a run on it would); a clear error for anything else."""
    root = Path(path)
    if root.suffix.lower() == GGUF_SUFFIX and root.is_file():  # a GGUF base as it is: its float32 copy
        from llmft.models.gguf_copy import copy_of

        return copy_of(root, key="model"), None
    run = RunDir(root)
    if run.finished():
        return run.model_dir, root
    if (root / "adapter_config.json").is_file() or (root / "config.json").is_file():
        return root, None
    hint = "the run has no model/ yet (it did not finish)" if run.metrics_file.exists() else ""
    raise ModelError(
        "neither a finished run dir (model/ and run.json) nor a saved model dir"
        + (f": {hint}" if hint else ""),
        fix="pass the output_dir of a finished `llmft train` run, a folder written by save_pretrained, "
        "or a .gguf file",
        where=str(root),
    )


def _read_json(path: Path) -> dict[str, object]:
    """A JSON object file, {} when missing; a garbled one raises (a broken run is not loaded half-right)."""
    return read_json(path) or {}


def _task_of(model_dir: Path, record: dict[str, object]) -> str:
    if record.get("task"):
        return str(record["task"])
    adapter = _read_json(model_dir / "adapter_config.json")
    if adapter:
        return "seq2seq_lm" if adapter.get("task_type") == "SEQ_2_SEQ_LM" else "causal_lm"
    config = _read_json(model_dir / "config.json")
    return "seq2seq_lm" if config.get("is_encoder_decoder") else "causal_lm"


def _load_weights(model_dir: Path, task: str, dtype: str | None, record: dict[str, object]) -> object:
    """The base model with the adapter applied (peft), or the full model. A GGUF run's base copy that was
    removed (a cleared cache) is written again from the GGUF file run.json records."""
    import torch
    import transformers

    auto = transformers.AutoModelForSeq2SeqLM if task == "seq2seq_lm" else transformers.AutoModelForCausalLM
    kwargs: dict[str, object] = {"dtype": getattr(torch, dtype) if dtype else "auto"}
    adapter = _read_json(model_dir / "adapter_config.json")
    if not adapter:
        return auto.from_pretrained(str(model_dir), **kwargs)
    from peft import PeftModel

    base_path = str(adapter.get("base_model_name_or_path") or "")
    if isinstance(record.get("base_gguf"), dict):
        from llmft.models.gguf_copy import restore_copy

        restore_copy(base_path, record["base_gguf"])
    try:
        base = auto.from_pretrained(base_path, **kwargs)
    except OSError as err:
        raise ModelError(
            f"the adapter in {model_dir} was trained on `{base_path}`, which cannot be loaded: {err}",
            fix="make the base model available at that path (or Hub id) again",
            where=str(model_dir / "adapter_config.json"),
        ) from None
    return PeftModel.from_pretrained(base, str(model_dir))


def _set_generation_config(model: object, model_dir: Path) -> None:
    """The saved stop ids (every end-of-turn token), also when the weights are an adapter's base."""
    from transformers import GenerationConfig

    from llmft.generate.chat_template import generation_config_of

    if not (model_dir / "generation_config.json").is_file():
        return
    saved = GenerationConfig.from_pretrained(str(model_dir))
    inner = getattr(model, "get_base_model", lambda: model)()
    if generation_config_of(model) is not None:
        inner.generation_config = saved  # type: ignore[attr-defined]


def load_run(path: str | Path, *, device: str | None = None, dtype: str | None = None) -> LoadedRun:
    """Load a run (or model dir) for generation, in eval mode, on ``device`` (default: CUDA when present)."""
    import torch
    from transformers import AutoTokenizer

    model_dir, run_dir = model_dir_of(path)
    record = _read_json(RunDir(run_dir).record_file) if run_dir else {}
    task = _task_of(model_dir, record)
    if task not in GENERATIVE:
        raise ModelError(
            f"{path} holds a {task} model, which does not generate text",
            fix="generate with a causal or seq2seq language model run",
        )
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))  # saved by the run: it has a pad token
    if tokenizer.pad_token is None:  # a model dir from elsewhere
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "left" if task == "causal_lm" else "right"  # the prompt's end meets the answer
    with _quiet_loading():
        model = _load_weights(model_dir, task, dtype, record)
    _set_generation_config(model, model_dir)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()  # type: ignore[attr-defined]
    fmt = record.get("data_format")
    chat = task == "causal_lm" and bool(tokenizer.chat_template) and (fmt is None or fmt in CONVERSATIONAL)
    return LoadedRun(model, tokenizer, task, model_dir, run_dir, chat, _system_prompt(run_dir), record)


@contextmanager
def _quiet_loading() -> Iterator[None]:
    """No "Loading weights" bar between a command's own output lines; the user's setting comes back after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _system_prompt(run_dir: Path | None) -> str | None:
    """The run's configured system prompt, which its training rows got when they had none."""
    if run_dir is None:
        return None
    value = RunDir(run_dir).config().get("data", {}).get("preprocessing", {}).get("system_prompt")  # type: ignore[attr-defined]
    return str(value) if value else None


def load(path: str | Path, *, device: str | None = None, dtype: str | None = None) -> tuple[object, object]:
    """``llmft.load(RUN)``: (model, tokenizer) ready to generate: adapter applied, the run's chat template on
    the tokenizer, its stop ids in ``model.generation_config``, left padding for batched prompts."""
    loaded = load_run(path, device=device, dtype=dtype)
    return loaded.model, loaded.tokenizer
