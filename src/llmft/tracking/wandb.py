"""Weights & Biases: the same stream through ``wandb`` (online, or offline with WANDB_MODE=offline).

Files go to OUTPUT/wandb. The API key (tracking.api_key, else WANDB_API_KEY or `wandb login`) is handed to
wandb in memory (``wandb.Settings``), never written by llmft: no `wandb login`, no .netrc. Console capture
is off (llmft's own progress lines stay on the terminal). Final metrics go to the run summary as
``final/...``. A trial of a search joins its search's group.

Resume continues the run id saved in the checkpoint (``resume="allow"``); steps below the step W&B
already has for the run are not logged again (W&B refuses a step lower than its current one).
"""

from __future__ import annotations

from pathlib import Path

from llmft.config.tracker_packages import require
from llmft.errors import EnvironmentProblem
from llmft.tracking.base import FINAL_PREFIX, Final, Resume, RunInfo, numeric


class WandbSink:
    name = "wandb"

    def __init__(self) -> None:
        self.run: object = None
        self.first_step = 0

    def start(self, info: RunInfo, resume: Resume | None) -> None:
        wandb = require("wandb")
        saved = (resume.saved.get(self.name) if resume else None) or {}
        parent = info.parent
        settings = wandb.Settings(api_key=info.api_key, silent=True, console="off")
        try:
            self.run = wandb.init(
                project=info.project,
                name=info.name,
                dir=str(info.out),
                id=saved.get("id"),
                resume="allow" if saved.get("id") else None,
                config=info.config,
                group=parent.group if parent else None,
                job_type=("trial" if parent.trial is not None else "refit") if parent else None,
                tags=[f"task:{info.task}"],
                settings=settings,
            )
        except Exception as err:  # noqa: BLE001 - no key, no network: the user's to fix
            raise EnvironmentProblem(
                f"W&B could not start a run: {type(err).__name__}: {err}",
                fix="set WANDB_API_KEY (or tracking.api_key), or WANDB_MODE=offline to write the run locally",
            ) from None
        self.run.config.update({"llmft": info.tags()}, allow_val_change=True)  # type: ignore[attr-defined]
        self.first_step = int(getattr(self.run, "step", 0) or 0) if saved.get("id") else 0

    def log(self, record: dict[str, object]) -> None:
        step = int(record["step"])  # type: ignore[call-overload]
        if step >= self.first_step:
            self.run.log(numeric(record), step=step)  # type: ignore[attr-defined]

    def flush(self) -> None:
        """wandb hands records to its service process at once; nothing to flush from here."""

    def state(self) -> dict[str, str]:
        run = self.run
        url = "" if run.offline else (run.url or "")  # type: ignore[attr-defined]
        return {"id": run.id, "dir": str(Path(run.dir).parent), "url": url}  # type: ignore[attr-defined]

    def finish(self, final: Final) -> None:
        self.run.summary.update({f"{FINAL_PREFIX}{k}": float(v) for k, v in final.metrics.items()})  # type: ignore[attr-defined]
        self.run.finish(exit_code=0)  # type: ignore[attr-defined]

    def abort(self, status: str) -> None:
        self.run.finish(exit_code=1)  # type: ignore[attr-defined]
