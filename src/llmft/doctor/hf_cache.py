"""Hugging Face cache checks: where the caches are, their size, whether they are writable, and the locks
and partial downloads that hung or crashed downloads leave behind.

The paths are computed from an environment mapping by huggingface_hub's rules instead of read from its
constants (which freeze at import time); the walk of the caches is bounded in time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llmft.doctor.memory import format_bytes
from llmft.doctor.resources import existing_parent, writable
from llmft.doctor.result import Check, ok, warn


@dataclass(frozen=True)
class HfPaths:
    home: Path
    hub_cache: Path
    datasets_cache: Path
    token: Path


def hf_paths(env: Mapping[str, str]) -> HfPaths:
    """The cache locations by ``huggingface_hub.constants``' (and ``datasets.config``'s) rules, from ``env``.

    HF_HOME defaults to ``$XDG_CACHE_HOME/huggingface`` (``~/.cache/huggingface``); the hub cache is
    HF_HUB_CACHE, else the legacy HUGGINGFACE_HUB_CACHE, else ``$HF_HOME/hub``; the token file is
    HF_TOKEN_PATH or ``$HF_HOME/token``. Computed here because the constants freeze at import time.
    """

    def expand(value: str) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(value)))

    xdg = env.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache"))
    home = expand(env.get("HF_HOME", os.path.join(xdg, "huggingface")))
    hub = expand(env.get("HF_HUB_CACHE", env.get("HUGGINGFACE_HUB_CACHE", str(home / "hub"))))
    datasets = expand(env.get("HF_DATASETS_CACHE", str(home / "datasets")))
    return HfPaths(home, hub, datasets, expand(env.get("HF_TOKEN_PATH", str(home / "token"))))


@dataclass
class CacheScan:
    """What a time-bounded walk of the caches found; ``complete`` is False when it was cut short.

    ``stale_locks``: lock files older than the threshold that still block: held by a live process
    (a hung download), or on a filesystem without flock, where the file itself is the lock. Other old
    lock files are ``leftover_locks``: huggingface_hub and datasets lock with flock and never delete
    the files, so they pile up harmlessly.
    """

    size: int = 0
    files: int = 0
    complete: bool = True
    stale_locks: list[Path] = field(default_factory=list)
    leftover_locks: int = 0
    incomplete: list[Path] = field(default_factory=list)


def lock_state(path: Path) -> str:
    """Whether a lock file is "held" (a flock on it by another open file), "free", or "unsupported"."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: filelock deletes its files there
        return "free"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return "free"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "free"
    except BlockingIOError:
        return "held"
    except OSError:
        return "unsupported"
    finally:
        os.close(fd)


def scan_cache(
    roots: list[Path], *, budget_s: float = 1.5, stale_after_s: float = 3600, now: float | None = None
) -> CacheScan:
    """Walk ``roots`` (symlinks not followed, so a blob counts once) until done or ``budget_s`` is spent.

    Partial downloads count when not written to for 10 minutes (a running download keeps writing).
    """
    deadline, now = time.monotonic() + budget_s, time.time() if now is None else now
    scan, stack = CacheScan(), [root for root in dict.fromkeys(roots) if root.is_dir()]
    while stack:
        if time.monotonic() > deadline:
            scan.complete = False
            break
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                if not entry.is_file(follow_symlinks=False):
                    continue
                stat = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            scan.size, scan.files, age = scan.size + stat.st_size, scan.files + 1, now - stat.st_mtime
            if entry.name.endswith(".lock") and age > stale_after_s:
                if lock_state(Path(entry.path)) == "free":
                    scan.leftover_locks += 1
                else:
                    scan.stale_locks.append(Path(entry.path))
            elif entry.name.endswith(".incomplete") and age > 600:
                scan.incomplete.append(Path(entry.path))
    return scan


def _sample(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths[:2]) + (f" (+{len(paths) - 2} more)" if len(paths) > 2 else "")


def check_cache(paths: HfPaths, scan: CacheScan) -> list[Check]:
    """Location, size, writability, stale locks and partial downloads of the Hugging Face caches."""
    size = f"{format_bytes(scan.size)} in {scan.files} files" + ("" if scan.complete else " (walk cut short)")
    checks = [
        ok("HF cache", f"HF_HOME {paths.home}; hub cache {paths.hub_cache}; with the datasets cache {size}")
    ]
    where = existing_parent(paths.hub_cache)
    if writable(paths.hub_cache):
        checks.append(ok("HF cache writable", f"{where} is writable"))
    else:
        checks.append(
            warn("HF cache writable", f"cannot write to {where}", "set HF_HOME to a writable directory")
        )
    roots = " ".join(f"'{p}'" for p in dict.fromkeys((paths.hub_cache, paths.datasets_cache)))
    if scan.stale_locks:
        detail = (
            f"{len(scan.stale_locks)} lock(s) older than 1 h still block downloads (held by a hung process, "
            f"or left by a crash on a filesystem without flock): {_sample(scan.stale_locks)}"
        )
        fix = (
            "stop any stuck download (`fuser -v FILE` names it), then: "
            f"find {roots} -name '*.lock' -mmin +60 -delete"
        )
        checks.append(warn("stale locks", detail, fix))
    else:
        leftover = f"; {scan.leftover_locks} old unheld lock files (harmless)" if scan.leftover_locks else ""
        checks.append(ok("stale locks", f"no lock older than 1 h blocks downloads{leftover}"))
    if scan.incomplete:
        detail = f"{len(scan.incomplete)} abandoned partial download(s): {_sample(scan.incomplete)}"
        fix = (
            f"when no download is running: find {roots} -name '*.incomplete' -delete (re-fetched when needed)"
        )
        checks.append(warn("incomplete downloads", detail, fix))
    else:
        checks.append(ok("incomplete downloads", "none"))
    return checks
