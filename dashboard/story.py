"""The classroom story, told from the run's own evidence (views.md: "each step's words quote this run's numbers
and show the model that makes the step's point, or say plainly that none does").

Five steps, one picture each. Steps 2-4 follow the *story model*: the unlearned model whose outputs are closest
to θ_r's among those that did forget (a pseudo-converged one first, when there is one), never a model that
kept the data at its output. Every sentence is built from the verdict's evidence and the analyses of this run;
when the run does not show a step's point, the step says so and points to where it is shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.verdict import PSEUDO, UNDER

from . import analyses, views
from .figures.residuals import measure_label
from .views import Panel, memoised

PRESET_WITH_PSEUDO = "Forget the digit 7"  # the preset on which the science report finds a pseudo-converged method
ATTACK_NAMES = {"lira_online": "LiRA", "rea_class": "the reminiscence attack (relearning speed)",
                "rea_sample": "the reminiscence attack (fine-tune, then LiRA)", "mia:loss": "the loss-threshold attack",
                "leak:sorted_diff": "the unlearning leak"}


@dataclass
class Step:
    title: str
    view: str  # the page the step opens in full
    text: str  # this run's numbers, in words
    panel: Panel | None = None
    metrics: list[tuple[str, str, str | None]] = field(default_factory=list)  # (label, value, delta)


def output_distance(v, name: str) -> float:
    """How far a model's outputs sit from the retrain band's centres, in band half-widths (0 = like θ_r)."""
    out = []
    for e in v.verdicts[name].evidence:
        if e.family == "output" and e.decides and np.isfinite(e.value) and np.isfinite(e.low):
            half = max((e.high - e.low) / 2, 1e-9)
            out.append(abs(e.value - (e.low + e.high) / 2) / half)
    return float(np.sum(out)) if out else float("inf")


def story_model(v, methods: list[str]) -> str | None:
    """The method that shows the story best (see the module docstring), or None when no method forgot."""
    forgot = [m for m in methods if m in v.verdicts and v.verdicts[m].label != UNDER]
    pseudo = [m for m in forgot if v.verdicts[m].label == PSEUDO]
    pool = pseudo or forgot
    return min(pool, key=lambda m: output_distance(v, m)) if pool else None


def _ev(v, model: str, key: str):
    x = v.verdicts.get(model) or v.control_verdicts.get(model)
    return next((e for e in x.evidence if e.key == key), None) if x is not None else None


def _strongest(v, model: str, probes: tuple[str, ...] | None = None):
    """The counting functional evidence of a model that lies furthest beyond its band, in band widths."""
    best, score = None, -1.0
    for e in v.verdicts[model].evidence:
        if e.family != "functional" or not (e.counts and e.decides) or (probes and e.probe not in probes):
            continue
        width = max(e.high - e.low, 1e-9)
        s = (e.value - e.high) / width if e.toward == "θ_o" and e.value > e.high else (e.low - e.value) / width
        if s > score:
            best, score = e, s
    return best


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _forgotten(run) -> str:
    split = run.exp.prepare()
    names = split.dataset.class_names
    fc = run.results.forget_classes
    if fc:
        return "the " + " and ".join(f"'{names[c]}'" for c in fc) + "s"
    return f"the {len(split.forget)} forgotten samples"


@views.view("What does machine unlearning leave behind?", ":material/school:", 0, section="Classroom",
            label="The story in five steps", default=True, report=(),  # the report shows the views themselves
            warm=(lambda v: v.model and story(v.run),))
@memoised
def story(run, big: bool = False, get=None) -> list[Step]:
    """The five steps of this run (`get`: the page's getter; None computes what is missing)."""
    from .analyses import methods

    get = views._getter(run, get)
    v = get("verdict", with_trust=False)
    r = run.results
    rt = r.model("retrain")
    names = methods(run)
    m = story_model(v, names) if v is not None and not v.warning else None
    return [_step1(run, v, m, rt, big, get), _step2(run, v, m, big, get), _step3(run, v, m, big, get),
            _step4(run, v, m, big, get), _step5(run, v, m, big, get)]


def _step1(run, v, m, rt, big, get) -> Step:
    what = _forgotten(run)
    panel = views.overview(run, big)[0]
    if v is not None and v.warning:
        return Step("1 · It looks forgotten", "overview", v.warning, panel)
    if m is None:
        kept = ", ".join(f"{n} {run.results.model(n).forget_acc:.0%}" for n in analyses.methods(run))
        return Step("1 · It looks forgotten", "overview",
                    f"θ_r, retrained without {what}, gets {rt.forget_acc:.0%} of them right. None of this run's "
                    f"methods forgot them from the outside: they still get {kept}. Pick more aggressive settings, "
                    f"or the preset '{PRESET_WITH_PSEUDO}'.", panel)
    u = run.results.model(m)
    ratio = f", {u.ratio_to_retrain:.2f}× the time of retraining" if u.ratio_to_retrain else ""
    text = (f"θ_r, retrained from scratch without {what}, gets {rt.forget_acc:.0%} of them right. The unlearning "
            f"method **{m}** gets {u.forget_acc:.0%} while keeping {u.retain_acc:.0%} of the retain set (θ_r "
            f"{rt.retain_acc:.0%}), in {u.seconds:.2f} s{ratio}. From the outside, {m} looks like θ_r.")
    metrics = [("θ_r on the forget set", f"{rt.forget_acc:.0%}", None),
               (f"{m} on the forget set", f"{u.forget_acc:.0%}", f"{(u.forget_acc - rt.forget_acc) * 100:+.0f} pts vs θ_r"),
               (f"{m}: time", f"{u.seconds:.2f} s", f"{u.ratio_to_retrain:.2f}× retrain" if u.ratio_to_retrain else None)]
    return Step("1 · It looks forgotten", "overview", text, panel, metrics)


def _step2(run, v, m, big, get) -> Step:
    columns = ["original", "retrain", m] if m else None
    panels = views.residuals(run, big, get, None, columns, m)
    panel = panels[0] if panels else None
    title = "2 · But inside, it remembers"
    if v is None or v.warning or m is None:
        return Step(title, "residuals", "There is no unlearned model that forgot at the output, so there is nothing "
                                        "hidden to look for inside.", panel)
    x = v.verdicts[m]
    e = _strongest(v, m, ("decodability",)) or _strongest(v, m)
    if x.label == PSEUDO or (x.still_decodable and e is not None):
        o = v.values.get("original", {}).get(e.key, float("nan"))
        trust = analyses.computed_trust(run)  # the five-seed controls, when this setting has them

        def trusted(c) -> bool:
            t = trust.for_key(c.key) if trust is not None else None
            return t is None or bool(t.get("passed", True))

        counted = [c for c in x.evidence if c.family == "functional" and c.counts and c.decides]
        beyond = sorted({measure_label(v.measures, c.probe) for c in counted if trusted(c)})
        doubtful = sorted({measure_label(v.measures, c.probe) for c in counted if not trusted(c)} - set(beyond))
        text = (f"Inside, **{m}** still carries what it forgot: {measure_label(v.measures, e.key)} is {e.value:.2f} "
                f"for {m} and {o:.2f} for θ_o, while retrains that never saw the data stay between "
                f"{e.low:.2f} and {e.high:.2f}. Beyond the retrain band towards θ_o: {', '.join(beyond) or 'none'}"
                + (f" (also beyond it, but failing their five-seed controls: {', '.join(doubtful)})" if doubtful
                   else "") + f". Verdict: **{x.badge}**.")
        return Step(title, "residuals", text, panel)
    pseudo = [c for c in v.controls if c.expected == PSEUDO]
    ctrl = (f" This run's control — θ_o with only its last layer retrained — is {pseudo[0].label} by the same rule: "
            "that is what a hidden residual looks like." if pseudo else "")
    text = (f"No residual measure puts **{m}** beyond the retrain band: it forgot inside too (verdict: {x.badge}). "
            f"No method of this run is pseudo-converged.{ctrl} On the preset '{PRESET_WITH_PSEUDO}' a method is.")
    return Step(title, "residuals", text, panel)


def _step3(run, v, m, big, get) -> Step:
    title = "3 · It sits in the old valley"
    panels = views.landscape(run, big, get, m) if m else []
    panel = panels[0] if panels else None
    if v is None or v.warning or m is None:
        return Step(title, "landscape", "With no model that forgot at the output, there is no valley to compare.",
                    panel)
    bo, br = _ev(v, m, "barrier_o"), _ev(v, m, "barrier_r")
    if bo is None or not np.isfinite(bo.value):
        return Step(title, "landscape", f"The straight paths from {m} to θ_o and θ_r are drawn below.", panel)
    where = (f"**{m}** still sits in θ_o's valley" if bo.counts and bo.decides else
             f"**{m}** is no closer to θ_o's valley than a retrain")
    text = (f"On the straight line from {m} to θ_o the forget loss rises by {bo.value:.2f} nats (retrains sharing "
            f"θ_o's initialisation: {bo.low:.2f}–{bo.high:.2f}); towards θ_r by {br.value:.2f} "
            f"(retrains {br.low:.2f}–{br.high:.2f}): {where}.")
    return Step(title, "landscape", text, panel)


def _step4(run, v, m, big, get) -> Step:
    title = "4 · Nudge it and it recognises"
    if v is None or v.warning or m is None:
        return Step(title, "neighbourhood", "With no model that forgot at the output, there is nothing to bring back.")
    nb = get("neighbourhood")
    text_in, shows_in = "", False
    if nb is not None and m in nb.by_model:
        sw = nb.by_model[m].sweep("l2")
        i = views.radii_shown(sw).index(views.default_radius(sw)) + 1 if views.radii_shown(sw) else 0
        ru, rr = sw.random_rate[m][i], sw.random_rate[sw.reference][i]
        shows_in = ru > rr + 0.05 and sw.u_not_r_random[i] > 0.05
        text_in = (f"Nudged within τ = {sw.radii[i]:.2g} of each forgotten sample, {m} recognises {ru:.0%} of the "
                   f"copies and θ_r {rr:.0%}")
    rel = _ev(v, m, "relearning")
    if shows_in or rel is None or not (rel.counts and rel.decides):
        panels = views.neighbourhood(run, big, get, m)
        tail = (": the neighbourhood still remembers." if shows_in else
                ": nudging the inputs brings nothing back here." + (" Nor does nudging the weights." if rel else ""))
        return Step(title, "neighbourhood", (text_in or "The neighbourhood view") + tail, panels[0] if panels else None)
    panels = views.relearning(run, big, get, m)
    steps = ""
    att = get("attack:rea_class")
    found = [x for x in (att.results if att is not None else []) if x.target == m]
    if found:
        ms = found[0].extra.get("mean_steps", {})
        mean = {role: float(np.mean(list(d.values()))) for role, d in ms.items() if d}
        if {"target", "reference"} <= set(mean):
            steps = (f" It needs {mean['target']:.0f} fine-tuning steps on average to re-learn the class; θ_r "
                     f"needs {mean['reference']:.0f}.")
    text = ((text_in + ": nudging the inputs brings little back. " if text_in else "")
            + f"Nudging the weights does: fine-tuned on a few images of the forgotten class, one per step, {m} "
              f"re-learns it fast — mean probe accuracy over the steps {rel.value:.2f}, retrains "
              f"{rel.low:.2f}–{rel.high:.2f}.{steps}")
    return Step(title, "relearning", text, panels[0] if panels else None)


def _step5(run, v, m, big, get) -> Step:
    title = "5 · An attacker can tell"
    results = views.attack_results(run, get)
    if m is not None:  # the story model beside θ_r and θ_o: few enough curves to read on a projector
        results = [r for r in results if r.target in (m, "retrain", "original")]
    panels = views.attacks(run, big, get, results=results, scale="linear") if results else []
    panel = panels[0] if panels else None
    if not results:
        return Step(title, "attacks", "The attacks have not run.", panel)
    parts = []
    for attack in views.default_roc_labels(list(dict.fromkeys(r.attack for r in results))):
        auc = {r.target: r.roc().auc for r in results if r.attack == attack}
        if m in auc:
            ref = f" (θ_r {auc['retrain']:.2f})" if "retrain" in auc else ""
            parts.append(f"{ATTACK_NAMES.get(attack, attack)} reaches AUC {auc[m]:.2f} on {m}{ref}")
    text = ("Play the attacker: from the models alone, which samples were deleted? "
            + (_sentence("; ".join(parts)) + ". " if parts else "")
            + "A curve above θ_r's means the attacker learns something a retrain would not give away. The verdicts "
              "below say what every measure together concludes.")
    return Step(title, "attacks", text, panel)
