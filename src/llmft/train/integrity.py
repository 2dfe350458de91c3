"""Whether a checkpoint still holds what was written: a manifest of each file's size and sha256.

A checkpoint is published whole (train/checkpoint.py), but it can be damaged afterwards: a copy cut short,
a file emptied by a full disk on another machine, a bad sector, a file deleted by hand. Loading it would
then fail deep inside safetensors or torch, as if llmft had a bug. So the writer records every file of the
folder in ``manifest.json`` just before marking it complete (whichever process wrote the file: it is a
listing of the folder), and ``--resume`` checks the checkpoint it picks against it (train/resume.py).

Hashing costs one read of the files, from the page cache, when a checkpoint is written, and one read when
a run resumes; never during the training steps. Checkpoints written before manifests existed have none
and are not checked.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from llmft import run_dir
from llmft.run_dir import COMPLETE, MANIFEST

CHUNK_BYTES = 1 << 20  # hashed a chunk at a time: a checkpoint's files can be larger than memory
# What a checkpoint with a manifest writes into COMPLETE: a manifest that went missing is then damage, not
# the sign of an older checkpoint (whose COMPLETE says only "ok").
COMPLETE_TEXT = f"ok\n{MANIFEST}\n"


@dataclass(frozen=True)
class Damage:
    """One file of a checkpoint that is not as written, and how (`missing`, `size differs, ...`, ...)."""

    name: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}: {self.problem}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(folder: Path) -> None:
    """Record every file now in ``folder`` (a checkpoint about to be marked complete) with its size and
    sha256. Called once all processes' files are in, so it covers them all."""
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": sha256_of(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name not in (MANIFEST, COMPLETE)
    }
    record = {"algorithm": "sha256", "files": files}
    (folder / MANIFEST).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def damage(folder: Path) -> list[Damage]:
    """What is wrong with the files of the checkpoint ``folder``: [] when each is as written, or when the
    checkpoint predates manifests. Sizes are compared first (cheap); contents only of files whose size
    matches (a zeroed file keeps its size)."""
    expected = _expected(folder)
    if isinstance(expected, Damage):
        return [expected]
    found: list[Damage] = []
    for name, (size, sha256) in expected.items():
        path = folder / name
        if not path.is_file():
            found.append(Damage(name, "missing"))
        elif (actual := path.stat().st_size) != size:
            found.append(Damage(name, f"size differs, {actual} bytes instead of {size}"))
        elif sha256_of(path) != sha256:
            found.append(Damage(name, "checksum differs, same size but other content"))
    return found


def _expected(folder: Path) -> dict[str, tuple[int, str]] | Damage:
    """name → (bytes, sha256) from the manifest ({} for an older checkpoint), or what is wrong with it."""
    if not (folder / MANIFEST).is_file():
        return Damage(MANIFEST, "missing") if _has_manifest(folder) else {}
    try:
        files = (run_dir.read_manifest(folder) or {})["files"]
        expected = {
            str(name): (int(entry["bytes"]), str(entry["sha256"]))  # type: ignore[index]
            for name, entry in files.items()  # type: ignore[attr-defined]
        }
    except (ValueError, KeyError, TypeError, AttributeError):  # a garbled file, or JSON of another shape
        return Damage(MANIFEST, "unreadable, not the listing that was written")
    if any(Path(name).name != name for name in expected):  # a listing names files of this folder only
        return Damage(MANIFEST, "unreadable, names files outside the checkpoint")
    return expected


def _has_manifest(folder: Path) -> bool:
    """Whether the checkpoint was written with a manifest (its COMPLETE marker says so)."""
    try:
        return MANIFEST in (folder / COMPLETE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
