"""The warm-up "Run everything" ends with: build what each page draws on its first visit with its widgets at their
defaults, so that after the run a first visit only draws (the panels are shared through the run).

`state.start` receives `warm` as a callback (the session layer never imports the views). The calls mirror the
pages', with the analyses' defaults read from the registry (`dashboard.analyses.default`), where the pages read
theirs; `test_first_visits_after_run_everything_build_nothing` fails when a page asks for something else.
"""
from __future__ import annotations

from typing import Any, Callable

from core.errors import ResidueError

from . import analyses, story, views
from .analyses import RUN_EVERYTHING_ATTACKS, EngineMissing, default, methods


def warm(run) -> None:
    """Build every page's first panels. A view whose analysis failed is skipped: its page says why."""

    def get(name: str, **settings):
        return analyses.analysis(run, name, **settings)

    model, sid = (methods(run) or [None])[0], views.default_sample(run)
    steps: list[Callable[[], Any]] = [
        lambda: views.overview(run), lambda: views.curves(run, False, 1),
        lambda: views.verdict(run, False, None, [views.default_yardstick(get("verdict"))],
                              with_trust=default("verdict", "with_trust"))]
    if sid is not None:
        steps.append(lambda: get("sample_predictions", sample_id=sid))
    if model is not None:
        steps += [
            lambda: views.classes(run, False, None, model),
            lambda: views.residuals(run, False, None, views.default_metric(run), run.model_names, model),
            lambda: views.landscape(run, False, None, model, "forget_loss", True, False,
                                    n_grid=default("landscape", "n_grid"),
                                    random_plane=default("landscape", "random_plane")),
            lambda: views.neighbourhood(run, False, None, model, "l2", sid,
                                        views.default_radius(get("neighbourhood").by_model[model].sweep("l2"))),
            lambda: _warm_attacks(run, RUN_EVERYTHING_ATTACKS),
            lambda: views.embedding(run, False, None, views.default_embedding_models(run), sid,
                                    n_neighbors=default("embedding", "n_neighbors"))]
        if run.results.forget_classes:
            from core.attacks import attacks as registry

            steps.append(lambda: views.relearning(run, False, None, model,
                                                  {p.name: p.default for p in registry.get("rea_class").params}))
        steps.append(lambda: story.story(run))  # the story's steps (each builds its own view's panels)
    steps.append(lambda: views.quality(run, False, None, model, sid))
    for step in steps:
        try:
            step()
        except (ResidueError, EngineMissing):
            pass


def _warm_attacks(run, chosen) -> None:
    """The Attacks page's first visit: the default attacks, their ROC and the first score histogram."""
    results = views.attack_results(run, None, chosen, {n: {} for n in chosen})
    if results:
        names = list(dict.fromkeys(r.attack for r in results))
        views.attacks(run, False, labels=views.default_roc_labels(names), results=results, scale="linear")
        views.score_histogram(run, False, results, names[0], run.model_names[0])

