"""``llmft merge``: the adapter folded into its base, saved as a model plain transformers loads alone.

The output is what ``AutoModelFor...from_pretrained(DIR)`` needs and nothing else: sharded safetensors
(with their index when there is more than one shard), the config (a classifier's labels in it), the
run's tokenizer with its chat template, and the generation config (the run's, with its end-of-turn ids,
when training wrote one). Heads and other modules trained in full (peft's ``modules_to_save``) replace the
base's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from llmft.errors import ExportError
from llmft.export.load import has_tokenizer, load_merged, load_tokenizer, quiet_transformers
from llmft.export.source import ModelSource

# Files of a saved tokenizer (any family) and of its chat template, copied as they are.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
GENERATION_CONFIG = "generation_config.json"


@dataclass
class MergeResult:
    """What was written, for the CLI to report."""

    out: Path
    dtype: str
    shards: list[str]
    parameters: int
    notes: list[str] = field(default_factory=list)


def merge_to_dir(
    source: ModelSource,
    out: str | Path,
    *,
    dtype: str = "auto",
    max_shard_size: str = "2GB",
    overwrite: bool = False,
) -> MergeResult:
    """Merge ``source``'s adapter into its base and save the result to ``out``."""
    check_has_adapter(source)
    target = check_out_dir(Path(out), source, overwrite=overwrite)
    model = load_merged(source, dtype=dtype)
    if target.is_dir():  # emptied only now: a merge that fails leaves what was there
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with quiet_transformers():
        model.save_pretrained(str(target), max_shard_size=max_shard_size, safe_serialization=True)
    notes = copy_side_files(source, target)
    if source.trained_quantized:
        notes.append(
            "qlora run: the adapter was trained on the 4-bit base and is merged into its full-precision "
            "weights (the usual practice); outputs differ slightly from the 4-bit model's"
        )
    shards = sorted(p.name for p in target.glob("*.safetensors"))
    dtype_name = str(next(model.parameters()).dtype).replace("torch.", "")
    params = sum(p.numel() for p in model.parameters())
    return MergeResult(target, dtype_name, shards, params, notes)


def check_has_adapter(source: ModelSource) -> None:
    """A full fine-tune has no adapter: its full weights are saved already, and a "merge" would only copy
    them, which would leave the user wondering what changed."""
    if source.is_adapter:
        return
    raise ExportError(
        f"nothing to merge: {source.model_dir} holds a full model (a full fine-tune, no adapter), so its "
        "full weights are already saved there",
        fix=f"load {source.model_dir} as it is with transformers (from_pretrained), or convert it with "
        "`llmft export RUN --format gguf`; `llmft merge` is for runs that trained an adapter",
        where="RUN",
    )


def check_out_dir(out: Path, source: ModelSource, *, overwrite: bool) -> Path:
    """Refuse to write into the run's own model folder or over files already there (unless asked)."""
    resolved = out.expanduser().resolve()
    if resolved == source.model_dir.resolve() or source.model_dir.resolve() in resolved.parents:
        raise ExportError(
            f"--out {out} is inside the model being merged ({source.model_dir})",
            fix="write the merged model to a folder of its own, e.g. --out RUN/merged",
            where="--out",
        )
    if resolved.is_file() or (resolved.is_dir() and any(resolved.iterdir()) and not overwrite):
        raise ExportError(
            f"--out {out} already exists and is not an empty folder",
            fix="choose a new folder, or pass --overwrite to replace what is there",
            where="--out",
        )
    return resolved


def copy_side_files(source: ModelSource, target: Path) -> list[str]:
    """Tokenizer, chat template and generation config: the run's own, else the base's."""
    notes: list[str] = []
    if has_tokenizer(source.model_dir):
        for name in TOKENIZER_FILES:
            if (source.model_dir / name).is_file():
                shutil.copy2(source.model_dir / name, target / name)
    else:
        load_tokenizer(source).save_pretrained(str(target))
        notes.append(f"tokenizer taken from the base model `{source.base or source.model_dir}`")
    generation = source.model_dir / GENERATION_CONFIG
    if generation.is_file() and source.task != "sequence_classification":
        shutil.copy2(generation, target / GENERATION_CONFIG)
    return notes


__all__ = [
    "GENERATION_CONFIG",
    "TOKENIZER_FILES",
    "MergeResult",
    "check_has_adapter",
    "check_out_dir",
    "merge_to_dir",
]
