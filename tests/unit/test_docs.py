"""The docs cannot drift: CONFIG.md is generated from the schema and every error code is documented."""

from __future__ import annotations

from pathlib import Path

from llmft.config.docs import render_config_markdown
from llmft.errors import ALL_ERRORS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_config_md_is_up_to_date() -> None:
    committed = (DOCS / "CONFIG.md").read_text(encoding="utf-8")
    assert committed == render_config_markdown(), "regenerate with: llmft schema --markdown > docs/CONFIG.md"


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def test_every_error_code_is_in_troubleshooting() -> None:
    import llmft.cli.main  # noqa: F401 - load the modules that could define error classes of their own
    import llmft.pipeline  # noqa: F401
    from llmft.errors import LlmftError

    classes = {LlmftError, *_subclasses(LlmftError)}
    assert set(ALL_ERRORS) <= classes and len(ALL_ERRORS) >= 7
    text = (DOCS / "TROUBLESHOOTING.md").read_text(encoding="utf-8")
    missing = [f"{cls.__name__} ({cls.code})" for cls in classes if f"## {cls.code}" not in text]
    assert not missing, f"document these in docs/TROUBLESHOOTING.md: {missing}"


def test_every_config_field_is_documented() -> None:
    text = render_config_markdown()
    from llmft.config.schema import RunConfig, TrainingConfig

    for model in (RunConfig, TrainingConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"`{name}`" in text
