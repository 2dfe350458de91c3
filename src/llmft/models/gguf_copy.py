"""The float32 copy of a GGUF base that a run loads, written once into llmft's cache.

Dequantizing a GGUF file unpacks every weight through numpy (minutes for a large model), and a model
loaded that way can only be found again through the GGUF, which peft's ``PeftModel.from_pretrained``,
``llmft merge``, ``export``, ``generate`` and ``serve`` do not read. So the first load writes the
dequantized model and its tokenizer (chat template included) with ``save_pretrained`` into
``<cache>/gguf/<file stem>-<key>``, next to the tokenization cache; later loads read that plain folder, and
a run trained on it names the folder as its adapter's base (run.json also records the GGUF, for people).

The key is the file's resolved path, size and modification time: cheap (no byte of a multi-GB file is
hashed), and a file replaced in place gets a new one. A copy is written beside its final name and renamed
into place with a marker file last, so an interrupted write is never taken for a finished copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmft.doctor.memory import format_bytes
from llmft.errors import ModelError
from llmft.models.gguf import GgufInfo, locate, model_gguf_ref, read_config, read_info, unsupported

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import ModelConfig

MARKER = "llmft_gguf.json"  # written last: a folder without it is an unfinished copy
FORMAT_VERSION = 1  # part of the key: a change in how copies are written gives new folders
WHERE = "model.name_or_path"


@dataclass(frozen=True)
class BaseCopy:
    """The plain model folder a GGUF base was dequantized into, and whether this load wrote it."""

    info: GgufInfo
    folder: Path
    size: int  # bytes on disk
    reused: bool

    def describe(self) -> str:
        """The one line a run says about its base, e.g. ``model: tiny.Q8_0.gguf (llama, GGUF Q8_0
        dequantized to float32, 236K parameters); float32 copy written to ... (1.1 MiB)``."""
        info = self.info
        how = "read as float32" if not info.quantized else "dequantized to float32"
        done = "reused from" if self.reused else "written to"
        return (
            f"model: {info.path.name} ({info.architecture}, GGUF {info.storage} {how}, "
            f"{count_text(info.parameters)} parameters); float32 copy {done} {self.folder} "
            f"({format_bytes(self.size)})"
        )

    def record(self) -> dict[str, object]:
        """What run.json keeps: the GGUF the run's base came from, and the copy its adapter names."""
        return {
            "file": str(self.info.path),
            "architecture": self.info.architecture,
            "storage": self.info.storage,
            "parameters": self.info.parameters,
            "copy": str(self.folder),
        }


def prepare_base(cfg: ModelConfig, token: str | None = None) -> tuple[ModelConfig, BaseCopy] | None:
    """For a GGUF base: its copy (written now if needed) and the model section that loads it instead.
    None when the base is a folder or Hub id, which load as they are."""
    ref = model_gguf_ref(cfg)
    if ref is None:
        return None
    path = locate(ref, cfg.revision, token)
    copy = materialise(read_info(path, ref.key))
    section = cfg.model_copy(update={"name_or_path": str(copy.folder), "gguf_file": None, "revision": None})
    return section, copy


def copy_of(path: Path, key: str = WHERE) -> Path:
    """The float32 copy's folder for a GGUF file named outside a config (`llmft generate x.gguf`,
    `--base x.gguf`, the bench): written once, then reused, as a run on that file would."""
    return materialise(read_info(path, key)).folder


def plan_note(cfg: ModelConfig, token: str | None = None) -> str | None:
    """What a run will do with a GGUF base, for `llmft validate --deep` (which writes nothing)."""
    ref = model_gguf_ref(cfg)
    if ref is None:
        return None
    info = read_info(locate(ref, cfg.revision, token), ref.key)
    folder = copy_folder(info)
    if (folder / MARKER).is_file():
        then = f"its float32 copy in {folder} ({format_bytes(folder_size(folder))}) is there already"
    else:
        then = f"a run writes its float32 copy once, to {folder} (about {format_bytes(4 * info.parameters)})"
    return (
        f"GGUF base {info.path.name}: {info.architecture}, {info.storage}, "
        f"{count_text(info.parameters)} parameters; {then}"
    )


def copies_dir() -> Path:
    """Where copies live: beside the tokenization cache (``$LLMFT_CACHE`` or ``$HF_HOME/llmft``)."""
    from llmft.data.cache import cache_dir

    return cache_dir().parent / "gguf"


def copy_folder(info: GgufInfo) -> Path:
    """The folder the copy of ``info.path`` has (or will have): named by the file and its key."""
    stat = info.path.stat()
    text = json.dumps([FORMAT_VERSION, str(info.path.resolve()), stat.st_size, stat.st_mtime_ns])
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    return copies_dir() / f"{info.path.stem}-{key}"


def materialise(info: GgufInfo, folder: Path | None = None) -> BaseCopy:
    """The copy of ``info.path`` (in ``folder``, default ``copy_folder(info)``): reused when a finished one is
    there, else dequantized and written."""
    folder = folder or copy_folder(info)
    if (folder / MARKER).is_file():
        return BaseCopy(info, folder, folder_size(folder), reused=True)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_copy(info, partial)
        if folder.exists():  # an unfinished copy from a crash (a finished one returned above)
            shutil.rmtree(folder)
        os.replace(partial, folder)
    except OSError as exc:
        raise ModelError(
            f"cannot write the float32 copy of GGUF file `{info.path}` to {folder}: {exc}",
            fix="free disk space there (the copy takes about 4 bytes per parameter), or set LLMFT_CACHE "
            "to a folder on a larger disk (copies go next to it, in ../gguf)",
            where=WHERE,
        ) from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return BaseCopy(info, folder, folder_size(folder), reused=False)


def restore_copy(base: str, record: object) -> bool:
    """Write again the copy an adapter names as its base when it is gone (a cleared cache), from the GGUF
    file run.json's ``base_gguf`` records, if that file is still there unchanged (its key, in the folder's
    name, is the same). True when ``base`` is a folder now; False leaves the caller's "missing base" error."""
    if Path(base).is_dir():
        return True
    if not isinstance(record, dict) or record.get("copy") != base:
        return False
    path = Path(str(record.get("file") or ""))
    if not path.is_file():
        return False
    info = read_info(path)
    if copy_folder(info).name != Path(base).name:  # the file changed since the run: its copy would differ
        return False
    materialise(info, Path(base))
    return True


def _write_copy(info: GgufInfo, out: Path) -> None:
    """Dequantize the model to float32 and save it with its tokenizer; the marker goes last."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    config = read_config(info)  # an architecture transformers lacks fails here, before the weights
    folder, name = str(info.path.parent), info.path.name
    try:
        # dequantize=True: a plain float model without the GGUF quantizer attached, which save_pretrained
        # refuses to serialise (transformers would otherwise keep some architectures' weights packed).
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            config=config,
            gguf_file=name,
            dtype=torch.float32,
            quantization_config=GgufConfig(dequantize=True),
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise unsupported(info, exc) from exc
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"format": FORMAT_VERSION, "gguf": str(info.path), "size": info.path.stat().st_size}
    (out / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def count_text(count: int) -> str:
    """134_515_008 → '135M'; 235_712 → '236K'."""
    for limit, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= limit:
            value = count / limit
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return str(count)


__all__ = [
    "MARKER",
    "BaseCopy",
    "copies_dir",
    "copy_folder",
    "count_text",
    "materialise",
    "plan_note",
    "prepare_base",
]
