"""The warm-up "Run everything" ends with: build what each page draws on its first visit with its widgets at their
defaults, so that after the run a first visit only draws (the panels are shared through the run).

`state.start` receives `warm` as a callback (the session layer never imports the views). The steps are each
view's own (`View.warm`, declared beside its panels function), with the defaults its page reads;
`test_first_visits_after_run_everything_build_nothing` fails when a page asks for something else.
"""
from __future__ import annotations

from core.errors import ResidueError

from . import story, views  # noqa: F401  (story: registers the classroom page, whose steps build views' panels)
from .analyses import EngineMissing, methods


def warm(run) -> None:
    """Build every page's first panels. A step whose analysis failed is skipped: its page says why."""
    visit = views.FirstVisit(run, (methods(run) or [None])[0], views.default_sample(run))
    for view in views.pages():
        for step in view.warm:
            try:
                step(visit)
            except (ResidueError, EngineMissing):
                pass
