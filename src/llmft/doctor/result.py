"""``Check``, one line of the doctor's report, and the ``ok``/``warn``/``fail`` helpers that make one.

Its own module so that every check module (and ``config_fit.py``) builds its lines from this one small
type without importing any of the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the verdict, what was found and how to fix it."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    category: str = ""

    def to_dict(self) -> dict[str, str | None]:
        keys = ("name", "status", "detail", "fix", "category")
        return {key: getattr(self, key) for key in keys}


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str | None) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str | None) -> Check:
    return Check(name, "fail", detail, fix)
