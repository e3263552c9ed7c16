"""Running the registered probes on many models, and the models the yardstick and the controls need.

* `measure(ctx, name, models)` runs one registered probe on the models it has not measured yet in this context
  (a model's value depends only on the model and the context, so the heatmap, the verdict and the controls
  share one computation per model);
* `measure_all(ctx, models)` runs every probe that applies to the run's kind of forgetting;
* `scratch_models` trains many from-scratch models at once (`core.batched.train_many`, which matches
  `core.training.train` exactly) and stores each under the key `Experiment.train_model` uses, so a
  yardstick retrain trained here is the same cached model everywhere;
* `head_only` builds the constructed pseudo-converged control: θ_o with only its last layer retrained on D_r
  (its outputs forget D_f; its hidden layers are θ_o's).
"""
from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..cache import stable_hash
from ..progress import Progress, as_progress
from .base import ProbeContext, Readings, get_probe, infos


def measure(ctx: ProbeContext, name: str, models: dict[str, nn.Module], **hp: Any) -> Readings:
    """Readings of probe `name` (with hyperparameters `hp`) for `models`, each model measured once per context."""
    probe = get_probe(name, **hp)
    tag = ("reading", name, stable_hash(probe.hp))
    meta = ctx.memo.get(tag)
    todo = {n: m for n, m in models.items() if (*tag, id(m)) not in ctx.memo}
    if todo:
        r = probe.measure(ctx, todo)
        for n, m in todo.items():
            ctx.memo[(*tag, id(m))] = r.values[n]
            ctx.memo[(*tag, "keep", id(m))] = m  # keeps the model alive, so its id is not reused
        meta = _merged(meta, r)
        ctx.memo[tag] = meta
    values = {n: ctx.memo[(*tag, id(m))] for n, m in models.items()}
    return Readings(name, values, meta.layers, meta.resolution, meta.baseline, dict(probe.hp),
                    _extra_for(meta.extra, models))


def _merged(old: Readings | None, new: Readings) -> Readings:
    """Keep what is shared (layers, resolution, baseline) and merge per-model extras over calls."""
    if old is None:
        return new
    extra = dict(old.extra)
    for k, v in new.extra.items():
        extra[k] = {**extra[k], **v} if isinstance(v, dict) and isinstance(extra.get(k), dict) else v
    return Readings(new.probe, {}, new.layers, min(old.resolution, new.resolution) if old.resolution else new.resolution,
                    new.baseline or old.baseline, new.settings, extra)


def _extra_for(extra: dict, models: dict) -> dict:
    """Per-model entries of `extra` (dicts keyed by model name) restricted to `models`; the rest as is."""
    out = {}
    for k, v in extra.items():
        out[k] = {n: v[n] for n in models if n in v} if isinstance(v, dict) and set(v) & set(models) else v
    return out


def measure_all(ctx: ProbeContext, models: dict[str, nn.Module], hp: dict[str, dict] | None = None,
                progress: Progress | None = None, names: list[str] | None = None) -> dict[str, Readings]:
    """Every registered probe that applies to this run's forgetting and is part of the verdict (or `names`), on
    every model."""
    progress = as_progress(progress)
    names = names or [i.name for i in infos() if i.applies(ctx.class_wise) and i.in_verdict]
    out = {}
    for k, name in enumerate(names):
        progress(f"measure: {name}", k, len(names))
        out[name] = measure(ctx, name, models, **(hp or {}).get(name, {}))
    progress("measure", len(names), len(names))
    return out


# -- many from-scratch models at once, cached like Experiment.train_model --------------------------
def scratch_models(exp, specs: list[tuple[str, int, int]], progress: Progress | None = None,
                   stage: str = "yardstick models") -> list[nn.Module]:
    """Models trained from scratch on `part` ('train' or 'retain') with (init seed, order seed), as
    `exp.train_model` would train them, batched over the ones not yet in the cache."""
    from ..batched import init_many, train_many, unstack
    from ..experiment import _idx_hash

    progress = as_progress(progress)
    split = exp.prepare()
    base = exp._base_key()
    out: list[nn.Module | None] = [None] * len(specs)
    todo: dict[str, list[int]] = {}
    keys = []
    for i, (part, init, order) in enumerate(specs):
        parts = {**base, "kind": "scratch", "on": _idx_hash(getattr(split, part)), "init": int(init),
                 "order": int(order)}
        keys.append(stable_hash(parts))
        found = exp.store.load(keys[-1], exp.fresh_model(init))
        if found is not None:
            out[i] = found[0].to(exp.device).eval()
        else:
            todo.setdefault(part, []).append(i)
    for part, idx in todo.items():
        X, y = split.tensors(part)
        template = exp.fresh_model(specs[idx[0]][1])
        init = init_many(exp.fresh_model, [specs[i][1] for i in idx])
        start = time.perf_counter()
        params = train_many(template, init, X, y, [np.arange(len(y))] * len(idx), exp.config.recipe,
                            [specs[i][2] for i in idx], progress, f"{stage} ({len(idx)} on {part})")
        seconds = (time.perf_counter() - start) / len(idx)
        for i, m in zip(idx, unstack(params, template)):
            m = m.to(exp.device).eval()
            exp.store.save(keys[i], m, {"seconds": seconds, "batched": True})
            out[i] = m
    return out  # type: ignore[return-value]


def head_only(exp, progress: Progress | None = None) -> nn.Module:
    """The constructed pseudo-converged model: θ_o with its last layer re-initialised and retrained on D_r
    (the hidden layers frozen at θ_o's), with θ_o's recipe. Cached like every model."""
    from ..experiment import _idx_hash

    split = exp.prepare()
    original = exp.models["original"]
    key = {**exp._base_key(), "kind": "head_only", "original_seed": int(exp.config.seed),
           "on": _idx_hash(split.retain), "version": 1}

    def build():
        start = time.perf_counter()
        model = copy.deepcopy(original)
        head = model.blocks["head"]
        fresh = exp.fresh_model(int(exp.config.seed) + 101).blocks["head"]
        head.load_state_dict(fresh.state_dict())
        X, y = split.tensors("retain")
        with torch.no_grad():
            feats = model.eval().features(X)
        recipe = exp.config.recipe
        from ..training import epoch_batches, make_optimizer

        opt = make_optimizer(head.parameters(), recipe.optimizer, recipe.lr, recipe.momentum, recipe.weight_decay)
        g = torch.Generator().manual_seed(int(exp.config.seed) + 101)
        for epoch in range(recipe.epochs):
            for idx in epoch_batches(len(y), recipe.batch_size, g, X.device):
                loss = F.cross_entropy(head(feats[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            as_progress(progress)("control: head-only retrain", epoch + 1, recipe.epochs)
        return model.eval(), {"seconds": time.perf_counter() - start}

    model, _, _ = exp.store.get_or_build(key, lambda: exp.fresh_model(), build)
    return model.to(exp.device).eval()


def finetuned(exp, model: nn.Module, epochs: int = 1, lr: float = 1e-3) -> nn.Module:
    """θ fine-tuned briefly on D_r (the registered `finetune` method): a model that still holds D_f."""
    from ..unlearn import get_method

    return get_method("finetune", epochs=epochs, lr=lr).unlearn(model, exp.task()).model.eval()
