"""``llmft export --format gguf``: one GGUF file with the weights, tokenizer, chat template and sizes.

Written with the ``gguf`` package's own writer (llama.cpp's Python library), not by calling a llama.cpp
checkout. An adapter is merged first, in float32; then each weight gets llama.cpp's name and layout and
the storage type llama.cpp's rule gives it in the chosen mix (``gguf_mix``; encoded by ``gguf_tensors``),
the tokenizer becomes metadata (``gguf_tokenizer``), and the architecture's hyperparameters are added
(``gguf_arch``). The file is written beside itself and renamed
into place, so an interrupted export never leaves a half file under the final name.

``gguf`` is an optional dependency (``pip install 'llmft[export]'``); it is imported inside the functions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem, ExportError
from llmft.export.gguf_arch import arch_spec, notes_for, write_hparams
from llmft.export.gguf_mix import MIXES, QUANTS, STORAGE, fallback, planned_type
from llmft.export.gguf_tensors import encode, file_type, named_tensors
from llmft.export.gguf_tokenizer import tokenizer_meta, write_tokenizer
from llmft.export.load import check_mergeable, load_merged, load_tokenizer, read_config
from llmft.export.source import ModelSource

if TYPE_CHECKING:  # pragma: no cover
    from gguf import GGUFWriter
    from transformers import PreTrainedModel

    from llmft.export.gguf_arch import ArchSpec
    from llmft.export.gguf_tokenizer import TokenizerMeta

FORMATS: tuple[str, ...] = ("gguf",)


@dataclass
class GgufResult:
    """What was written: the file, its architecture and how many tensors of each storage type."""

    path: Path
    arch: str
    quant: str
    tensor_types: dict[str, int]
    notes: list[str] = field(default_factory=list)


def default_path(source: ModelSource, quant: str) -> Path:
    """``RUN/model-<quant>.gguf`` (next to the model folder when RUN is a model folder itself)."""
    home = source.run_dir or source.model_dir
    return home / f"model-{quant}.gguf"


def export_gguf(source: ModelSource, out: str | Path | None = None, *, quant: str = "f16") -> GgufResult:
    """Write ``source`` (merged if it is an adapter) as a GGUF file stored mostly as ``quant``."""
    if quant not in QUANTS:
        raise ExportError(
            f"unknown --quant `{quant}`", fix=f"use one of: {', '.join(QUANTS)}", where="--quant"
        )
    gguf = _import_gguf()  # before the weights load: a missing package is known at once
    path = Path(out) if out is not None else default_path(source, quant)
    check_mergeable(source)
    spec = arch_spec(read_config(source), source.task)  # before any weights are read
    model = load_merged(source, dtype="float32")
    tokenizer = load_tokenizer(source)
    meta = tokenizer_meta(tokenizer, model.get_input_embeddings().weight.shape[0], _stop_ids(model))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), spec.gguf_arch)
    writer.add_name(_model_name(source))
    counts, fallbacks = _fill(writer, model, spec, meta, quant)
    try:
        _write(writer)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return GgufResult(path, spec.gguf_arch, quant, counts, _notes(meta, model, fallbacks))


def _fill(
    writer: GGUFWriter, model: PreTrainedModel, spec: ArchSpec, meta: TokenizerMeta, quant: str
) -> tuple[dict[str, int], list[str]]:
    """Metadata, then every tensor; returns tensor counts per storage type and the fallbacks' notes."""
    from gguf import GGML_QUANT_VERSION

    write_hparams(writer, model.config, spec)
    writer.add_file_type(file_type(quant))
    if STORAGE[MIXES[quant].default].quantized:
        writer.add_quantization_version(GGML_QUANT_VERSION)
    write_tokenizer(writer, meta)
    config = model.config
    layers = config.num_hidden_layers if hasattr(config, "num_hidden_layers") else config.n_layer
    tensors = list(named_tensors(model, spec))
    tied = all(name != "output.weight" for name, _ in tensors)
    counts: dict[str, int] = {}
    fallbacks: dict[tuple[str, str], list[str]] = {}
    for name, array in tensors:
        wanted = planned_type(name, array.shape, quant, layers, tied)
        kind = fallback(wanted, array.shape[-1])
        counts[kind] = counts.get(kind, 0) + 1
        if kind != wanted:
            fallbacks.setdefault((wanted, kind), []).append(name)
        tensor = encode(name, array, kind)
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.raw_type)
    return counts, [_fallback_note(wanted, kind, names) for (wanted, kind), names in fallbacks.items()]


def _fallback_note(wanted: str, kind: str, names: list[str]) -> str:
    return (
        f"{len(names)} tensors have rows that are not a multiple of {STORAGE[wanted].block} long and are "
        f"stored as {kind} instead of {wanted} (as llama.cpp does): {', '.join(names[:4])}"
    )


def _notes(meta: TokenizerMeta, model: PreTrainedModel, fallbacks: list[str]) -> list[str]:
    return meta.notes + notes_for(model.config) + fallbacks


def _import_gguf():  # noqa: ANN202 - the module
    try:
        import gguf
    except ImportError:
        raise EnvironmentProblem(
            "GGUF export needs the `gguf` package, which is not installed",
            fix="pip install 'llmft[export]' (or: pip install gguf)",
        ) from None
    return gguf


def _write(writer: GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()


def _stop_ids(model: PreTrainedModel) -> list[int]:
    """The generation config's end ids (the run's, with the chat's end-of-turn token, when it has one)."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [int(i) for i in (eos if isinstance(eos, list) else [eos])]


def _model_name(source: ModelSource) -> str:
    """The run's folder name. transformers' reader takes a llama GGUF named exactly "mistral" for a
    Mistral one and then fails to map its tensors, so that one name gets a suffix."""
    name = (source.run_dir or source.model_dir).resolve().name
    return f"{name}-llmft" if name == "mistral" else name


__all__ = ["FORMATS", "GgufResult", "default_path", "export_gguf"]
