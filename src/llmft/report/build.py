"""`llmft report RUN [RUN ...]`, top to bottom: read the folders → describe the charts → draw them (SVG for
the page, always; PNG beside it when matplotlib is installed) → write one self-contained HTML file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmft.report import figures as fig
from llmft.report import html, png
from llmft.report.runs import Run, Search, check_folder, is_search, load_run, load_search

MAX_TRIAL_CURVES = 20


@dataclass
class ReportFiles:
    html: Path
    pngs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the user: why there are no PNG files


def default_out(paths: list[Path]) -> Path:
    """RUN/report.html for one folder; report.html here for several."""
    return paths[0] / "report.html" if len(paths) == 1 else Path("report.html")


def write_report(paths: list[Path], out: Path | None = None) -> ReportFiles:
    """The report of ``paths`` (run folders, or search folders) at ``out``; PNGs in OUT_figures/ when
    matplotlib is installed. That folder exists afterwards only if it holds a figure."""
    from llmft.atomic import write_atomic

    for path in paths:
        check_folder(path)
    out = out or default_out(paths)
    png_dir = out.parent / f"{out.stem}_figures"
    _clear(png_dir)  # a figure of an earlier report must not pass for this one's
    pngs = png_dir if png.available() else None
    searches = [load_search(p) for p in paths if is_search(p)]
    runs = [load_run(p) for p in paths if not is_search(p)]
    _unique_names(runs)
    sections = _search_sections(searches, pngs) + _run_sections(runs, pngs)
    title = "llmft report: " + ", ".join(p.resolve().name for p in paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, html.page(title, sections))
    written = sorted(png_dir.glob("*.png")) if png_dir.is_dir() else []
    return ReportFiles(out, written, [] if pngs is not None else [png.MISSING])


def _clear(png_dir: Path) -> None:
    """Remove an earlier report's PNG files (only those, and folders left empty), never anything else."""
    if not png_dir.is_dir():
        return
    for old in png_dir.rglob("*.png"):
        old.unlink()
    for folder in sorted((p for p in png_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not any(png_dir.iterdir()):
        png_dir.rmdir()


def _run_sections(runs: list[Run], png_dir: Path | None) -> list[tuple[str, str]]:
    if not runs:
        return []
    data = "".join(html.data_section(run) for run in runs)
    return [
        ("Runs", html.summary(runs)),
        ("Curves", html.figures(fig.draw(fig.curves(runs), png_dir))),
        ("Final evaluation", html.final_table(runs)),
        ("Data", data + html.figures(fig.draw(fig.length_histograms(runs), png_dir))),
        ("Config" + (" differences" if len(runs) > 1 else ""), html.config_section(runs)),
        ("Generation samples", html.samples_section(runs)),
    ]


def _search_sections(searches: list[Search], png_dir: Path | None) -> list[tuple[str, str]]:
    sections = []
    for search in searches:
        name = search.path.resolve().name
        trials = search.trials[:MAX_TRIAL_CURVES]
        # Trial curves get their own PNG folder: their names would clash with the runs' curves.
        trial_dir = png_dir / f"search_{name}" if png_dir is not None else None
        sections += [
            (f"Search {name}: trials", html.trials_table(search)),
            (
                f"Search {name}: {search.metric} against the parameters",
                html.figures(fig.draw(fig.search_figures(search), png_dir)),
            ),
            (f"Search {name}: trial curves", html.figures(fig.draw(fig.curves(trials), trial_dir))),
        ]
    return sections


def _unique_names(runs: list[Run]) -> None:
    """Two runs both called `run` (different parents) are told apart by their parent folder."""
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = f"{run.path.resolve().parent.name}/{run.name}"
