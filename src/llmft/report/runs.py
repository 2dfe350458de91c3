"""What a report reads from a run folder (metrics.jsonl, eval_results.json, data_report.json, config.yaml,
run.json, generation samples) or a search folder (hpo_results.json and the trials' run folders)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from llmft.errors import ConfigError

SAMPLE_FILES = ("samples.jsonl", "generations.jsonl", "generation_samples.jsonl")
MAX_SAMPLES = 20


@dataclass
class Run:
    """One run folder's files, each empty when missing (a killed run has no eval_results.json)."""

    path: Path
    name: str
    records: list[dict[str, object]] = field(default_factory=list)
    final: dict[str, float] = field(default_factory=dict)
    data_report: dict[str, object] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    info: dict[str, object] = field(default_factory=dict)
    samples: list[dict[str, object]] = field(default_factory=list)

    def series(self, key: str) -> list[tuple[int, float]]:
        """(step, value) of ``key``, each step once (the last value written for it)."""
        points: dict[int, float] = {}
        for record in self.records:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                points[int(record.get("step", 0))] = float(value)  # type: ignore[call-overload]
        return sorted(points.items())

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for record in self.records:
            seen.update(dict.fromkeys(k for k in record if k != "step"))
        return list(seen)


@dataclass
class Search:
    """A search folder: hpo_results.json (trials best first) and its trials' runs."""

    path: Path
    results: dict[str, object]
    trials: list[Run] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return str(self.results.get("metric", "eval_loss"))


def _json(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _jsonl(path: Path, limit: int | None = None) -> list[dict[str, object]]:
    """The readable lines (a kill can cut the last one short)."""
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


def load_run(path: Path, name: str | None = None) -> Run:
    config_path = path / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    samples = next((p for p in (path / n for n in SAMPLE_FILES) if p.is_file()), None)
    return Run(
        path=path,
        name=name or path.resolve().name,
        records=_jsonl(path / "metrics.jsonl"),
        final={k: float(v) for k, v in _json(path / "eval_results.json").items() if _number(v)},
        data_report=_json(path / "data_report.json"),
        config=config if isinstance(config, dict) else {},
        info=_json(path / "run.json"),
        samples=_jsonl(samples, MAX_SAMPLES) if samples else [],
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_search(path: Path) -> bool:
    return (path / "hpo_results.json").is_file()


def load_search(path: Path) -> Search:
    results = _json(path / "hpo_results.json")
    trials = []
    for trial in results.get("trials", []):  # type: ignore[union-attr]
        folder = Path(str(trial.get("trial_dir") or ""))  # type: ignore[union-attr]
        if not folder.is_dir():
            folder = path / "trials" / f"{int(trial['number']):03d}"  # type: ignore[index]
        if (folder / "metrics.jsonl").is_file():
            trials.append(load_run(folder, f"trial {trial['number']}"))  # type: ignore[index]
    return Search(path, results, trials)


def check_folder(path: Path) -> None:
    """A folder llmft wrote (a run or a search), else a ConfigError that says what was found."""
    if not path.is_dir():
        raise ConfigError(f"{path} is not a folder", fix="pass a run's output_dir (or a search's)")
    if not (is_search(path) or (path / "metrics.jsonl").is_file()):
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise ConfigError(
            f"{path} is neither a run (no metrics.jsonl) nor a search (no hpo_results.json): "
            f"it holds {found}",
            fix="pass the output_dir of `llmft train` or `llmft hpo`",
        )
