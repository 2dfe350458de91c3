"""Which packages each tracker needs, checked without importing them (``llmft validate`` stays torch-free).

A tracker listed in ``tracking.report_to`` whose package is missing is an error when the config is checked,
naming the llmft extra that installs it, rather than a silent no-op or a failure an hour into training.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING

from llmft.errors import EnvironmentProblem, Problem

if TYPE_CHECKING:  # pragma: no cover
    from llmft.config.schema import RunConfig

# tracker → the modules it imports. MLflow's local store (OUTPUT/mlflow.db) is SQLite through SQLAlchemy
# and Alembic, which mlflow-skinny does not bring; the `mlflow` extra does.
MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard",),
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
    "wandb": ("wandb",),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module stubbed out in sys.modules
        return False


def missing_modules(tracker: str) -> list[str]:
    """The modules ``tracker`` needs that are not installed (none for `jsonl`)."""
    return [m for m in MODULES.get(tracker, ()) if not installed(m)]


def install_hint(tracker: str) -> str:
    return f"pip install 'llmft[{tracker}]'"


# settings → the trackers that use them; set with none of them listed, they would do nothing
USED_BY = {"project": ("mlflow", "wandb"), "run_name": ("mlflow", "wandb"), "api_key": ("wandb",)}


def check_tracking(config: RunConfig) -> list[Problem]:
    """An error per listed tracker whose packages are missing, with the extra to install; a warning per
    setting that no listed tracker uses."""
    problems = []
    for name, users in USED_BY.items():
        if getattr(config.tracking, name) is not None and not set(users) & set(config.tracking.report_to):
            listed = "lists neither" if len(users) > 1 else "does not list it"
            problems.append(
                Problem(
                    f"tracking.{name}",
                    f"is set, but only {' and '.join(users)} {'use' if len(users) > 1 else 'uses'} it "
                    f"and tracking.report_to {listed}",
                    fix=f"add {' or '.join(users)} to tracking.report_to, or remove tracking.{name}",
                    severity="warning",
                )
            )
    for tracker in config.tracking.report_to:
        missing = missing_modules(tracker)
        if missing:
            problems.append(
                Problem(
                    "tracking.report_to",
                    f"`{tracker}` needs the {', '.join(missing)} package{'s' if len(missing) > 1 else ''}, "
                    "which is not installed",
                    fix=f"{install_hint(tracker)}, or remove {tracker} from tracking.report_to",
                )
            )
    return problems


def require(tracker: str) -> ModuleType:
    """The tracker's main module, or EnvironmentProblem naming the extra (a run started without validate)."""
    missing = missing_modules(tracker)
    if missing:
        raise EnvironmentProblem(
            f"tracking.report_to lists {tracker}, which needs {', '.join(missing)} (not installed)",
            fix=f"{install_hint(tracker)}, or remove {tracker} from tracking.report_to",
        )
    return importlib.import_module(MODULES[tracker][0])
