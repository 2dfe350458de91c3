"""Atomic file writes: a crash or a full disk mid-write never leaves half a file where a whole one was.

The text goes to a temporary sibling (named with the process id, so several processes of one shared study
never write the same temporary file), then ``os.replace`` puts it in place in one step. On failure the
temporary file is removed and the original error raised: callers turn it into their own message.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` (str is written as UTF-8) in one step.

    ``fsync``: flush the bytes to the disk before the rename, for files a power cut must not lose.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with tmp.open("wb") as handle:
            handle.write(payload)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
