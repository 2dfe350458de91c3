"""Check a local model directory before transformers reads it.

transformers treats any string it cannot find on disk as a Hub id, so a mistyped path turns into a
confusing network error, and a folder of pickle weights is loaded (and its code run) without a word. These
checks run first: a path that cannot be a model fails with what is actually there, and pickle-only weights
are refused unless ``model.allow_pickle`` says the source is trusted.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmft.config.paths import looks_like_path
from llmft.errors import ModelError
from llmft.models.hub import WHERE

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def check_local_dir(name: str) -> Path | None:
    """The local model directory, None for a Hub id; errors for a path that cannot be a model."""
    if not looks_like_path(name):
        return None
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelError(
            f"model directory `{name}` does not exist",
            fix="check model.name_or_path (relative paths are relative to the config file)",
            where=WHERE,
        )
    if not path.is_dir():
        raise ModelError(
            f"model path `{name}` is a file, not a model directory",
            fix="point model.name_or_path to a folder written by `save_pretrained`, or to a GGUF file "
            "(its name must end in .gguf)",
            where=WHERE,
        )
    if not (path / "config.json").is_file():
        raise _not_a_model_dir(name, path)
    return path


def _not_a_model_dir(name: str, path: Path) -> ModelError:
    """Say what the directory holds instead: a PEFT adapter (and its base), or just which files."""
    adapter_config = path / "adapter_config.json"
    if adapter_config.is_file():
        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path")
        return ModelError(
            f"`{name}` holds a PEFT adapter, not a full model",
            fix=f"set model.name_or_path to its base model (`{base}`)",
            where=WHERE,
        )
    files = ", ".join(sorted(p.name for p in path.iterdir())[:10]) or "none"
    return ModelError(
        f"`{name}` has no config.json, so it is not a saved model (files there: {files})",
        fix="point model.name_or_path to a directory written by `save_pretrained`",
        where=WHERE,
    )


def check_weights_format(path: Path, allow_pickle: bool) -> None:
    """Refuse a folder whose only weights are pickle files, unless the user trusts it."""
    if allow_pickle or any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelError(
            f"`{path}` has only pickle weights ({', '.join(pickles)}); pickle files can run code when loaded",
            fix="convert them to safetensors, or set `model.allow_pickle: true` if the source is trusted",
            where="model.allow_pickle",
        )


__all__ = ["PICKLE_SUFFIXES", "check_local_dir", "check_weights_format", "looks_like_path"]
