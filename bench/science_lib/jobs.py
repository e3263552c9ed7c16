"""One job of the science sweep: one scenario x one seed, measured for every section of the report.

`run_job(spec)` is what `core.sweep.run_jobs` runs on any backend (a JSON-able spec in, a JSON-able
`JobRecord.to_dict()` out); `measure(spec)` returns the typed `JobRecord`.

What the analysis pipeline (`core.analysis`) computes with the same settings is asked of it, so the report and
the dashboard read the same computation (and share its result cache): the experiment (`Pipeline.measure`), the
attack context, MIA-efficacy (§1, at the attack's defaults), the verdict with its controls (§1, §5: the grid's
yardstick sizes passed as the analysis's `n_order` / `n_init` settings) and the competition's forgetting quality
(§6: the grid's N, protocol A). The rest keeps its own path here, because the pipeline's analyses run other
settings or other targets and going through them would change the reported numbers:
- RURK (§4): the `neighbourhood` analysis sweeps both norms over data-scaled radii; the report needs one norm and,
  on images, L∞ radii from 0 to 0.03·(k−1) so that RURK's τ = 0.03 is one of them;
- ReA and the prior attacks (§3): run on chosen targets with matched non-members and the grid's shadow count,
  and the class-wise control target (a retrain of the next seed) is no model of the run;
- the unlearning leak (§2): single deletion against K target retrains with mitigations, and group deletion with
  per-method shadow deletions, neither of which the pipeline's leak attack does.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from .grid import FEATURES, MITIGATIONS, NEGATIVES, PRIOR_ATTACKS, Grid, scenario_config
from .record import JobRecord


def _roc(result) -> dict[str, float]:
    r = result.roc()
    return {"auc": r.auc, "acc": r.accuracy, "tpr1": r.tpr_at_1pct}


def quality(run) -> dict[str, dict]:
    """Table 1 numbers per model: UA, RA, TA, MIA-efficacy (the analysis pipeline's, at its defaults), time /
    retrain, status."""
    from core.analysis import analysis

    eff = {r.target: r.extra["efficacy"] for r in analysis(run, "attack:mia_efficacy").results}
    rows = {}
    for m in run.results.models:
        rows[m.name] = {"UA": 1.0 - m.forget_acc, "RA": m.retain_acc, "TA": m.test_acc, "MIA": eff[m.name],
                        "time": m.ratio_to_retrain, "seconds": m.seconds, "status": m.status}
    return rows


def pseudo_convergence(vr, names: list[str]) -> dict[str, dict]:
    """Table 5, read off the verdict's own evidence so the table and the verdict agree. For each measure that may
    decide (output and functional; each layer of a per-layer measure on its own) the model's distance from its
    retrain band in band half-widths, signed: output measures towards θ_o's side positive (under-unlearned) and
    away negative (over-unlearned); functional measures towards 'holds D_f' positive. > 1 = beyond the band."""
    rows = {}
    judged = {**vr.verdicts, **vr.control_verdicts}
    for n in names:
        ev = [e for e in judged[n].evidence if e.family in ("output", "functional") and e.decides
              and np.isfinite(e.value) and np.isfinite(e.low)]
        score = {}
        for e in ev:
            c, h = (e.low + e.high) / 2, max((e.high - e.low) / 2, 1e-12)
            d = abs(e.value - c) / h
            score[e.key] = -d if e.toward == "away" else d if e.toward == "θ_o" or e.family == "output" else \
                min(d, 1.0) * (1 if e.side == "within" else -1)
        out = {k: v for k, v in score.items() if vr.measures.get(k.split("@")[0], {}).get("family") == "output"}
        res = {k: v for k, v in score.items() if k not in out}
        rows[n] = {"value": {e.key: e.value for e in ev}, "band": {e.key: [e.low, e.high] for e in ev},
                   "score": score, "out": max(out.values(), key=abs) if out else float("nan"),
                   "res": max(res.values()) if res else float("nan"),
                   "out_by": max(out, key=lambda k: abs(out[k])) if out else "",
                   "res_by": max(res, key=res.get) if res else "",
                   "verdict": judged[n].badge, "decided_by": judged[n].decided_by}
    return rows


def prior_attacks(ctx, target: str, nonmembers: str, n_shadows: int) -> dict[str, dict]:
    """AUC / best accuracy of every prior membership attack on one target (members: D_f)."""
    from core.attacks import get_attack

    out = {}
    for name in PRIOR_ATTACKS:
        for r in get_attack(name, nonmembers=nonmembers, n_shadows=n_shadows).run(ctx, target):
            out[r.attack] = _roc(r)
    return out


def _best(priors: dict[str, dict]) -> tuple[str, dict]:
    name = max(priors, key=lambda k: priors[k]["acc"])
    return name, priors[name]


def rea_class(exp, ctx, targets: list[str], grid: Grid) -> dict[str, dict]:
    """Table 3, class-wise: relearning-speed ReA vs the best prior attack (non-members: held-out images of the
    forgotten class, `core.attacks.mia.matched_nonmembers`). Controls: θ_o (should be found) and a retrain of
    another seed (should not)."""
    from core.attacks import get_attack

    seed = exp.config.seed
    ctx.models["retrain (seed+1)"] = exp.train_model("retain", seed + 1, seed + 1).model
    rows = {}
    for t in ["original", *targets, "retrain (seed+1)"]:
        r = get_attack("rea_class", draws=grid.rea_draws, n_lrs=grid.rea_lrs).run(ctx, t)[0]
        priors = prior_attacks(ctx, t, "matched", grid.n_shadows)
        best, b = _best(priors)
        rows[t] = {"rea": _roc(r), "prior": priors, "best": best, "ratio": r.roc().accuracy / b["acc"],
                   "steps": r.extra["mean_steps"]}
    return rows


def rea_sample(ctx, targets: list[str], grid: Grid) -> dict[str, dict]:
    """Table 3, sample-wise: reminisce on D_r then LiRA, vs the best prior attack (non-members: the matched set,
    which for sample-wise forgetting is the test set)."""
    from core.attacks import get_attack

    rows = {}
    for t in ["original", *targets, "retrain"]:
        res = {r.attack: r for r in get_attack("rea_sample", n_shadows=grid.n_shadows).run(ctx, t)}
        priors = prior_attacks(ctx, t, "matched", grid.n_shadows)
        best, b = _best(priors)
        rea = res["rea_sample"]
        rows[t] = {"rea": _roc(rea), "prior": priors, "best": best, "ratio": rea.roc().accuracy / b["acc"],
                   "forget_acc_after": rea.extra["forget_acc_after"]}
    return rows


def rurk(ctx, targets: list[str], grid: Grid) -> dict[str, Any]:
    """Table 4: r_τ and the share of forget samples with residual knowledge (θ_u recognises more random
    perturbations of x than θ_r does), per radius. Images: L∞ radii 0..0.12 on [0, 1] pixels (RURK's τ = 0.03
    among them); 2-D data: the data-scaled L2 radii."""
    from core.attacks.residual import residual_knowledge

    image = ctx.split.dataset.kind == "image"
    norm, top = ("linf", 0.03 * (grid.rurk_radii - 1)) if image else ("l2", None)
    rows: dict[str, Any] = {"norm": norm}
    for t in targets:
        s = residual_knowledge(ctx, t, norms=(norm,), n_radii=grid.rurk_radii, max_radius=top,
                               n_random=grid.rurk_random, pgd_steps=grid.pgd_steps).sweeps[0]
        u, r = np.asarray(s.per_sample_random[t]), np.asarray(s.per_sample_random["retrain"])
        rows["radii"] = s.radii
        rows[t] = {"r": s.r_random, "floored": s.r_random_floored, "share": (u > r).mean(1).tolist(),
                   "pairs": s.u_not_r_random, "pgd": s.u_not_r_pgd, "rate_u": s.random_rate[t],
                   "rate_r": s.random_rate["retrain"], "rate_o": s.random_rate["original"]}
    return rows


def _leak_aucs(sp, lo: np.ndarray, lu: np.ndarray, labels: np.ndarray, mitigation: dict, seed: int
               ) -> dict[str, Any]:
    """AUC per feature of Chen et al.'s random-forest attack trained on the shadow posteriors `sp`, on target
    logits (θ_o, θ_u) with labels (1 = deleted). 'selected' = the unlearning feature an attacker would pick
    without target data: the best out-of-bag AUC on its own shadow queries (picking the best *target* AUC
    of five would flatter the attack)."""
    from core.attacks.leak import FEATURES as ALL, features, make_classifier, publish
    from core.attacks.roc import summarize

    ps_o, ps_u = publish(sp.logits_o, **mitigation), publish(sp.logits_u, **mitigation)
    pt_o, pt_u = publish(lo, **mitigation), publish(lu, **mitigation)
    out: dict[str, Any] = {}
    oob = {}
    for f in ALL:
        clf = make_classifier("random_forest", seed).set_params(oob_score=True)
        clf.fit(features(ps_o, ps_u, f), sp.labels)
        oob[f] = summarize(clf.oob_decision_function_[:, 1], sp.labels).auc
        out[f] = summarize(clf.predict_proba(features(pt_o, pt_u, f))[:, 1], labels).auc
    pick = max(FEATURES, key=lambda f: oob[f])
    out["selected"], out["selected_feature"] = out[pick], pick
    return out


def leak_single(ctx, grid: Grid) -> dict[str, dict]:
    """Single deletion, as Chen et al. attack it: K target retrains, each θ_o's recipe on D_train minus one
    forget sample (batched, cached); positives = the deleted sample under (θ_o, its retrain), negatives = the
    test set under the same pair (NEGATIVES random test samples per target). Shadows: single deletions of retrained shadow models. Every mitigation."""
    from core.attacks.leak import _logits, shadow_posteriors
    from core.attacks.shadow import train_models
    from core.batched import forward_many

    split, seed = ctx.split, int(ctx.seed)
    rng = np.random.default_rng([seed, 0x5E])
    picks = np.sort(rng.choice(split.forget, size=min(grid.single_targets, len(split.forget)), replace=False))
    sh = train_models(ctx, [np.setdiff1d(split.train, [i]) for i in picks], [seed] * len(picks),
                      stage="single-deletion retrains")
    Xp, _ = split.tensors(picks)
    Xt, _ = split.tensors("test")
    K = len(picks)
    lu_pos = forward_many(sh.template, sh.params, Xp.unsqueeze(1), per_model_inputs=True)[:, 0].numpy()
    neg = np.stack([rng.choice(len(Xt), size=min(NEGATIVES, len(Xt)), replace=False) for _ in range(K)])
    lu_neg = np.take_along_axis(sh.logits(Xt).numpy(), neg[..., None], axis=1).reshape(neg.size, -1)
    lo_pos, lo_neg = _logits(ctx.models["original"], Xp), _logits(ctx.models["original"], Xt)[neg.ravel()]
    lo, lu = np.concatenate([lo_pos, lo_neg]), np.concatenate([lu_pos, lu_neg])
    labels = np.r_[np.ones(K, int), np.zeros(neg.size, int)]
    sp = shadow_posteriors(ctx, ("retrain", {}), n_shadow=grid.leak_shadow, n_deletions=grid.leak_deletions,
                           deletion="single")
    return {k: _leak_aucs(sp, lo, lu, labels, MITIGATIONS[k], seed) for k in grid.mitigations}


def leak_group(ctx, targets: list[str], grid: Grid) -> dict[str, dict]:
    """Group deletion: the scenario's forget set, deleted at once by each target method (positives: D_f,
    negatives: the matched held-out set, each under θ_o and θ_u); shadow deletions remove the same share of a
    shadow training set with the same method. No mitigations here (each costs six classifier fits): see
    leak_single."""
    from core.attacks.leak import _logits, shadow_posteriors
    from core.attacks.mia import matched_nonmembers

    split, seed = ctx.split, int(ctx.seed)
    n_in = round(0.5 * len(split.shadow))  # the leak's default shadow_fraction
    size = max(2, round(n_in * len(split.forget) / len(split.train)))
    non = matched_nonmembers(split)
    X = np.r_[split.forget, non]
    Xq, _ = split.tensors(X)
    labels = np.r_[np.ones(len(split.forget), int), np.zeros(len(non), int)]
    lo = _logits(ctx.models["original"], Xq)
    rows: dict[str, Any] = {"group_size": size}
    for t in targets:
        exact = t == "retrain"
        sp = shadow_posteriors(ctx, ctx.methods.get(t, ("retrain", {})), deletion="group", group_size=size,
                               n_shadow=grid.leak_shadow if exact else grid.leak_approx_shadow,
                               n_deletions=grid.leak_group_deletions)
        lu = _logits(ctx.models[t], Xq)
        rows[t] = {"none": _leak_aucs(sp, lo, lu, labels, {}, seed)}
    return rows


def competition(run, grid: Grid) -> dict[str, Any]:
    """Section 6: the competition's forgetting quality of every method of the job (retrain included) at the grid's
    N, protocol A, with its ceiling (a second pool of retrains) and floor (θ_o's seeds): the numbers only."""
    from core.analysis import analysis
    from core.analysis.standard import theta_o_learned

    if not theta_o_learned(run):  # a θ_o that learned nothing: no score (as in the dashboard)
        return {"skipped": " ".join(run.results.warnings)}
    rep = analysis(run, "quality", n=grid.quality_n, protocol="A")

    def row(score, pool, note: str = "") -> dict[str, Any]:
        return {"F": None if score is None else score.f, "se": None if score is None else score.f_se,
                "final": None if score is None else score.final, "n": None if score is None else score.n,
                "forget_acc": float(pool.forget_acc.mean()) if pool.n else None, "failed": len(pool.failed),
                "note": note}

    return {"n": rep.n, "protocol": rep.protocol, "ceiling": row(rep.ceiling, rep.pools["ceiling"]),
            "floor": row(rep.floor, rep.pools["originals"]),
            "methods": {k: row(m.score, m.pool, m.note) for k, m in rep.methods.items()}, "seconds": rep.seconds}


def measure(spec: dict) -> JobRecord:
    """Everything one scenario x seed contributes to the report."""
    from bench.methods import warm_up
    from core import metrics
    from core.analysis import Pipeline, analysis, methods
    from core.analysis import standard  # noqa: F401 - registers the analyses
    from core.cache import ModelStore
    from core.config import dumps
    from core.trust import outcomes

    import torch

    grid, scenario, seed = Grid(**spec["grid"]), spec["scenario"], int(spec["seed"])
    # one thread: on a shared 2-core machine, torch's OpenMP threads spin against other processes and small
    # models run up to 10x slower with 2 threads (see core.attacks.residual.torch_threads)
    torch.set_num_threads(int(spec.get("threads", 1)))
    if spec.get("data_root"):
        os.environ["RESIDUE_DATA"] = spec["data_root"]
    warm_up()
    t0 = time.perf_counter()
    cfg = scenario_config(scenario, seed, grid)
    # the paper grid runs where the engine would (CUDA when present); the small grids on the CPU, as measured
    run = Pipeline(cfg, store=ModelStore(spec["cache"]), device=None if grid.name == "paper" else "cpu").measure()
    exp, ctx = run.exp, analysis(run, "attack_context")
    names = ["retrain", *methods(run)]  # the models the verdict analysis judges, in config order
    approx = [n for n in names if n != "retrain"]
    secs: dict[str, float] = {"train": time.perf_counter() - t0}

    def timed(key: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        val = fn()
        secs[key] = time.perf_counter() - t
        return val

    split = exp.prepare().summary()
    rec = JobRecord(scenario, seed, dumps(cfg), quality=timed("quality", lambda: quality(run)), seconds=secs,
                    split=split)
    # with its controls: θ_o, θ_o with only its last layer retrained (class-wise), two held-out retrains
    vr = timed("verdict", lambda: analysis(run, "verdict", n_order=grid.n_order, n_init=grid.n_init))
    rec.pseudo = pseudo_convergence(vr, [*names, *vr.control_verdicts])
    rec.controls = outcomes(vr)
    rec.measures = vr.measures
    for n in names:
        rec.quality[n]["verdict"] = vr.verdicts[n].badge
    rec.rurk = timed("rurk", lambda: rurk(ctx, approx, grid))
    if scenario == "class":
        rec.rea = timed("rea", lambda: rea_class(exp, ctx, approx, grid))
    else:
        rec.rea = timed("rea", lambda: rea_sample(ctx, approx, grid))
        o, data = exp.models["original"], exp.prepare()
        rec.generalisation = {"train_acc": metrics.accuracy(o, *data.tensors("train")),
                              "test_acc": metrics.accuracy(o, *data.tensors("test"))}
        rec.leak_single = timed("leak_single", lambda: leak_single(ctx, grid))
        targets = ["retrain", *[m for m in grid.leak_methods if m in approx]]
        rec.leak_group = timed("leak_group", lambda: leak_group(ctx, targets, grid))
    rec.competition = timed("competition", lambda: competition(run, grid))
    secs["total"] = time.perf_counter() - t0
    return rec


def run_job(spec: dict) -> dict:
    """`measure` as `core.sweep` runs it on any backend: a JSON-able spec in, the record's JSON form out."""
    return measure(spec).to_dict()
