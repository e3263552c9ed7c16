"""The report's contents: every view's panels with default settings, handed to `core.report`."""
from __future__ import annotations

from core.errors import ResidueError


def panels(run, big: bool = False) -> tuple[list, list[str]]:
    """(panels of every view that can be drawn, one line per view that could not)."""
    from .. import state, views

    out, missing = [], []
    for name, _title in views.VIEWS:
        try:
            out.extend(getattr(views, name)(run, big))
            if name == "overview":
                out.extend(views.verdict(run, big))
                out.extend(views.quality(run, big))
        except state.EngineMissing as e:
            missing.append(str(e))
        except ResidueError as e:
            missing.append(f"{name}: {e}")
    return out, missing


def verdict_rows(run) -> list[dict] | None:
    """The verdict per model for `core.report` — model, verdict, and the reason naming the measures, values and
    bands that decided it — then this run's controls with the label each had to get."""
    from .. import state

    try:
        v = state.analysis(run, "verdict")
    except (state.EngineMissing, ResidueError):
        return None
    rows = [{"method": n, "verdict": x.badge, "reason": " ".join(x.reasons)} for n, x in v.verdicts.items()]
    for c in v.controls:
        x = v.control_verdicts[c.name]
        rows.append({"method": c.name, "verdict": x.badge, "reason": f"{c.description}. " + " ".join(x.reasons),
                     "expected": c.expected, "passed": c.passed})
    return rows


def build(run) -> str:
    """The self-contained HTML report of a run."""
    from core.report import ReportFigure, render_report

    ps, missing = panels(run)
    figs = [ReportFigure(p.section, p.title, p.caption, p.fig) for p in ps]
    return render_report(run.results, figs, run.toml, verdict=verdict_rows(run),
                         notes=[f"Not in this report: {m}" for m in missing])
