"""config/peft_fields.py lets `llmft validate` check `adapter.extra` without importing peft (and torch); this
compares its table with the installed peft classes, so it cannot drift."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import peft
import pytest

from llmft.config.peft_fields import OWN, PEFT_CLASSES, PEFT_FIELDS, SET_BY_LLMFT


@pytest.mark.parametrize("method", sorted(PEFT_CLASSES))
def test_the_table_lists_exactly_the_fields_of_the_peft_class(method: str) -> None:
    cls = getattr(peft, PEFT_CLASSES[method])
    base = {f.name for f in dataclasses.fields(peft.PeftConfig)}

    assert set(PEFT_FIELDS[method]) == {f.name for f in dataclasses.fields(cls)} - base
    assert set(OWN[method]) <= set(PEFT_FIELDS[method])


def test_fields_llmft_sets_exist() -> None:
    assert all(any(key in fields for fields in PEFT_FIELDS.values()) for key in SET_BY_LLMFT)


def test_the_schema_imports_neither_peft_nor_torch() -> None:
    code = "import sys, llmft.config.schema; print(sorted({'torch', 'peft'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout

    assert out.strip() == "[]"
