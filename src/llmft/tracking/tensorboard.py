"""TensorBoard: event files in OUTPUT/tensorboard (or tracking.dir), written with torch's SummaryWriter.

Every record's numbers become scalars under their metrics.jsonl names; at the end the final metrics
(``final/eval_loss``, ...) and the hyperparameters (the hparams plugin: the flattened config against the
final metrics). A resumed run opens the same folder with ``purge_step`` = checkpoint step + 1: TensorBoard
then drops what the killed process logged after the checkpoint, and the resumed process logs it again, so
the series has no gap and no duplicate step. A fresh run purges from step 0, hiding an earlier run's
events left in a reused folder.
"""

from __future__ import annotations

from pathlib import Path

from llmft.config.tracker_packages import require
from llmft.tracking.base import FINAL_PREFIX, Final, Resume, RunInfo, flatten, numeric

FLUSH_SECS = 30


class TensorBoardSink:
    name = "tensorboard"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writer: object = None
        self.config: dict[str, object] = {}

    def start(self, info: RunInfo, resume: Resume | None) -> None:
        require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.folder.mkdir(parents=True, exist_ok=True)
        purge = resume.step + 1 if resume is not None else 0
        self.writer = SummaryWriter(str(self.folder), purge_step=purge, flush_secs=FLUSH_SECS)
        self.config = info.config

    def log(self, record: dict[str, object]) -> None:
        step = int(record["step"])  # type: ignore[call-overload]
        for key, value in numeric(record).items():
            self.writer.add_scalar(key, value, step)  # type: ignore[attr-defined]

    def flush(self) -> None:
        self.writer.flush()  # type: ignore[attr-defined]

    def state(self) -> dict[str, str]:
        return {"dir": str(self.folder)}

    def finish(self, final: Final) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"{FINAL_PREFIX}{k}": float(v) for k, v in final.metrics.items()}
        # Into this run's own file (SummaryWriter.add_hparams would start a sub-run): the hparams plugin
        # then shows the config beside this run's final metrics.
        writer = self.writer.file_writer  # type: ignore[attr-defined]
        for summary in hparams(flatten(self.config), metrics):
            writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, final.step)  # type: ignore[attr-defined]
        self.writer.close()  # type: ignore[attr-defined]

    def abort(self, status: str) -> None:
        self.writer.close()  # type: ignore[attr-defined]
