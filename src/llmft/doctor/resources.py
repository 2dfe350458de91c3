"""RAM and disk checks: memory available now (under any container limit) and free space where runs write.

``existing_parent`` and ``writable`` live here with the disk check: the HF cache check and the config's
output-dir check (``config_fit.py``) ask the same of paths that may not exist yet.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from llmft.doctor.memory import GIB, MIB, format_bytes
from llmft.doctor.result import Check, fail, ok, warn


@dataclass(frozen=True)
class MemInfo:
    total: int
    available: int
    limit: int | None = None  # what is left under a cgroup (container) memory limit, when there is one

    @property
    def usable(self) -> int:
        return min(self.available, self.limit) if self.limit is not None else self.available


def parse_meminfo(text: str) -> MemInfo | None:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    if "MemTotal" not in values:
        return None
    available = values.get("MemAvailable", values.get("MemFree", 0) + values.get("Cached", 0))
    return MemInfo(values["MemTotal"], available)


def cgroup_headroom(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Memory left under a cgroup limit (v2 ``memory.max``, or v1), None when there is no limit."""
    pairs = (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    )
    for limit_file, usage_file in pairs:
        try:
            limit, usage = (root / limit_file).read_text().strip(), (root / usage_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit() and usage.isdigit() and int(limit) < 1 << 60:  # v1 writes "no limit" as ~2^63
            return max(0, int(limit) - int(usage))
    return None


def read_memory() -> MemInfo | None:
    """RAM from /proc/meminfo (Linux), else psutil when installed; with any cgroup limit applied."""
    try:
        info = parse_meminfo(Path("/proc/meminfo").read_text())
    except OSError:
        info = None
    if info is None:
        try:
            import psutil
        except ImportError:
            return None
        memory = psutil.virtual_memory()
        info = MemInfo(int(memory.total), int(memory.available))
    return MemInfo(info.total, info.available, cgroup_headroom())


def check_ram(info: MemInfo | None) -> Check:
    if info is None:
        return warn("RAM", "unknown: no /proc/meminfo and psutil is not installed", "pip install psutil")
    detail = f"{format_bytes(info.total)} total, {format_bytes(info.available)} available"
    if info.limit is not None:
        detail += f", {format_bytes(info.limit)} left under the container's memory limit"
    if info.usable < 2 * GIB:
        return warn(
            "RAM", f"{detail}: little room for training", "close other programs, or train something smaller"
        )
    return ok("RAM", detail)


def existing_parent(path: Path) -> Path:
    """The path itself or its nearest existing ancestor (where a later mkdir would write)."""
    path = path.expanduser().absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def writable(path: Path) -> bool:
    """Whether ``path`` (or, when it does not exist yet, the ancestor it would be made in) is writable."""
    where = existing_parent(path)
    return where.is_dir() and os.access(where, os.W_OK | os.X_OK)


def check_disk(label: str, path: Path, *, warn_below: int = 5 * GIB, fail_below: int = 500 * MIB) -> Check:
    name, where = f"disk: {label}", existing_parent(path)
    try:
        free = shutil.disk_usage(where).free
    except OSError as err:
        return warn(name, f"cannot read the free space at {path}: {err}", None)
    detail, fix = f"{format_bytes(free)} free at {path}", f"free space on the disk holding {where}"
    if free < fail_below:
        return fail(name, f"{detail}: too little to save a model", fix)
    if free < warn_below:
        return warn(name, f"{detail}: checkpoints and downloads may not fit", fix)
    return ok(name, detail)
