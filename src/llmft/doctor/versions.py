"""Version arithmetic for the package checks: installed versions, and whether one meets a specifier.

Versions come from ``importlib.metadata``: no package is imported to learn its version (importing torch
alone takes seconds). ``satisfies`` uses ``packaging`` when it is installed, else a release-number
fallback, so a broken environment can still be diagnosed.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping

Versions = Mapping[str, str | None]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions(
    names: list[str] | tuple[str, ...], version_of: Callable[[str], str] = importlib.metadata.version
) -> dict[str, str | None]:
    """Installed version of each distribution (None when missing), read from metadata, not imports."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[canonical(name)] = version_of(name)
        except importlib.metadata.PackageNotFoundError:
            found[canonical(name)] = None
    return found


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def fallback_satisfies(version: str, spec: str) -> bool | None:
    """Release-number comparison (>=, <=, >, <, ==, !=) for when `packaging` is not installed."""
    have = _release(version)
    for clause in filter(None, (part.strip() for part in spec.split(","))):
        match = re.match(r"(>=|<=|==|!=|>|<)\s*([\w.]+)$", clause)
        if not match or not have:
            return None
        want = _release(match.group(2))
        width = max(len(have), len(want))
        if not _OPS[match.group(1)](have + (0,) * (width - len(have)), want + (0,) * (width - len(want))):
            return False
    return True


def satisfies(version: str, spec: str) -> bool | None:
    """Whether ``version`` meets ``spec`` (e.g. ">=2.4,<3"); None when either cannot be parsed.

    Pre-releases and local builds count: a torch nightly or ``2.13.0+cpu`` satisfies ``>=2.4``.
    """
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version
    except ImportError:  # pragma: no cover - packaging comes with transformers
        return fallback_satisfies(version, spec)
    try:
        return SpecifierSet(spec).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None
