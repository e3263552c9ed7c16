"""Dashboard pages under Streamlit's AppTest: every page renders without an exception and shows its key
elements; bad inputs end in one readable st.error, never a traceback.

A tiny preset (3 epochs, a 32-unit MLP) stands in for the classroom default so the whole file runs in
seconds; a temporary RESIDUE_CACHE keeps the user's model cache out of it.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

streamlit = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
SIDEBAR = str(ROOT / "tests" / "apps" / "sidebar_app.py")  # the sidebar without st.navigation (see there why)

TINY = """# title: Tiny test preset
# about: Three epochs, a small MLP.
seed = 3

[data]
name = "digits"

[data.forget]
kind = "class"
classes = [7]

[model]
name = "mlp"
hidden = [32]

[recipe]
epochs = 3
batch_size = 256

[[methods]]
name = "finetune"
epochs = 1

[[methods]]
name = "ssd"
"""

MOONS = """# title: Tiny moons
seed = 0

[data]
name = "moons"

[data.options]
n_samples = 300

[data.forget]
kind = "random"
count = 10

[model]
name = "mlp"
hidden = [16]

[recipe]
epochs = 30  # fewer and θ_o stays at chance on 165 points: no verdict (test_no_verdict_on_a_theta_o...)

[[methods]]
name = "finetune"
epochs = 1
"""

QUALITY_N = 4  # models per pool of the forgetting-quality analysis in these tests (the product's default: 32)



def _pages() -> list[str]:
    """Every page the app's navigation shows, from the views' declarations (no list to keep here)."""
    from dashboard import report, story, views  # noqa: F401  (report and story declare their pages)

    return [v.name for v in views.pages()]


PAGES = _pages()


@pytest.fixture(scope="module", autouse=True)
def environment(tmp_path_factory):
    """Temporary model cache and tiny presets for every AppTest in this module."""
    presets = tmp_path_factory.mktemp("presets")
    (presets / "forget_digit_7.toml").write_text(TINY)  # the default slug: a fresh session runs it at once
    (presets / "tiny_moons.toml").write_text(MOONS)
    from core.cache import default_root

    old = {k: os.environ.get(k) for k in ("RESIDUE_CACHE", "RESIDUE_PRESETS_DIR", "RESIDUE_AUTORUN", "NUMBA_CACHE_DIR")}
    # UMAP's compiled code is per installation, not per experiment: keep it where the app keeps it (or every run
    # of this file would compile it for half a minute)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(default_root() / "numba"))
    os.environ["RESIDUE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["RESIDUE_PRESETS_DIR"] = str(presets)
    os.environ["RESIDUE_AUTORUN"] = "1"
    from dashboard import analyses, state

    state.model_store.clear()
    state.runs.clear()
    quality = analyses.ANALYSES["quality"].defaults
    assert quality == {"n": 32, "protocol": "A"}  # the product's defaults...
    quality["n"] = QUALITY_N  # ...and this file's: pools of 32 models each take most of a minute on 2 shared cores
    yield
    quality["n"] = 32
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    state.model_store.clear()
    state.runs.clear()


def app(autorun: bool = True, script: str = APP) -> AppTest:
    os.environ["RESIDUE_AUTORUN"] = "1" if autorun else "0"
    at = AppTest.from_file(script, default_timeout=300)  # a busy 2-core machine
    return at.run()


def form_app() -> AppTest:
    """The sidebar form alone (no automatic run), for widget and bad-input tests."""
    return app(autorun=False, script=SIDEBAR)


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def no_exception(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def sidebar_button(at, key):
    return next(b for b in at.button if b.key == key)


def run_preset(slug: str):
    """The finished run of one preset, run from the sidebar form (AppTest loses the sidebar of dashboard/app.py on
    reruns: see tests/apps/sidebar_app.py); show it with `at.session_state["run_key"] = run.key`."""
    from dashboard import state

    side = form_app()
    side.selectbox(key="preset_pick").set_value(slug).run()
    sidebar_button(side, "run").click().run()
    no_exception(side)
    run = state.runs().get(side.session_state["run_key"])
    assert not run.failed, run.failed
    return run


@pytest.fixture(scope="module")
def ran():
    """One session after its automatic first run of the default (tiny) preset."""
    at = app()
    no_exception(at)
    return at


# ---------------------------------------------------------------------------------------------
# every page
# ---------------------------------------------------------------------------------------------
def test_fresh_visit_runs_the_default_preset_without_touching_anything(ran):
    assert ran.session_state["preset"] == "forget_digit_7"
    assert ran.session_state["run_key"] is not None
    assert not errors(ran)
    assert len(ran.get("plotly_chart")) >= 1  # the story's first figure
    assert ran.metric  # forget accuracy of θ_r and the closest method


# per page: the least number of figures once everything has run (1 for a page not named), and other key elements
EXPECT = {"overview": 6, "classes": 3, "residuals": 3, "landscape": 2, "neighbourhood": 3, "attacks": 3,
          "relearning": 2, "report": 0}
TABLES = {"overview": 3, "residuals": 1, "landscape": 1, "neighbourhood": 2, "attacks": 1, "relearning": 1,
          "classes": 1, "embedding": 1}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(ran, page):
    ran.switch_page(f"pages/{page}.py").run()
    no_exception(ran)
    assert not errors(ran), errors(ran)
    assert ran.title, "page has a title"
    infos = " ".join(i.value for i in ran.info)
    assert "arrives with" not in infos and "waits for" not in infos, infos  # every view is wired
    assert "computing in the background" not in infos, infos  # the run has finished every default analysis
    assert len(ran.get("plotly_chart")) >= EXPECT.get(page, 1), (page, len(ran.get("plotly_chart")), infos)
    assert len(ran.dataframe) >= TABLES.get(page, 0), (page, len(ran.dataframe))
    if page == "overview":  # θ_o has no ratio to retraining: a dash (its meaning in the column's help), not None
        outside = next(d for d in ran.dataframe if "× retrain" in d.value.columns)
        assert outside.value["× retrain"].isna()[0] and outside.proto.placeholder == "—"
        badges = " ".join(str(h.proto.body) for h in ran.get("html"))
        assert "residue-badge" in badges and any(v in badges for v in ("clean", "pseudo-converged",
                                                                        "under-unlearned"))
        def judged() -> list[str]:
            return [m.value for m in ran.markdown if m.value.startswith("**") and " — " in m.value]

        closed = len(ran.dataframe)
        assert not judged()  # the closed expander draws none of its tables...
        ran.session_state["ov.every"] = True  # ...until it is opened (what a click on it does)
        ran.run()
        no_exception(ran)
        assert judged() and len(ran.dataframe) == closed + len(judged()), "one table of evidence per model"
        ran.session_state["ov.every"] = False
        ran.run()
    elif page == "report":
        assert {"Results (.json)", "Config (.toml)"} <= {d.label for d in ran.get("download_button")}
        assert "waits for" not in " ".join(m.value for m in ran.markdown)


def test_attacks_roc_axes_toggle_between_linear_and_log(ran):
    """One ROC figure at a time on the page (the report keeps both): linear by default, log-log on request."""
    def log_axes() -> list[bool]:
        return ['"type":"log"' in c.proto.spec.replace(" ", "") for c in ran.get("plotly_chart")]

    ran.switch_page("pages/attacks.py").run()
    assert not any(log_axes())
    ran.session_state["atk.scale"] = "log-log"
    ran.run()
    no_exception(ran)
    assert sum(log_axes()) == 1
    ran.session_state["atk.scale"] = "linear"
    ran.run()


def test_roc_curve_choice_has_one_source_and_shows_what_is_drawn(ran):
    """The curves box gets its default from session state only (no `default=` beside it: Streamlit warns when both
    set a widget), and a choice this run cannot draw goes back to the default, so the box shows what is drawn."""
    ran.switch_page("pages/attacks.py").run()
    box = ran.multiselect(key="atk.labels")
    assert box.value == ["lira_online", "rea_class"] and not box.proto.default
    ran.session_state["atk.labels"] = ["no_such_attack"]
    ran.run()
    no_exception(ran)
    assert ran.multiselect(key="atk.labels").value == ["lira_online", "rea_class"]


def test_attack_choice_outlives_its_closed_settings_form(ran):
    """The settings form is drawn only while open; what was applied there stays applied after it closes."""
    ran.switch_page("pages/attacks.py").run()
    assert not ran.get("multiselect") or all(m.key != "atk.chosen" for m in ran.multiselect)  # closed: not drawn
    before = set(ran.dataframe[0].value["attack"])
    assert "lira_online" in before
    ran.toggle(key="atk.edit").set_value(True).run()
    ran.multiselect(key="atk.chosen").set_value(["mia_threshold"])
    next(b for b in ran.get("button") if "Apply" in str(b.proto.label)).click().run()
    no_exception(ran)
    ran.toggle(key="atk.edit").set_value(False).run()
    after = set(ran.dataframe[0].value["attack"])
    assert "lira_online" not in after and after and after < before
    ran.toggle(key="atk.edit").set_value(True).run()
    assert ran.multiselect(key="atk.chosen").value == ["mia_threshold"]  # reopened with what was applied
    del ran.session_state["atk.applied"]  # back to the defaults for the other tests
    ran.toggle(key="atk.edit").set_value(False).run()


def run_everything(run) -> list[str]:
    """What "Run everything" computes for `run`, read from the registry (a new analysis is checked unlisted)."""
    from core.analysis import pending

    return [a.name for a in pending(run.copy(share_analyses=False))]


def test_each_attack_result_is_listed_once(ran):
    """LiRA on θ_u is reported by `lira` and again beside the sample-wise ReA: the page lists and draws it once."""
    from dashboard import analyses, state, views

    run = state.runs().get(ran.session_state["run_key"])
    raw = [r for n in ("lira", "rea_sample") for r in analyses.cached_analysis(run, f"attack:{n}").results]
    pairs = [(r.attack, r.target) for r in views.attack_results(run, chosen=["lira", "rea_sample"])]
    assert len(pairs) == len(set(pairs)) < len(raw)


def test_run_everything_computed_every_view(ran):
    from dashboard import analyses, state

    run = state.runs().get(ran.session_state["run_key"])
    assert not run.failed, run.failed
    everything = run_everything(run)
    assert {"verdict", "residuals", "landscape", "attack:rea_class", "quality"} <= set(everything)
    for name in everything:
        assert analyses.cached_analysis(run, name) is not None, name
    for name in ("trust", "attack:leak"):  # expensive: behind explicit buttons
        assert analyses.cached_analysis(run, name) is None, name


def test_changing_page_never_recomputes(ran):
    from dashboard import state

    run = state.runs().get(ran.session_state["run_key"])
    for page in PAGES:  # a first visit may add what only pages ask for (one sample's predictions...)
        ran.switch_page(f"pages/{page}.py").run()
    before = run.computed()
    for page in PAGES:
        ran.switch_page(f"pages/{page}.py").run()
    assert ran.session_state["run_key"] == run.key
    assert state.runs().get(run.key) is run  # the same Run object, not a new one
    assert run.computed() == before  # nothing computed again, nothing new


def test_figures_are_built_once_per_run_and_settings_for_every_session(ran, monkeypatch):
    """Views memoise their panels on the run: the same settings give the same figures (no rebuild, shared by
    sessions), other settings their own, a view whose analysis was not ready is built again later, and
    sessions asking at once wait for one build."""
    import threading
    import time

    from dashboard import state, views
    from dashboard.figures import overview

    run = state.runs().get(ran.session_state["run_key"])
    assert views.classes(run, False) is views.classes(run, False) != []
    sid = views.default_sample(run)  # a numpy number names the same settings as the plain one
    assert views.neighbourhood(run, False, None, None, "l2", sid) is views.neighbourhood(run, False, None, None, "l2",
                                                                                       np.int64(sid))
    assert views.classes(run, True) is not views.classes(run, False)  # presentation mode: its own figures
    assert views.residuals(run, False, lambda name, **kw: None, "cka_o") == []  # pending: drawn empty, not kept
    assert views.residuals(run, False, None, "cka_o") != []

    fresh = run.copy()
    calls, build = [], overview.accuracy_bars

    def slow(*a, **k):
        calls.append(1)
        time.sleep(0.3)
        return build(*a, **k)

    monkeypatch.setattr(overview, "accuracy_bars", slow)
    got = [None] * 4
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, views.overview(fresh, False))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(g is got[0] for g in got)


def test_first_visits_after_run_everything_build_nothing(ran):
    """Run everything ends by building what each page draws on a first visit (`warmup.warm`): a new visitor's
    first visit to every page then builds no figure and computes no analysis. Fails when a page's defaults
    and the warm-up's drift apart."""
    from core.analysis.base import LRU, MAX_DERIVED
    from dashboard import state, warmup

    run = state.runs().get(ran.session_state["run_key"])
    run.panels = LRU(MAX_DERIVED)  # only what the warm-up builds
    warmup.warm(run)
    warmed, computed = run.panels.keys(), set(run.computed())
    at = app()  # a new session; the run is in memory
    assert at.session_state["run_key"] == run.key
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        no_exception(at)
        assert set(run.panels.keys()) == set(warmed), (page, set(run.panels.keys()) - set(warmed))
    assert set(run.computed()) == computed


def test_the_warm_up_skips_a_view_whose_analysis_failed(ran, monkeypatch):
    from core.errors import ResidueError
    from dashboard import analyses, state, warmup

    run = state.runs().get(ran.session_state["run_key"])
    fresh = run.copy()
    real = analyses.analysis

    def failing(r, name, *a, **k):
        if name == "neighbourhood":
            raise ResidueError("the neighbourhood failed")
        return real(r, name, *a, **k)

    monkeypatch.setattr(analyses, "analysis", failing)
    warmup.warm(fresh)
    built = {view for view, _ in fresh.panels.keys()}
    assert "neighbourhood" not in built and {"overview", "classes", "attacks", "embedding"} <= built


def test_a_restarted_server_serves_analyses_from_the_result_cache(ran, monkeypatch):
    """A new Run for the same key, as after a server restart, reads what "Run everything" computed from the
    store's result cache: equal results, nothing computed."""
    import json

    from dashboard import analyses, state

    run = state.runs().get(ran.session_state["run_key"])
    fresh = run.copy(share_analyses=False)

    def must_not_compute(*a, **k):
        raise AssertionError("computed again")

    for a in analyses.ANALYSES.values():
        if a.persist:
            monkeypatch.setattr(a, "compute", must_not_compute)
    for name in run_everything(run):
        got, first = analyses.analysis(fresh, name), analyses.cached_analysis(run, name)
        assert type(got) is type(first) and got is not first
        assert json.dumps(got.to_dict(), sort_keys=True, default=str) == \
            json.dumps(first.to_dict(), sort_keys=True, default=str), name


def test_a_page_setting_recomputes_only_its_analysis(ran):
    from dashboard import analyses, state

    run = state.runs().get(ran.session_state["run_key"])
    ran.switch_page("pages/landscape.py").run()
    before = run.computed()
    ran.select_slider(key="land.grid").set_value(11).run()
    no_exception(ran)
    new = [k for k in run.computed() if k not in before]
    assert len(new) == 1 and all(run.computed()[k] is v for k, v in before.items())
    assert analyses.cached_analysis(run, "landscape", n_grid=11) is not None
    ran.select_slider(key="land.grid").set_value(31).run()
    assert set(run.computed()) == set(before) | set(new)  # back to the default: taken from memory


def test_one_followed_sample_across_views(ran):
    from dashboard import analyses, state

    run = state.runs().get(ran.session_state["run_key"])
    sid = int(run.results.forget_indices[3])
    ran.switch_page("pages/neighbourhood.py").run()
    ran.selectbox(key="sample.pick.neighbourhood").set_value(sid).run()
    no_exception(ran)
    assert ran.session_state["sample.id"] == sid
    assert any(f"#{sid}" in s.value for s in ran.subheader), [s.value for s in ran.subheader]
    for page in ("embedding", "attacks", "classes"):
        ran.switch_page(f"pages/{page}.py").run()
        no_exception(ran)
        assert ran.selectbox(key=f"sample.pick.{page}").value == sid, page
    ran.switch_page("pages/embedding.py").run()
    fig = next(c for c in ran.get("plotly_chart") if "followed sample" in c.proto.spec)
    assert f"followed sample #{sid}" in fig.proto.spec  # starred in the embedding
    preds = analyses.cached_analysis(run, "sample_predictions", sample_id=sid)
    assert {r["model"] for r in preds.rows} == set(run.model_names)  # each model's prediction


def test_the_time_chart_reads_as_times_and_keeps_every_label():
    """Log axis ticks at 1-2-5 seconds with their unit (plotly's own show bare minor digits), labels past each bar's
    end with room kept for them on the right (inside or clipped, plotly dropped some)."""
    import math
    import re
    from types import SimpleNamespace as NS

    from dashboard.figures.overview import time_bars

    models = [NS(name=n, seconds=t, cached=False, ratio_to_retrain=r)
              for n, t, r in (("original", 41.0, None), ("retrain", 38.0, 1.0), ("finetune", 0.9, 0.024),
                              ("scrub", 3.1, 0.082))]
    fig = time_bars(NS(models=models))
    ax, bar = fig.layout.xaxis, fig.data[0]
    assert all(re.fullmatch(r"(0\.0*[125]|[125]0*) s", t) for t in ax.ticktext), ax.ticktext
    assert [float(t[:-2]) for t in ax.ticktext] == list(ax.tickvals) and 0.5 in ax.tickvals and 50 in ax.tickvals
    assert bar.textposition == "outside" and bar.cliponaxis is False and len(bar.text) == 4
    lo, hi = ax.range
    assert (math.log10(41.0) - lo) / (hi - lo) <= 0.66  # a third of the width left for the longest bar's label


def test_a_click_in_the_embedding_lands_on_a_forget_sample():
    """Streamlit turns a click in lasso mode into a bare event (no selection), and plotly gives a click to the
    smallest marker under the cursor: the figure opens in zoom mode and only forget points take the hover."""
    from dashboard.figures.embedding import embedding_figure, point_ids

    emb = {"models": ["original", "retrain"], "part": ["forget", "retain", "test", "forget"], "label": [7, 1, 7, 7],
           "sample_id": [10, 11, 12, 13], "coords": {m: [[0, 0], [0, 0.01], [0.01, 0], [1, 1]]
                                                     for m in ("original", "retrain")}}
    fig = embedding_figure(emb, selected=13)
    assert fig.layout.dragmode not in ("lasso", "select") and "select" in fig.layout.clickmode
    answers = {t.name.split(" #")[0] for t in fig.data if t.hoverinfo != "skip"}
    assert answers == {"forget set D_f", "followed sample"}, answers
    forget = next(i for i, t in enumerate(fig.data) if t.name == "forget set D_f")
    assert point_ids(fig, {"points": [{"curve_number": forget, "point_index": 1}]}) == [13]


def test_five_seed_controls_behind_a_button_and_a_failed_measure_is_named(ran):
    from dashboard import analyses, state

    ran.switch_page("pages/residuals.py").run()
    title = "How far each measure can be trusted: its five-seed controls"
    assert title not in [s.value for s in ran.subheader]
    sidebar_button(ran, "res.trust").click().run()  # the verdict's controls on four more seeds
    no_exception(ran)
    assert title in [s.value for s in ran.subheader]
    trust = analyses.cached_analysis(state.runs().get(ran.session_state["run_key"]), "trust")
    assert len(trust.seeds) == 5 and trust.verdict_rates()["control: θ_o"][1] == 5
    failed = {k.split("@")[0] for k, e in trust.entries.items() if e.family != "context" and not e.passed and "@" in k}
    for metric in sorted(failed)[:1]:  # a per-layer measure that failed its controls says so above its heatmap
        ran.selectbox(key="res.metric").set_value(metric).run()
        assert any("failed its five-seed controls" in w.value for w in ran.warning)
    ran.switch_page("pages/overview.py").run()
    ran.toggle(key="ov.trust").set_value(True).run()  # the verdict re-judged without the measures that failed
    no_exception(ran)
    assert not errors(ran)


def test_story_steps_forward_and_back(ran):
    ran.switch_page("pages/story.py").run()
    sidebar_button(ran, "story.next").click().run()
    no_exception(ran)
    assert ran.session_state["story.step"] == 1
    sidebar_button(ran, "story.prev").click().run()
    assert ran.session_state["story.step"] == 0


def test_report_builds_self_contained_html(ran):
    ran.switch_page("pages/report.py").run()
    sidebar_button(ran, "report.build").click().run()
    no_exception(ran)
    key, html = ran.session_state["report.html"]
    assert key == ran.session_state["run_key"]
    assert html.count("Plotly.newPlot") >= 20  # every view's figures
    for section in ("Class views", "Residual heatmap", "Loss landscape", "Perturbation neighbourhood", "Attacks",
                    "Reminiscence (relearning)", "Embedding", "Verdict yardstick",
                    "Forgetting quality (NeurIPS 2023 competition score)", "ε per forget example"):
        assert section in html, section
    assert "class='badge'" in html and "Not in this report" not in html
    assert html.count("<script") == 2 and "<script src" not in html  # plotly.js inline, once
    assert 'id="residue-config"' in html and "seed = 3" in html


THROWAWAY_PAGE = """# A throwaway view's page (test_a_new_view_is_one_figure_and_one_page writes it).
from dashboard import ui, views

ui.header("throwaway", "Forget accuracy once more: a page and a declaration are all a view needs.")
run = ui.need_run()
if run is not None:
    for panel in views.throwaway(run, ui.big()):
        ui.show(panel, run)
"""


@pytest.fixture
def throwaway_view(tmp_path, monkeypatch):
    """A view added the way README.md says, with no other file touched: a pure figure function, a panels
    function declared with `@views.view`, and a page file (here in tmp). Unregistered afterwards.

    The panels function would live in dashboard/views.py; here it is set on the module for this test only (the
    page reads it there, as pages read every view), and the page file is given by `page=` since it is not in
    dashboard/pages/."""
    import plotly.graph_objects as go

    from dashboard import views

    def forget_accuracy_figure(results) -> go.Figure:  # the figure module's pure function
        return go.Figure(go.Bar(x=[m.name for m in results.models], y=[m.forget_acc for m in results.models]))

    page = tmp_path / "throwaway.py"
    page.write_text(THROWAWAY_PAGE)
    visits = []

    def first_visit(v):
        visits.append(v)
        return views.throwaway(v.run)

    @views.memoised  # in dashboard/views.py: @view(...) above this line, and nothing else
    def throwaway(run, big: bool = False) -> list:
        return [views.Panel("throwaway", "Forget accuracy of every model, plainly",
                            "One bar per model. It is here to show that a new view reaches every place.",
                            forget_accuracy_figure(run.results), "Throwaway view")]

    monkeypatch.setattr(views, "throwaway", throwaway, raising=False)
    views.view("Throwaway view", ":material/science:", 95, page=page, warm=(first_visit,))(throwaway)
    yield page, visits
    views.unregister("throwaway")
    assert "throwaway" not in views.REGISTRY


def test_a_new_view_is_one_figure_and_one_page(ran, throwaway_view):
    """A view declared once shows up in the navigation (a new session can open its page, which st.navigation
    refuses for a page it was not given), the Report page's list, the warm-up and the HTML report."""
    from dashboard import analyses, report, state, views, warmup

    page, visits = throwaway_view
    run = state.runs().get(ran.session_state["run_key"])
    assert [v.name for v in views.pages()][-2:] == ["throwaway", "report"]  # its order: after the views

    warmup.warm(run)
    assert [(v.run, v.model, v.sample) for v in visits] == [(run, analyses.methods(run)[0], views.default_sample(run))]
    assert "throwaway" in {name for name, _ in run.panels.keys()}

    at = app()  # a new session: its navigation is built from the declarations
    at.switch_page(str(page)).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Throwaway view"]
    assert len(at.get("plotly_chart")) == 1
    stray = page.with_name("stray.py")  # the check has teeth: a page nobody declared is not in the navigation
    stray.write_text(THROWAWAY_PAGE)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(str(stray))

    at.switch_page("pages/report.py").run()
    assert any("Throwaway view" in m.value for m in at.markdown)
    html = report.build(run)
    assert "Throwaway view" in html and "Forget accuracy of every model, plainly" in html


def test_presentation_mode_renders(ran):
    ran.session_state["big"] = True
    ran.switch_page("pages/overview.py").run()
    no_exception(ran)
    assert len(ran.get("plotly_chart")) >= 3
    ran.session_state["big"] = False
    ran.run()


def test_overview_shows_forgetting_quality_after_run_everything(ran):
    """Run everything computes the competition's score last; the Overview shows it after "From the outside", N and
    the protocol on its figures, and results.json carries it."""
    import json

    from core.quality import QualityReport
    from dashboard import analyses, state

    assert list(analyses.ANALYSES)[-1] == "quality"  # "Run everything" computes it after every other analysis
    run = state.runs().get(ran.session_state["run_key"])
    rep = analyses.cached_analysis(run, "quality")
    assert isinstance(rep, QualityReport) and rep.n == QUALITY_N and rep.protocol == "A"
    assert list(rep.methods) == analyses.methods(run) and rep.ceiling.f > rep.floor.f
    assert json.loads(run.results.to_json())["sections"]["quality"]["n"] == QUALITY_N  # in results.json
    ran.switch_page("pages/overview.py").run()
    no_exception(ran)
    heads = [s.value for s in ran.subheader]
    section = "Forgetting quality (NeurIPS 2023 competition score)"
    assert heads.index(section) > heads.index("From the outside")
    titles = [(json.loads(c.proto.spec)["layout"].get("title") or {}).get("text", "") for c in ran.get("plotly_chart")]
    shown = [t for t in titles if t.startswith(f"N = {QUALITY_N} models per pool · protocol A")]
    assert len(shown) == 2  # each method between its anchors, and one method's ε per example
    table = next(d.value for d in ran.dataframe if "F" in d.value.columns)
    assert list(table["model"]) == ["ceiling (retrains)", *rep.methods, "floor (θ_o's seeds)"]
    assert any("grows with N" in c.value for c in ran.caption)
    ran.selectbox(key="ov.quality.model").set_value(list(rep.methods)[-1]).run()
    no_exception(ran)
    assert any(f"ε per forget example: {list(rep.methods)[-1]}" in s.value for s in ran.subheader)
    ran.selectbox(key="ov.quality.model").set_value(list(rep.methods)[0]).run()


def test_clicking_an_example_of_the_quality_strip_follows_it(ran, monkeypatch):
    """A click on a dot of the ε strip follows that forget sample in every view. AppTest cannot click a plotly
    point: the selection Streamlit would hand the page (curve and point index; customdata when plotly sends it) is
    given to the page through `ui.new_selection`."""
    import json

    from dashboard import state, ui, views

    run = state.runs().get(ran.session_state["run_key"])
    ids = [int(i) for i in run.results.forget_indices]
    ran.switch_page("pages/overview.py").run()
    before = ran.session_state["sample.id"]
    fig = views.quality(run, False, None, ran.session_state["ov.quality.model"], before)[-1].fig
    curve = next(i for i, t in enumerate(fig.data) if len(t.x) == len(ids) and t.name != "ceiling (retrains)")
    real = ui.new_selection
    for point, customdata in ((7, None), (11, [ids[11], 50.0, 0.0, "separated"])):
        once = [{"points": [{"curve_number": curve, "point_index": point, "customdata": customdata}]}]
        monkeypatch.setattr(ui, "new_selection", lambda key: (once.pop() if once else None)
                            if key == "quality-examples" else real(key))
        ran.run()
        no_exception(ran)
        assert ran.session_state["sample.id"] == ids[point] != before
        traces = [{t.get("name") for t in json.loads(c.proto.spec)["data"]} for c in ran.get("plotly_chart")]
        assert any({"ceiling (retrains)", f"followed sample #{ids[point]}"} <= t for t in traces)  # starred at once
    monkeypatch.undo()
    ran.switch_page("pages/neighbourhood.py").run()
    no_exception(ran)
    assert ran.selectbox(key="sample.pick.neighbourhood").value == ids[11]  # and followed in the other views
    ran.selectbox(key="sample.pick.neighbourhood").set_value(views.default_sample(run)).run()


def test_forgetting_quality_is_cancellable_and_skipped_for_a_theta_o_that_learned_nothing(ran):
    from dataclasses import replace

    from core import Cancelled, Progress
    from core.errors import ResidueError
    from dashboard import analyses, state, views

    run = state.runs().get(ran.session_state["run_key"])
    fresh = run.copy(share_analyses=False)
    stop = Progress(lambda e: stop.cancel())  # Stop pressed as the first pool starts
    with pytest.raises(Cancelled):
        analyses.analysis(fresh, "quality", stop, n=QUALITY_N + 1)
    assert analyses.cached_analysis(fresh, "quality", n=QUALITY_N + 1) is None
    degenerate = analyses.Run("degenerate", run.config, run.exp,
                           replace(run.results, warnings=["θ_o is no better than the most frequent class."]),
                           run.data_label)
    assert not analyses.ANALYSES["quality"].applies(degenerate)  # not in "Run everything"
    assert views.quality(degenerate, False) == []  # no panel, in the page or the report
    with pytest.raises(ResidueError, match="No forgetting quality: θ_o is no better"):
        analyses.analysis(degenerate, "quality")


def test_quality_figures_show_n_the_anchors_and_every_example():
    """Pure figures from a report's dict (as results.json holds it): N and protocol in both titles, the anchors as
    bands behind the rows, a method that could not be scored said so, every example clickable by its dataset index,
    a separated example drawn in the cap column."""
    from core.quality import forgetting_quality
    from dashboard.figures import quality as f
    from dashboard.figures.embedding import point_ids

    rng = np.random.default_rng(0)
    retrains = rng.normal(0, 1, (8, 5))
    near, far = retrains + rng.normal(0, 0.3, (8, 5)), retrains + 40.0
    acc = {"retain": np.full(8, 0.9), "test": np.full(8, 0.8)}
    score = {k: forgetting_quality(x, retrains, acc, acc, halves=4).to_dict() for k, x in
             (("ceiling", rng.normal(0, 1, (8, 5))), ("m", near), ("floor", far))}
    report = {"n": 8, "protocol": "B", "forget_indices": [5, 9, 14, 20, 31], "ceiling": score["ceiling"],
              "floor": score["floor"], "methods": {"m": {"score": score["m"], "note": ""},
                                                    "broken": {"score": None, "note": "not scored: 3 of 8 ran"}}}
    fig = f.score_figure(report)
    assert fig.layout.title.text.startswith("N = 8 models per pool · protocol B")
    kinds = [s.type for s in fig.layout.shapes]  # in F and in the final score: each anchor's line, and its band
    assert kinds.count("line") == 4 and kinds.count("rect") == 2  # (θ_o + 40 scores 0 ± 0: a line, no band)
    assert any("not scored: 3 of 8 ran" in a.text for a in fig.layout.annotations)
    strip = f.epsilon_figure(report, "m", selected=14)
    assert strip.layout.title.text == fig.layout.title.text
    rows = [t for t in strip.data if len(t.x) == 5]
    assert [t.name for t in rows] == ["ceiling (retrains)", "m", "floor (θ_o's seeds)"]
    assert max(rows[2].x) == max(strip.layout.xaxis.tickvals)  # θ_o + 40: every example at the cap
    assert sum(t.name == "followed sample #14" for t in strip.data) == 3  # starred in every row
    assert point_ids(strip, {"points": [{"curve_number": strip.data.index(rows[1]), "point_index": 3}]}) == [20]


# ---------------------------------------------------------------------------------------------
# presets and config round trip
# ---------------------------------------------------------------------------------------------
def test_shipped_presets_are_valid(monkeypatch):
    from core.config import loads
    from dashboard import form

    monkeypatch.delenv("RESIDUE_PRESETS_DIR")
    ps = form.presets()
    assert {"forget_digit_7", "forget_random_10pct", "moons_neighbourhood"} <= set(ps)
    assert next(iter(ps)) == "forget_digit_7"
    for p in ps.values():
        assert p.title and p.about
        loads(p.text)


def test_choosing_a_preset_fills_the_form():
    at = form_app()
    at.selectbox(key="preset_pick").set_value("tiny_moons").run()
    no_exception(at)
    assert at.session_state["f.dataset"] == "moons"
    assert at.session_state["f.forget.kind"] == "random"
    assert at.session_state["f.methods"] == ["finetune"]


def test_config_download_and_upload_reproduce_the_run(ran):
    from core.config import loads
    from dashboard import state

    run = state.runs().get(ran.session_state["run_key"])
    text = run.toml
    assert loads(text).hash() == run.config.hash()
    fresh = form_app()
    fresh.selectbox(key="preset_pick").set_value("tiny_moons").run()
    fresh.file_uploader(key="cfg_upload").set_value(("exp.toml", text.encode(), "application/toml")).run()
    no_exception(fresh)
    assert fresh.session_state["form_key"] == run.key  # same config -> same run key -> the same models


def open_section(at, key: str) -> None:
    """What a click on a closed sidebar section does: it reruns with the section open."""
    at.session_state[key] = True
    at.run()
    no_exception(at)


def test_method_widgets_come_from_param_declarations():
    from core.unlearn import methods

    at = form_app()
    at.multiselect(key="f.methods").set_value(["finetune", "scrub"]).run()
    no_exception(at)
    assert {w.key for w in at.number_input} == {"f.seed"}  # closed sections draw no widgets
    open_section(at, "open.m.finetune")
    open_section(at, "open.m.scrub")
    keys = {w.key for w in at.number_input}
    for name in ("finetune", "scrub"):
        for p in methods.get(name).params:
            if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
                assert f"f.m.{name}.{p.name}" in keys


# ---------------------------------------------------------------------------------------------
# bad inputs: one readable line, no exception
# ---------------------------------------------------------------------------------------------
def _run_disabled(at) -> bool:
    return sidebar_button(at, "run").disabled


def test_malformed_npz_upload_is_refused_readably():
    at = form_app()
    at.selectbox(key="f.dataset").set_value("npz").run()
    no_exception(at)
    assert any("Upload a .npz" in e for e in errors(at))
    at.file_uploader(key="up.data.npz").set_value(("data.npz", b"this is not a zip", "application/zip")).run()
    no_exception(at)
    assert any("not a NumPy .npz archive" in e for e in errors(at)), errors(at)
    assert _run_disabled(at)


def test_malformed_csv_upload_is_refused_readably():
    at = form_app()
    at.selectbox(key="f.dataset").set_value("csv").run()
    at.file_uploader(key="up.data.csv").set_value(("d.csv", b"a,b,label\n1,x,0\n", "text/csv")).run()
    no_exception(at)
    assert any("csv" in e and ("non-numeric" in e or "ragged" in e) for e in errors(at)), errors(at)
    assert _run_disabled(at)


def test_uploaded_table_is_standardised_by_a_visible_option_recorded_in_the_config(monkeypatch):
    """The upload section shows the loader's `standardize` option as a checkbox, on by default; the config
    a run is keyed by (and its report shows) carries the choice."""
    from sklearn.datasets import load_wine

    from dashboard import sidebar

    w = load_wine()
    text = "label," + ",".join(f"f{i}" for i in range(13)) + "\n" + "".join(
        f"{t}," + ",".join(f"{v:g}" for v in x) + "\n" for x, t in zip(w.data, w.target))
    seen = []
    key = sidebar.run_key
    monkeypatch.setattr(sidebar, "run_key", lambda config, *a: seen.append(config) or key(config, *a))
    at = form_app()
    at.selectbox(key="f.dataset").set_value("csv").run()
    at.file_uploader(key="up.data.csv").set_value(("wine.csv", text.encode(), "text/csv")).run()
    no_exception(at)
    assert not errors(at), errors(at)
    box = at.checkbox(key="f.dopt.csv.standardize")
    assert box.value is True and box.label == "Standardise features" and "training split" in box.help
    assert seen[-1].data.options["standardize"] is True and at.session_state["upload_ds"][1].standardize
    before = at.session_state["form_key"]
    box.uncheck().run()
    no_exception(at)
    assert seen[-1].data.options["standardize"] is False and not at.session_state["upload_ds"][1].standardize
    assert at.session_state["form_key"] != before


def test_good_npz_upload_is_used_and_stays_in_the_session():
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, X=rng.normal(size=(200, 2)).astype(np.float32), y=rng.integers(0, 3, 200))
    at = form_app()
    at.selectbox(key="f.dataset").set_value("npz").run()
    at.file_uploader(key="up.data.npz").set_value(("pts.npz", buf.getvalue(), "application/octet-stream")).run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert not _run_disabled(at)
    # the sidebar names the upload and claims no preset (neither the box nor the preset's caption)
    captions = " ".join(c.value for c in at.caption)
    assert "Uploaded data in use: **pts.npz**" in captions and "Three epochs" not in captions, captions
    assert at.selectbox(key="preset_pick").value is None
    at.selectbox(key="preset_pick").set_value("forget_digit_7").run()  # a preset replaces the upload
    assert at.session_state["f.dataset"] == "digits" and "Three epochs" in " ".join(c.value for c in at.caption)
    other = form_app()  # another session sees none of it
    assert "upload_ds" not in other.session_state
    assert other.session_state["f.dataset"] == "digits"


def test_out_of_range_hyperparameter_in_an_uploaded_config():
    at = form_app()
    bad = TINY.replace('name = "finetune"\nepochs = 1', 'name = "finetune"\nlr = 5.0')
    at.file_uploader(key="cfg_upload").set_value(("bad.toml", bad.encode(), "application/toml")).run()
    no_exception(at)
    assert any("lr must be in" in e for e in errors(at)), errors(at)


def test_a_config_nested_thousands_deep_is_refused_readably():
    """6 kB of '[' exhausted the TOML parser's stack: the app's exception box, before issue 24."""
    at = form_app()
    deep = "x = " + "[" * 3000 + "]" * 3000
    at.file_uploader(key="cfg_upload").set_value(("deep.toml", deep.encode(), "application/toml")).run()
    no_exception(at)
    assert any("Config 'deep.toml' refused" in e and "nested too deeply" in e for e in errors(at)), errors(at)


def test_out_of_range_hyperparameter_widget_value_is_kept_in_range():
    """The widget carries the declared range, so Streamlit itself keeps a typed value inside it."""
    from core.unlearn import methods

    lr = next(p for p in methods.get("finetune").params if p.name == "lr")
    at = form_app()
    open_section(at, "open.m.finetune")
    w = at.number_input(key="f.m.finetune.lr")
    assert (w.min, w.max) == (lr.low, lr.high)
    w.set_value(5.0).run()
    no_exception(at)
    assert lr.low <= at.session_state["f.m.finetune.lr"] <= lr.high


def test_a_closed_section_keeps_its_values_and_they_still_make_the_config():
    """Closing a section stops drawing its widgets (the browser's page switch got lighter), never its values."""
    at = form_app()
    before = at.session_state["form_key"]
    open_section(at, "open.recipe")
    open_section(at, "open.m.finetune")
    at.number_input(key="f.recipe.epochs").set_value(3).run()
    at.number_input(key="f.m.finetune.lr").set_value(0.005).run()
    changed = at.session_state["form_key"]
    assert changed != before
    at.session_state["open.recipe"] = at.session_state["open.m.finetune"] = False
    for _ in range(3):  # several reruns with nothing drawn: Streamlit would forget a widget's value here
        at.run()
        no_exception(at)
    assert at.session_state["f.recipe.epochs"] == 3 and at.session_state["f.m.finetune.lr"] == 0.005
    assert at.session_state["form_key"] == changed
    assert "f.recipe.epochs" not in {w.key for w in at.number_input}


def test_empty_forget_set_is_refused_readably():
    at = form_app()
    at.multiselect(key="f.forget.classes").set_value([]).run()
    no_exception(at)
    assert any("Forget set is empty" in e for e in errors(at)), errors(at)
    assert _run_disabled(at)
    at.radio(key="f.forget.kind").set_value("indices").run()
    no_exception(at)
    assert any("Forget set is empty" in e for e in errors(at)), errors(at)
    at.text_input(key="f.forget.indices").set_value("1, two").run()
    no_exception(at)
    assert any("whole numbers" in e for e in errors(at)), errors(at)


def test_bad_model_widths_are_refused_readably():
    at = form_app()
    at.text_input(key="f.mopt.mlp.hidden").set_value("0").run()
    no_exception(at)
    assert any("hidden widths" in e for e in errors(at)), errors(at)


def test_idx_folder_outside_the_data_dir_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RESIDUE_DATA", str(tmp_path))
    at = form_app()
    at.selectbox(key="f.dataset").set_value("idx").run()
    at.text_input(key="f.dopt.idx.folder").set_value("/etc").run()
    no_exception(at)
    assert any("outside the data directory" in e for e in errors(at)), errors(at)


def test_checkpoints_are_shape_checked_and_never_unpickled():
    from core.models import build_model

    at = form_app()
    up = at.file_uploader(key="up.ckpt")
    up.set_value(("junk.pt", b"not a checkpoint", "application/octet-stream")).run()
    no_exception(at)
    assert any("a text file, not a PyTorch checkpoint" in e for e in errors(at)), errors(at)

    wrong = io.BytesIO()
    torch.save(build_model("mlp", (1, 8, 8), 10, hidden=[33]).state_dict(), wrong)
    at.file_uploader(key="up.ckpt").set_value(("wrong.pt", wrong.getvalue(), "application/octet-stream")).run()
    no_exception(at)
    assert any("shape" in e for e in errors(at)), errors(at)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = io.BytesIO()
    torch.save({"x": Evil()}, evil)
    at.file_uploader(key="up.ckpt").set_value(("evil.pt", evil.getvalue(), "application/octet-stream")).run()
    no_exception(at)
    assert any("weights_only" in e for e in errors(at)), errors(at)

    good = io.BytesIO()
    torch.save(build_model("mlp", (1, 8, 8), 10, hidden=[32]).state_dict(), good)
    at.file_uploader(key="up.ckpt").set_value(("good.pt", good.getvalue(), "application/octet-stream")).run()
    no_exception(at)
    assert not errors(at), errors(at)
    assert "checkpoint good.pt" in at.session_state["form_key"] or at.session_state["form_key"]


# ---------------------------------------------------------------------------------------------
# the service layer and exports
# ---------------------------------------------------------------------------------------------
def test_stop_cancels_a_running_job():
    from core.analysis import Pipeline
    from core.config import loads
    from dashboard import state

    cfg = loads(TINY.replace("epochs = 3", "epochs = 400").replace("seed = 3", "seed = 11"))
    pipeline = Pipeline(cfg, store=state.model_store())
    job = state.Job("k", lambda j: state.build_run(pipeline, state.runs(), j, None)).start()
    import time

    deadline = time.time() + 30
    while job.last is None and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    job.thread.join(30)
    assert not job.running and job.cancelled and job.run is None


def test_png_and_html_exports_carry_the_settings():
    import plotly.graph_objects as go

    from dashboard import export

    fig = go.Figure(go.Bar(y=[1, 2]))
    toml = "seed = 3\n[data]\nname = \"digits\"  # θ\n"
    page = export.to_html(fig, toml, 3, "A figure", "Two sentences.")
    assert "seed = 3" in page and "Two sentences." in page and "residue-seed" in page
    png = export.png_with_text(_tiny_png(), {"residue:config": toml, "residue:seed": "3"})
    assert export.png_text(png) == {"residue:config": toml, "residue:seed": "3"}


def _tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b"")


def test_hand_picked_forget_samples_from_the_image_gallery():
    at = form_app()
    at.radio(key="f.forget.kind").set_value("indices").run()
    assert any("Forget set is empty" in e for e in errors(at))
    sidebar_button(at, "f.pick").click().run()
    no_exception(at)
    boxes = [c for c in at.checkbox if str(c.key).startswith("pick.cb.")]
    assert len(boxes) == 32  # one page of the gallery, every one a training image of the chosen class
    boxes[0].check().run()
    [c for c in at.checkbox if str(c.key).startswith("pick.cb.")][1].check().run()
    picked = sorted(at.session_state["pick.sel"])
    assert len(picked) == 2
    next(b for b in at.button if b.label == "Use these samples").click().run()
    no_exception(at)
    assert at.session_state["f.forget.indices"] == ", ".join(map(str, picked))
    assert not errors(at), errors(at)
    assert not _run_disabled(at)


def test_moons_preset_every_view_of_a_2d_sample_forgetting_run():
    """2-D data, random forgetting: decision regions instead of image copies, no class-wise relearning."""
    run = run_preset("tiny_moons")
    at = app(autorun=False)
    at.session_state["run_key"] = run.key  # the full app, showing that run
    for page, least in (("neighbourhood", 3), ("embedding", 1), ("residuals", 3), ("landscape", 2),
                        ("relearning", 0), ("overview", 4), ("attacks", 3)):
        at.switch_page(f"pages/{page}.py").run()
        no_exception(at)
        assert not errors(at), (page, errors(at))
        assert len(at.get("plotly_chart")) >= least, page
    at.switch_page("pages/neighbourhood.py").run()
    assert any("Decision regions" in s.value for s in at.subheader)
    at.switch_page("pages/relearning.py").run()
    assert any("class-wise" in i.value for i in at.info)
    at.switch_page("pages/attacks.py").run()  # listed as not applicable (a caption, never an error box)
    assert [c.value for c in at.caption if "not applicable" in c.value and "`rea_class`" in c.value
            and "class-wise forgetting" in c.value], [c.value for c in at.caption]
    assert "rea_class" not in set(at.dataframe[0].value["attack"])
    from dashboard import report

    ps, missing = report.panels(run)  # and the report keeps its Attacks section
    assert not missing and any(p.section == "Attacks" for p in ps), missing


def test_the_story_follows_the_model_that_forgot_at_the_output_and_quotes_the_run(ran):
    """Steps 2-4 name the unlearned model whose outputs are closest to θ_r's among those that forgot (a
    pseudo-converged one first), never one the verdict calls under-unlearned; every step quotes numbers."""
    from core.analysis import methods
    from dashboard import analyses, state, story

    run = state.runs().get(ran.session_state["run_key"])
    v = analyses.cached_analysis(run, "verdict")
    m = story.story_model(v, methods(run))
    assert m is None or v.verdicts[m].label != "under-unlearned"
    steps = story.story(run)
    assert [s.title[:1] for s in steps] == list("12345")
    for s in steps:
        assert any(ch.isdigit() for ch in s.text), s.text
    if m is not None:
        assert all(m in s.text for s in steps[:4]), [s.text for s in steps[:4]]
    ran.switch_page("pages/story.py").run()
    no_exception(ran)
    ran.switch_page("pages/overview.py").run()  # the badges (and the one a θ_o that learned nothing never gets)
    assert any("residue-badge" in h.proto.body for h in ran.get("html"))


def test_story_model_prefers_pseudo_converged_and_never_under_unlearned():
    from types import SimpleNamespace as NS

    from dashboard.story import story_model

    def verdict(label, dev):
        ev = [NS(family="output", decides=True, value=dev, low=-1.0, high=1.0)]
        return NS(label=label, evidence=ev)

    v = NS(verdicts={"a": verdict("under-unlearned", 0.0), "b": verdict("clean", 0.1),
                     "c": verdict("pseudo-converged", 0.5), "d": verdict("over-unlearned", 0.0)})
    assert story_model(v, ["a", "b", "c", "d"]) == "c"
    v.verdicts["c"] = verdict("clean", 0.5)
    assert story_model(v, ["a", "b", "c", "d"]) in ("b", "d")  # the closest outputs among those that forgot
    assert story_model(NS(verdicts={"a": verdict("under-unlearned", 0.0)}), ["a"]) is None


def test_a_theta_o_that_learned_nothing_gets_a_warning_and_no_verdict_badge():
    """Scikit-learn's wine table uploaded unstandardised (features up to 1,680) trains θ_o to a constant predictor
    on the default recipe: a plain warning before any verdict, and no badge."""
    from sklearn.datasets import load_wine

    from dashboard import state

    w = load_wine()
    text = "label," + ",".join(f"f{i}" for i in range(13)) + "\n" + "".join(
        f"{t}," + ",".join(f"{v:g}" for v in x) + "\n" for x, t in zip(w.data, w.target))
    side = form_app()
    side.selectbox(key="f.dataset").set_value("csv").run()
    side.file_uploader(key="up.data.csv").set_value(("wine.csv", text.encode(), "text/csv")).run()
    side.checkbox(key="f.dopt.csv.standardize").uncheck().run()
    side.multiselect(key="f.forget.classes").set_value([0]).run()
    side.multiselect(key="f.methods").set_value(["finetune"]).run()
    sidebar_button(side, "run").click().run()
    no_exception(side)
    run = state.runs().get(side.session_state["run_key"])
    assert run.results.warnings and run.results.model("original").status == "degenerate"
    at = app(autorun=False)
    at.session_state["run_key"] = run.key
    at.switch_page("pages/overview.py").run()
    no_exception(at)
    warnings = " ".join(w.value for w in at.warning)
    assert "most frequent class" in warnings and "no verdict" in warnings, warnings
    assert not any("residue-badge" in h.proto.body for h in at.get("html")), "a badge on a θ_o that learned nothing"
