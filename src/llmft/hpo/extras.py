"""Optional packages of the search backends, and the message when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from llmft.errors import EnvironmentProblem


def require(module: str, extra: str, purpose: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise EnvironmentProblem naming what to install (the llmft extra, if any)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        install = f"pip install 'llmft[{extra}]'" if extra else f"pip install {package or module}"
        raise EnvironmentProblem(
            f"{purpose} needs the `{package or module}` package, which is not installed ({err})",
            fix=install,
        ) from None
