"""The run directory: every file and folder name a run writes, defined once, with their readers and writers.

```
OUTPUT/
  config.yaml         the resolved config, secrets redacted
  run.json            versions, seed, times, data fingerprint, task, adapter, outcome
  metrics.jsonl       one line per log step and evaluation
  eval_results.json   final validation and test metrics
  data_report.json    rows kept/dropped per split and why, token statistics
  labels.json         label ↔ id map (classification)
  generations.jsonl   the answers generated for validation/test rows (evaluation.generate)
  rollouts.jsonl      online RL (grpo, rloo): a sample of prompts, completions and rewards per logging step
  model/              adapter (peft, safetensors) or full model, plus the tokenizer
  checkpoints/        step-0000120/ ... (train/checkpoint.py), best.json
  tensorboard/        event files (tracking: tensorboard)
  mlflow.db, mlartifacts/   the local MLflow store (tracking: mlflow without a uri)
  trial.json, trial.log, error.txt   a search's trial only (hpo/trial.py)
```

Training, the report, generation, export, tracking and the search all find a run's files here, so a name
changes in one place. Torch-free (json and yaml only): the report, export and a web UI read runs through
it without loading torch. Readers of a finished run's files are lenient (a killed run misses some); the
checkpoint readers are strict, since a complete checkpoint has every file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from llmft.atomic import write_atomic
from llmft.config.redact import redact

CONFIG = "config.yaml"
RECORD = "run.json"
METRICS = "metrics.jsonl"
EVAL_RESULTS = "eval_results.json"
DATA_REPORT = "data_report.json"
LABELS = "labels.json"
GENERATIONS = "generations.jsonl"
ROLLOUTS = "rollouts.jsonl"  # not generations.jsonl: evaluation.generate rewrites that at each evaluation
MODEL = "model"
CHECKPOINTS = "checkpoints"
TENSORBOARD = "tensorboard"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"
TRIAL_RECORD = "trial.json"
TRIAL_LOG = "trial.log"
TRIAL_ERROR = "error.txt"

# What makes a folder a run already (prepare_output_dir refuses to overwrite it silently).
RUN_MARKERS = (RECORD, METRICS, CHECKPOINTS, MODEL)
# What --overwrite removes besides the markers: the replaced run's files (tracking.dir is left alone).
REPLACED_ON_OVERWRITE = (EVAL_RESULTS, CONFIG, DATA_REPORT, LABELS, GENERATIONS, ROLLOUTS, TENSORBOARD)
# The run files a tracker stores with its run (MLflow artifacts).
TRACKED_FILES = (CONFIG, EVAL_RESULTS, DATA_REPORT, RECORD, METRICS)
# Generation samples a report shows: llmft's own file, and the names other tools write.
SAMPLE_FILES = ("samples.jsonl", GENERATIONS, "generation_samples.jsonl", ROLLOUTS)

# checkpoints/step-0000120/: the layout train/checkpoint.py writes (its docstring says what each holds).
STEP_PREFIX = "step-"
TMP_PREFIX = ".tmp-"
COMPLETE = "COMPLETE"
STATE = "state.json"
BEST = "best.json"
TRACKER_IDS = "tracking.json"
WEIGHTS = "trainable.safetensors"
OPTIMIZER = "optimizer.pt"
SCHEDULER = "scheduler.pt"
RNG = "rng.pt"
SCALER = "scaler.pt"
BATCH_SOURCE = "batch_source.pt"  # a generated batch source's state (fixed data has none)
MANIFEST = "manifest.json"  # each other file's size and sha256, checked on resume (train/integrity.py)


def rank_rng(rank: int) -> str:
    """The random-state file of process ``rank`` > 0 (rank 0's is ``RNG``)."""
    return f"rng-rank{rank}.pt"


def checkpoint_name(step: int) -> str:
    """The folder name of the checkpoint taken after ``step`` (zero-padded, so names sort by step)."""
    return f"{STEP_PREFIX}{step:07d}"


def complete_checkpoints(root: Path) -> list[Path]:
    """The checkpoints in ``root`` (a run's checkpoints/) that were written to the end, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(STEP_PREFIX) and (p / COMPLETE).exists()]
    return sorted(found, key=lambda p: int(p.name[len(STEP_PREFIX) :]))


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint of the run in ``out``: where a resume starts."""
    found = complete_checkpoints(out / CHECKPOINTS)
    return found[-1] if found else None


def read_state(checkpoint: Path) -> dict[str, object]:
    """A checkpoint's state.json (loop counters, config hash, data fingerprint); raises when it is missing."""
    return json.loads((checkpoint / STATE).read_text(encoding="utf-8"))


def read_checkpoint_config(checkpoint: Path) -> str:
    """The text of a checkpoint's config.yaml, as hashed into state.json; raises when it is missing."""
    return (checkpoint / CONFIG).read_text(encoding="utf-8")


def read_manifest(checkpoint: Path) -> dict[str, object] | None:
    """A checkpoint's manifest.json (each file's size and sha256); None for a checkpoint written before
    manifests were. A garbled one raises ValueError: the checkpoint is then damaged."""
    return read_json(checkpoint / MANIFEST)


def read_json(path: Path) -> dict[str, object] | None:
    """A JSON object file; None when it is missing (or holds no object). A garbled file raises ValueError,
    for callers that must not go on with half a run's facts."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def read_json_or_empty(path: Path) -> dict[str, object]:
    """A JSON object file, {} when it is missing or garbled: a killed run shows what it has."""
    try:
        return read_json(path) or {}
    except ValueError:
        return {}


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, object]]:
    """The readable object lines of a JSONL file (a kill can cut the last one short), at most ``limit``."""
    rows: list[dict[str, object]] = []
    if not path.is_file():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def write_json(path: Path, data: object) -> None:
    """Secrets redacted, written atomically: a crash mid-write never leaves half a file. OSError goes on
    to the caller, which knows what a failed write means for the run (train/artifacts.py)."""
    write_atomic(path, json.dumps(redact(data), indent=2, default=str) + "\n")


def write_config(path: Path, config_dict: dict[str, object]) -> None:
    """The config as run, secrets redacted, atomically (readable YAML: keys in order, unicode kept)."""
    write_atomic(path, yaml.safe_dump(redact(config_dict), sort_keys=False, allow_unicode=True))


def labels_record(names: list[str]) -> dict[str, object]:
    """labels.json's content: ids to names, as transformers' ``id2label``."""
    return {"id2label": dict(enumerate(names))}


def label_names(record: dict[str, object] | None) -> list[str] | None:
    """Label names in id order from labels.json's content; None when it has no ``id2label`` map."""
    if not record or not isinstance(record.get("id2label"), dict):
        return None
    id2label = {int(k): str(v) for k, v in record["id2label"].items()}  # type: ignore[union-attr]
    return [id2label[i] for i in sorted(id2label)]


@dataclass(frozen=True)
class RunDir:
    """One run's folder: where each file is, and its lenient readers (a killed run misses some files)."""

    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def record_file(self) -> Path:
        return self.path / RECORD

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS

    @property
    def eval_results_file(self) -> Path:
        return self.path / EVAL_RESULTS

    @property
    def data_report_file(self) -> Path:
        return self.path / DATA_REPORT

    @property
    def labels_file(self) -> Path:
        return self.path / LABELS

    @property
    def generations_file(self) -> Path:
        return self.path / GENERATIONS

    @property
    def rollouts_file(self) -> Path:
        return self.path / ROLLOUTS

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def best_file(self) -> Path:
        return self.checkpoints_dir / BEST

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    def checkpoint(self, step: int) -> Path:
        """The folder the checkpoint of ``step`` has (or will have)."""
        return self.checkpoints_dir / checkpoint_name(step)

    def contents(self) -> list[str]:
        """The names in the folder, sorted: what an error shows when it is not the run expected."""
        return sorted(p.name for p in self.path.iterdir())

    def markers(self) -> list[str]:
        """The files and folders present that make it a run already (empty: a fresh folder)."""
        return [m for m in RUN_MARKERS if (self.path / m).exists()]

    def has_metrics(self) -> bool:
        """A run started training here (metrics.jsonl is its first file)."""
        return self.metrics_file.is_file()

    def finished(self) -> bool:
        """Training ended and the model was saved: model/ and run.json are written last."""
        return self.model_dir.is_dir() and self.record_file.is_file()

    def record(self) -> dict[str, object]:
        """run.json: versions, seed, times, task, outcome; {} before the run finished."""
        return read_json_or_empty(self.record_file)

    def metrics(self) -> list[dict[str, object]]:
        """metrics.jsonl's records, in the order written."""
        return read_jsonl(self.metrics_file)

    def eval_results(self) -> dict[str, object]:
        return read_json_or_empty(self.eval_results_file)

    def data_report(self) -> dict[str, object]:
        return read_json_or_empty(self.data_report_file)

    def config(self) -> dict[str, object]:
        """The saved config.yaml ({} when missing); a garbled file raises yaml.YAMLError."""
        if not self.config_file.is_file():
            return {}
        config = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        return config if isinstance(config, dict) else {}

    def samples(self, limit: int) -> list[dict[str, object]]:
        """The first ``limit`` generation samples from the first sample file present."""
        found = next((p for p in (self.path / n for n in SAMPLE_FILES) if p.is_file()), None)
        return read_jsonl(found, limit) if found else []
