"""Tracking settings: every report_to value works or is refused at validate time; a setting whose tracker is
not listed is refused (new ones) or warned about (project, run_name, api_key)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from llmft.cli.main import main
from llmft.config.load import validate_dict
from llmft.config.tracker_packages import check_tracking, require
from llmft.errors import EnvironmentProblem

BASE = {"data": {"dataset": {"train_file": "t.jsonl"}}, "model": {"name_or_path": "gpt2"}}


def problems(tracking: dict[str, object]) -> list:
    _, found = validate_dict({**BASE, "tracking": tracking})
    return found


@pytest.mark.parametrize("tracker", ["tensorboard", "mlflow", "wandb"])
def test_a_tracker_without_its_package_is_a_validate_error_naming_the_extra(
    tracker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, tracker, None)  # as if not installed: find_spec and import fail
    errors = [p for p in problems({"report_to": ["jsonl", tracker]}) if p.severity == "error"]
    assert [(p.path, p.message, p.fix) for p in errors] == [
        (
            "tracking.report_to",
            f"`{tracker}` needs the {tracker} package, which is not installed",
            f"pip install 'llmft[{tracker}]', or remove {tracker} from tracking.report_to",
        )
    ]
    with pytest.raises(EnvironmentProblem) as caught:
        require(tracker)
    assert caught.value.fix == f"pip install 'llmft[{tracker}]', or remove {tracker} from tracking.report_to"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**BASE, "tracking": {"report_to": [tracker]}}), encoding="utf-8")
    assert main(["validate", str(config)]) == 2
    assert f"pip install 'llmft[{tracker}]'" in capsys.readouterr().err


def test_mlflow_local_store_needs_sqlalchemy_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "alembic", None)
    config, _ = validate_dict({**BASE, "tracking": {"report_to": ["mlflow"]}})
    assert config is not None
    assert [p.message for p in check_tracking(config)] == [
        "`mlflow` needs the alembic package, which is not installed"
    ]


def test_installed_trackers_validate_cleanly() -> None:
    assert problems({"report_to": ["jsonl", "tensorboard", "mlflow", "wandb"]}) == []


def test_an_unknown_tracker_is_refused_by_the_schema() -> None:
    (problem,) = problems({"report_to": ["comet"]})
    assert problem.path == "tracking.report_to.0"
    assert "expected one of jsonl, tensorboard, wandb, mlflow" in problem.message


@pytest.mark.parametrize(
    ("setting", "tracker"),
    [({"dir": "tb"}, "tensorboard"), ({"uri": "sqlite:///x.db"}, "mlflow"), ({"log_model": True}, "mlflow")],
)
def test_a_setting_for_an_unlisted_tracker_is_refused(setting: dict[str, object], tracker: str) -> None:
    (name,) = setting
    found = [p for p in problems({"report_to": ["jsonl"], **setting}) if p.severity == "error"]
    assert len(found) == 1 and f"tracking.{name} is set but {tracker} is not in tracking.report_to" in (
        found[0].message
    ), found
    assert problems({"report_to": [tracker], **setting}) == []


def test_settings_no_listed_tracker_uses_are_warned_about() -> None:
    found = problems({"report_to": ["tensorboard"], "api_key": "k", "project": "p"})
    assert [(p.path, p.severity) for p in found] == [
        ("tracking.project", "warning"),
        ("tracking.api_key", "warning"),
    ]
    assert "only wandb uses it" in found[1].message
    assert problems({"report_to": ["wandb"], "api_key": "k", "project": "p"}) == []


def test_doctor_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmft.doctor.config_fit import _needed_packages

    monkeypatch.setitem(sys.modules, "mlflow", None)
    config, _ = validate_dict({**BASE, "tracking": {"report_to": ["mlflow", "tensorboard"]}})
    (check,) = _needed_packages(config)  # type: ignore[arg-type]
    assert check.name == "needs mlflow" and check.fix == "pip install 'llmft[mlflow]'"
