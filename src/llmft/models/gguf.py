"""A GGUF file as the base model: where it is, what is in it, and whether transformers can unpack it.

llama.cpp's GGUF files hold the weights (often quantized to 4-8 bits), the tokenizer and the chat template
in one file. transformers can read one (``from_pretrained(folder, gguf_file=NAME)``) by dequantizing every
weight, for the architectures and storage types it knows. What it says when it cannot is a bare
``ValueError`` or ``NotImplementedError`` deep in the load, so the header is read here first (it is small,
and no weight is touched): a file that is missing, is not GGUF, or holds a storage type nothing can unpack
fails at once with the file's name and what to do. ``gguf_copy`` then writes the dequantized copy a run
trains on.

``gguf`` (llama.cpp's Python reader) and transformers are imported inside the functions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.config.paths import looks_like_path
from llmft.config.schema.model import GGUF_SUFFIX
from llmft.errors import EnvironmentProblem, ModelError
from llmft.models.hub import WHERE, causes, hub_error

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PretrainedConfig

    from llmft.config.schema import ModelConfig

MAGIC = b"GGUF"  # the first four bytes of every GGUF file
_VALUE_TYPES = ("F32", "F16", "BF16")  # stored as plain floats: read, not dequantized


@dataclass(frozen=True)
class GgufRef:
    """A GGUF base as the config names it: ``file`` inside ``where`` (a local folder or a Hub repo)."""

    where: str
    file: str
    key: str  # the config key the user wrote it under, for errors
    hub: bool = False  # ``where`` is a Hub repo id: the file is fetched (or found in the Hub cache)


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file's header says: enough to describe the model before any weight is read."""

    path: Path
    architecture: str
    storage: str  # the file's type as llama.cpp names it (Q4_K_M, Q8_0, F16, ...)
    parameters: int
    tensor_types: dict[str, int]  # storage type -> number of tensors

    @property
    def quantized(self) -> bool:
        return any(kind not in _VALUE_TYPES for kind in self.tensor_types)


def gguf_ref(name_or_path: str, gguf_file: str | None, key: str = WHERE) -> GgufRef | None:
    """The GGUF file a model (or tokenizer) setting names, None when it names a folder or Hub id."""
    if gguf_file:
        return GgufRef(name_or_path, gguf_file, "model.gguf_file", hub=not looks_like_path(name_or_path))
    if name_or_path.lower().endswith(GGUF_SUFFIX):
        path = Path(name_or_path).expanduser()
        return GgufRef(str(path.parent), path.name, key)
    return None


def model_gguf_ref(cfg: ModelConfig) -> GgufRef | None:
    """The GGUF file the model section names as its base, if it names one."""
    return gguf_ref(cfg.name_or_path, cfg.gguf_file)


def locate(ref: GgufRef, revision: str | None = None, token: str | None = None) -> Path:
    """The GGUF file on disk, fetched from the Hub when ``where`` is a repo, and checked to be GGUF."""
    if ref.hub:
        path = _download(ref, revision, token)
    else:
        path = Path(ref.where).expanduser() / ref.file
        if not path.is_file():
            raise _missing(ref, path)
    check_magic(path, ref.key)
    return path


def _missing(ref: GgufRef, path: Path) -> ModelError:
    """A GGUF file that is not there: name what is there instead, when it is a folder."""
    if not path.parent.is_dir():
        return ModelError(
            f"GGUF file `{path}` does not exist (no folder {path.parent})",
            fix="check the path (relative paths are relative to the config file)",
            where=ref.key,
        )
    others = sorted(p.name for p in path.parent.glob("*") if p.name.lower().endswith(GGUF_SUFFIX))
    there = f"GGUF files there: {', '.join(others[:8])}" if others else "there is no .gguf file there"
    return ModelError(
        f"GGUF file `{path}` does not exist ({there})",
        fix="check the file name (relative paths are relative to the config file)",
        where=ref.key,
    )


def _download(ref: GgufRef, revision: str | None, token: str | None) -> Path:
    """The file from the Hub repo ``ref.where`` (cached by huggingface_hub; offline: its cache only)."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, OfflineModeIsEnabled

    try:
        return Path(hf_hub_download(ref.where, ref.file, revision=revision, token=token))
    except Exception as exc:  # noqa: BLE001 - each hub failure is explained below or by hub_error
        kinds = tuple(type(c) for c in causes(exc))
        if any(issubclass(k, (LocalEntryNotFoundError, OfflineModeIsEnabled)) for k in kinds) or (
            constants.is_offline_mode()
        ):
            raise ModelError(
                f"GGUF file `{ref.file}` of Hub repo `{ref.where}` is not in the Hugging Face cache, and the "
                "Hub cannot be reached (offline)",
                fix=f"download it while online (huggingface-cli download {ref.where} {ref.file}), or set "
                "model.name_or_path to a local .gguf file",
                where=ref.key,
            ) from exc
        if any(issubclass(k, EntryNotFoundError) for k in kinds):
            raise ModelError(
                f"Hub repo `{ref.where}` has no file `{ref.file}`",
                fix="check model.gguf_file against the repo's file list",
                where=ref.key,
            ) from exc
        raise hub_error(ref.where, exc) from exc


def check_magic(path: Path, key: str = WHERE) -> None:
    """Refuse a file that does not start with GGUF's magic bytes (a partial download, an HTML page)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError as exc:
        raise ModelError(f"cannot read GGUF file `{path}`: {exc}", where=key) from exc
    if head != MAGIC:
        raise ModelError(
            f"`{path}` is not a GGUF file (it starts with {head!r}, not {MAGIC!r})",
            fix="download the file again (an interrupted download or a saved web page looks like this), "
            "or point model.name_or_path to a model folder",
            where=key,
        )


def read_info(path: Path, key: str = WHERE) -> GgufInfo:
    """The header's architecture, storage type and parameter count; refuses what cannot be dequantized."""
    gguf = import_gguf()
    try:
        reader = gguf.GGUFReader(str(path))
    except (ValueError, OSError, IndexError) as exc:
        raise ModelError(
            f"cannot read the header of GGUF file `{path}`: {exc}",
            fix="download the file again; it may be cut short or from a newer llama.cpp than `gguf` reads",
            where=key,
        ) from exc
    kinds = Counter(gguf.GGMLQuantizationType(t.tensor_type).name for t in reader.tensors)
    info = GgufInfo(
        path=path,
        architecture=str(_field(reader, "general.architecture") or "unknown"),
        storage=_storage(gguf, reader),
        parameters=sum(int(t.n_elements) for t in reader.tensors),
        tensor_types=dict(kinds),
    )
    _check_dequantizable(gguf, info, key)
    return info


def _field(reader: object, name: str) -> object:
    field = reader.fields.get(name)  # type: ignore[attr-defined]
    return field.contents() if field is not None else None


def _storage(gguf: object, reader: object) -> str:
    """llama.cpp's file type (``general.file_type``: Q4_K_M, ...), else the type most weights are in."""
    file_type = _field(reader, "general.file_type")
    try:
        name = gguf.LlamaFileType(int(file_type)).name  # type: ignore[attr-defined, arg-type]
        return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    except (TypeError, ValueError):
        sizes: Counter[str] = Counter()
        for tensor in reader.tensors:  # type: ignore[attr-defined]
            sizes[gguf.GGMLQuantizationType(tensor.tensor_type).name] += int(tensor.n_elements)  # type: ignore[attr-defined]
        return sizes.most_common(1)[0][0] if sizes else "empty"


def _check_dequantizable(gguf: object, info: GgufInfo, key: str) -> None:
    """Every storage type in the file must be one the ``gguf`` package can turn back into floats."""
    unknown = [kind for kind in info.tensor_types if not _can_dequantize(gguf, kind)]
    if unknown:
        raise ModelError(
            f"GGUF file `{info.path}` stores weights as {', '.join(sorted(unknown))}, which the installed "
            f"`gguf` package ({_version('gguf')}) cannot dequantize",
            fix="upgrade gguf (pip install -U gguf), or use a file of this model in another quantization "
            "(Q8_0, Q4_K_M and F16 are read)",
            where=key,
        )


def _can_dequantize(gguf: object, kind: str) -> bool:
    """Dequantize one zero block: the package's own test of whether it knows the type."""
    import numpy as np

    qtype = gguf.GGMLQuantizationType[kind]  # type: ignore[attr-defined]
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]  # type: ignore[attr-defined]
    try:
        gguf.quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)  # type: ignore[attr-defined]
    except NotImplementedError:
        return False
    return True


def read_config(info: GgufInfo, key: str = WHERE) -> PretrainedConfig:
    """The transformers config built from the header; an architecture transformers lacks is refused."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(info.path.parent), gguf_file=info.path.name)
    except (ValueError, KeyError) as exc:
        raise unsupported(info, exc, key) from exc


def unsupported(info: GgufInfo, exc: Exception, key: str = WHERE) -> ModelError:
    """transformers cannot turn this file into one of its models: name its architecture, list those it can."""
    return ModelError(
        f"GGUF file `{info.path}` holds a `{info.architecture}` model ({info.storage}), which transformers "
        f"{_version('transformers')} cannot load from GGUF: {exc}",
        fix="use the model's original (safetensors) folder or Hub id instead; transformers reads GGUF files "
        f"of these architectures: {', '.join(supported_architectures())}",
        where=key,
    )


def supported_architectures() -> list[str]:
    """The GGUF architectures this transformers can load (its legacy table and its newer one)."""
    from transformers.integrations.gguf import GGUF_ARCHS
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted((set(GGUF_SUPPORTED_ARCHITECTURES) | set(GGUF_ARCHS)) - {"general", "tokenizer"})


def import_gguf():  # noqa: ANN201 - the module
    """The ``gguf`` package, which transformers also needs to read GGUF files."""
    try:
        import gguf
    except ImportError:
        raise EnvironmentProblem(
            "a GGUF base model needs the `gguf` package, which is not installed",
            fix="pip install 'llmft[export]' (or: pip install gguf)",
            where=WHERE,
        ) from None
    return gguf


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


__all__ = [
    "MAGIC",
    "GgufInfo",
    "GgufRef",
    "check_magic",
    "gguf_ref",
    "import_gguf",
    "locate",
    "model_gguf_ref",
    "read_config",
    "read_info",
    "supported_architectures",
    "unsupported",
]
