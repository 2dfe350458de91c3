"""`llmft report` on run folders and a search folder written the way llmft writes them: one HTML file with
no external reference, every chart inline as SVG with content, the PNGs beside it, the tables' numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmft.cli.main import main
from llmft.errors import ConfigError
from llmft.report.build import write_report

pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'llmft[test]'")


def charts(page: str) -> list[str]:
    return re.findall(r'<svg[^>]*class="chart".*?</svg>', page, flags=re.S)


def test_two_runs_overlaid_with_their_differences(tmp_path: Path, make_run) -> None:  # noqa: ANN001
    a = make_run(tmp_path / "a" / "run", 1e-3, samples=True)
    b = make_run(tmp_path / "b" / "run", 1e-2)
    files = write_report([a, b], tmp_path / "out" / "report.html")
    page = files.html.read_text(encoding="utf-8")

    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page) and "<script" not in page
    svgs = charts(page)
    # loss, learning rate, throughput, gradient norm, eval loss, eval accuracy, one length histogram each
    assert len(svgs) == 8 and all(svg.count("<path") >= 5 for svg in svgs)
    assert {p.name for p in files.pngs} == {
        "curve_loss.png",
        "curve_learning_rate.png",
        "curve_tokens_per_second.png",
        "curve_grad_norm.png",
        "curve_eval_loss.png",
        "curve_eval_accuracy.png",
        "lengths_0_a_run.png",
        "lengths_1_b_run.png",
    }
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in files.pngs)
    assert files.pngs[0].parent == tmp_path / "out" / "report_figures"
    # runs told apart by their parent folder; the config difference is the learning rate only
    assert "a/run" in page and "b/run" in page
    diff = page[page.index("Config differences") :]
    assert re.search(r"<td>training\.learning_rate</td><td[^>]*>0\.001</td><td[^>]*>0\.01</td>", diff)
    assert "<td>output_dir</td>" in diff and "<td>seed</td>" not in diff
    assert "2 empty response" in page and "<td>90 s</td>" in page
    assert "Say &lt;b&gt;hi&lt;/b&gt;" in page and "hi &amp; bye" in page  # samples, escaped


def test_a_search_folder_has_its_trials_sorted_and_metric_against_parameter(
    tmp_path: Path, make_search
) -> None:  # noqa: ANN001
    search = make_search(tmp_path / "search")
    files = write_report([search])
    page = files.html.read_text(encoding="utf-8")
    assert files.html == search / "report.html"
    table = page[page.index("trials</h2>") : page.index("against the parameters")]
    numbers = [int(n) for n in re.findall(r"<tr(?: class=\"best\")?><td class=\"num\">(\d+)</td>", table)]
    assert numbers == [1, 0, 2]  # lr 1e-2 learns fastest: lowest eval_loss first
    assert '<tr class="best"><td class="num">1</td>' in table
    assert "search_training_learning_rate.png" in {p.name for p in files.pngs}
    assert len(charts(page)) == 1 + 6  # metric against lr, and the trials' curves overlaid
    assert page.count("trial 0") >= 1 and "trial 2" in page


def test_cli_and_a_folder_that_is_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_run
) -> None:  # noqa: ANN001
    run = make_run(tmp_path / "run", 1e-3)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    assert f"report: {tmp_path / 'r.html'}" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither a run"):
        write_report([tmp_path / "empty"])
    assert main(["report", str(tmp_path / "empty")]) == 2


def test_the_end_of_train_summary_says_what_and_where(tmp_path: Path, make_run) -> None:  # noqa: ANN001
    import json

    from llmft.report.summary import summary_rows

    run = make_run(tmp_path / "run", 1e-3)
    info = json.loads((run / "run.json").read_text())
    info["tracking"] = {
        "tensorboard": {"dir": str(run / "tensorboard")},
        "mlflow": {"run_id": "abc", "uri": "sqlite:///x.db", "experiment_id": "1"},
        "wandb": {"id": "w1", "dir": str(run / "wandb" / "offline-run-1"), "url": ""},
    }
    (run / "run.json").write_text(json.dumps(info))
    rows = dict(summary_rows(run))
    assert rows["steps"] == "6 (completed)" and rows["time"] == "90 s" and rows["tokens/s"] == "506"
    assert rows["eval_loss"] == "1.975" and "eval_tokens" not in rows
    assert rows["tensorboard"] == str(run / "tensorboard")
    assert rows["mlflow"] == "run abc at sqlite:///x.db"
    assert rows["wandb"].startswith("offline run w1 in ") and rows["report"] == f"llmft report {run}"
