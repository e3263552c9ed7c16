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
        except state.EngineMissing as e:
            missing.append(str(e))
        except ResidueError as e:
            missing.append(f"{name}: {e}")
    return out, missing


def verdict_rows(run) -> list[dict] | None:
    """The verdict per method for `core.report`: method, verdict, and the reason with what decided it."""
    from .. import state

    try:
        v = state.analysis(run, "verdict")
    except (state.EngineMissing, ResidueError):
        return None
    return [{"method": n, "verdict": x.label,
             "reason": " ".join(x.reasons) + (f" (decided by: {', '.join(x.decided_by)})" if x.decided_by else "")}
            for n, x in v.verdicts.items()]


def build(run) -> str:
    """The self-contained HTML report of a run."""
    from core.report import ReportFigure, render_report

    ps, missing = panels(run)
    figs = [ReportFigure(p.section, p.title, p.caption, p.fig) for p in ps]
    return render_report(run.results, figs, run.toml, verdict=verdict_rows(run),
                         notes=[f"Not in this report: {m}" for m in missing])
