"""config/peft_fields.py lets `llmft validate` check `adapter.extra` without importing peft (and torch); this
compares its table with the installed peft classes, so it cannot drift."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import peft
import pytest

from llmft.config.peft_fields import (
    ADDED_IN,
    OWN,
    PEFT_CLASSES,
    PEFT_FIELDS,
    SET_BY_LLMFT,
    TABLE_PEFT,
    extra_field_problem,
    fields_at,
    installed_peft,
)


def test_the_installed_peft_is_one_the_table_was_compared_with() -> None:
    version = installed_peft()

    assert version is not None and (0, 18) <= version <= TABLE_PEFT, (
        f"peft {peft.__version__} is outside the table's range: compare config/peft_fields.py with it, "
        "then raise TABLE_PEFT and the cap in pyproject.toml"
    )


@pytest.mark.parametrize("method", sorted(PEFT_CLASSES))
def test_the_table_lists_exactly_the_fields_of_the_peft_class(method: str) -> None:
    cls = getattr(peft, PEFT_CLASSES[method])
    base = {f.name for f in dataclasses.fields(peft.PeftConfig)}

    assert set(fields_at(method, installed_peft())) == {f.name for f in dataclasses.fields(cls)} - base
    assert set(OWN[method]) <= set(PEFT_FIELDS[method])


def test_fields_llmft_sets_exist() -> None:
    assert all(any(key in fields for fields in PEFT_FIELDS.values()) for key in SET_BY_LLMFT)


def test_a_field_newer_than_the_installed_peft_is_refused_with_the_release_it_needs() -> None:
    message, fix = extra_field_problem("lora", "astra_config", version=(0, 21))

    assert message == "extra.astra_config: needs peft >= 0.22 (installed: 0.21)"
    assert "pip install 'peft>=0.22'" in fix
    assert extra_field_problem("lora", "astra_config", version=(0, 22)) is None
    assert extra_field_problem("lora", "kasa_config", version=(0, 21)) is None


def test_every_versioned_field_is_in_the_table() -> None:
    assert all(key in PEFT_FIELDS["lora"] and version <= TABLE_PEFT for key, version in ADDED_IN.items())


def test_the_schema_imports_neither_peft_nor_torch() -> None:
    code = "import sys, llmft.config.schema; print(sorted({'torch', 'peft'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"
