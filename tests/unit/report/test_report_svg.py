"""`llmft report` without matplotlib: the page's charts are SVG llmft draws itself, PNG copies are written
only when matplotlib is installed, and no empty figures folder is left behind."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from llmft.cli.main import main
from llmft.report.build import write_report
from llmft.report.png import MISSING
from llmft.report.svg import nice_ticks, tick_text


def charts(page: str) -> list[str]:
    return re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: find_spec and import fail


def test_without_matplotlib_the_page_has_every_chart_and_no_png_folder(
    tmp_path: Path, make_run, no_matplotlib: None, capsys: pytest.CaptureFixture[str]
) -> None:  # noqa: ANN001
    a, b = make_run(tmp_path / "a" / "run", 1e-3), make_run(tmp_path / "b" / "run", 1e-2)
    stale = tmp_path / "out" / "report_figures"
    stale.mkdir(parents=True)
    (stale / "curve_loss.png").write_bytes(b"an earlier report's")
    files = write_report([a, b], tmp_path / "out" / "report.html")
    svgs = charts(files.html.read_text(encoding="utf-8"))
    assert len(svgs) == 8  # 4 training curves, 2 evaluation curves, a length histogram per run
    assert all(svg.count("<path") >= 10 and svg.count("<text") >= 10 for svg in svgs)
    assert "<title>training loss</title>" in svgs[0] and ">a/run</text>" in svgs[0]  # title, legend
    assert files.pngs == [] and files.notes == [MISSING]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html"]  # no empty folder

    assert main(["report", str(a), "--out", str(tmp_path / "one.html")]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"report: {tmp_path / 'one.html'}\n"
    assert captured.err == f"note: {MISSING}\n" and not (tmp_path / "one_figures").exists()


def test_a_search_without_matplotlib(tmp_path: Path, make_search, no_matplotlib: None) -> None:  # noqa: ANN001
    search = make_search(tmp_path / "search")
    files = write_report([search])
    page = files.html.read_text(encoding="utf-8")
    assert len(charts(page)) == 1 + 6
    scatter = charts(page)[0]
    assert scatter.count("<circle") == 3 and all(f">{n}</text>" in scatter for n in ("0", "1", "2"))
    assert ">0.0001</text>" in scatter and ">0.01</text>" in scatter  # a log axis in decades
    assert not (search / "report_figures").exists()


def test_with_matplotlib_pngs_beside_it_and_still_no_empty_folder(tmp_path: Path, make_run) -> None:  # noqa: ANN001
    pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'llmft[test]'")
    run = make_run(tmp_path / "run", 1e-3)
    (run / "metrics.jsonl").write_text("")  # nothing to plot: no curve, hence no PNG
    report = json.loads((run / "data_report.json").read_text())
    report["splits"]["train"].pop("length_histogram")
    (run / "data_report.json").write_text(json.dumps(report))
    files = write_report([run])
    assert files.pngs == [] and files.notes == []
    assert not (run / "report_figures").exists() and "nothing to plot" in files.html.read_text()


def test_the_report_shows_the_training_time_the_log_said(
    tmp_path: Path, make_run, no_matplotlib: None
) -> None:  # noqa: ANN001
    run = make_run(tmp_path / "run", 1e-3)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "train_seconds": 61.4}))
    assert "<td>61.4 s training, 90 s in all</td>" in write_report([run]).html.read_text()


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (0.3, 2.9, [0.0, 1.0, 2.0, 3.0]),
        (501.0, 506.0, [501.0, 502.0, 503.0, 504.0, 505.0, 506.0]),
        (0.0, 0.0083, [0.0, 0.002, 0.004, 0.006, 0.008, 0.01]),
        (4.0, 4.0, [3.6, 3.8, 4.0, 4.2, 4.4]),  # one value: a range around it
    ],
)
def test_nice_ticks_cover_the_values_at_round_steps(lo: float, hi: float, ticks: list[float]) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(ticks)


def test_tick_text_keeps_the_decimals_the_ticks_need() -> None:
    assert [tick_text(t, [0.0, 0.25, 0.5]) for t in (0.0, 0.25, 0.5)] == ["0.00", "0.25", "0.50"]
    assert tick_text(502.0, [501.0, 502.0]) == "502" and tick_text(2e-05, [0.0, 1e-05, 2e-05]) == "2e-05"
