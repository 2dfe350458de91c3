"""Sections, not the whole config, below the pipeline: no module of the packages that build a run's parts
names ``RunConfig``. Their builders take the sections they read (``TrainingConfig``, ``DataConfig``, ...,
or a small bundle such as train/sections.py's); pipeline.py, the commands, the search and the checks that
work on a whole config hand the sections down.

Read from the source (a name in code, a quoted annotation, an import inside a function, a docstring), so
neither a late import nor a string annotation can hide it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import llmft

ROOT = Path(llmft.__file__).parent
BELOW_THE_PIPELINE = ("train", "data", "models", "adapters", "evaluate", "generate", "tracking", "export")
WHOLE = "RunConfig"
WHOLE_MODULE = "llmft.config.schema.run"  # where RunConfig is defined: importing from it is naming it


def names_the_whole_config(path: Path) -> list[str]:
    """``line: text`` of each place ``path`` names RunConfig or imports the module defining it."""
    source = path.read_text(encoding="utf-8")
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(source.splitlines(), start=1)
        if re.search(rf"\b{WHOLE}\b", line)
    ]
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        found += [f"{node.lineno}: imports {m}" for m in modules if m.startswith(WHOLE_MODULE)]
    return found


def test_no_module_below_the_pipeline_names_the_whole_config() -> None:
    modules = sorted(p for package in BELOW_THE_PIPELINE for p in (ROOT / package).rglob("*.py"))
    assert len(modules) >= 50
    named = [
        f"{path.relative_to(ROOT)}:{place}" for path in modules for place in names_the_whole_config(path)
    ]
    assert named == []


def test_the_packages_it_reads_exist() -> None:
    assert all((ROOT / package / "__init__.py").is_file() for package in BELOW_THE_PIPELINE)


def test_the_check_sees_a_late_import_and_a_quoted_annotation(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f(config: 'RunConfig') -> None:\n"
        "    from llmft.config.schema.run import Section\n"
        "    from llmft.config.schema import TrainingConfig\n"
    )
    assert names_the_whole_config(sample) == [
        "1: def f(config: 'RunConfig') -> None:",
        "2: imports llmft.config.schema.run",
    ]
