"""The self-contained HTML report of a run: every view's panels with default settings, drawn by the same pure
figure functions the pages use, handed to `core.report`. Needs no running Streamlit: the Report page offers it
for download and the command line (`residue run --report`, `residue report DIR`) writes it.
"""
from __future__ import annotations

from pathlib import Path

from core.errors import ResidueError

from . import views
from .analyses import ANALYSES, EngineMissing, analysis

views.register(views.View("report", "Report & export", ":material/description:", 100, section="Export"))  # its page


def panels(run, big: bool = False) -> tuple[list, list[str]]:
    """(panels of every view that can be drawn, one line per view that could not)."""
    out, missing = [], []
    for view in views.in_report():
        try:
            for part in view.report:
                out.extend(part(run, big))
        except EngineMissing as e:
            missing.append(str(e))
        except ResidueError as e:
            missing.append(f"{view.name}: {e}")
    return out, missing


def verdict_rows(run) -> list[dict] | None:
    """The verdict per model for `core.report` — model, verdict, and the reason naming the measures, values and
    bands that decided it — then this run's controls with the label each had to get."""
    try:
        v = analysis(run, "verdict")
    except (EngineMissing, ResidueError):
        return None
    rows = [{"method": n, "verdict": x.badge, "reason": " ".join(x.reasons)} for n, x in v.verdicts.items()]
    for c in v.controls:
        x = v.control_verdicts[c.name]
        rows.append({"method": c.name, "verdict": x.badge, "reason": f"{c.description}. " + " ".join(x.reasons),
                     "expected": c.expected, "passed": c.passed})
    return rows


def failures(run, said: list[str] = ()) -> list[str]:
    """One line per analysis of "Run everything" that failed on this run (but those a line in `said` quotes)."""
    return [f"{ANALYSES[n].title if n in ANALYSES else n}: {why}" for n, why in run.failed.items()
            if not any(why in line for line in said)]


def build(run) -> str:
    """The self-contained HTML report of a run (what exists, and a line for each thing that failed)."""
    from core.report import ReportFigure, render_report

    ps, missing = panels(run)
    figs = [ReportFigure(p.section, p.title, p.caption, p.fig) for p in ps]
    return render_report(run.results, figs, run.toml, verdict=verdict_rows(run),
                         notes=[f"Not in this report: {m}" for m in missing] + failures(run, missing))


def write(run, path: str | Path) -> Path:
    """Write the report of `run` to `path` (one line on failure, as every bad output path)."""
    p = Path(path)
    try:
        p.write_text(build(run), encoding="utf-8")
    except OSError as e:
        raise ResidueError(f"cannot write the report to '{p}': {e.strerror or e}.") from None
    return p
