"""config/ sits at the bottom of the package: it may import llmft.errors and itself, nothing above it.

Read from the source with ast (imports inside functions count too), so a late import cannot hide.
"""

from __future__ import annotations

import ast
from pathlib import Path

import llmft

CONFIG_DIR = Path(llmft.__file__).parent / "config"
ALLOWED = ("llmft.config", "llmft.errors")


def llmft_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``llmft.*`` import in a file, absolute or relative."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "llmft"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against llmft.config
                found.append((node.lineno, "llmft.config" + (f".{node.module}" if node.module else "")))
            elif node.module and node.module.split(".")[0] == "llmft":
                found += [(node.lineno, node.module)]
    return found


def test_config_imports_nothing_above_it() -> None:
    modules = sorted(CONFIG_DIR.rglob("*.py"))
    assert len(modules) >= 10
    upward = [
        f"{path.name}:{line} imports {module}"
        for path in modules
        for line, module in llmft_imports(path)
        if not module.startswith(ALLOWED)
    ]
    assert upward == []


def test_the_check_sees_a_function_level_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from llmft.hpo.plan import make_plan\n    import llmft.data.sources\n")
    assert llmft_imports(sample) == [(2, "llmft.hpo.plan"), (3, "llmft.data.sources")]
