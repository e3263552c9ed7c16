"""Chen et al.'s unlearning leak ("When Machine Unlearning Jeopardizes Privacy", CCS 2021).

The attacker sees the posteriors of the same sample before and after deletion, p_o(x) and p_u(x), and asks:
was x in the original training set and deleted since? Features (following the authors' code,
github.com/MinChen00/UnlearningLeaks, `construct_feature.py`):

- `direct_diff`   p_o - p_u
- `sorted_diff`   both sorted by p_o's order (ascending, as the code does), then p_o - p_u
- `direct_concat` [p_o, p_u]
- `sorted_concat` [sorted p_o, p_u in p_o's order]
- `l2_distance`   ||p_o - p_u||_2
- `basic_mia`     p_o alone: the classic membership attack on the original model (the baseline)

Shadow pipeline on the shadow pool D_s (disjoint from train and test): `n_shadow` shadow training sets
(each a random `shadow_fraction` of D_s, the rest its non-members); for each a shadow original and, for each
of `n_deletions` deletions (one sample, a random group, or a whole class), a shadow unlearned model made with
the *same* unlearning method as the target (for exact methods: retrained without the deleted samples, from
the shadow original's initialisation and data-order seed, as θ_r is from θ_o's). Each deleted sample gives a
positive, as many random non-members a negative (posteriors of the same original/unlearned pair). An attack
classifier per feature (random forest by default, logistic regression, MLP) is trained on the shadow features
and applied to the target: positives = the target's forget samples (p_o = θ_o, p_u = the attacked model),
negatives = held-out samples like them (`core.attacks.mia.matched_nonmembers`: of the forgotten class when a
whole class is forgotten, else the test set).

Degradation (the authors' `calculate_comparison_metrics`): for every target sample, the attack's
confidence in the sample's true label (member-deleted or not) under a feature minus under `basic_mia`;
`deg_count` is the share of samples where it is higher, `deg_rate` its mean.

Mitigations (applied to every published posterior, shadow and target alike): temperature scaling
(softmax(z / T)), top-k posteriors (the others replaced by the mean of the remaining mass, as the authors'
code does) and label only (one-hot of the prediction).

All shadow models of an exact method (originals and unlearned, 16 + 16x8 by default) are trained in one
vectorised call (`core.attacks.shadow.train_models` -> `core.batched.train_many`, each model cached in the
experiment's model store); approximate methods unlearn each shadow deletion with the method itself (that
*is* the method), one model at a time.
"""
from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..batched import forward_many, stack, unstack
from ..cache import digest, stable_hash
from ..errors import ResidueError
from ..params import Param
from ..progress import Progress, as_progress
from ..unlearn import UnlearnTask, get_method, methods
from .base import Attack, AttackContext, AttackResult, register
from .mia import matched_nonmembers
from .residual import torch_threads
from .shadow import train_models
from .roc import summarize

FEATURES = ("direct_diff", "sorted_diff", "direct_concat", "sorted_concat", "l2_distance", "basic_mia")
CLASSIFIERS = ("random_forest", "logistic_regression", "mlp")
DELETIONS = ("single", "group", "class")
MIN_POOL = 20  # shadow-pool samples the shadow training sets and deletions are drawn from, at least


# -- posteriors and features --------------------------------------------------------------------------
def publish(logits: torch.Tensor | np.ndarray, temperature: float = 1.0, top_k: int = 0,
            label_only: bool = False) -> np.ndarray:
    """What the model owner publishes for each row of logits, after the chosen mitigations.

    temperature: softmax(z / T); top_k > 0: keep the k largest posteriors, replace the others by the mean of
    the remaining mass (Chen et al.'s code); label_only: one-hot of the predicted label."""
    z = torch.as_tensor(logits, dtype=torch.float64)
    p = torch.softmax(z / float(temperature), dim=-1).numpy()
    C = p.shape[-1]
    if label_only:
        out = np.zeros_like(p)
        out[np.arange(len(p)), p.argmax(-1)] = 1.0
        return out
    if 0 < top_k < C:
        order = np.argsort(-p, axis=-1, kind="stable")
        top = order[:, :top_k]
        kept = np.take_along_axis(p, top, axis=-1)
        rest = (1.0 - kept.sum(-1, keepdims=True)) / (C - top_k)
        out = np.repeat(rest, C, axis=-1)
        np.put_along_axis(out, top, kept, axis=-1)
        return out
    return p


def features(p_o: np.ndarray, p_u: np.ndarray, kind: str) -> np.ndarray:
    """One of Chen et al.'s feature constructions, row-wise: (n, C) posteriors -> (n, d) features."""
    p_o, p_u = np.asarray(p_o, dtype=np.float64), np.asarray(p_u, dtype=np.float64)
    if kind == "direct_diff":
        return p_o - p_u
    if kind in ("sorted_diff", "sorted_concat"):
        order = np.argsort(p_o, axis=-1, kind="stable")  # ascending, like the authors' np.argsort
        so, su = np.take_along_axis(p_o, order, -1), np.take_along_axis(p_u, order, -1)
        return so - su if kind == "sorted_diff" else np.concatenate([so, su], axis=-1)
    if kind == "direct_concat":
        return np.concatenate([p_o, p_u], axis=-1)
    if kind == "l2_distance":
        return np.linalg.norm(p_o - p_u, axis=-1, keepdims=True)
    if kind == "basic_mia":
        return p_o.copy()
    raise ResidueError(f"Unknown leak feature '{kind}'. Known: {', '.join(FEATURES)}.")


def make_classifier(name: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "random_forest":
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=2, random_state=seed, n_jobs=1)
    if name == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    if name == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier((64,), max_iter=800, random_state=seed))
    raise ResidueError(f"Unknown attack classifier '{name}'. Known: {', '.join(CLASSIFIERS)}.")


# -- the shadow pipeline --------------------------------------------------------------------------------
@dataclass
class ShadowPosteriors:
    """Logits of every shadow query: under the shadow original and under its shadow unlearned model."""

    logits_o: np.ndarray  # (n, C)
    logits_u: np.ndarray  # (n, C)
    labels: np.ndarray  # 1 = deleted member, 0 = non-member
    y: np.ndarray  # true class of the queried sample
    shadow: np.ndarray  # which shadow set the query came from
    seconds: dict  # stage -> seconds ("cached": True when served from the in-process cache)
    n_models: int
    notes: list = dataclasses.field(default_factory=list)


def _deletions(rng: np.random.Generator, members: np.ndarray, y_members: np.ndarray, n: int, kind: str,
               group_size: int) -> list[np.ndarray]:
    """Positions (into `members`) of each deletion."""
    if kind == "single":
        return [np.array([i]) for i in rng.choice(len(members), size=min(n, len(members)), replace=False)]
    if kind == "group":
        return [np.sort(rng.choice(len(members), size=min(group_size, len(members) - 1), replace=False))
                for _ in range(n)]
    classes = rng.permutation(np.unique(y_members))
    out = []
    for j in range(n):
        c = classes[j % len(classes)]
        out.append(np.nonzero(y_members == c)[0])
    return out


_CACHE: "OrderedDict[str, ShadowPosteriors]" = OrderedDict()
_CACHE_SIZE = 8


def _cache_key(ctx: AttackContext, method: tuple[str, dict], settings: dict) -> str:
    split = ctx.split
    data = digest(split.dataset.X, split.dataset.y, split.shadow, length=64)
    model = ctx.fresh_model(int(ctx.seed))
    return stable_hash({"data": data, "seed": int(ctx.seed), "recipe": ctx.recipe.to_dict(),
                        "arch": repr(model), "method": [method[0], method[1]], **settings})


def shadow_posteriors(ctx: AttackContext, method: tuple[str, dict], *, n_shadow: int = 16, n_deletions: int = 8,
                      deletion: str = "single", group_size: int = 10, shadow_fraction: float = 0.5, seed: int = 0,
                      progress: Progress | None = None, cache: bool = True) -> ShadowPosteriors:
    """Train the shadow originals and shadow unlearned models on D_s; return the attack's training queries.

    The result is kept in a small in-process cache keyed by everything that determines it (data, split,
    architecture, recipe, method, shadow settings, seeds), so changing only the mitigations or the attack
    classifier does not retrain the shadows."""
    settings = dict(n_shadow=n_shadow, n_deletions=n_deletions, deletion=deletion, group_size=group_size,
                    shadow_fraction=shadow_fraction, seed=seed)
    key = _cache_key(ctx, method, settings) if cache else None
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        hit = _CACHE[key]
        return dataclasses.replace(hit, seconds={**hit.seconds, "cached": True})
    # on a machine with two threads or fewer (the default target) one thread trains the batched shadows about as
    # fast when it is idle and several times faster when anything runs beside it (OpenMP barriers, see
    # residual.torch_threads); larger machines keep their thread count
    with torch_threads(1 if torch.get_num_threads() <= 2 else torch.get_num_threads()):
        out = _shadow_posteriors(ctx, method, progress=progress, **settings)
    if key is not None:
        _CACHE[key] = out
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return out


def _shadow_posteriors(ctx: AttackContext, method: tuple[str, dict], *, n_shadow: int, n_deletions: int,
                       deletion: str, group_size: int, shadow_fraction: float, seed: int,
                       progress: Progress | None = None) -> ShadowPosteriors:
    progress = as_progress(progress)
    split = ctx.split
    pool = np.asarray(split.shadow)
    if (why := UnlearningLeak.not_applicable(split)) is not None:
        raise ResidueError(f"The unlearning leak {why}.")
    Xs, ys = split.tensors(pool)
    y_np = ys.cpu().numpy()
    rng = np.random.default_rng([int(ctx.seed), int(seed), 1017])
    n_in = int(round(shadow_fraction * len(pool)))
    n_in = min(max(n_in, 2), len(pool) - 1)
    name, params = method
    exact = methods.get(name).exact and not params
    template = ctx.fresh_model(int(ctx.seed))
    init_seeds = [int(rng.integers(0, 2**31 - 1)) for _ in range(n_shadow)]

    sets, dels = [], []  # per shadow: member positions (into pool); per shadow: list of deletions (member positions)
    for i in range(n_shadow):
        members = np.sort(rng.choice(len(pool), size=n_in, replace=False))
        sets.append(members)
        dels.append([members[d] for d in _deletions(rng, members, y_np[members], n_deletions, deletion, group_size)])

    seconds: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    if exact:
        # one batched training (core.attacks.shadow.train_models: vectorised, cached in ctx.store): the shadow
        # originals, then every shadow unlearned model (same init and order seed as its original, its training
        # set minus the deletion)
        subsets = list(sets) + [np.setdiff1d(sets[i], d) for i in range(n_shadow) for d in dels[i]]
        own = list(range(n_shadow)) + [i for i in range(n_shadow) for _ in dels[i]]
        sh = train_models(ctx, [pool[s] for s in subsets], [init_seeds[i] for i in own], progress=progress,
                          stage="leak: shadow models")
        originals = {k: v[:n_shadow] for k, v in sh.params.items()}
        unlearned = {k: v[n_shadow:] for k, v in sh.params.items()}
        seconds["shadow_training"] = time.perf_counter() - t0
        if sh.cached:
            notes.append(f"{sh.cached} of {len(subsets)} shadow models came from the model cache.")
    else:
        sh = train_models(ctx, [pool[s] for s in sets], init_seeds, progress=progress, stage="leak: shadow originals")
        originals = sh.params
        seconds["shadow_originals"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        unlearner = get_method(name, **params)
        models_o = unstack(originals, template)
        out_models: list[nn.Module] = []
        total = sum(len(d) for d in dels)
        diverged = 0
        with torch_threads(1):  # one small model at a time: tiny operations (see residual.torch_threads)
            for i, d in ((i, d) for i in range(n_shadow) for d in dels[i]):
                rest = np.setdiff1d(sets[i], d)
                (fX, fy), (rX, ry) = split.tensors(pool[d]), split.tensors(pool[rest])
                task = UnlearnTask(fX, fy, rX, ry, split.dataset.n_classes, ctx.recipe,
                                   (lambda s=init_seeds[i]: ctx.fresh_model(s)), seed=init_seeds[i])
                r = unlearner.unlearn(models_o[i], task, None)
                diverged += r.status != "ok"
                out_models.append(r.model)
                progress("leak: shadow unlearning", len(out_models), total)
        unlearned = stack(out_models)
        seconds["shadow_unlearning"] = time.perf_counter() - t1
        if diverged:
            notes.append(f"{diverged} of {total} shadow unlearning runs of '{name}' diverged and were stopped at "
                         "their last finite weights (as the target's would be).")

    # queries: each deletion's samples (positives) and as many random non-members (negatives)
    t2 = time.perf_counter()
    queries, owner = [], []
    for i in range(n_shadow):
        outside = np.setdiff1d(np.arange(len(pool)), sets[i])
        for d in dels[i]:
            neg = rng.choice(outside, size=min(len(d), len(outside)), replace=False)
            queries.append((d, neg))
            owner.append(i)
    width = max(len(d) + len(n) for d, n in queries)
    q_idx = torch.zeros(len(queries), width, dtype=torch.long)
    for j, (d, n) in enumerate(queries):
        q = np.concatenate([d, n])
        q_idx[j, :len(q)] = torch.as_tensor(q)
    all_o = forward_many(template, originals, Xs)  # (n_shadow, |D_s|, C)
    all_u = forward_many(template, unlearned, Xs[q_idx.to(Xs.device)], per_model_inputs=True)  # (J, width, C)
    lo, lu, labels, yq, sh = [], [], [], [], []
    for j, (d, n) in enumerate(queries):
        q = np.concatenate([d, n])
        lo.append(all_o[owner[j], torch.as_tensor(q, device=all_o.device)])
        lu.append(all_u[j, :len(q)])
        labels.append(np.r_[np.ones(len(d)), np.zeros(len(n))])
        yq.append(y_np[q])
        sh.append(np.full(len(q), owner[j]))
    j = len(queries)
    seconds["shadow_queries"] = time.perf_counter() - t2
    return ShadowPosteriors(torch.cat(lo).cpu().numpy(), torch.cat(lu).cpu().numpy(),
                            np.concatenate(labels).astype(int), np.concatenate(yq), np.concatenate(sh), seconds,
                            n_shadow + j, notes)


def _logits(model: nn.Module, X: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(X[i:i + 4096]) for i in range(0, len(X), 4096)]).cpu().numpy()


def _true_conf(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.where(labels == 1, proba, 1.0 - proba)


@register
class UnlearningLeak(Attack):
    """Chen et al. 2021: a shadow-trained classifier on (p_o, p_u) tells deleted samples from non-members.

    Returns one `AttackResult` per feature ("leak:direct_diff", ..., "leak:basic_mia"), each with the
    classifier's target scores, its accuracy at threshold 0.5 and shadow (training) AUC in `extra`, and for
    the unlearning features the degradation figures against `basic_mia` (`deg_count`, `deg_rate`)."""

    name = "leak"
    title = "Unlearning leak (Chen et al. 2021)"
    summary = "Compare the posteriors before and after deletion; a shadow-trained classifier says 'deleted'."
    reference = "Chen, Zhang, Wang, Backes, Humbert, Zhang. When Machine Unlearning Jeopardizes Privacy. CCS 2021."
    params = (
        Param("n_shadow", 16, 1, 128, "shadow training sets (one shadow original each)"),
        Param("n_deletions", 8, 1, 64, "deletions per shadow original (one shadow unlearned model each)"),
        Param("deletion", "single", help="what one shadow deletion removes: one sample, a random group, or "
                                         "every shadow sample of one class", choices=DELETIONS),
        Param("group_size", 10, 2, 500, "samples per deletion when deletion = group"),
        Param("shadow_fraction", 0.5, 0.1, 0.9, "share of the shadow pool in each shadow training set"),
        Param("classifier", "random_forest", help="attack classifier", choices=CLASSIFIERS),
        Param("temperature", 1.0, 0.01, 1000.0, "mitigation: publish softmax(logits / T) (1 = off)", log=True),
        Param("top_k", 0, 0, 1000, "mitigation: publish only the top-k posteriors (0 = off)"),
        Param("label_only", False, help="mitigation: publish only the predicted label"),
        Param("seed", 0, 0, 2**31 - 1, "attack seed (shadow sets, deletions, classifier)"),
    )

    @classmethod
    def not_applicable(cls, split: Any) -> str | None:
        n = len(split.shadow)
        return None if n >= MIN_POOL else (f"needs a shadow pool of at least {MIN_POOL} samples; this split has {n} "
                                           "(raise the shadow fraction of the data split)")

    def run(self, ctx: AttackContext, target: str, progress: Progress | None = None) -> list[AttackResult]:
        hp = self.hp
        progress = as_progress(progress)
        if target == "original":
            raise ResidueError("The unlearning leak compares the original with an unlearned model; pick an unlearned "
                               "model (or 'retrain') as the target, not 'original'.")
        if target not in ctx.models:
            raise ResidueError(f"No model named '{target}' in this experiment; known: {sorted(ctx.models)}.")
        method = ctx.methods.get(target, ("retrain", {}) if target == "retrain" else None)
        if method is None:
            raise ResidueError(f"Model '{target}' has no unlearning method recorded; the leak's shadow models must "
                               "be made with the target's method.")
        start, cpu = time.perf_counter(), time.process_time()
        sp = shadow_posteriors(ctx, method, n_shadow=hp["n_shadow"], n_deletions=hp["n_deletions"],
                               deletion=hp["deletion"], group_size=hp["group_size"],
                               shadow_fraction=hp["shadow_fraction"], seed=hp["seed"], progress=progress)
        split = ctx.split
        non = matched_nonmembers(split)  # held-out samples like D_f (of the forgotten class when one is)
        (fX, fy), (tX, ty) = split.tensors("forget"), split.tensors(non)
        X = torch.cat([fX, tX])
        y_t = torch.cat([fy, ty]).cpu().numpy()
        labels_t = np.r_[np.ones(len(fy)), np.zeros(len(ty))].astype(int)
        ids = np.r_[split.forget, non]
        lo_t, lu_t = _logits(ctx.models["original"], X), _logits(ctx.models[target], X)
        mit = dict(temperature=hp["temperature"], top_k=hp["top_k"], label_only=hp["label_only"])
        ps_o, ps_u = publish(sp.logits_o, **mit), publish(sp.logits_u, **mit)
        pt_o, pt_u = publish(lo_t, **mit), publish(lu_t, **mit)
        correct_u = (lu_t.argmax(-1) == y_t).astype(int)

        t_clf = time.perf_counter()
        probas: dict[str, np.ndarray] = {}
        info: dict[str, dict] = {}
        for i, feat in enumerate(FEATURES):
            progress("leak: attack classifiers", i, len(FEATURES))
            F_s, F_t = features(ps_o, ps_u, feat), features(pt_o, pt_u, feat)
            clf = make_classifier(hp["classifier"], int(ctx.seed) * 1000 + hp["seed"])
            clf.fit(F_s, sp.labels)
            p_s = clf.predict_proba(F_s)[:, 1]
            probas[feat] = clf.predict_proba(F_t)[:, 1]
            info[feat] = {"train_auc": summarize(p_s, sp.labels).auc,
                          "train_accuracy": float(((p_s > 0.5) == sp.labels).mean()),
                          "accuracy": float(((probas[feat] > 0.5) == labels_t).mean())}
        progress("leak: attack classifiers", len(FEATURES), len(FEATURES))
        seconds = dict(sp.seconds, classifiers=time.perf_counter() - t_clf, total=time.perf_counter() - start,
                       cpu=time.process_time() - cpu)

        base_conf = _true_conf(probas["basic_mia"], labels_t)
        common = {"method": method[0], "mitigation": mit, "classifier": hp["classifier"],
                  "deletion": hp["deletion"], "n_shadow": hp["n_shadow"], "n_deletions": hp["n_deletions"],
                  "n_shadow_models": sp.n_models, "n_shadow_queries": int(len(sp.labels)),
                  "exact_shadows": bool(methods.get(method[0]).exact and not method[1]), "seconds": seconds,
                  "notes": list(sp.notes)}
        results = []
        for feat in FEATURES:
            extra = dict(common, feature=feat, **info[feat])
            if feat != "basic_mia":
                diff = _true_conf(probas[feat], labels_t) - base_conf
                extra["deg_count"] = float((diff > 0).mean())
                extra["deg_rate"] = float(diff.mean())
            results.append(AttackResult(
                attack=f"leak:{feat}", target=target, scores=probas[feat], labels=labels_t, sample_ids=ids,
                groups={"class": y_t, "correct": correct_u}, extra=extra))
        return results
