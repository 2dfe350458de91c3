"""User rewards named by reference: ``path/to/file.py:function`` (relative to the config file's folder) or
``package.module:function``, found two ways.

Statically, for ``llmft validate``: a file is parsed with ``ast`` and never run; a module's source is
located through the import system's finders without importing it or its parents (``find_spec`` would run
the parents' ``__init__``), and a name it re-exports (``from .x import f``, also under ``if
TYPE_CHECKING:`` as lazy packages such as ``trl.rewards`` do) is followed to its definition. Only a
module whose name cannot be followed that way (a compiled module, a name made by a call) is imported so
``inspect`` can read the signature. For the run: the file or module is loaded and the attribute taken.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path

from llmft.config.schema.rl import is_reward_file
from llmft.rewards.signature import Params, from_ast

_FOLLOW_DEPTH = 4  # re-exports followed before giving up (a package re-exporting a re-export ...)
_ABSENT = object()
_BINDINGS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Assign, ast.AnnAssign, ast.ImportFrom, ast.Import)


class RefProblem(Exception):
    """A reference that cannot be resolved: what, a fix, and where (``file:line``) when known."""

    def __init__(self, message: str, fix: str | None = None, location: str | None = None) -> None:
        super().__init__(message)
        self.message, self.fix, self.location = message, fix, location


@dataclass(frozen=True)
class Ref:
    """``target:name``; ``target`` a file path (it ends in .py or has a slash) or a dotted module name."""

    target: str
    name: str

    @property
    def is_file(self) -> bool:
        return is_reward_file(self.target)


@dataclass(frozen=True)
class Found:
    """Where a reference's name is bound; ``params`` None when the source alone cannot tell them."""

    params: Params | None
    location: str
    how: str  # "def", "lambda", or how it is bound when not followed ("an assignment", "an import")


def parse_ref(text: str) -> Ref | None:
    """The reference in ``text``; None for a built-in's name (no colon)."""
    if ":" not in text:
        return None
    target, _, name = text.rpartition(":")
    if not target or not name.isidentifier():
        raise RefProblem(
            f"`{text}` is not a reward reference",
            fix="write `path/file.py:function` or `package.module:function`",
        )
    return Ref(target, name)


def file_path(ref: Ref, config_dir: Path) -> Path:
    return (config_dir / Path(ref.target).expanduser()).resolve()


def find_static(ref: Ref, config_dir: Path) -> Found:
    """Where ``ref`` is defined and its parameters, from source only."""
    if ref.is_file:
        path = file_path(ref, config_dir)
        if not path.is_file():
            raise RefProblem(
                f"reward file `{ref.target}` not found (looked at {path})",
                fix="give the path relative to the config file's folder, or an absolute one",
            )
        return _find_in_source(path, ref.name, None, 0)
    spec = module_spec(ref.target)
    if spec is None:
        raise RefProblem(
            f"no module `{ref.target}` can be imported here",
            fix="install the package that provides it (in this environment), "
            "or name a file: path/file.py:function",
        )
    return _find_in_module(spec, ref.name, 0)


def module_spec(name: str) -> ModuleSpec | None:
    """The module's spec from the import system's finders, parents included, without running any of them."""
    spec: ModuleSpec | None = None
    search = None
    parts = name.split(".")
    for i in range(len(parts)):
        full = ".".join(parts[: i + 1])
        loaded = sys.modules.get(full)
        spec = getattr(loaded, "__spec__", None) if loaded is not None else _find_spec(full, search)
        if spec is None:
            return None
        search = spec.submodule_search_locations
        if search is None and i < len(parts) - 1:
            return None  # a module, not a package: it has no submodules
    return spec


def _find_spec(full: str, search: object) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(full, search) if find else None
        if spec is not None:
            return spec
    return None


def _find_in_module(spec: ModuleSpec, name: str, depth: int) -> Found:
    origin = Path(spec.origin) if spec.origin and spec.has_location else None
    if origin is None or origin.suffix != ".py":
        return Found(None, spec.origin or spec.name, "a module without Python source")
    return _find_in_source(origin, name, spec, depth)


def _find_in_source(path: Path, name: str, spec: ModuleSpec | None, depth: int) -> Found:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise RefProblem(
            f"`{path.name}` has a syntax error: {err.msg}",
            fix="fix the file so Python can parse it",
            location=f"{path}:{err.lineno}",
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise RefProblem(f"cannot read `{path}`: {err}") from None
    binding = _last_binding(tree.body, name)
    if binding is None:
        defined = sorted({n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)})
        raise RefProblem(
            f"`{path.name}` defines no `{name}`",
            fix=f"functions there: {', '.join(defined) or 'none'}",
            location=str(path),
        )
    return _describe(binding, name, path, spec, depth)


def _last_binding(body: list[ast.stmt], name: str) -> ast.stmt | None:
    """The module-level statement binding ``name`` last (inside if/try blocks too, not in functions)."""
    found = None
    for node in body:
        if isinstance(node, ast.If | ast.Try | ast.With):
            blocks = [getattr(node, k, []) for k in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(node, "handlers", [])]
            found = next((b for b in (_last_binding(blk, name) for blk in blocks) if b), None) or found
        elif isinstance(node, _BINDINGS) and name in _bound_names(node):
            found = node
    return found


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _describe(node: ast.stmt, name: str, path: Path, spec: ModuleSpec | None, depth: int) -> Found:
    where = f"{path}:{node.lineno}"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return Found(from_ast(node), where, "def")
    value = getattr(node, "value", None)
    if isinstance(value, ast.Lambda):
        return Found(from_ast(value), where, "lambda")
    if isinstance(node, ast.ImportFrom) and depth < _FOLLOW_DEPTH:
        followed = _follow_import(node, name, spec, depth)
        if followed is not None:
            return followed
    how = "an import" if isinstance(node, ast.Import | ast.ImportFrom) else "an assignment"
    return Found(None, where, how)


def _follow_import(node: ast.ImportFrom, name: str, spec: ModuleSpec | None, depth: int) -> Found | None:
    """The definition a ``from module import name`` re-exports, when its module's source can be found."""
    alias = next(a for a in node.names if (a.asname or a.name) == name)
    if node.level:
        package = spec.name if spec and spec.submodule_search_locations else (spec.parent if spec else None)
        if not package:
            return None
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        module = f"{base}.{node.module}" if node.module else base
    else:
        module = node.module or ""
    target = module_spec(module) if module else None
    if target is None:
        return None
    try:
        return _find_in_module(target, alias.name, depth + 1)
    except RefProblem:
        return None


def load(ref: Ref, config_dir: Path) -> Callable[..., object]:
    """The function itself: the file run as a module of its own, or the module imported."""
    module = _load_file(file_path(ref, config_dir)) if ref.is_file else _import(ref.target)
    func = getattr(module, ref.name, _ABSENT)
    if func is _ABSENT:
        raise RefProblem(f"`{ref.target}` has no `{ref.name}`", fix="name a function the module defines")
    if not callable(func):
        raise RefProblem(
            f"`{ref.target}:{ref.name}` is a {type(func).__name__}, not a function",
            fix="name a function (or a callable object) with TRL's reward signature",
        )
    return func  # type: ignore[no-any-return]


def _load_file(path: Path) -> object:
    """The file as a module named after its path, so loading it twice gives the same functions."""
    if not path.is_file():
        raise RefProblem(f"reward file `{path}` not found")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"llmft_reward_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as err:  # noqa: BLE001 - the user's file: whatever it raises is reported with its text
        del sys.modules[name]
        raise RefProblem(
            f"running `{path.name}` raised {type(err).__name__}: {err}", location=str(path)
        ) from err
    return module


def _import(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise RefProblem(
            f"cannot import `{name}`: {err}", fix="install the package that provides it, in this environment"
        ) from None
    except Exception as err:  # noqa: BLE001 - the user's module: whatever it raises is reported with its text
        raise RefProblem(f"importing `{name}` raised {type(err).__name__}: {err}") from err
