"""What a report reads from a run folder (metrics.jsonl, eval_results.json, data_report.json, config.yaml,
run.json, generation samples) or a search folder (hpo_results.json and the trials' run folders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmft.errors import ConfigError
from llmft.run_dir import RunDir, read_json_or_empty

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


def load_run(path: Path, name: str | None = None) -> Run:
    run = RunDir(path)
    return Run(
        path=path,
        name=name or path.resolve().name,
        records=run.metrics(),
        final={k: float(v) for k, v in run.eval_results().items() if _number(v)},
        data_report=run.data_report(),
        config=run.config(),
        info=run.record(),
        samples=run.samples(MAX_SAMPLES),
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_search(path: Path) -> bool:
    return (path / "hpo_results.json").is_file()


def load_search(path: Path) -> Search:
    results = read_json_or_empty(path / "hpo_results.json")
    trials = []
    for trial in results.get("trials", []):  # type: ignore[union-attr]
        folder = Path(str(trial.get("trial_dir") or ""))  # type: ignore[union-attr]
        if not folder.is_dir():
            folder = path / "trials" / f"{int(trial['number']):03d}"  # type: ignore[index]
        if RunDir(folder).has_metrics():
            trials.append(load_run(folder, f"trial {trial['number']}"))  # type: ignore[index]
    return Search(path, results, trials)


def check_folder(path: Path) -> None:
    """A folder llmft wrote (a run or a search), else a ConfigError that says what was found."""
    if not path.is_dir():
        raise ConfigError(f"{path} is not a folder", fix="pass a run's output_dir (or a search's)")
    if not (is_search(path) or RunDir(path).has_metrics()):
        found = ", ".join(RunDir(path).contents()[:8]) or "nothing"
        raise ConfigError(
            f"{path} is neither a run (no metrics.jsonl) nor a search (no hpo_results.json): "
            f"it holds {found}",
            fix="pass the output_dir of `llmft train` or `llmft hpo`",
        )
