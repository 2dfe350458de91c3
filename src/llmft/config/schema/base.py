"""What every section shares: the `Section` base (unknown keys refused), `RuleError`, the number types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class RuleError(ValueError):
    """A section rule broken; ``fix`` says what to change (pydantic keeps the exception in the error)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are validated on assignment too.

    Infinity and NaN are refused: YAML reads `.inf`/`.nan` as floats, and no setting means them.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, populate_by_name=True, allow_inf_nan=False
    )
