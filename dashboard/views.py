"""Each view as a list of Panels (figure + title + two-sentence caption), built from a Run.

Pages draw these panels with their widgets around them; the story walks through them; the report
collects them with default settings. So a figure is defined once and looks the same everywhere.
Each view is declared once, with `@view` on its panels function (a `View`: title, icon, place, the analyses
it needs, its widgets' defaults, its first visit and its report section); the navigation, the warm-up and the
report walk `pages()`.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import plotly.graph_objects as go

from . import analyses


@dataclass
class Panel:
    key: str  # stable id (widget keys, export file names)
    title: str
    caption: str  # two sentences: what you see, and how to read it
    fig: go.Figure
    section: str = ""  # the view it belongs to (report headings)


PAGES = Path(__file__).resolve().parent / "pages"


@dataclass(frozen=True)
class FirstVisit:
    """What a page shows before anyone touches a widget: the run, its first method and its first forget sample."""
    run: Any
    model: str | None
    sample: int | None

    def get(self, name: str, **settings) -> Any:
        return analyses.analysis(self.run, name, **settings)


@dataclass(frozen=True)
class View:
    """One page of the dashboard, declared once: the navigation, the Report page's list, the warm-up after Run
    everything and the HTML report's sections are all read from these records (`pages()`), never from a list.

    `warm`: steps that build what the page draws on its first visit, widgets at their defaults (each step is
    tried on its own: one whose analysis failed is skipped, its page says why). `report`: steps `(run, big)` that
    give the panels of the view's report section; none, and the page is not in the report."""
    name: str  # the page file's stem (dashboard/pages/<name>.py), and its id
    title: str  # the page's heading, and the view's section in the report
    icon: str
    order: int  # place in the navigation, in the report and in the warm-up
    section: str = "Views"  # the navigation's group
    label: str = ""  # the navigation's label, when shorter than the title
    needs: tuple[str, ...] = ()  # analyses it draws: it waits for them while none is in this checkout
    warm: tuple[Callable[[FirstVisit], Any], ...] = ()
    report: tuple[Callable[[Any, bool], "list[Panel]"], ...] = ()
    page: Path | None = None  # default: PAGES / f"{name}.py"
    default: bool = False  # the page the app opens on
    defaults: dict[str, Any] = field(default_factory=dict)  # its widgets' defaults (the page and `warm` read them)

    @property
    def file(self) -> Path:
        return self.page or PAGES / f"{self.name}.py"

    @property
    def link(self) -> str:
        """Its label in the navigation."""
        return self.label or self.title


REGISTRY: dict[str, View] = {}


def register(view: View) -> View:
    """Add a page (the module that declares it must be imported before the app builds its navigation)."""
    REGISTRY[view.name] = view
    return view


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def pages() -> list[View]:
    """Every registered page, in navigation order."""
    return sorted(REGISTRY.values(), key=lambda v: v.order)


def sections() -> dict[str, list[View]]:
    """The navigation: pages grouped by section, the sections in the order of their first page."""
    out: dict[str, list[View]] = {}
    for v in pages():
        out.setdefault(v.section, []).append(v)
    return out


def in_report() -> list[View]:
    """The views the HTML report shows, one section each."""
    return [v for v in pages() if v.report]


def view(title: str, icon: str, order: int, *, warm: tuple = (), report: tuple | None = None, **more):
    """Declare the view that the decorated panels function builds (its report section: the function at its
    defaults, unless `report` says otherwise)."""
    def declare(fn: Callable[..., list[Panel]]) -> Callable[..., list[Panel]]:
        register(View(fn.__name__, title, icon, order, warm=warm, report=(fn,) if report is None else report,
                      **more))
        return fn

    return declare


def setting(name: str, key: str) -> Any:
    """The default of one widget of a page, declared once with its view (the page and the warm-up read it)."""
    return REGISTRY[name].defaults[key]


def view_status(name: str) -> str | None:
    """None when a view can be drawn in this checkout (one of the analyses it needs is), else what it waits for."""
    needs = REGISTRY[name].needs
    if not needs or any(n in analyses.ANALYSES and analyses.ANALYSES[n].available() for n in needs):
        return None
    a = analyses.ANALYSES.get(needs[0])
    return a.arrives_with if a else needs[0]


def _frozen(x: Any) -> Any:
    """A hashable stand-in for a view's setting: values for plain data, identity for result objects."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, np.generic):  # a numpy number from a slider or a result: its value, not its identity
        return x.item()
    if isinstance(x, (list, tuple)):
        return tuple(_frozen(v) for v in x)
    if isinstance(x, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in x.items()))
    return ("id", id(x))  # the memo entry holds the object, so its id is not reused while the entry lives


def memoised(view: Callable[..., list[Panel]] | None = None, *, peeks: tuple[str, ...] = ()):
    """Build a view's panels once per run, settings and analysis results, for every session of the process.

    Building plotly figures (validation, layout) is most of a page's server time, and each visit and each
    student's session would build the same figures again. Panels depend only on the run, the settings and
    the analysis results the view reads through `get`, which are memoised on the run and never change; a
    set where some analysis was not ready (None) is not kept. `peeks`: analyses the view shows when someone
    has computed them, without asking for them (the trust report): their presence is part of the key.
    Panels are shared between sessions: draw and export them, never change them.
    """
    if view is None:
        return functools.partial(memoised, peeks=peeks)
    sig = inspect.signature(view)

    @functools.wraps(view)
    def wrapper(*args, **kwargs) -> list[Panel]:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        run, settings = args[0], dict(bound.arguments)
        if not hasattr(run, "memoised"):  # a plain history dict (live curves), or a stand-in run in a test
            return view(*args, **kwargs)
        settings.pop(next(iter(sig.parameters)))
        settings["peeked"] = [analyses.cached_analysis(run, name) for name in peeks]
        reads: list[Any] = []
        if "get" in settings:
            inner = _getter(run, settings.pop("get"))

            def get(name: str, **kw) -> Any:
                reads.append(inner(name, **kw))
                return reads[-1]

            bound.arguments["get"] = get

        def build() -> tuple[tuple[list[Panel], dict], bool]:
            panels = view(*bound.args, **bound.kwargs)
            return (panels, settings), all(r is not None for r in reads)  # the settings hold what the key names

        return run.memoised((view.__name__, _frozen(settings)), build)[0]

    return wrapper


@view("Overview & verdict", ":material/dashboard:", 10, warm=(
    lambda v: overview(v.run),
    lambda v: verdict(v.run, False, None, [default_yardstick(v.get("verdict"))],
                      with_trust=analyses.default("verdict", "with_trust")),
    lambda v: quality(v.run, False, None, v.model, v.sample)),
    report=(lambda run, big: overview(run, big), lambda run, big: verdict(run, big),
            lambda run, big: quality(run, big)))
@memoised
def overview(run, big: bool = False, get: "Get | None" = None) -> list[Panel]:
    from .figures import overview as f

    r = run.results
    return [
        Panel("overview-accuracy", "Accuracy on forget, retain and test data",
              "Each group of bars is one part of the data, each colour one model: the original θ_o, the "
              "retrained θ_r (the gold standard that never saw the forget set) and every unlearning method. "
              "A method that looks forgotten has its forget-set bar as low as θ_r's while keeping retain and "
              "test accuracy — the other views check whether that is only skin-deep.",
              f.accuracy_bars(r, big), "Overview"),
        Panel("overview-distance", "How far each model's outputs are from the retrained model's",
              "Bars show the mean divergence of each model's predicted probabilities on the forget set from "
              "θ_r's (KL solid, Jensen-Shannon hatched). Near zero means the model answers like the retrained "
              "one from the outside — the first half of pseudo-convergence.",
              f.distance_bars(r, big), "Overview"),
        Panel("overview-time", "Time, against retraining from scratch",
              "Each bar is the wall time to obtain that model, labelled with its ratio to retraining θ_r on the "
              "same machine (log scale). Unlearning is worth it only well below 1×; models taken from the disk "
              "cache show the time of their first run.",
              f.time_bars(r, big), "Overview"),
    ]


@view("Unlearning curves", ":material/show_chart:", 20, defaults={"smooth": 1},
      warm=(lambda v: curves(v.run, False, setting("curves", "smooth")),))
@memoised
def curves(run_or_hist: Any, big: bool = False, smooth: int = 1) -> list[Panel]:
    from .figures import curves as f

    hist = run_or_hist if isinstance(run_or_hist, dict) else f.histories(run_or_hist.results)
    return [Panel("curves", "Objective and forget / retain losses, step by step",
                  "The top panel is the objective each method minimises at every optimisation step; the bottom "
                  "one shows the terms it logs — loss on the retain set (solid) and on the forget set "
                  "(dashed), or the distillation terms of SCRUB. Methods without training steps (SSD) show a "
                  "single point; a curve that shoots up and stops is a divergence the engine caught.",
                  f.unlearning_curves(hist, big, smooth), "Unlearning curves")]


Get = Callable[..., Any]  # get(analysis name, **settings) -> its result, or None while it is not ready


def _getter(run, get: Get | None) -> Get:
    """Pages pass a getter that knows about the background job; the report computes what is missing."""
    if get is not None:
        return get
    return lambda name, **kw: analyses.analysis(run, name, **kw)


def _pick(run, model: str | None) -> str | None:
    names = analyses.methods(run)
    return model if model in names else (names[0] if names else None)


def default_yardstick(verdict) -> str | None:
    """The measure the Overview's band shows first: the first one that decided a verdict (else a functional one)."""
    keys = list(verdict.bands)
    decided = [k for x in verdict.verdicts.values() for k in x.decided_by if k in keys]
    functional = [k for k in keys if (verdict.measures.get(k.split("@")[0]) or {}).get("family") == "functional"]
    return (decided or functional or keys or [None])[0]


def radii_shown(sweep) -> list[float]:
    """The radii offered for one sample's neighbourhood (τ = 0 is the sample itself)."""
    return [r for r in sweep.radii if r > 0]


def default_radius(sweep) -> float:
    radii = radii_shown(sweep)
    return radii[len(radii) // 2]


def default_embedding_models(run) -> list[str]:
    """θ_o, the first unlearned model and θ_r, side by side."""
    return [m for m in ("original", (run.model_names[2:] or [None])[0], "retrain") if m]


def default_sample(run) -> int | None:
    """The forget sample followed when nobody picked one: the first of the forget set."""
    ids = run.results.forget_indices
    return int(ids[0]) if ids else None


@view("Class views", ":material/grid_view:", 30, needs=("classes",), warm=(
    lambda v: v.sample is not None and v.get("sample_predictions", sample_id=v.sample),  # the followed sample's card
    lambda v: v.model and classes(v.run, False, None, v.model)))
@memoised
def classes(run, big: bool = False, get: Get | None = None, model: str | None = None) -> list[Panel]:
    from .figures import classes as f

    out = _getter(run, get)("classes")
    model = _pick(run, model)
    if out is None:
        return []
    panels = [
        Panel("classes-test", "Accuracy class by class, test set",
              "One group of bars per class, one colour per model; the shaded class is the one forgotten. A good "
              "unlearner drops only there, to θ_r's level, and keeps every other class where θ_o had it.",
              f.class_accuracy_figure(out.accuracy, "test", big=big), "Class views"),
        Panel("classes-train", "Accuracy class by class, training set (forget and retain together)",
              "The same on the data the models trained on, where memorisation shows: θ_o is near 100% everywhere. "
              "Look at the forgotten class: θ_r never saw it, so its bar is the honest target for every method.",
              f.class_accuracy_figure(out.accuracy, "train", big=big), "Class views"),
    ]
    if model is not None:
        panels.append(Panel(
            "classes-matrix", f"Where the predictions go: {model} beside θ_r",
            "Rows are true classes, columns predicted ones; a bubble's size is the share of that true class, its "
            "colour the mean confidence. Where the unlearned model sends the forgotten class somewhere else than "
            "θ_r does, or with very different confidence, its outputs are not those of a retrain.",
            f.prediction_matrix_figure([out.predictions[model], out.predictions["retrain"]], big=big), "Class views"))
    return panels


def default_metric(run) -> str:
    """The heatmap's first measure: decodability of the forgotten class (class-wise), else patching per layer."""
    return "decodability" if run.results.forget_classes else "patch_ratio"


def heatmap_metrics(rep) -> list[str]:
    """The per-layer measures of a layer report, functional first (the ones that may decide)."""
    order = {"functional": 0, "output": 1, "context": 2}
    return sorted(rep.values, key=lambda m: order.get(rep.measures.get(m, {}).get("family"), 3))


@view("Residual heatmap", ":material/layers:", 40, needs=("residuals",), warm=(
    lambda v: v.model and residuals(v.run, False, None, default_metric(v.run), v.run.model_names, v.model),))
@memoised(peeks=("trust",))
def residuals(run, big: bool = False, get: Get | None = None, metric: str | None = None,
              columns: list[str] | None = None, model: str | None = None, **settings) -> list[Panel]:
    from .figures import residuals as f

    rep = _getter(run, get)("residuals", **settings)
    if rep is None:
        return []
    metric = metric if metric in rep.values else default_metric(run)
    model = _pick(run, model)
    tr = analyses.computed_trust(run)
    info = rep.measures.get(metric, {})
    context = (" This is a context measure: it says where a model sits (every method that starts from θ_o stays "
               "near it), not what it remembers, so it never decides a verdict." if info.get("family") == "context"
               else "")
    panels = [Panel(
        "residuals-heatmap", f"Layer by layer: {info.get('label', metric)}",
        f"Each cell is one layer (row) of one model (column). {info.get('caption', '')} Bright cells look like θ_o, "
        f"dark ones like θ_r: a method whose column matches θ_r at the output but θ_o in the hidden layers is "
        f"pseudo-converged.{context}",
        f.layer_heatmap(rep, metric, {k: e.to_dict() for k, e in tr.entries.items()} if tr is not None else None,
                        columns, big=big), "Residual heatmap")]
    panels.append(Panel(
        "residuals-depth", "Unlearning depth score per model (activation patching)",
        "Patching θ_o's hidden layers with a model's activations on D_f and measuring the drop of the true label's "
        "log-probability gives one causal number per model: 1 = erased as deeply as a retrain, 0 = intact, above 1 "
        "= destroyed more than a retrain did. θ_r scores 1 by construction and θ_o 0.",
        f.depth_bars(rep, big=big), "Residual heatmap"))
    if model is not None:
        panels.append(Panel(
            f"residuals-patching-{model}", f"Activation patching, layer by layer: {model}",
            "For each hidden layer, the drop in θ_o's true-label log-probability when that layer's output is "
            "replaced by θ_r's activations (Δ¹) or the model's (Δ²). Where Δ² stays well below Δ¹, the layer "
            "still carries what θ_r never learned.",
            f.patching_profile(rep, model, big=big), "Residual heatmap"))
    if tr is not None:
        panels.append(Panel(
            "residuals-trust", "How far each measure can be trusted: its five-seed controls",
            "For every measure that may decide, over five seeds: how often it flags the model that holds D_f by "
            "construction (θ_o with only its last layer retrained, or θ_o itself for outputs) and how often it leaves "
            "retrains held out of the yardstick alone. A measure short of the dotted line has not earned the right "
            "to decide.", f.trust_bars(tr, big=big), "Residual heatmap"))
    return panels


@memoised
def verdict(run, big: bool = False, get: Get | None = None, measures: list[str] | None = None,
            **settings) -> list[Panel]:
    """The retrain band of the measures that decided the verdicts (or of `measures`)."""
    from .figures import residuals as f

    v = _getter(run, get)("verdict", **settings)
    if v is None or v.warning:
        return []
    if not measures:
        measures = list(dict.fromkeys(k for x in v.verdicts.values() for k in x.decided_by)) or [default_yardstick(v)]
    return [Panel(
        f"verdict-band-{m}", f"Verdict yardstick: {f.measure_label(v.measures, m)}",
        "The band is the spread of retrains that differ from θ_r only in data order (circles) or also in "
        "initialisation (diamonds); each judged model is a dot and each control a square. A dot outlined in black "
        "counts towards its verdict: beyond the band towards θ_o makes an output-matching method pseudo-converged.",
        f.band_figure(v, m, big=big), "Overview") for m in measures if m in v.bands]


@view("Loss landscape", ":material/landscape:", 50, needs=("landscape",),
      defaults={"which": "forget_loss", "log": True, "surface": False}, warm=(
    lambda v: v.model and landscape(
        v.run, False, None, v.model, setting("landscape", "which"), setting("landscape", "log"),
        setting("landscape", "surface"), n_grid=analyses.default("landscape", "n_grid"),
        random_plane=analyses.default("landscape", "random_plane")),))
@memoised
def landscape(run, big: bool = False, get: Get | None = None, model: str | None = None,
              which: str = "forget_loss", log: bool = True, surface: bool = False, **settings) -> list[Panel]:
    from .figures import landscape as f

    model = _pick(run, model)
    out = _getter(run, get)("landscape", model=model, **settings)
    if out is None or model not in out.by_model:
        return []
    land = out.by_model[model]
    plane = f.plane_surface if surface else f.plane_contour
    panels = [
        Panel(f"landscape-curve-{model}", f"Loss along θ_o → {model} → θ_r",
              "The forget loss (solid) and retain loss (dashed) on the straight path from the original through the "
              "unlearned model to the retrained one, a little beyond each end. A hump between the unlearned model "
              "and θ_r (a barrier, in the hover) means it sits in another valley than the retrain: often still "
              "the original's.", f.curve_figure(land.curve, big=big), "Loss landscape"),
        Panel(f"landscape-plane-{model}", f"{f.WHICH.get(which, which)} on the plane through θ_o, {model}, θ_r",
              "The plane spanned by the three models, evaluated on a grid (darker = lower). Look at whether the "
              "unlearned model shares a basin with θ_o or with θ_r, and how steep the walls around it are.",
              plane(land.plane, which, log, big=big), "Loss landscape"),
    ]
    if land.random is not None:
        panels.append(Panel(
            f"landscape-random-{model}", f"{f.WHICH.get(which, which)} around {model}, random directions",
            "Two random directions, filter-normalised (Li et al. 2018), centred on the unlearned model. A sharp, "
            "narrow minimum of the forget loss is a thin hiding place: small moves bring the forgotten data back.",
            plane(land.random, which, log, big=big), "Loss landscape"))
    return panels


@view("Perturbation neighbourhood", ":material/blur_on:", 60, label="Neighbourhood", needs=("neighbourhood",),
      defaults={"norm": "l2"}, warm=(
    lambda v: v.model and neighbourhood(
        v.run, False, None, v.model, setting("neighbourhood", "norm"), v.sample,
        default_radius(v.get("neighbourhood").by_model[v.model].sweep(setting("neighbourhood", "norm")))),))
@memoised
def neighbourhood(run, big: bool = False, get: Get | None = None, model: str | None = None, norm: str = "l2",
                  sample_id: int | None = None, radius: float | None = None, **settings) -> list[Panel]:
    from .figures import neighbourhood as f

    get = _getter(run, get)
    out = get("neighbourhood", **settings)
    model = _pick(run, model)
    if out is None or model not in out.by_model:
        return []
    sweep = out.by_model[model].sweep(norm)
    panels = [
        Panel(f"neighbourhood-recognition-{model}-{norm}", f"Recognition of nudged forget samples: {model}",
              "Each forget sample is moved within a ball of radius τ, at random (solid) or adversarially (dashed), "
              "and we count how often each model still predicts its true label. θ_r never saw these samples; "
              "an unlearned curve above θ_r's is residual knowledge.",
              f.recognition_figure(sweep, big=big), "Perturbation neighbourhood"),
        Panel(f"neighbourhood-ratio-{model}-{norm}", f"r_τ: {model} against θ_r",
              "The ratio of the unlearned model's recognition rate to θ_r's at each radius; 1 (dotted) means no "
              "residual knowledge. Open markers are lower bounds where θ_r recognised nothing at all.",
              f.ratio_figure(sweep, big=big), "Perturbation neighbourhood"),
    ]
    sid = default_sample(run) if sample_id is None else sample_id
    if sid is not None:
        kw = {"target": model, "sample_id": int(sid), "norm": norm}
        if radius is not None:
            kw["radius"] = float(radius)
        one = get("sample_neighbourhood", **kw)
        if one is not None and hasattr(one, "xs"):
            panels.append(Panel(
                f"neighbourhood-regions-{model}", f"Decision regions around sample #{sid}",
                "Each panel colours the plane by the class a model predicts; the star is the sample and the dotted "
                "line its τ-ball. Where the unlearned model still paints the ball in the sample's class and θ_r "
                "does not, the forgotten point is still recognised.",
                f.decision_regions_figure(one, big=big), "Perturbation neighbourhood"))
        elif one is not None:
            panels.append(Panel(
                f"neighbourhood-copies-{model}", f"Sample #{sid} and perturbed copies",
                "The sample, random copies within the τ-ball and the copy an adversary finds for each model, with "
                "every model's prediction below (✓ = still its true label). An unlearned model that keeps ticking "
                "where θ_r does not still recognises the sample.",
                f.perturbed_strip_figure(one, big=big), "Perturbation neighbourhood"))
    return panels


DEFAULT_ROC = ("lira_online", "rea_class", "rea_sample", "mia:loss", "leak:sorted_diff")


def roc_sets(run, results: list) -> str:
    """What the shown curves' positives and negatives are, in words (one function builds the attack sets)."""
    from core.attacks.mia import sets_description

    out = []
    samples = [r for r in results if r.sample_ids is not None]
    if samples:
        roc = samples[0].roc()
        out.append(sets_description(run.exp.prepare(), roc.n_pos, roc.n_neg).capitalize() + ".")
    if any(r.attack == "rea_class" for r in results):
        out.append("For the reminiscence attack (rea_class) the positives are the model's relearning runs and the "
                   "negatives θ_r's, with the same probes.")
    return " ".join(out)


def below_chance(results: list) -> str:
    """One line per shown curve that lies below the diagonal, saying why (never silence)."""
    from core.attacks.roc import below_chance_reason

    lines = []
    for r in results:
        why = below_chance_reason(r.roc(), "positives", "negatives")
        if why:
            lines.append(f" {r.attack} on {r.target}: {why}")
    return (" Below the diagonal —" + ";".join(lines)) if lines else ""


def default_roc_labels(names: list[str]) -> list[str]:
    """The attack results the ROC draws first: the two most telling of those computed."""
    return [n for n in DEFAULT_ROC if n in names][:2] or names[:1]


def attack_results(run, get=None, chosen=None, hp: dict | None = None) -> list:
    """Every AttackResult of the chosen attacks (default: those "Run everything" computes)."""
    get = _getter(run, get)
    out, seen = [], {}
    for name in chosen or analyses.RUN_EVERYTHING_ATTACKS:
        found = get(f"attack:{name}", **(hp or {}).get(name, {}))
        for r in found.results if found is not None else []:
            twin = seen.setdefault((r.attack, r.target), r)
            if twin is not r and np.array_equal(twin.scores, r.scores):
                continue  # the same result reported twice (LiRA on θ_u also comes beside the sample-wise ReA)
            out.append(r)
    return out


def _first_attacks_visit(v: FirstVisit) -> list[Panel]:
    """The Attacks page's first visit: the default attacks, their ROC and the first score histogram."""
    chosen = analyses.RUN_EVERYTHING_ATTACKS
    results = attack_results(v.run, None, chosen, {n: {} for n in chosen})
    if not results:
        return []
    names = list(dict.fromkeys(r.attack for r in results))
    return (attacks(v.run, False, labels=default_roc_labels(names), results=results,
                    scale=setting("attacks", "scale"))
            + score_histogram(v.run, False, results, names[0], v.run.model_names[0]))


@view("Attacks", ":material/security:", 70, needs=tuple(f"attack:{n}" for n in analyses.RUN_EVERYTHING_ATTACKS),
      defaults={"scale": "linear"}, warm=(lambda v: v.model and _first_attacks_visit(v),))
@memoised
def attacks(run, big: bool = False, get=None, chosen=None, hp: dict | None = None,
            labels: list[str] | None = None, results: list | None = None, scale: str = "both") -> list[Panel]:
    """`scale`: which ROC to draw, "linear", "log" or "both" (the page toggles one; the report shows both)."""
    from .figures import attacks as f

    results = attack_results(run, get, chosen, hp) if results is None else results
    if not results:
        return []
    names = list(dict.fromkeys(r.attack for r in results))
    labels = labels or default_roc_labels(names)
    shown = [r for r in results if r.attack in labels]
    curves = f.curves_from_results(shown)
    panels = []
    if scale in ("linear", "both"):
        panels.append(Panel(
            "attacks-roc", "ROC: can an attacker tell the forgotten samples?",
            f"Each curve is one attack on one model; the dotted diagonal is guessing. {roc_sets(run, shown)} θ_r "
            "never saw the forget set, so its curve is the honest floor: an unlearned model whose curve stays above "
            "θ_r's still gives its forgotten data away." + below_chance(shown),
            f.roc_figure(curves, False, big=big), "Attacks"))
    if scale in ("log", "both"):
        panels.append(Panel(
            "attacks-roc-log", "The same ROC on log-log axes (the low false-positive regime)",
            "Privacy is decided at low false-positive rates: an attack that is sure about a few samples is dangerous "
            "even with an average AUC. Curves that lift off the diagonal at the left show samples the attacker "
            f"identifies with near certainty. {roc_sets(run, shown)}" + below_chance(shown),
            f.roc_figure(curves, True, big=big), "Attacks"))
    panels.append(Panel(
        "attacks-auc", "AUC of every attack on every model",
        "One group per attack, one bar per model; 0.5 is a coin flip. Read each group against θ_r's bar: the "
        "retrained model shows what an attack finds even when the data is truly gone.",
        f.auc_bars([(r.attack, r.target, r.roc().auc) for r in results], big=big), "Attacks"))
    privacy = {r.target: r.extra["privacy"] for r in results if r.attack == "privacy_score" and "privacy" in r.extra
               and r.target != "retrain"}
    if privacy:
        panels.append(Panel(
            "attacks-privacy", "Worst-case privacy score against retraining",
            "For each model, the best threshold on one output (entropy or confidence) tries to tell its answers on "
            "the forget set from θ_r's; the score is 1 minus that attacker's (ε, δ) advantage. 1 means "
            "indistinguishable from retraining, 0 means every forgotten sample betrays which model answered. "
            "By default every observed value is tried as a threshold: the exact worst case. With the attack's "
            "thresholds set to \"comparator\" it is the Machine Unlearning Comparator's number, the same formula "
            "on signals clipped into fixed ranges at 51 thresholds, which can score the same model far higher "
            "(each bar's hover says which).",
            f.privacy_figure(privacy, big=big), "Attacks"))
    return panels


@memoised
def score_histogram(run, big: bool, results: list, attack: str, model: str) -> list[Panel]:
    """How one attack scores members and non-members of one model (the Attacks page's closer look)."""
    from .figures import attacks as f

    return [Panel(
        f"attacks-hist-{attack}-{model}", f"{attack} scores on {model}",
        "Bars show how the attack scores members (coloured) and non-members (grey) of this model; the more the two "
        "piles overlap, the less the attack can tell them apart.",
        f.score_histogram(r.scores, r.labels, model=model, big=big), "Attacks")
        for r in results if r.attack == attack and r.target == model][:1]


def _default_relearning(v: FirstVisit) -> list[Panel]:
    from core.attacks import attacks as registry

    return relearning(v.run, False, None, v.model, {p.name: p.default for p in registry.get("rea_class").params})


@view("Reminiscence (relearning)", ":material/history:", 80, needs=("attack:rea_class",),
      warm=(lambda v: v.model and v.run.results.forget_classes and _default_relearning(v),))
@memoised
def relearning(run, big: bool = False, get: Get | None = None, model: str | None = None,
               hp: dict | None = None) -> list[Panel]:
    from .figures import relearning as f

    if not run.results.forget_classes:
        return []
    out = _getter(run, get)("attack:rea_class", **(hp or {}))
    model = _pick(run, model)
    found = [r for r in (out.results if out is not None else []) if r.target == model]
    if not found:
        return []
    r = found[0]
    return [
        Panel(f"relearning-curves-{model}", f"Relearning the forgotten class: {model} against θ_r (our reading)",
              "Both models are fine-tuned on a few images of the forgotten class, one per step with a retain batch; "
              "thin lines are single probe draws, thick ones their mean, one panel per learning rate. A model whose "
              "curve shoots up long before θ_r's still had the class inside: the decision rule is our reading of "
              "the ReA paper.", f.relearning_figure(r, big=big), "Reminiscence (relearning)"),
        Panel(f"relearning-steps-{model}", "Steps to re-learn, run by run (our reading)",
              "Each dot is one relearning run: how many steps it took to reach the threshold accuracy on the probe "
              "(runs at the cap never got there). The fewer steps the unlearned model needs compared with θ_r, the "
              "more of the class survived.", f.steps_figure(r, big=big), "Reminiscence (relearning)"),
    ]


@view("Embedding", ":material/scatter_plot:", 90, needs=("embedding",), warm=(
    lambda v: v.model and embedding(v.run, False, None, default_embedding_models(v.run), v.sample,
                                    n_neighbors=analyses.default("embedding", "n_neighbors")),))
@memoised
def embedding(run, big: bool = False, get: Get | None = None, models: list[str] | None = None,
              selected: int | None = None, **settings) -> list[Panel]:
    from .figures import embedding as f

    emb = _getter(run, get)("embedding", **settings)
    if emb is None:
        return []
    models = models or default_embedding_models(run)
    return [Panel(
        "embedding", "Penultimate features in one shared 2-D map (UMAP)",
        "Every point is one sample seen through one model (colour = class; large outlined points = the forget set, "
        "the star = the followed sample), all panels in one projection. If the forget samples still form their own "
        "tight cluster under the unlearned model, as under θ_o, while they scatter among the other classes under "
        "θ_r, its features still separate the forgotten data.",
        f.embedding_figure(emb, models, selected, big=big), "Embedding")]


@memoised
def quality(run, big: bool = False, get: Get | None = None, model: str | None = None,
            selected: int | None = None, **settings) -> list[Panel]:
    """The competition's forgetting quality between its anchors, and one method's ε per forget example (none for a
    run whose θ_o learned nothing: its page says why)."""
    from .figures import quality as f

    if run.results.warnings:
        return []
    rep = _getter(run, get)("quality", **settings)
    if rep is None:
        return []
    model = model if model in rep.methods else next(iter(rep.methods), None)
    panels = [Panel(
        "quality-scores", "Forgetting quality: each method between retraining and doing nothing",
        "For each forget example an attacker sees one model's confidence and tries to tell N runs of the method from "
        "N retrains; F is the mean over the examples of the points its ε earns (1 = indistinguishable), and the final "
        "score scales F by the method's retain and test accuracy relative to the retrains'. The blue band is a second "
        "pool of retrains scored the same way (the best any method can reach at this N), the grey one θ_o's seeds "
        "(no unlearning at all): read each dot against them, never against 1.",
        f.score_figure(rep, big=big), f.SECTION)]
    if model is not None and rep.methods[model].score is not None:
        panels.append(Panel(
            "quality-examples", f"ε per forget example: {model} against the retrains",
            "Each dot is one forget example: how well an attacker tells this model's runs from the retrains on it (ε "
            "at δ = 1e-5); the shaded bins earn 1, ½, ¼ … points and the examples past them earn none. Rows give the "
            "same examples for the ceiling and the floor; click a dot to follow that sample in every view.",
            f.epsilon_figure(rep, model, selected, big=big), f.SECTION))
    return panels
