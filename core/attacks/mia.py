"""Classic membership inference on one model, and the unlearning benchmarks' MIA-efficacy.

* Threshold attacks on one output signal: loss (Yeom et al. 2018), true-label confidence, prediction
  entropy and modified entropy (Song & Mittal 2021). The ROC sweeps every threshold; the single decision
  threshold reported beside it is fitted on *shadow models'* members and non-members (never on the
  evaluated samples), optionally one per class as Song & Mittal do.
* Shadow-model attack (Shokri et al. 2017): a classifier trained on shadow models' posteriors of their own
  members / non-members, applied to the target's posteriors.
* MIA-efficacy (Jia et al. 2023, used by SalUn): an SVC on the target's confidence (or entropy) trained to
  separate retain samples (members) from test samples (non-members), applied to D_f; the share of D_f it
  calls non-member.

Default evaluation: members = D_f (up to 500), non-members = `matched_nonmembers` (up to 500), attacking the
given target. Against θ_o that is a real membership test; against θ_r, D_f was never trained on. With
class-wise forgetting, scoring D_f against the mixed test set compares two groups that also differ in class: a
model that never learned the class (θ_r) gives D_f *higher* loss than the test set and the ROC falls far below
the diagonal, saying the opposite of the truth. So the non-members are held-out samples of the forgotten
class(es) (science.md §3.1): every attack, the dashboard and the science report take them from the one
function `matched_nonmembers`; `nonmembers="test"` keeps the mixed test set for comparison.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from .. import metrics
from ..errors import ResidueError
from ..params import Param
from ..progress import Progress, as_progress
from .base import Attack, AttackContext, AttackResult, register
from .shadow import ShadowSet, shadow_models

# -- output signals ---------------------------------------------------------------------------------------

SIGNALS = ("loss", "confidence", "entropy", "modified_entropy")


def signals(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample *member scores* (higher = more likely member) from logits (..., C) and labels (...).

    loss: −CE; confidence: p_y; entropy: −H(p); modified_entropy: −Mentr (Song & Mittal 2021,
    Mentr = −(1−p_y)·log p_y − Σ_{j≠y} p_j·log(1−p_j)); phi: logit-scaled confidence
    log p_y − log Σ_{j≠y} p_j (Carlini et al. 2022). Computed in float64 from the logits."""
    z = logits.double()
    logp = z.log_softmax(-1)
    p = logp.exp()
    yy = y.long().expand(z.shape[:-1]).unsqueeze(-1)
    logp_y = logp.gather(-1, yy).squeeze(-1)
    p_y = logp_y.exp()
    log1m = torch.log1p(-p.clamp(max=1 - 1e-15))  # log(1 - p_j)
    log1m_y = log1m.gather(-1, yy).squeeze(-1)
    ent = -(p * logp).sum(-1)
    other = torch.ones_like(p).scatter_(-1, yy, 0.0)
    mentr = -(1 - p_y) * logp_y - (other * p * log1m).sum(-1)
    return {"loss": logp_y, "confidence": p_y, "entropy": -ent, "modified_entropy": -mentr,
            "phi": logp_y - log1m_y}


def phi(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Logit-scaled confidence φ = z_y − logsumexp_{j≠y} z_j = log p_y − log Σ_{j≠y} p_j (exact, stable)."""
    z = logits.double()
    yy = y.long().expand(z.shape[:-1]).unsqueeze(-1)
    z_y = z.gather(-1, yy).squeeze(-1)
    rest = z.scatter(-1, yy, float("-inf")).logsumexp(-1)
    return z_y - rest


# -- which samples are attacked ----------------------------------------------------------------------------

QUERY_PARAMS = (
    Param("members", "forget", help="members to attack: the forget set D_f, or a sample of the retain set",
          choices=("forget", "retain")),
    Param("nonmembers", "matched", help="non-members: held-out samples of the forgotten class(es) when whole classes "
          "are forgotten, else the test set (matched); the mixed test set (test); or test samples of the members' "
          "classes (test_same_classes)", choices=("matched", "test", "test_same_classes")),
    Param("max_queries", 500, 20, 5000, "at most this many members and this many non-members (official ReA: 500)"),
)
SHADOW_PARAMS = (
    Param("n_shadows", 16, 2, 256, "shadow models (trained all at once); official ReA code: 8"),
    Param("in_fraction", 0.0, 0.0, 0.95, "share of shadows each sample is IN for; 0 = auto, so each shadow trains "
          "on as many samples as θ_o (LiRA: 0.5; ReA code: 6 of 8)"),
    Param("pool", "shadow+queries+retain", help="the shadows' data: the shadow pool and the queried samples, and "
          "the retain set (the unlearning attacker holds D_r; it also lets shadows train on as much data as θ_o)",
          choices=("shadow+queries+retain", "shadow+queries")),
)


def shadows_for(ctx: AttackContext, ids: np.ndarray, hp: dict, progress: Progress | None = None) -> ShadowSet:
    """The shadow set the hyperparameters `hp` (SHADOW_PARAMS) ask for, for the queried dataset indices."""
    population = ctx.split.retain if hp["pool"] == "shadow+queries+retain" else None
    return shadow_models(ctx, ids, hp["n_shadows"], hp["in_fraction"] or None, population, progress=progress)


def matched_nonmembers(split) -> np.ndarray:
    """The samples D_f is scored against: never trained on by any model, and like D_f in class.

    Class-wise forgetting: the held-out samples (test set and shadow pool) of the forgotten class(es), so that
    members and non-members differ only in membership. Sample-wise forgetting: the test set, which is drawn
    from the same class mixture as D_f."""
    classes = list(split.forget_classes)
    if not classes:
        return np.sort(np.asarray(split.test, dtype=np.int64))
    held = np.concatenate([np.asarray(split.test), np.asarray(split.shadow)]).astype(np.int64)
    return np.sort(held[np.isin(split.dataset.y[held], classes)])


def sets_description(split, members: int, nonmembers: int) -> str:
    """Positives and negatives of the default attack sets in words, for ROC captions."""
    classes = list(split.forget_classes)
    names = getattr(split.dataset, "class_names", None) or [str(c) for c in range(split.dataset.n_classes)]
    if classes:
        what = " and ".join(f"'{names[c]}'" for c in classes)
        return (f"positives: {members} forget samples (the training images of class {what}); negatives: "
                f"{nonmembers} held-out images of the same class that no model trained on")
    return (f"positives: {members} forget samples; negatives: {nonmembers} test samples that no model trained on "
            "(the same class mixture)")


def query_sets(ctx: AttackContext, members: str = "forget", nonmembers: str = "matched", max_queries: int = 500,
               seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(member ids, non-member ids) as dataset indices, subsampled to `max_queries` each (seeded)."""
    split = ctx.split
    rng = np.random.default_rng([int(ctx.seed if seed is None else seed), 0x0E7])
    mem = np.asarray(split.forget if members == "forget" else split.retain, dtype=np.int64)
    non = np.asarray(split.test, dtype=np.int64)
    if nonmembers == "matched" and members == "forget":
        non = matched_nonmembers(split)
    elif nonmembers == "test_same_classes":
        y = split.dataset.y
        non = non[np.isin(y[non], np.unique(y[mem]))]
    if len(mem) > max_queries:
        mem = np.sort(rng.choice(mem, max_queries, replace=False))
    if len(non) > max_queries:
        non = np.sort(rng.choice(non, max_queries, replace=False))
    if len(mem) == 0 or len(non) == 0:
        raise ResidueError("attack: no members or no non-members to evaluate (check the forget set and test split).")
    return mem, non


def groups_of(logits: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-sample tags for slicing: true class and whether the attacked model predicts it."""
    return {"class": y.cpu().numpy().astype(int), "correct": (logits.argmax(-1) == y).cpu().numpy()}


def _shadow_calibration(sh: ShadowSet, ctx: AttackContext) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Shadow logits on the shadow pool only (never on evaluated samples): (M, N, C), labels (N,), IN mask (M, N)."""
    ids = np.asarray(ctx.split.shadow, dtype=np.int64)
    key = "calibration"
    if key not in sh.memo:
        X, y = ctx.split.tensors(ids)
        sh.memo[key] = (sh.logits(X), y, sh.member_mask(ids))
    return sh.memo[key]


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Threshold t (member iff score >= t) with the best balanced accuracy, and that accuracy."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    P, N = max(y.sum(), 1), max((~y).sum(), 1)
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each distinct value
    tpr = np.cumsum(y)[last] / P
    fpr = np.cumsum(~y)[last] / N
    acc = 0.5 * (tpr + 1 - fpr)
    i = int(np.argmax(acc))
    if acc[i] <= 0.5:
        return float("inf"), 0.5
    return float(s[last[i]]), float(acc[i])


def balanced_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    pred, y = np.asarray(pred).astype(bool), np.asarray(labels).astype(bool)
    return float(0.5 * (pred[y].mean() + (~pred[~y]).mean()))


# -- attacks -----------------------------------------------------------------------------------------------

@register
class ThresholdMIA(Attack):
    """Threshold attacks on loss, confidence, entropy and modified entropy: one result per signal."""

    name = "mia_threshold"
    title = "Threshold MIA (loss, confidence, entropy, modified entropy)"
    summary = ("Members are fitted better: lower loss, higher confidence, lower (modified) entropy. The ROC sweeps "
               "every threshold; the reported decision threshold is fitted on shadow models.")
    reference = "Yeom et al. 2018 (loss); Song & Mittal 2021 (confidence, entropy, modified entropy)."
    params = QUERY_PARAMS + SHADOW_PARAMS + (
        Param("class_thresholds", False,
              help="one threshold per class (Song & Mittal); scores become signal − τ_class"),
    )

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        hp = self.hp
        mem, non = query_sets(ctx, hp["members"], hp["nonmembers"], hp["max_queries"])
        ids = np.r_[mem, non]
        labels = np.r_[np.ones(len(mem), int), np.zeros(len(non), int)]
        sh = shadows_for(ctx, ids, hp, progress)
        s_logits, s_y, s_in = _shadow_calibration(sh, ctx)
        s_sig = signals(s_logits, s_y)
        X, y = ctx.split.tensors(ids)
        logits = metrics.logits(ctx.models[target], X)
        sig = signals(logits, y)
        groups = groups_of(logits, y)
        yc = y.cpu().numpy()
        s_yc = np.broadcast_to(s_y.cpu().numpy(), s_in.shape)
        out = []
        for name in SIGNALS:
            cal, lab = s_sig[name].cpu().numpy(), s_in
            scores = sig[name].cpu().numpy()
            tau, shadow_acc = best_threshold(cal.ravel(), lab.ravel())
            extra = {"signal": name, "threshold": tau, "shadow_accuracy": shadow_acc,
                     "accuracy_at_threshold": balanced_accuracy(scores >= tau, labels),
                     "n_shadows": sh.n_models, "calibrated_on": "shadow models' own members / non-members"}
            if hp["class_thresholds"]:
                taus = {}
                shifted = scores.copy()
                for c in np.unique(yc):
                    m = s_yc == c
                    t_c, _ = best_threshold(cal[m], lab[m]) if m.any() else (tau, 0.5)
                    t_c = tau if not np.isfinite(t_c) else t_c
                    taus[int(c)] = t_c
                    shifted[yc == c] = scores[yc == c] - t_c
                scores = shifted
                extra["class_thresholds"] = taus
                extra["accuracy_at_threshold"] = balanced_accuracy(scores >= 0, labels)
            out.append(AttackResult(f"mia:{name}", target, scores, labels, ids, groups, extra))
        progress("threshold MIA", 1, 1)
        return out


def shokri_features(logits: torch.Tensor, y: torch.Tensor, n_classes: int) -> np.ndarray:
    """Attack-model features of Shokri et al.'s attack: the sorted log-posterior, log p_y, φ and the
    one-hot true class (so one classifier can act as the paper's per-class attack models)."""
    z = logits.double()
    logp = z.log_softmax(-1)
    y = y.long().expand(z.shape[:-1])
    sorted_lp = logp.sort(-1, descending=True).values
    lp_y = logp.gather(-1, y.unsqueeze(-1))
    onehot = F.one_hot(y, n_classes).double()
    feats = torch.cat([sorted_lp.clamp_min(-50), lp_y.clamp_min(-50), phi(z, y).clamp(-50, 50).unsqueeze(-1), onehot],
                      dim=-1)
    return feats.reshape(-1, feats.shape[-1]).cpu().numpy()


def _classifier(kind: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "gbdt":
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, random_state=seed)
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=300, random_state=seed))


@register
class ShadowMIA(Attack):
    """Shokri et al.'s shadow-model attack."""

    name = "mia_shadow"
    title = "Shadow-model MIA (Shokri et al.)"
    summary = ("Shadow models copy the target's training on data whose membership we know; a classifier learns "
               "member vs non-member from their posteriors and is applied to the target's.")
    reference = "Shokri et al. 2017, Membership Inference Attacks against Machine Learning Models."
    params = QUERY_PARAMS + SHADOW_PARAMS + (
        Param("classifier", "gbdt", help="attack model: gradient-boosted trees, logistic regression or an MLP",
              choices=("gbdt", "logistic", "mlp")),
    )

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        hp = self.hp
        mem, non = query_sets(ctx, hp["members"], hp["nonmembers"], hp["max_queries"])
        ids = np.r_[mem, non]
        labels = np.r_[np.ones(len(mem), int), np.zeros(len(non), int)]
        sh = shadows_for(ctx, ids, hp, progress)
        k = ctx.split.dataset.n_classes
        s_logits, s_y, s_in = _shadow_calibration(sh, ctx)
        clf = _classifier(hp["classifier"], ctx.seed)
        X, y = ctx.split.tensors(ids)
        logits = metrics.logits(ctx.models[target], X)
        with threadpool_limits(1):  # a few thousand rows: threads only add overhead (and stall on a busy CPU)
            clf.fit(shokri_features(s_logits, s_y, k), s_in.ravel().astype(int))
            scores = clf.predict_proba(shokri_features(logits, y, k))[:, 1]
        progress("shadow MIA", 1, 1)
        extra = {"n_shadows": sh.n_models, "classifier": hp["classifier"],
                 "accuracy_at_threshold": balanced_accuracy(scores >= 0.5, labels),
                 "trained_on": f"{s_in.size} shadow posteriors (shadow pool only)"}
        return [AttackResult("mia:shadow", target, scores, labels, ids, groups_of(logits, y), extra)]


EFFICACY_FEATURES = ("confidence", "entropy", "modified_entropy", "confidence+entropy")


def _efficacy_features(logits: torch.Tensor, y: torch.Tensor, kind: str) -> np.ndarray:
    s = signals(logits, y)
    cols = {"confidence": [s["confidence"]], "entropy": [-s["entropy"]], "modified_entropy": [-s["modified_entropy"]],
            "confidence+entropy": [s["confidence"], -s["entropy"]]}[kind]
    return torch.stack(cols, -1).cpu().numpy()


def mia_efficacy(model, retain: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                 forget: tuple[torch.Tensor, torch.Tensor], features: str = "confidence") -> dict:
    """Jia et al. 2023 / SalUn MIA-efficacy: SVC(C=3, rbf, gamma='auto') on `features` of `model`,
    fitted on retain (member) vs test (non-member), applied to forget. Returns {"efficacy": share of D_f
    predicted non-member, "forget_decision": SVC decision values on D_f, "clf": the fitted SVC}."""
    from sklearn.svm import SVC

    fr = _efficacy_features(metrics.logits(model, retain[0]), retain[1], features)
    ft = _efficacy_features(metrics.logits(model, test[0]), test[1], features)
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    with threadpool_limits(1):
        clf.fit(np.r_[fr, ft], np.r_[np.ones(len(fr)), np.zeros(len(ft))])
    ff = _efficacy_features(metrics.logits(model, forget[0]), forget[1], features)
    return {"efficacy": float(1 - clf.predict(ff).mean()), "forget_decision": clf.decision_function(ff), "clf": clf}


@register
class MiaEfficacy(Attack):
    """MIA-efficacy as the unlearning benchmarks report it, plus an honest ROC on held-out data."""

    name = "mia_efficacy"
    title = "MIA-efficacy (Jia et al. / SalUn)"
    summary = ("An SVC on the model's confidence learns retain (member) vs test (non-member); MIA-efficacy is the "
               "share of D_f it calls non-member (1 = looks forgotten). Fitted on half of the test set; the ROC "
               "compares D_f with the other half.")
    reference = "Jia et al. 2023 (model sparsity for unlearning); Fan et al. 2024 (SalUn)."
    params = (
        Param("features", "confidence", help="SVC input (the benchmarks report confidence)", choices=EFFICACY_FEATURES),
    )

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        progress = as_progress(progress)
        split = ctx.split
        retain, fit_test, eval_non = efficacy_sets(split, ctx.seed)
        model = ctx.models[target]
        res = mia_efficacy(model, split.tensors(retain), split.tensors(fit_test), split.tensors("forget"),
                           self.hp["features"])
        Xe, ye = split.tensors(eval_non)
        fe = _efficacy_features(metrics.logits(model, Xe), ye, self.hp["features"])
        ids = np.r_[np.asarray(split.forget, dtype=np.int64), eval_non]
        scores = np.r_[res["forget_decision"], res["clf"].decision_function(fe)]
        labels = np.r_[np.ones(len(split.forget), int), np.zeros(len(eval_non), int)]
        X, y = split.tensors(ids)
        progress("MIA-efficacy", 1, 1)
        extra = {"efficacy": res["efficacy"], "features": self.hp["features"], "n_fit_members": int(len(retain)),
                 "n_fit_nonmembers": int(len(fit_test)),
                 "meaning": "share of D_f predicted non-member (retrain-like: high; θ_o: low)"}
        groups = groups_of(metrics.logits(model, X), y)
        return [AttackResult("mia_efficacy", target, scores, labels, ids, groups, extra)]


def efficacy_sets(split, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(retain fit set, test fit set, ROC non-members) of MIA-efficacy, the same for the attack and the probe.

    The SVC is fitted on half of the test set against as many retain samples (balanced, as Jia et al.); the ROC
    compares D_f with the matched non-members it was not fitted on."""
    rng = np.random.default_rng([int(seed), 0xEFF])
    test = rng.permutation(np.asarray(split.test, dtype=np.int64))
    fit_test = np.sort(test[: len(test) // 2])
    retain = np.asarray(split.retain, dtype=np.int64)
    retain = np.sort(rng.choice(retain, min(len(retain), len(fit_test)), replace=False))
    eval_non = np.setdiff1d(matched_nonmembers(split), fit_test)
    if len(eval_non) == 0:  # every matched sample was in the fit half: fall back to the other half of the test set
        eval_non = np.sort(test[len(test) // 2:])
    return retain, fit_test, eval_non
