"""What training minimises: one module per objective (the rows of config/objectives.py), registry.py
mapping names to modules, and base.py with the ``Objective`` the loop trains with.

Only base.py is imported here, so the modules' shared helpers (train/preference/) can import it freely.
"""

from llmft.train.objectives.base import (
    Batch,
    Context,
    LossFn,
    Objective,
    ObjectiveModule,
    label_units,
    next_token_units,
    row_units,
)

__all__ = [
    "Batch",
    "Context",
    "LossFn",
    "Objective",
    "ObjectiveModule",
    "label_units",
    "next_token_units",
    "row_units",
]
