"""`llmft serve` at the command line: its help imports neither torch nor FastAPI; a wrong path or a missing
`serve` extra is a short message with exit code 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmft.errors import EnvironmentProblem
from llmft.serve.run import _import_server, model_name_of

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torch", "transformers", "fastapi", "uvicorn", "starlette")


def llmft(*argv: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\nfrom llmft.cli.main import main\nrc = main(sys.argv[1:])\n"
        f"print('HEAVY', sorted(m for m in {HEAVY!r} if m in sys.modules))\nsys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env)


@pytest.mark.parametrize("argv", [["--help"], ["serve", "--help"]])
def test_help_imports_no_torch_and_no_fastapi(argv: list[str]) -> None:
    done = llmft(*argv)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    if argv[0] == "serve":
        assert "--api-key" in done.stdout and "LLMFT_API_KEY" in done.stdout


def test_a_path_that_is_no_run_is_a_short_error(tmp_path: Path) -> None:
    done = llmft("serve", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "neither a finished run dir" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_serve_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # makes `import uvicorn` fail
    with pytest.raises(EnvironmentProblem, match="needs FastAPI and uvicorn") as caught:
        _import_server()
    assert caught.value.fix is not None and "llmft[serve]" in caught.value.fix


def test_the_model_name_defaults_to_the_run_dir_name(tmp_path: Path) -> None:
    assert model_name_of(tmp_path / "my-run", None) == "my-run"
    assert model_name_of(tmp_path / "my-run", "custom") == "custom"
