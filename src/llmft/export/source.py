"""What a RUN argument points at: the trained model, its base, its task and labels.

``llmft merge``/``export`` take a run directory (``RUN/model`` holds the adapter or full model, ``RUN``
the config, ``labels.json`` and ``run.json``) or a model directory itself (a peft adapter folder, or a
full model saved with ``save_pretrained``). Everything is read from small JSON files here, without torch,
so a wrong path fails at once with what is actually there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmft.config.schema.model import GGUF_SUFFIX
from llmft.errors import ExportError
from llmft.models.local import looks_like_path
from llmft.run_dir import RunDir, label_names, read_json

WHERE = "RUN"

# peft's task types and the architecture-name endings of full models, as llmft's task names.
_PEFT_TASKS = {"CAUSAL_LM": "causal_lm", "SEQ_CLS": "sequence_classification", "SEQ_2_SEQ_LM": "seq2seq_lm"}
_ARCH_TASKS = {
    "ForCausalLM": "causal_lm",
    "LMHeadModel": "causal_lm",
    "ForSequenceClassification": "sequence_classification",
    "ForConditionalGeneration": "seq2seq_lm",
}


@dataclass(frozen=True)
class ModelSource:
    """A trained model on disk. ``base`` is set for an adapter and names the model it was trained on."""

    model_dir: Path
    run_dir: Path | None
    task: str
    base: str | None = None
    peft_type: str | None = None
    label_names: list[str] | None = None
    trained_quantized: bool = False  # a qlora run: the adapter saw the base rounded to 4 bits

    @property
    def is_adapter(self) -> bool:
        return self.base is not None


def resolve_source(run: str | Path, *, base: str | None = None) -> ModelSource:
    """Find the model of ``run`` (a run directory or a model directory); ``base`` overrides the adapter's."""
    path = Path(run).expanduser()
    if not path.exists():
        raise ExportError(
            f"`{run}` does not exist",
            fix="pass a run directory (the training output_dir) or a saved model/adapter directory",
            where=WHERE,
        )
    folder = RunDir(path)
    model_dir = folder.model_dir if folder.model_dir.is_dir() else path
    if not ((model_dir / "adapter_config.json").is_file() or (model_dir / "config.json").is_file()):
        files = ", ".join(folder.contents()[:12]) if path.is_dir() else "a file"
        raise ExportError(
            f"`{run}` is neither a run directory nor a saved model (there: {files})",
            fix="pass the training output_dir (it has model/ inside) or a folder written by save_pretrained",
            where=WHERE,
        )
    run_dir = (
        path if model_dir != path else (path.parent if RunDir(path.parent).record_file.is_file() else None)
    )
    adapter = _read_json(model_dir / "adapter_config.json")
    task = _task(model_dir, run_dir, adapter)
    labels = _label_names(run_dir)
    if adapter is None:
        return ModelSource(model_dir, run_dir, task, label_names=labels)
    return ModelSource(
        model_dir,
        run_dir,
        task,
        base=_base(model_dir, adapter, base, run_dir),
        peft_type=str(adapter.get("peft_type", "")),
        label_names=labels,
        trained_quantized=_adapter_type(run_dir) == "qlora",
    )


def _read_json(path: Path) -> dict[str, object] | None:
    """A JSON object file (None when missing); one that cannot be read stops the export, saying which."""
    try:
        return read_json(path)
    except (OSError, ValueError) as err:
        raise ExportError(f"cannot read {path}: {err}", where=WHERE) from None


def _base(model_dir: Path, adapter: dict[str, object], override: str | None, run_dir: Path | None) -> str:
    """The base model: ``--base`` (a folder, Hub id or .gguf file), else the adapter's
    ``base_model_name_or_path``, which must still exist.

    A run trained on a GGUF file names the float32 copy in llmft's cache; when that copy was removed and the
    GGUF is still there, the copy is written again (models/gguf_copy.py): the one case that loads weights.
    """
    name = override or adapter.get("base_model_name_or_path")
    if not name:
        raise ExportError(
            f"the adapter in {model_dir} does not name its base model (no base_model_name_or_path)",
            fix="pass the base model with --base PATH_OR_HUB_ID",
            where=WHERE,
        )
    name = str(name)
    if override is not None and _is_gguf_file(override):
        return _gguf_base(Path(override).expanduser())
    if looks_like_path(name) and not Path(name).expanduser().is_dir():
        gguf = _gguf_record(run_dir) if override is None else None
        if gguf is not None and _restore_gguf_copy(name, gguf):
            return name
        raise _missing_base(name, model_dir, given=override is not None, gguf=gguf)
    return name


def _is_gguf_file(name: str) -> bool:
    path = Path(name).expanduser()
    return path.suffix.lower() == GGUF_SUFFIX and path.is_file()


def _gguf_base(path: Path) -> str:
    """``--base x.gguf``: its float32 copy, the folder peft and transformers load."""
    from llmft.models.gguf_copy import copy_of

    return str(copy_of(path, key="--base"))


def _gguf_record(run_dir: Path | None) -> dict[str, object] | None:
    """run.json's ``base_gguf``: the GGUF file a run's base copy was made from, if it was."""
    record = _read_json(RunDir(run_dir).record_file) if run_dir else None
    found = record.get("base_gguf") if record else None
    return found if isinstance(found, dict) else None


def _restore_gguf_copy(name: str, gguf: dict[str, object]) -> bool:
    """Rebuild the base when it is the removed copy of the GGUF file run.json records."""
    from llmft.models.gguf_copy import restore_copy

    return restore_copy(name, gguf)


def _missing_base(
    name: str, model_dir: Path, *, given: bool, gguf: dict[str, object] | None = None
) -> ExportError:
    """A base folder that is not there: blame --base when the user passed it, else the adapter's record
    (for a run on a GGUF file, whose copy could not be rebuilt: the GGUF moved or changed)."""
    if given:
        what = "is a file, not a model folder" if Path(name).expanduser().exists() else "does not exist"
        return ExportError(
            f"base model `{name}` {what}",
            fix="pass the base model's folder (the one with config.json) or its Hub id (org/name)",
            where="--base",
        )
    if gguf is not None:
        return ExportError(
            f"the adapter's base model `{name}` is not there any more: it was llmft's float32 copy of GGUF "
            f"file `{gguf.get('file')}`, which has since moved or changed, so the copy cannot be made again",
            fix="put that GGUF file back unchanged, or pass the base model's folder with --base PATH",
            where=f"{model_dir / 'adapter_config.json'}: base_model_name_or_path",
        )
    return ExportError(
        f"the adapter's base model `{name}` is not there any more",
        fix="pass the base model's current location with --base PATH_OR_HUB_ID",
        where=f"{model_dir / 'adapter_config.json'}: base_model_name_or_path",
    )


def _task(model_dir: Path, run_dir: Path | None, adapter: dict[str, object] | None) -> str:
    """The task the model was trained for: run.json's record, else peft's task type or the architecture."""
    record = _read_json(RunDir(run_dir).record_file) if run_dir else None
    if record and isinstance(record.get("task"), str):
        return str(record["task"])
    if adapter is not None and str(adapter.get("task_type")) in _PEFT_TASKS:
        return _PEFT_TASKS[str(adapter["task_type"])]
    config = _read_json(model_dir / "config.json") or {}
    for arch in config.get("architectures") or []:  # type: ignore[union-attr]
        for ending, task in _ARCH_TASKS.items():
            if str(arch).endswith(ending):
                return task
    return "causal_lm"


def _adapter_type(run_dir: Path | None) -> str | None:
    """``model.adapter.type`` in the run's resolved config.yaml, if there is one."""
    import yaml

    if run_dir is None:
        return None
    try:
        return str(RunDir(run_dir).config()["model"]["adapter"]["type"])  # type: ignore[index]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _label_names(run_dir: Path | None) -> list[str] | None:
    """Label names in id order from the run's labels.json (classification runs write it)."""
    return label_names(_read_json(RunDir(run_dir).labels_file) if run_dir else None)


__all__ = ["ModelSource", "resolve_source"]
