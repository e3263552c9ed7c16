"""Shadow models: many models of the target's architecture and recipe, trained at once and cached.

Every shadow-model attack (LiRA, the reminiscence attack's LiRA, Shokri et al.'s attack, the threshold
attacks' calibration, Chen et al.'s unlearning leak) needs the same thing: M models, model m trained from
scratch with the experiment's recipe on a known subset of data. This module trains them in one vectorised
run (`core.batched.train_many`, which reproduces `core.training.train` model by model), and caches them
twice: in-process (so several attacks and targets in one session share one set) and on disk through
`ctx.store` (`core.cache.ModelStore`), one entry per model keyed by everything that determines its weights.

API for other attacks (kept small on purpose):

    from core.attacks.shadow import shadow_models, train_models, balanced_keep, ShadowSet

    # LiRA-style: every sample of pool = shadow pool ∪ queries (∪ population) IN for some shadows, OUT for
    # the others; by default each shadow trains on as many samples as θ_o
    sh = shadow_models(ctx, queries=ids, n_shadows=16, population=ctx.split.retain, progress=progress)
    sh.logits(X)          # (M, N, classes) for any inputs
    sh.member_mask(ids)   # (M, len(ids)) bool: was sample ids[j] in shadow m's training set?

    # arbitrary training sets (e.g. Chen et al.'s shadow originals), one model per subset
    sh = train_models(ctx, subsets=[idx_a, idx_b, ...], seeds=[0, 1, ...])
    sh.modules()          # list of nn.Module copies (eval mode), e.g. to unlearn each one

Subsets and ids are *dataset indices* (positions in `ctx.split.dataset`, as `Split.train` etc. hold).
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..batched import Params, forward_many, init_many, stack, train_many, unstack
from ..cache import data_fingerprint, index_fingerprint, stable_hash
from ..progress import Progress, as_progress
from ..training import TRAINER_VERSION, Recipe

_MEMO: "OrderedDict[str, ShadowSet]" = OrderedDict()  # in-process cache, most recent last
_MEMO_SIZE = 6


@dataclass
class ShadowSet:
    """M trained models of one architecture, stacked (see `core.batched`)."""

    template: nn.Module  # an instance of the architecture (its own weights are not used)
    params: Params  # name -> (M, *shape)
    subsets: list[np.ndarray]  # dataset indices model m was trained on
    pool: np.ndarray | None = None  # for shadow_models(): the indices the subsets were drawn from
    keep: np.ndarray | None = None  # for shadow_models(): (M, len(pool)) bool, keep[m, j] = pool[j] in subsets[m]
    seconds: float = 0.0  # training time of the models that were not cached
    cached: int = 0  # how many models came from a cache
    memo: dict[str, Any] = field(default_factory=dict, repr=False)  # per-set memo for attacks (e.g. φ of queries)

    @property
    def n_models(self) -> int:
        return len(self.subsets)

    def logits(self, X: torch.Tensor) -> torch.Tensor:
        """Logits of every shadow on shared inputs X (N, ...): (M, N, classes)."""
        return forward_many(self.template, self.params, X)

    def member_mask(self, ids: np.ndarray) -> np.ndarray:
        """(M, len(ids)) bool: whether each dataset index was in each model's training set."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.stack([np.isin(ids, s) for s in self.subsets])

    def modules(self) -> list[nn.Module]:
        """The shadows as separate modules (copies, eval mode)."""
        return unstack(self.params, self.template)


def balanced_keep(n_models: int, n_samples: int, in_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """(M, N) inclusion matrix where every sample is IN for exactly k = round(in_fraction·M) models
    (clamped to 1..M-1, so each sample is IN for some models and OUT for others), as in Carlini et al.'s
    code; which models is random per sample."""
    if n_models < 2:
        raise ValueError("need at least 2 shadow models (every sample must be IN for some and OUT for others)")
    k = int(min(max(round(in_fraction * n_models), 1), n_models - 1))
    return np.argsort(rng.random((n_models, n_samples)), axis=0) < k



def _model_key(base: dict, subset: np.ndarray, init_seed: int, order_seed: int) -> dict:
    return {**base, "on": index_fingerprint(np.sort(subset)), "init": int(init_seed), "order": int(order_seed)}


def train_models(ctx, subsets: Sequence[np.ndarray], seeds: Sequence[int] | None = None,
                 recipe: Recipe | None = None, progress: Progress | None = None,
                 stage: str = "shadow models", use_store: bool = True) -> ShadowSet:
    """Train one model per subset (dataset indices) from scratch, all at once; cached.

    Model m starts from `ctx.fresh_model(seeds[m])` and draws its mini-batches with the same seed (as
    `core.training.train(model, X[subset], y[subset], recipe, seed=seeds[m])` would). `recipe` defaults
    to the one θ_o was trained with. Models already in the in-process memo or in `ctx.store` are loaded,
    only the missing ones are trained."""
    progress = as_progress(progress)
    recipe = recipe or ctx.recipe
    subsets = [np.sort(np.asarray(s, dtype=np.int64)) for s in subsets]
    seeds = list(range(len(subsets))) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(subsets):
        raise ValueError("one seed per subset")
    if any(len(s) == 0 for s in subsets):
        raise ValueError("a shadow model's training set is empty")
    template = ctx.fresh_model(0)
    split = ctx.split
    base = {"kind": "shadow", "data": data_fingerprint(split.dataset), "arch": repr(template),
            "input_shape": list(split.dataset.input_shape), "recipe": recipe.to_dict(), "trainer": TRAINER_VERSION}
    keys = [_model_key(base, s, sd, sd) for s, sd in zip(subsets, seeds)]
    memo_key = stable_hash(keys)
    if memo_key in _MEMO:
        _MEMO.move_to_end(memo_key)
        return replace(_MEMO[memo_key], seconds=0.0, cached=len(subsets))  # shares the per-set memo

    store = getattr(ctx, "store", None) if use_store else None
    found: dict[int, nn.Module] = {}
    if store is not None:
        for i, k in enumerate(keys):
            got = store.load(stable_hash(k), ctx.fresh_model(0))
            if got is not None:
                found[i] = got[0].to(ctx.device)
    missing = [i for i in range(len(subsets)) if i not in found]
    seconds = 0.0
    trained: dict[int, nn.Module] = {}
    if missing:
        X, y = split.tensors(np.arange(len(split.dataset)))  # the whole dataset; subsets index into it
        start = time.perf_counter()
        init = init_many(ctx.fresh_model, [seeds[i] for i in missing])
        params = train_many(template, init, X, y, [subsets[i] for i in missing], recipe,
                            [seeds[i] for i in missing], progress, stage)
        seconds = time.perf_counter() - start
        for i, m in zip(missing, unstack(params, template)):
            trained[i] = m
            if store is not None:
                store.save(stable_hash(keys[i]), m, {"seconds": seconds / len(missing)})
    else:
        progress(stage, 1, 1)
    models = [found[i] if i in found else trained[i] for i in range(len(subsets))]
    out = ShadowSet(template, stack(models), subsets, seconds=seconds, cached=len(found))
    _MEMO[memo_key] = out
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return out


def shadow_models(ctx, queries: np.ndarray | None = None, n_shadows: int = 16, in_fraction: float | None = None,
                  population: np.ndarray | None = None, seed: int | None = None, recipe: Recipe | None = None,
                  progress: Progress | None = None, stage: str = "shadow models") -> ShadowSet:
    """LiRA-style shadow models on pool = ctx.split.shadow ∪ queries ∪ population (dataset indices).

    Every pool sample is IN for exactly round(in_fraction·n_shadows) shadows and OUT for the rest
    (`balanced_keep`). `in_fraction=None` matches the target: each shadow trains on about as many samples
    as θ_o did (|train| / |pool|), which LiRA needs (a shadow trained on half the data is less confident
    everywhere, and the target's non-members then look like members). Official LiRA uses 0.5 of a pool
    twice the training set; the ReA code 6 of 8 shadows. The same arguments give the same models (cached)."""
    seed = int(ctx.seed if seed is None else seed)
    q = np.asarray([] if queries is None else queries, dtype=np.int64)
    extra = np.asarray([] if population is None else population, dtype=np.int64)
    pool = np.unique(np.r_[ctx.split.shadow, q, extra]).astype(np.int64)
    if in_fraction is None or in_fraction <= 0:
        in_fraction = len(ctx.split.train) / len(pool)
    rng = np.random.default_rng([seed, 0x5AD0, n_shadows, len(pool)])
    keep = balanced_keep(n_shadows, len(pool), in_fraction, rng)
    subsets = [pool[k] for k in keep]
    seeds = [seed * 1000 + 7001 + m for m in range(n_shadows)]
    sh = train_models(ctx, subsets, seeds, recipe, progress, stage)
    sh.pool, sh.keep = pool, keep
    return sh


def clear_memo() -> None:
    """Forget the in-process shadow cache (the disk cache is untouched)."""
    _MEMO.clear()
